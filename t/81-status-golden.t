#!/usr/bin/perl
# ai_status output, byte for byte: a fixed, sequential set of requests
# (several routes and keys, priced and unpriced models, a fallback, a
# refusal by ai_rate and by a budget, an unpriced model refused, a fusion,
# a stream, a guard's deny and redact) against a fresh nginx with one
# worker, then ?format=json (with and without series=1, filtered and
# paged) and ?format=prometheus are compared with the files under
# t/golden/, after the parts that must vary are normalised (times,
# latencies and the histogram buckets and percentiles fed by them).
#
# AI_GW_GOLDEN_UPDATE=1 prove t/81-status-golden.t writes the files
# instead (docs/testing.md).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";

use File::Path qw(make_path);
use IO::Socket::INET;
use JSON::PP;
use POSIX qw(WNOHANG);
use Test::More;
use Time::HiRes qw(time sleep);
use GatewayTest;

my ($REDIS) = grep { -x } ($ENV{AI_GW_REDIS_SERVER} // ()),
                          '/usr/bin/redis-server', '/usr/local/bin/redis-server';

my $t = GatewayTest->new(name => 'status-golden');
plan skip_all => 'module not built' unless $t->has_module;
plan skip_all => 'redis-server is not installed (apt-get install '
               . 'redis-server, or set AI_GW_REDIS_SERVER)' unless $REDIS;

my $GOLDEN = "$FindBin::Bin/golden";
my $UPDATE = $ENV{AI_GW_GOLDEN_UPDATE};

$t->start_mock(name => 'm1');

# --- Redis for the sync zones: started here, stopped with the test --------------

my $rport = $t->free_port;
my $rdir = $t->prefix . '/redis';
mkdir $rdir or die "mkdir $rdir: $!\n";
my $test_pid = $$;

my $watchdog = fork // die "fork: $!\n";
if ($watchdog == 0) {
    my $pid = fork // POSIX::_exit(1);
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', "$rdir/redis.log";
        open STDERR, '>&', \*STDOUT;
        { exec $REDIS, '--port', $rport, '--bind', '127.0.0.1', '--save', '',
               '--appendonly', 'no', '--dir', $rdir, '--daemonize', 'no' }
        POSIX::_exit(127);
    }
    $SIG{TERM} = sub { kill 'KILL', $pid; POSIX::_exit(0) };
    while (1) {
        POSIX::_exit(0) if waitpid($pid, WNOHANG) == $pid;
        if (!kill 0, $test_pid) { kill 'KILL', $pid; POSIX::_exit(0) }
        sleep 0.1;
    }
}
END { if ($watchdog && $$ == $test_pid) { kill 'TERM', $watchdog; waitpid($watchdog, 0) } }

for (my $deadline = time + 10; ; sleep 0.05) {
    last if IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $rport,
                                  Proto => 'tcp');
    die "redis-server did not start\n" if time > $deadline;
}
my $SYNC = "sync=redis://127.0.0.1:$rport sync_interval=100ms sync_timeout=2s";

# one worker: the log phases, and so the order of every queue, follow
# the order of the requests; the fusion's second member answers 300 ms
# after the first, so its calls end in one order too
(my $pre = $t->config_preamble) =~ s/worker_processes 2;/worker_processes 1;/;

