#!/usr/bin/perl
# The layering of the C sources (ngx_ai_gateway_module/LAYERS, issue #15):
# no .c file uses a function of a layer above its own, or of a file after
# it on its own layer's line, unless LAYERS lists that use as known; the
# pure layer includes no ngx_http.h.  The call graph is read from the
# sources by a small C-aware scanner (comments, strings and character
# constants skipped): each non-static function is defined where its name
# starts a line and its parameter list is followed by "{"; a file uses it
# wherever the name appears as an identifier (a call, or a reference as
# in a command table).  The strongly connected components of the file
# graph are reported.
#
#   AI_GW_LAYERS_REPORT=1 prove -v t/00-layers.t
#       prints every file's layer, every use between files, every
#       violation (known or not) and the components, and does not fail
#
# Perl core only; no build needed.

use strict;
use warnings;
use FindBin;
use Test::More;

my $SRC = "$FindBin::Bin/../ngx_ai_gateway_module";
my $REPORT = $ENV{AI_GW_LAYERS_REPORT};

# ok(), except that in the report mode nothing fails: what would is said
sub check {
    my ($ok, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    return ok($ok, $name) unless $REPORT;
    return pass($ok ? $name : "$name: NOT SO (report mode)");
}

# --- the table --------------------------------------------------------------

my (%layer, %pos, %layer_name, %known, @errors);

open my $lf, '<', "$SRC/LAYERS" or die "$SRC/LAYERS: $!\n";
while (my $line = <$lf>) {
    chomp $line;
    next if $line =~ /^\s*(#|$)/;
    if ($line =~ /^layer (\d+) ([\w-]+):\s*(.*)$/) {
        my ($n, $name, $files) = ($1, $2, $3);
        $layer_name{$n} = $name;
        my $i = 0;
        for my $f (split ' ', $files) {
            push @errors, "LAYERS: $f is in two layers" if exists $layer{$f};
            $layer{$f} = $n;
            $pos{$f} = $i++;
        }
    } elsif ($line =~ /^known (\w+) -> (\w+)\s+(.+)$/) {
        $known{"$1 $2"} = $3;
    } else {
        push @errors, "LAYERS: a line this test does not read: $line";
    }
}
close $lf;

check(!@errors, 'LAYERS reads') or diag join "\n", @errors;

# --- the sources ------------------------------------------------------------

sub short { my ($f) = @_; $f =~ s{.*/}{}; $f =~ s/\.c$//; $f =~ s/^ngx_ai_gateway_//;
            $f eq 'ngx_ai_gateway' ? 'module' : $f }
sub file { $_[0] eq 'module' ? 'ngx_ai_gateway_module.c' : "ngx_ai_gateway_$_[0].c" }

# the text with comments, strings and character constants blanked (their
# newlines kept, so that offsets give the same line numbers)
sub strip {
    my ($t) = @_;
    $t =~ s{ /\*.*?\*/ | //[^\n]* | "(?:[^"\\\n]|\\.)*" | '(?:[^'\\\n]|\\.)*' }
           { (my $m = $&) =~ tr/\n/ /c; $m }gsex;
    return $t;
}

my (%text, %def, %static);

for my $path (sort glob "$SRC/*.c") {
    my $f = short($path);
    open my $fh, '<', $path or die "$path: $!\n";
    my $t = do { local $/; <$fh> };
    close $fh;
    $text{$f} = strip($t);
}

ok(scalar(keys %text) > 10, scalar(keys %text) . ' .c files read');

# definitions: NAME( at the start of a line, its parameters, then "{"
for my $f (sort keys %text) {
    my $t = $text{$f};
    while ($t =~ /^([A-Za-z_]\w*)\(/mg) {
        my ($name, $at) = ($1, pos($t));
        my ($depth, $i) = (1, $at);
        while ($depth && $i < length $t) {
            my $c = substr($t, $i++, 1);
            $depth += $c eq '(' ? 1 : $c eq ')' ? -1 : 0;
        }
        next unless substr($t, $i) =~ /^\s*\{/;
        my $start = rindex($t, "\n", $at - length($name) - 2);
        my $type = substr($t, $start + 1, $at - length($name) - 1 - $start - 1);
        if ($type =~ /\bstatic\b/) { $static{$f}{$name} = 1; next }
        if (exists $def{$name} && $def{$name} ne $f) {
            push @errors, "$name is defined in " . file($def{$name}) . ' and ' . file($f);
        }
        $def{$name} = $f;
    }
}

# uses: an identifier that is a function of another file
my (%use, %edge);    # $use{$from}{$name} = line; $edge{$from}{$to}++

for my $f (sort keys %text) {
    my $t = $text{$f};
    while ($t =~ /\b([A-Za-z_]\w*)\b/g) {
        my $to = $def{$1};
        next if !defined $to || $to eq $f || $static{$f}{$1};
        next if exists $use{$f}{$1};
        $use{$f}{$1} = 1 + (substr($t, 0, pos($t)) =~ tr/\n//);
        $edge{$f}{$to}++;
    }
}

# --- the check --------------------------------------------------------------

my @unplaced = grep { !exists $layer{$_} } sort keys %text;
check(!@unplaced, 'every .c file has a layer in LAYERS')
    or diag 'not in LAYERS: ' . join ', ', map { file($_) } @unplaced;

my @missing = grep { !exists $text{$_} } sort keys %layer;
diag 'in LAYERS, not (yet) a file: ' . join ', ', map { file($_) } @missing
    if @missing && $REPORT;

my (@new, @old, %seen);

for my $f (sort keys %use) {
    for my $name (sort { $use{$f}{$a} <=> $use{$f}{$b} } keys %{ $use{$f} }) {
        my $to = $def{$name};
        next unless exists $layer{$f} && exists $layer{$to};
        my ($lf, $lt) = ($layer{$f}, $layer{$to});
        next if $lt < $lf || ($lt == $lf && $pos{$to} < $pos{$f});
        my $why = $lt > $lf ? "layer $lt ($layer_name{$lt}) above $lf ($layer_name{$lf})"
                            : "later on the line of layer $lf ($layer_name{$lf})";
        my $msg = sprintf '%s:%d uses %s of %s: %s', file($f), $use{$f}{$name},
                          $name, file($to), $why;
        $seen{"$f $name"} = 1;
        if (exists $known{"$f $name"}) { push @old, "$msg (known: " . $known{"$f $name"} . ')' }
        else { push @new, $msg }
    }
}

my @gone = grep { !$seen{$_} } sort keys %known;

if ($REPORT) {
    for my $n (sort { $a <=> $b } keys %layer_name) {
        diag "layer $n $layer_name{$n}: "
             . join ' ', grep { exists $text{$_} } sort { $pos{$a} <=> $pos{$b} }
                         grep { $layer{$_} == $n } keys %layer;
    }
    for my $f (sort keys %use) {
        my %by;
        push @{ $by{ $def{$_} } }, $_ for keys %{ $use{$f} };
        diag "$f -> $_: " . join ' ', sort @{ $by{$_} } for sort keys %by;
    }
    diag "known: $_" for @old;
}

check(!@new, 'no use against the layers that LAYERS does not list as known ('
          . scalar(@old) . ' known)')
    or diag join "\n", @new;
diag join "\n", @new if @new && $REPORT;

diag "listed as known in LAYERS, no longer found (delete the line): $_"
    for @gone;

# --- the pure layer ------------------------------------------------------------

my @http = grep { exists $text{$_} && $text{$_} =~ /^\s*#\s*include\s*<ngx_http\.h>/m }
           grep { $layer{$_} == 0 } keys %layer;
check(!@http, 'the pure layer includes no ngx_http.h')
    or diag join ', ', map { file($_) } sort @http;

# --- strongly connected components (Tarjan) --------------------------------------

my ($index, @stack, %on, %idx, %low, @scc) = (0);

sub visit {
    my ($v) = @_;
    $idx{$v} = $low{$v} = $index++;
    push @stack, $v;
    $on{$v} = 1;
    for my $w (sort keys %{ $edge{$v} || {} }) {
        if (!exists $idx{$w}) {
            visit($w);
            $low{$v} = $low{$w} if $low{$w} < $low{$v};
        } elsif ($on{$w}) {
            $low{$v} = $idx{$w} if $idx{$w} < $low{$v};
        }
    }
    if ($low{$v} == $idx{$v}) {
        my @c;
        while (1) {
            my $w = pop @stack;
            $on{$w} = 0;
            push @c, $w;
            last if $w eq $v;
        }
        push @scc, [sort @c] if @c > 1;
    }
}

visit($_) for grep { !exists $idx{$_} } sort keys %text;

diag scalar(@scc) . ' strongly connected component(s) of the file graph'
     . join('', map { "\n  {" . join(', ', @$_) . '}' } @scc);

check(!@errors, 'every function defined once') or diag join "\n", @errors;

done_testing;
