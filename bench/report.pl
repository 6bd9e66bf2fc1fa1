#!/usr/bin/perl
# Turns one bench/run.sh result directory into results.json and results.md,
# and (with --docs FILE) rewrites the part of docs/benchmarks.md between
# <!-- results --> and <!-- /results -->. Perl core modules only.
#
#   report.pl bench/results/<stamp> [--docs docs/benchmarks.md]
use strict;
use warnings;
use JSON::PP;

my $dir = shift or die "usage: $0 RESULT_DIR [--docs FILE]\n";
my %opt = @ARGV;
my $docs = $opt{'--docs'};
my $J = JSON::PP->new->canonical->pretty;

sub slurp_json {
    my ($f) = @_;
    open my $fh, '<', $f or return undef;
    local $/;
    my $t = <$fh>;
    return eval { JSON::PP->new->decode($t) };
}

my $machine = slurp_json("$dir/machine.json") || {};

# CPU (in cores) that processes other than the server, the mock and wrk
# used during a measured run: other jobs on the machine, a disturbed run
sub foreign {
    my ($w, $kind) = @_;
    return 0 unless defined $w->{all_task_ticks};
    my $ours = $w->{server_cpu_ticks} + $w->{client_cpu_ticks}
             + ($kind eq 'direct' ? 0 : $w->{mock_cpu_ticks});
    my $f = ($w->{all_task_ticks} - $ours) / ($w->{clk_tck} || 100) / ($w->{wall_ns} / 1e9 || 1);
    return $f > 0 ? $f : 0;
}
my @order;
if (open my $fh, '<', "$dir/order.txt") {
    chomp(@order = grep { /\S/ } <$fh>);
}

my (%c, @cases);
for my $n (@order) {
    my $d = "$dir/cases/$n";
    my $meta = slurp_json("$d/meta.json") or next;
    my $st = slurp_json("$d/status.json") || { status => 'not run', reason => '' };
    my %r = (%$meta, status => $st->{status}, reason => $st->{reason});
    if (my $ck = slurp_json("$d/check.json")) {
        $r{check} = { map { $_ => $ck->{$_} } grep { exists $ck->{$_} } qw(ok reason status headers) };
    }
    for my $run (qw(throughput light)) {
        # with BENCH_REPEAT > 1: the run least disturbed by other processes
        my ($w, $wf, $nruns);
        for my $f (sort glob("$d/$run.*.json")) {
            my $x = slurp_json($f) or next;
            $nruns++;
            my $fo = foreign($x, $meta->{kind});
            ($w, $wf) = ($x, $fo) if !$w || $fo < $wf;
        }
        next unless $w;
        my $s = $w->{wrk};
        my $secs = $s->{duration_us} / 1e6 || 1;
        my $e = $s->{errors};
        my $cpu_s = $w->{server_cpu_ticks} / ($w->{clk_tck} || 100);
        my $wall = $w->{wall_ns} / 1e9 || 1;
        $r{$run} = {
            connections => $w->{connections}, delay_ms => $w->{delay_ms},
            requests => $s->{requests}, seconds => $secs,
            rps => $s->{requests} / $secs,
            errors => $e->{connect} + $e->{read} + $e->{write} + $e->{timeout},
            non_2xx => $e->{status},
            latency_us => $s->{latency_us},
            server_cpu_us_per_request => $s->{requests} ? $cpu_s * 1e6 / $s->{requests} : undef,
            server_cpu_util => $cpu_s / $wall,
            mock_cpu_util => $w->{mock_cpu_ticks} / ($w->{clk_tck} || 100) / $wall,
        };
        $r{$run}{runs} = $nruns;
        if (defined $w->{all_task_ticks}) {
            my $hz = $w->{clk_tck} || 100;
            $r{$run}{client_cpu_util} = $w->{client_cpu_ticks} / $hz / $wall;
            $r{$run}{server_core_busy} = $w->{server_core_busy_ticks} / $hz / $wall;
            $r{$run}{client_core_busy} = $w->{client_core_busy_ticks} / $hz / $wall;
            # CPU (in cores) used by anything but the server, the mock and wrk
            $r{$run}{foreign_cpu} = $wf;
            $r{$run}{softirq_cpu} = $w->{all_irq_ticks} / $hz / $wall;
            $r{$run}{softirq_us_per_request} = $s->{requests}
                ? $w->{all_irq_ticks} / $hz * 1e6 / $s->{requests} : undef;
        }
    }
    if (my $t = slurp_json("$d/seq.json")) {
        $r{seq} = $t->{client};
        $r{seq}{foreign_cpu} = foreign($t, $meta->{kind});
    }
    if (my $g = slurp_json("$d/callgrind.json")) {
        $g->{ir_per_request} = ($g->{ir_b} - $g->{ir_a}) / $g->{n};
        $r{callgrind} = $g;
    }
    $c{$n} = \%r;
    push @cases, \%r;
}