my $conf = $pre . "http {\n" . $t->http_preamble . <<'EOF';
    ai_provider openai type=openai pass=/_ai/openai key=sk-provider;
    ai_price openai/gpt-4o 2.50 10.00;
    ai_price openai/gpt-4o-mini 0.15 0.60;
    ai_price openai/x-status500 2.50 10.00;
    ai_price openai/alpha 1.00 2.00;
    ai_price openai/beta-delay300 1.00 2.00;
    ai_price openai/verdict 1.00 2.00;
    ai_price openai/fam-* 0.50 1.50;

    ai_rate_zone rate:1m;
    ai_cost_zone cost:1m;
    ai_cost_zone cost2:1m;
    ai_metrics_zone metrics:2m series=16;
    ai_rate_zone srate:1m %%SYNC%%;
    ai_cost_zone scost:1m %%SYNC%%;

    ai_guard secret "regex=(?i)\bproject\s+bluebird\b" action=deny;
    ai_guard email "regex=(?i)\b[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}\b"
             action=redact;

    server {
        listen 127.0.0.1:%%PORT%%;

        location /v1/ {
            ai_gateway;
            ai_cost zone=cost key=$http_authorization;
            ai_fallback openai/gpt-4o-mini breaker=2/60s;
        }

        location /limited/v1/ {
            ai_gateway;
            ai_rate zone=rate key=$http_authorization rpm=2;
            ai_cost zone=cost key=$http_authorization;
        }

        location /budget/v1/ {
            ai_gateway;
            ai_cost zone=cost2 key=$http_authorization budget=0.000001;
        }

        location /free/v1/ {
            ai_gateway;
            ai_unpriced free;
            ai_cost zone=cost2;
        }

        location "/fusion/v1/" {
            ai_gateway;
            ai_cost zone=cost key=$http_authorization;
            ai_pool openai/alpha openai/beta-delay300 judge=openai/verdict
                    mode=merge;
        }

        location /fleet/v1/ {
            ai_gateway;
            ai_rate zone=srate key=$http_authorization rpm=3;
            ai_cost zone=scost key=$http_authorization budget=1;
        }

        location = /status { ai_status; }

        location /_ai/openai/ {
            internal;
            proxy_pass http://127.0.0.1:%%MOCK_PORT_m1%%/;
            proxy_buffering off;
        }
    }
}
EOF
$conf =~ s/%%SYNC%%/$SYNC/g;
$t->write_config($conf);
$t->start_nginx;

