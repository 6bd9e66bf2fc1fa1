#!/usr/bin/perl
# Writes ngx_ai_gateway_sync_lua.h, the Lua scripts of sync= as C strings,
# from batch.lua, strict.lua, lease.lua and budget.lua next to this script.  ./build.sh runs it
# before each build; the header is rewritten only when a script changed.
# By hand:
#
#   perl ngx_ai_gateway_module/sync/embed.pl
#
# The strings hold the files' bytes exactly: Redis names a script by the
# SHA1 of its text, so a script changes its name only when its text
# changes.  (t/90-fleet.t checks that the header is up to date.)  With
# --stdout the header goes to standard output instead.

use strict;
use warnings;
use File::Basename qw(dirname);

my $dir = dirname(__FILE__);
my $out = "$dir/../ngx_ai_gateway_sync_lua.h";

my $c = <<'HEAD';

/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * The Lua scripts of sync= (ngx_ai_gateway_sync.c): generated from
 * sync/batch.lua, sync/strict.lua, sync/lease.lua and sync/budget.lua by
 * sync/embed.pl;
 * do not edit.
 */


#ifndef _NGX_AI_GATEWAY_SYNC_LUA_H_INCLUDED_
#define _NGX_AI_GATEWAY_SYNC_LUA_H_INCLUDED_
HEAD

for my $name (qw(batch strict lease budget)) {
    my $file = "$dir/$name.lua";

    open my $in, '<:raw', $file or die "$file: $!\n";
    my @lines = <$in>;
    close $in;

    $c .= "\n\nstatic const char  ngx_http_ai_sync_${name}_lua[] =\n";

    my @s;

    for my $line (@lines) {
        my $s = $line;
        $s =~ s/([\\"?])/\\$1/g;           # \\ \" \? (no trigraphs)
        $s =~ s/\n/\\n/g;
        $s =~ s/\t/\\t/g;
        $s =~ s/([^\x20-\x7e\\])/sprintf('\\%03o', ord $1)/ge;
        push @s, "\"$s\"";
    }

    $c .= join("\n", @s) . ";\n";
}

$c .= "\n\n#endif /* _NGX_AI_GATEWAY_SYNC_LUA_H_INCLUDED_ */\n";

if (@ARGV && $ARGV[0] eq '--stdout') {
    print $c;
    exit 0;
}

if (open my $old, '<:raw', $out) {
    local $/;
    my $have = <$old>;
    close $old;
    exit 0 if defined $have && $have eq $c;
}

open my $o, '>:raw', "$out.tmp" or die "$out.tmp: $!\n";
print $o $c;
close $o or die "$out.tmp: $!\n";
rename "$out.tmp", $out or die "$out: $!\n";