my $ok = sub { my $x = $c{ $_[0] // '' }; $x && $x->{status} eq 'ok' ? $x : undef };

# derived: ratios and added latency against the baselines of the same bytes
for my $r (@cases) {
    next unless $r->{status} eq 'ok';
    my $plain = $ok->($r->{plain});
    my $direct = $ok->($r->{direct});
    my $pk = $ok->($r->{stream} ? 'portkey-stream' : 'portkey-openai');
    if ($plain && $r->{throughput} && $plain->{throughput}) {
        $r->{vs_plain_throughput} = $r->{throughput}{rps} / $plain->{throughput}{rps};
    }
    if ($plain && $r->{throughput} && $plain->{throughput}
            && $r->{throughput}{server_cpu_us_per_request}
            && $plain->{throughput}{server_cpu_us_per_request}) {
        # the throughput ratio the server's CPU allows, whichever core
        # limited the measured run
        $r->{vs_plain_cpu_capacity} = $plain->{throughput}{server_cpu_us_per_request}
                                    / $r->{throughput}{server_cpu_us_per_request};
    }
    if ($pk && $r->{kind} eq 'gateway' && $r->{throughput} && $pk->{throughput}) {
        $r->{vs_portkey_throughput} = $r->{throughput}{rps} / $pk->{throughput}{rps};
    }
    for my $b (['direct', $direct], ['plain', $plain]) {
        my ($bn, $base) = @$b;
        next unless $base;
        if ($r->{light} && $base->{light}) {
            for my $p (qw(p50 p99)) {
                $r->{"added_light_${p}_us_vs_$bn"} =
                    $r->{light}{latency_us}{$p} - $base->{light}{latency_us}{$p};
            }
        }
        if ($r->{seq} && $base->{seq} && $r->{seq}{requests} && $base->{seq}{requests}) {
            for my $p (qw(p50 p99)) {
                $r->{"added_seq_${p}_us_vs_$bn"} =
                    $r->{seq}{total_us}{$p} - $base->{seq}{total_us}{$p};
                $r->{"added_ttfb_${p}_us_vs_$bn"} =
                    $r->{seq}{ttft_us}{$p} - $base->{seq}{ttft_us}{$p};
            }
        }
    }
    if ($plain && $r->{callgrind} && $plain->{callgrind} && $r->{kind} ne 'plain') {
        $r->{callgrind}{vs_plain} = $r->{callgrind}{ir_per_request} / $plain->{callgrind}{ir_per_request};
    }
}

# The targets, on the headline case b) against a), the mock and f). A
# target whose runs were disturbed by other processes (> 10% of a CPU) is
# reported as such instead of met or missed; the CPU-per-request measure is
# evaluated anyway (it is the least sensitive to other load).
my @targets;
{
    my $g = $ok->('gw-openai');
    my $p = $ok->('plain-openai');
    my $dm = $ok->('direct-openai');
    my $k = $ok->('portkey-openai');
    my $dist = sub {    # worst other-process CPU over (case, run) pairs
        my $w = 0;
        for (@_) {
            my ($c, $run) = @$_;
            my $f = $c && $c->{$run} && $c->{$run}{foreign_cpu};
            $w = $f if $f && $f > $w;
        }
        return $w;
    };
    my $add = sub {
        my ($name, $value, $pass, $disturbed) = @_;
        my %t = (target => $name, value => $value, pass => $pass);
        if (defined $pass && $disturbed && $disturbed > 0.10) {
            $t{pass} = undef;
            $t{disturbed} = $disturbed;
        }
        push @targets, \%t;
    };
    # a run with failed requests meets no target
    my $errs = $g && $g->{throughput} ? $g->{throughput}{errors} + $g->{throughput}{non_2xx} : 0;
    my $v = $g && $p ? $g->{vs_plain_throughput} : undef;
    $add->('throughput >= 90% of plain proxy_pass (b / a)',
           defined $v ? sprintf('%.1f%%', 100 * $v) . ($errs ? " ($errs failed requests)" : '') : 'n/a',
           defined $v ? ($v >= 0.90 && !$errs ? 1 : 0) : undef,
           $dist->([$g, 'throughput'], [$p, 'throughput']));
    my $cv = $g && $p ? $g->{vs_plain_cpu_capacity} : undef;
    $add->('same, by server CPU time per request (a CPU/req / b CPU/req)',
           defined $cv ? sprintf('%.1f%%', 100 * $cv) : 'n/a',
           defined $cv ? ($cv >= 0.90 ? 1 : 0) : undef, 0);
    my $a = $g ? $g->{added_light_p99_us_vs_direct} : undef;
    my $rate = $g && $g->{light} ? $g->{light}{rps} : undef;
    $add->('p99 added latency < 100 us at light load (b minus direct-to-mock)',
           defined $a ? sprintf('%d us at %d req/s', $a, $rate) : 'n/a',
           defined $a ? ($a < 100 ? 1 : 0) : undef,
           $dist->([$g, 'light'], [$dm, 'light']));
    my $sa = $g ? $g->{added_seq_p99_us_vs_direct} : undef;
    my $srate = $g && $g->{seq} && $g->{seq}{total_us}{mean} ? 1e6 / $g->{seq}{total_us}{mean} : undef;
    $add->('same, one client back to back (b minus direct-to-mock)',
           defined $sa ? sprintf('%d us at %d req/s', $sa, $srate) : 'n/a',
           defined $sa ? ($sa < 100 ? 1 : 0) : undef,
           $dist->([$g, 'seq'], [$dm, 'seq']));
    # h) governance on (client key, rpm/tpm, ledger, metrics): the same
    # bound, one client back to back, and what it adds over b)
    my $h = $ok->('gw-governed');
    my $ha = $h ? $h->{added_seq_p99_us_vs_direct} : undef;
    my $hrate = $h && $h->{seq} && $h->{seq}{total_us}{mean} ? 1e6 / $h->{seq}{total_us}{mean} : undef;
    $add->('governed (h): p99 added < 100 us, one client back to back (h minus direct-to-mock)',
           defined $ha ? sprintf('%d us at %d req/s', $ha, $hrate)
                         . (defined $sa ? sprintf(' (%+d us over b)', $ha - $sa) : '') : 'n/a',
           defined $ha ? ($ha < 100 ? 1 : 0) : undef,
           $dist->([$h, 'seq'], [$dm, 'seq']));
    my $hs = $ok->('gw-governed-stream');
    my $ht = $hs ? $hs->{added_ttfb_p50_us_vs_direct} : undef;
    $add->('governed stream (h): added time to first byte, p50 (h minus direct-to-mock)',
           defined $ht ? sprintf('%d us', $ht) : 'n/a', undef, 0);
    $targets[-1]{info} = 1;
    my $x = $g ? $g->{vs_portkey_throughput} : undef;
    $add->('>= 20x Portkey throughput (b / f)',
           defined $x ? sprintf('%.1fx', $x) : 'n/a',
           defined $x ? ($x >= 20 && !$errs ? 1 : 0) : undef,
           $dist->([$g, 'throughput'], [$k, 'throughput']));
}

open my $out, '>', "$dir/results.json" or die "$dir/results.json: $!\n";
print $out $J->encode({ machine => $machine, cases => \@cases, targets => \@targets,
                        max_foreign_cpu => max_foreign(\@cases) });
close $out;

sub max_foreign {
    my $w = 0;
    for my $r (@{ $_[0] }) {
        for my $run (qw(throughput light seq)) {
            my $f = $r->{$run} && $r->{$run}{foreign_cpu};
            $w = $f if $f && $f > $w;
        }
    }
    return $w;
}

# ---------------------------------------------------------------- markdown
sub n0 { defined $_[0] ? sprintf('%.0f', $_[0]) : '' }
sub n1 { defined $_[0] ? sprintf('%.1f', $_[0]) : '' }
sub krps {
    return '' unless defined $_[0];
    my $s = sprintf('%.0f', $_[0]);
    1 while $s =~ s/^(\d+)(\d{3})/$1,$2/;
    return $s;
}
sub ratio { defined $_[0] ? sprintf('%.2f', $_[0]) : '' }
sub sgn { defined $_[0] ? sprintf('%+d', $_[0]) : '' }
sub pc { defined $_[0] ? sprintf('%.0f%%', 100 * $_[0]) : '?' }
sub cores {
    my ($t) = @_;
    return '' unless defined $t->{server_core_busy};
    return join ' / ', pc($t->{server_core_busy}), pc($t->{client_core_busy}), pc($t->{foreign_cpu});
}
sub row { '| ' . join(' | ', @_) . " |\n" }

my $m = $machine;
my $md = '';
$md .= sprintf("Run %s on %s (%s CPUs, %s), nginx %s, Node %s, Portkey %s, wrk %s; commit %s, module sha256 %s.\n",
    map { $_ // '?' } @$m{qw(date cpu cpus os nginx node portkey wrk commit module_sha256)});
$md .= sprintf("Server under test on CPU %s, wrk and the Perl client on CPU %s, static mock on CPU %s. "
    . "Throughput: wrk -t1 -c%s for %s s after a %s s warm-up. Light load: wrk -c%s paced to about %s req/s for %s s.\n\n",
    map { $_ // '?' } @$m{qw(server_cpu client_cpu mock_cpu connections seconds warmup_seconds light_connections light_rate seconds)});

my @skipped = grep { $_->{status} ne 'ok' } @cases;

# other processes on the machine during the measured runs
my ($worst, $worst_case) = (0, '');
for my $r (@cases) {
    for my $run (qw(throughput light seq)) {
        my $f = $r->{$run} && $r->{$run}{foreign_cpu};
        ($worst, $worst_case) = ($f, "$r->{name} ($run)") if $f && $f > $worst;
    }
}
if ($worst > 0.10) {
    $md .= sprintf("**Warning: other processes used up to %.0f%% of a CPU during the measured runs (worst: %s); "
        . "throughput and latency numbers are disturbed. Instruction counts (callgrind) are not affected.**\n\n",
        100 * $worst, $worst_case);
}

if (($m->{mode} // '') eq 'check') {
    $md = "Correctness checks ($m->{date}, provider: "
        . (($m->{mock} // '') eq 'perl' ? 't/lib/mock_provider.pl' : 'static nginx mock') . ")\n\n";
    $md .= row('case', 'result', 'detail', 'X-AI-Model', 'X-AI-Attempts') . row('---', '---', '---', '---', '---');
    for my $r (@cases) {
        (my $why = $r->{reason} // '') =~ s/\|/\\|/g;
        $why =~ s/\s+/ /g;
        my $h = $r->{check} && $r->{check}{headers} || {};
        $md .= row("`$r->{name}` $r->{label}", $r->{status}, $why,
                   $h->{'x-ai-model'} // '', $h->{'x-ai-attempts'} // '');
    }
    @cases = ();
    @targets = ();
}

$md .= "#### Targets (case b against a and f; h, governed, against the mock)\n\n" . row('target', 'measured', 'result') . row('---', '---', '---')
    if @targets;
for my $t (@targets) {
    $md .= row($t->{target}, $t->{value},
               $t->{disturbed} ? sprintf('disturbed (other processes: %.0f%% CPU)', 100 * $t->{disturbed})
               : $t->{info} && $t->{value} ne 'n/a' ? '(no target)'
               : !defined $t->{pass} ? 'not measured' : $t->{pass} ? '**met**' : '**missed**');
}

if (@cases) {
    $md .= "\n#### Throughput and latency under load (wrk -c$m->{connections})\n\n";
    $md .= "Server CPU: CPU time of the server under test per request. Cores: how busy the server's and the client's CPU were; "
         . "other: CPU used by other processes on the machine during the run (above ~10% the run was disturbed).\n\n";
    $md .= row('case', 'req/s', 'p50 us', 'p99 us', 'vs proxy_pass', 'vs Portkey', 'server CPU us/req', 'CPU vs proxy_pass', 'cores server/client/other', 'errors')
         . row('---', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:');
    for my $r (@cases) {
        next unless $r->{status} eq 'ok' && $r->{throughput};
        my $t = $r->{throughput};
        $md .= row("`$r->{name}` $r->{label}", krps($t->{rps}), n0($t->{latency_us}{p50}),
                   n0($t->{latency_us}{p99}), ratio($r->{vs_plain_throughput}),
                   ratio($r->{vs_portkey_throughput}),
                   n1($t->{server_cpu_us_per_request}), ratio($r->{vs_plain_cpu_capacity}),
                   cores($t), $t->{errors} + $t->{non_2xx});
    }

    $md .= "\n#### Light load (about $m->{light_rate} req/s) and added latency\n\n";
    $md .= "Added = this case minus the baseline of the same upstream bytes, percentile by percentile.\n\n";
    $md .= row('case', 'req/s', 'p50 us', 'p99 us', 'added p50 vs mock', 'added p99 vs mock', 'added p99 vs proxy_pass', 'other CPU')
         . row('---', '---:', '---:', '---:', '---:', '---:', '---:', '---:');
    for my $r (@cases) {
        next unless $r->{status} eq 'ok' && $r->{light};
        my $t = $r->{light};
        $md .= row("`$r->{name}`", krps($t->{rps}), n0($t->{latency_us}{p50}), n0($t->{latency_us}{p99}),
                   sgn($r->{added_light_p50_us_vs_direct}), sgn($r->{added_light_p99_us_vs_direct}),
                   sgn($r->{added_light_p99_us_vs_plain}), pc($t->{foreign_cpu}));
    }

    if (grep { $_->{seq} } @cases) {
        $md .= "\n#### Without load: one client, requests back to back\n\n";
        $md .= "Latency = until the last byte of the answer; TTFB = until its first byte (for streams, the first event). "
             . "Added: minus the same numbers direct to the mock (and through plain proxy_pass).\n\n";
        $md .= row('case', 'requests', 'req/s', 'p50 us', 'p99 us', 'added p50 vs mock', 'added p99 vs mock',
                   'added p99 vs proxy_pass', 'TTFB p50 us', 'added TTFB p50 vs mock', 'other CPU')
             . row('---', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:');
        for my $r (@cases) {
            next unless $r->{status} eq 'ok' && $r->{seq} && $r->{seq}{requests};
            my $t = $r->{seq};
            $md .= row("`$r->{name}`", $t->{requests},
                       krps($t->{total_us}{mean} ? 1e6 / $t->{total_us}{mean} : undef),
                       n0($t->{total_us}{p50}), n0($t->{total_us}{p99}),
                       sgn($r->{added_seq_p50_us_vs_direct}), sgn($r->{added_seq_p99_us_vs_direct}),
                       sgn($r->{added_seq_p99_us_vs_plain}),
                       $r->{stream} ? n0($t->{ttft_us}{p50}) : '',
                       $r->{stream} ? sgn($r->{added_ttfb_p50_us_vs_direct}) : '',
                       pc($t->{foreign_cpu}));
        }
    }

    if (grep { $_->{callgrind} } @cases) {
        $md .= "\n#### Instructions per request (callgrind, nginx in one process)\n\n";
        $md .= "(Ir after $m->{callgrind_warmup}+2N requests minus Ir after $m->{callgrind_warmup}+N, divided by N = $m->{callgrind_requests}.)\n\n";
        $md .= row('case', 'instructions/request', 'vs proxy_pass of the same bytes')
             . row('---', '---:', '---:');
        for my $r (@cases) {
            next unless $r->{callgrind};
            $md .= row("`$r->{name}`", krps($r->{callgrind}{ir_per_request}),
                       ratio($r->{callgrind}{vs_plain}));
        }
    }

    if (@skipped) {
        $md .= "\n#### Cases not measured\n\n" . row('case', 'status', 'reason') . row('---', '---', '---');
        for my $r (@skipped) {
            (my $why = $r->{reason} // '') =~ s/\|/\\|/g;
            $why =~ s/\s+/ /g;
            $md .= row("`$r->{name}`", $r->{status}, $why);
        }
    }

}

open $out, '>', "$dir/results.md" or die "$dir/results.md: $!\n";
print $out $md;
close $out;
print STDERR $md;

if ($docs) {
    open my $fh, '<', $docs or die "$docs: $!\n";
    local $/;
    my $text = <$fh>;
    close $fh;
    $text =~ s{(<!-- results -->\n).*?(<!-- /results -->)}{$1\n$md\n$2}s
        or die "$docs has no <!-- results --> ... <!-- /results --> section\n";
    open $fh, '>', "$docs.tmp" or die "$docs.tmp: $!\n";
    print $fh $text;
    close $fh;
    rename "$docs.tmp", $docs or die "rename $docs: $!\n";
    print STDERR "updated $docs\n";
}