sub chat {
    my ($loc, $key, %o) = @_;
    my $body = { model => $o{model} // 'openai/gpt-4o',
                 messages => [{ role => 'user', content => $o{text} // 'Hello gateway' }] };
    return $t->post_json("$loc/chat/completions", $body,
        headers => { Authorization => "Bearer $key" });
}

# --- traffic: every request waits for the one before ------------------------------

my @want = (
    [200, '/v1', 'sk-alice', text => 'question number 1'],
    [200, '/v1', 'sk-alice', text => 'question number 2'],
    [200, '/v1', 'sk-bob', model => 'openai/gpt-4o-mini'],
    [200, '/v1', 'sk-bob', model => 'openai/x-status500'],       # fallback
    [200, '/v1', 'sk-carol', model => 'openai/fam-small'],        # by family
    [200, '/limited/v1', 'sk-carol'],
    [200, '/limited/v1', 'sk-carol'],
    [429, '/limited/v1', 'sk-carol'],                             # rpm
    [200, '/budget/v1', 'sk-dave'],
    [402, '/budget/v1', 'sk-dave'],                               # budget
    [400, '/budget/v1', 'sk-dave', model => 'openai/unpriced-1'], # refused
    [200, '/free/v1', 'sk-erin', model => 'openai/unpriced-2'],   # free
    [200, '/fusion/v1', 'sk-erin', model => 'fusion', text => 'fuse this'],
    [400, '/v1', 'sk-frank', text => 'about Project Bluebird'],   # guard deny
    [200, '/v1', 'sk-frank', text => 'write to a@example.com'],   # redact
    [200, '/fleet/v1', 'sk-gina'],                                # synced
    [200, '/fleet/v1', 'sk-gina', model => 'openai/gpt-4o-mini'],
    [200, '/fleet/v1', 'sk-alice'],
);

# the per-minute series and the rate buckets see one minute: start at
# the beginning of one if little of this one is left
sleep(61 - time % 60) if time % 60 > 40;

my $n = 0;
for my $w (@want) {
    my ($status, @args) = @$w;
    my $r = chat(@args);
    is($r->{status}, $status, "request $n: $status");
    $n++;
}

my $s = $t->stream('/v1/chat/completions',
    { model => 'openai/gpt-4o', stream => JSON::PP::true(),
      stream_options => { include_usage => JSON::PP::true() },
      messages => [{ role => 'user', content => 'stream number 1' }] },
    headers => { Authorization => 'Bearer sk-alice' });
ok($s->{done}, 'the stream: complete');
$n++;

# an invalid request: counted, with no model
my $r = $t->post_json('/v1/chat/completions', { model => 'openai/gpt-4o' },
                      headers => { Authorization => 'Bearer sk-alice' });
is($r->{status}, 400, 'invalid request: 400');
$n++;

# every request counted (the log phase runs just after the answer), and
# the sync zones pushed and pulled: nothing unsynced, the fleet's totals
my $st;
for (1 .. 200) {
    $st = $t->get('/status')->{json};
    last if $st->{metrics} && $st->{metrics}{totals}{requests} >= $n
            && @{ $st->{sync} } == 2
            && !grep({ $_->{unsynced} || !$_->{last_sync} || $_->{state} ne 'ok'
                       || ($_->{type} eq 'cost'
                           && ($_->{fleet_totals}{requests} // 0) < 3) }
                     @{ $st->{sync} });
    sleep 0.05;
}
is($st->{metrics}{totals}{requests}, $n, "$n requests counted");
is(join(',', map { "$_->{zone}:$_->{state}:$_->{unsynced}" } @{ $st->{sync} }),
   'srate:ok:0,scost:ok:0', 'the sync zones: pushed');

# --- the outputs ------------------------------------------------------------------

my %out = (
    'status.json'        => '/status',
    'status-series.json' => '/status?format=json&series=1&minutes=3',
    'status-page.json'   => '/status?zone=cost&route=/v1/&limit=2&offset=1',
    'status-key.json'    => '/status?key=9FF4820F&limit=1',
    'metrics.prom'       => '/status?format=prometheus',
);

make_path($GOLDEN) if $UPDATE;

for my $file (sort keys %out) {
    my $g = $t->get($out{$file});
    is($g->{status}, 200, "$file: 200");
    my $text = $file =~ /\.prom$/ ? norm_prom($g->{content})
                                  : norm_json($g->{content});

    if ($UPDATE) {
        $t->write_file("$GOLDEN/$file", $text);
        pass("$file: written");
        next;
    }

    my $want = $t->read_file("$GOLDEN/$file");
    ok(defined $want && $text eq $want, "$file: byte for byte as t/golden/$file")
        or diag(diff_lines($want // '', $text));
}

$t->done_testing_checks;
done_testing;


# what must vary from run to run: the times (of the status, of entries,
# of the series, of the sync zones), the latencies and what they feed
# (sums, percentiles, histogram buckets), the number of sync batches,
# the figures of a lease zone's slices (sized by the rate measured, and
# given back on a clock), Redis's latency and port

sub norm_json {
    my ($j) = @_;
    $j =~ s/"(time|since|first_seen|last_seen|start|last_sync)":\d+/"$1":"T"/g;
    $j =~ s{"(duration_ms|ttft_ms)":\{([^{}]*)\}}{
        my ($k, $h) = ($1, $2);
        $h =~ s/"(sum|p50|p90|p99)":\d+/"$1":"L"/g;
        $h =~ s{"buckets":\[([^\]]*)\]}{
            '"buckets":[' . join(',', map { '"B"' } split /,/, $1) . ']' }e;
        "\"$k\":{$h}" }ge;
    $j =~ s{"((?:duration|ttft)_p\d\d_ms)":\[([^\]]*)\]}{
        "\"$1\":[" . join(',', map { $_ eq 'null' ? $_ : '"L"' } split /,/, $2) . ']' }ge;
    $j =~ s/"batches":\d+/"batches":"N"/g;
    $j =~ s{"lease":\{((?:[^{}]|\{[^{}]*\})*)\}}{
        (my $l = $1) =~ s/":\d+/":"N"/g; "\"lease\":{$l}" }ge;
    $j =~ s{"redis://127\.0\.0\.1:$rport/}{"redis://127.0.0.1:PORT/}g;
    return $j;
}

sub norm_prom {
    my ($p) = @_;
    $p =~ s/^(ai_gateway_(?:request_duration|ttft)_seconds_(?:sum|bucket)\{[^}]*\}) \S+$/$1 L/mg;
    $p =~ s/^(gen_ai_server_(?:request_duration|time_to_first_token|time_per_output_token)_seconds_(?:sum|bucket)\{[^}]*\}) \S+$/$1 L/mg;
    $p =~ s/^(ai_gateway_sync_(?:lease_\w+_total|redis_latency_seconds)\{[^}]*\}) \S+$/$1 N/mg;
    $p =~ s/127\.0\.0\.1:$rport/127.0.0.1:PORT/g;
    return $p;
}

# the first lines that differ, for the diagnostics
sub diff_lines {
    my ($a, $b) = @_;
    my @a = split /(?<=[,\n])/, $a;
    my @b = split /(?<=[,\n])/, $b;
    my @d;
    for my $i (0 .. ($#a > $#b ? $#a : $#b)) {
        next if ($a[$i] // '') eq ($b[$i] // '');
        push @d, "at piece $i:\n  want: " . ($a[$i] // '(end)')
                 . "\n  got:  " . ($b[$i] // '(end)');
        last if @d == 5;
    }
    return join "\n", @d;
}
