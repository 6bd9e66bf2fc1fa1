#!/usr/bin/perl
# Draws docs/benchmarks.svg from a bench/run.sh results.json: throughput
# under load and p99 latency at light load, one bar per measured case
# (nginx proxy_pass, gateway, Portkey; the direct-to-mock baselines are
# left out). Perl core modules only.
#
#   chart.pl bench/results/latest/results.json docs/benchmarks.svg
use strict;
use warnings;
use JSON::PP;

my ($in, $outf) = @ARGV;
die "usage: $0 results.json out.svg\n" unless $in && $outf;
open my $fh, '<', $in or die "$in: $!\n";
my $res = do { local $/; JSON::PP->new->decode(<$fh>) };
close $fh;

my @cases = grep { $_->{status} eq 'ok' && $_->{kind} ne 'direct' && $_->{throughput} }
            @{ $res->{cases} };

my %color = (plain => '#8c8c8c', gateway => '#1f77b4', portkey => '#ff7f0e');
my ($W, $label_w, $bar_h, $gap, $pad) = (960, 300, 18, 6, 16);
my $panel_w = ($W - $label_w - 3 * $pad) / 2;

sub esc { my $s = shift; $s =~ s/&/&amp;/g; $s =~ s/</&lt;/g; $s =~ s/>/&gt;/g; $s }
sub fmt {
    my $v = sprintf('%.0f', shift);
    1 while $v =~ s/^(\d+)(\d{3})/$1,$2/;
    $v;
}
# a round axis maximum above $v
sub nice_max {
    my $v = shift || 1;
    my $p = 10 ** int(log($v) / log(10));
    for my $m (1, 2, 2.5, 5, 10) { return $m * $p if $m * $p >= $v }
    return 10 * $p;
}

my $m = $res->{machine} || {};
my $top = 64;
my $H = $top + @cases * ($bar_h + $gap) + 56;
$H = 160 if $H < 160;
my $svg = '';
$svg .= qq{<svg xmlns="http://www.w3.org/2000/svg" width="$W" height="$H" viewBox="0 0 $W $H" font-family="Helvetica, Arial, sans-serif" font-size="12">\n};
$svg .= qq{<rect width="$W" height="$H" fill="#ffffff"/>\n};
$svg .= sprintf(qq{<text x="%d" y="20" font-size="15" font-weight="bold">ngx_ai_gateway_module benchmark</text>\n}, $pad);
$svg .= sprintf(qq{<text x="%d" y="38" fill="#555">%s</text>\n}, $pad,
    esc(sprintf('%s, %s CPUs, nginx %s, Node %s, Portkey %s; %s; server on 1 core, wrk -c%s',
        $m->{cpu} // '?', $m->{cpus} // '?', $m->{nginx} // '?', $m->{node} // '?',
        $m->{portkey} // '?', $m->{date} // '?', $m->{connections} // '?')));

if (($res->{max_foreign_cpu} // 0) > 0.10) {
    $svg .= sprintf(qq{<text x="%d" y="%d" fill="#b00000" text-anchor="end">%s</text>\n}, $W - $pad, 20,
        esc(sprintf('disturbed run: other processes used up to %.0f%% of a CPU', 100 * $res->{max_foreign_cpu})));
}
if (!@cases) {
    $svg .= sprintf(qq{<text x="%d" y="80">no measured cases</text>\n}, $pad);
} else {
    my @panels = (
        { title => "throughput, requests/s (wrk -c$m->{connections})",
          val => sub { $_[0]{throughput}{rps} }, fmt => sub { fmt($_[0]) } },
        { title => "p99 latency, us, at ~$m->{light_rate} req/s",
          val => sub { $_[0]{light} ? $_[0]{light}{latency_us}{p99} : undef },
          fmt => sub { fmt($_[0]) } },
    );
    for my $i (0 .. $#panels) {
        my $p = $panels[$i];
        my $x0 = $label_w + $pad + $i * ($panel_w + $pad);
        # the axis fits the nginx cases; a bar beyond it (Portkey's latency)
        # is cut and marked, its value printed
        my @v = map { $p->{val}->($_) } @cases;
        my @fit = map { $p->{val}->($_) } grep { $_->{kind} ne 'portkey' } @cases;
        @fit = grep { defined } @fit;
        @fit = grep { defined } @v unless @fit;
        my $max = 0;
        for (@fit) { $max = $_ if $_ > $max }
        my $all = 0;
        for (grep { defined } @v) { $all = $_ if $_ > $all }
        $max = $all if $all <= $max * 1.5;
        $max = nice_max($max * 1.05);
        my $bw = $panel_w - 70;
        $svg .= sprintf(qq{<text x="%d" y="%d" font-weight="bold">%s</text>\n}, $x0, $top - 8, esc($p->{title}));
        for my $t (0 .. 4) {
            my $x = $x0 + $bw * $t / 4;
            $svg .= sprintf(qq{<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#e5e5e5"/>\n},
                            $x, $top, $x, $top + @cases * ($bar_h + $gap));
            $svg .= sprintf(qq{<text x="%.1f" y="%d" fill="#777" text-anchor="middle" font-size="10">%s</text>\n},
                            $x, $top + @cases * ($bar_h + $gap) + 12, fmt($max * $t / 4));
        }
        for my $j (0 .. $#cases) {
            my $c = $cases[$j];
            my $y = $top + $j * ($bar_h + $gap);
            my $v = $v[$j];
            next unless defined $v;
            my $cut = $v > $max;
            my $w = $bw * ($cut ? 1 : $v / $max);
            $svg .= sprintf(qq{<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>\n},
                            $x0, $y, $w, $bar_h, $color{ $c->{kind} } // '#999');
            if ($cut) {
                $svg .= sprintf(qq{<path d="M%.1f %d l6 %d M%.1f %d l6 %d" stroke="#fff" stroke-width="3"/>\n},
                                $x0 + $w - 24, $y, $bar_h, $x0 + $w - 16, $y, $bar_h);
            }
            $svg .= sprintf(qq{<text x="%.1f" y="%d" fill="#222">%s%s</text>\n},
                            $x0 + $w + 4, $y + $bar_h - 5, $p->{fmt}->($v), $cut ? ' (cut)' : '');
        }
    }
    for my $j (0 .. $#cases) {
        my $c = $cases[$j];
        my $y = $top + $j * ($bar_h + $gap);
        $svg .= sprintf(qq{<text x="%d" y="%d" text-anchor="end">%s</text>\n},
                        $label_w, $y + $bar_h - 5, esc($c->{label}));
    }
    my $ly = $H - 18;
    my $lx = $pad;
    for my $k ([plain => 'nginx proxy_pass'], [gateway => 'ngx_ai_gateway_module'], [portkey => 'Portkey gateway (Node)']) {
        $svg .= sprintf(qq{<rect x="%d" y="%d" width="12" height="12" fill="%s"/>\n}, $lx, $ly - 10, $color{ $k->[0] });
        $svg .= sprintf(qq{<text x="%d" y="%d">%s</text>\n}, $lx + 16, $ly, esc($k->[1]));
        $lx += 200;
    }
}
$svg .= "</svg>\n";

open my $o, '>', "$outf.tmp" or die "$outf.tmp: $!\n";
print $o $svg;
close $o;
rename "$outf.tmp", $outf or die "rename $outf: $!\n";
