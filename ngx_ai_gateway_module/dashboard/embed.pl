#!/usr/bin/perl
# Writes ngx_ai_gateway_dashboard.h, the dashboard page as a C string, from
# dashboard.html next to this script.  Run it after editing the page:
#
#   perl ngx_ai_gateway_module/dashboard/embed.pl
#
# (t/80-observability.t checks that the header is up to date.)  With
# --stdout the header goes to standard output instead.

use strict;
use warnings;
use File::Basename qw(dirname);

my $dir = dirname(__FILE__);
my $html = "$dir/dashboard.html";
my $out = "$dir/../ngx_ai_gateway_dashboard.h";

open my $in, '<:raw', $html or die "$html: $!\n";
my @lines = <$in>;
close $in;

my $c = <<'HEAD';

/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * The ai_status dashboard (?format=html): generated from
 * dashboard/dashboard.html by dashboard/embed.pl; do not edit.
 */


#ifndef _NGX_AI_GATEWAY_DASHBOARD_H_INCLUDED_
#define _NGX_AI_GATEWAY_DASHBOARD_H_INCLUDED_


static const u_char  ngx_http_ai_dashboard_html[] =
HEAD

for my $line (@lines) {
    my $s = $line;
    $s =~ s/([\\"?])/\\$1/g;               # \\ \" \? (no trigraphs)
    $s =~ s/\n/\\n/g;
    $s =~ s/\t/\\t/g;
    $s =~ s/([^\x20-\x7e\\])/sprintf('\\%03o', ord $1)/ge;
    $c .= "    \"$s\"\n";
}

$c .= "    ;\n\n\n#endif /* _NGX_AI_GATEWAY_DASHBOARD_H_INCLUDED_ */\n";

if (@ARGV && $ARGV[0] eq '--stdout') {
    print $c;
    exit 0;
}

open my $o, '>:raw', "$out.tmp" or die "$out.tmp: $!\n";
print $o $c;
close $o or die "$out.tmp: $!\n";
rename "$out.tmp", $out or die "$out: $!\n";
