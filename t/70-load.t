#!/usr/bin/perl
# Load and faults: a thousand concurrent connections of mixed traffic
# (whole answers, streams, fallbacks, fusion, translation) with no
# unexpected error and flat worker memory; `nginx -s reload` under load
# failing no request; a provider killed in the middle of streams.
#
# AI_LOAD_SECONDS (default 30) sets the length of the main run;
# AI_LOAD_CONNECTIONS (default 1000) the concurrency.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use JSON::PP;
use Time::HiRes qw(sleep time);
use GatewayTest;

my $t = GatewayTest->new(name => 'load');
plan skip_all => 'module not built' unless $t->has_module;
plan skip_all => 'wrk not installed' unless -x '/usr/bin/wrk';

my $seconds = $ENV{AI_LOAD_SECONDS} || 30;
my $conns = $ENV{AI_LOAD_CONNECTIONS} || 1000;

$t->start_mock(name => 'm1', workers => 6);

(my $preamble = $t->config_preamble) =~ s/worker_connections \d+;/worker_connections 8192;/;
$preamble =~ s/error_log (\S+) debug;/error_log $1 notice;/;
$preamble .= "worker_rlimit_nofile 16384;\n";

$t->write_config($preamble . "http {\n" . $t->http_preamble . <<'EOF');
    ai_provider openai    pass=/_ai/openai key=sk-load;
    ai_provider anthropic type=anthropic pass=/_ai/openai key=sk-load;

    upstream mock {
        server 127.0.0.1:%%MOCK_PORT_m1%%;
        keepalive 128;
    }

    server {
        listen 127.0.0.1:%%PORT%% backlog=4096;
        keepalive_requests 100000;

        location /v1/ {
            ai_gateway;
            ai_fallback openai/gpt-4o-mini;
        }

        location /fusion/v1/ {
            ai_gateway;
            ai_pool openai/m1 openai/m2 anthropic/m3 mode=vote;
        }

        location /_ai/openai/ {
            internal;
            proxy_pass http://mock/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
$t->start_nginx;

sub rss_kb {
    my $kb = 0;
    for my $pid ($t->worker_pids) {
        open my $fh, '<', "/proc/$pid/status" or next;
        while (<$fh>) { $kb += $1 if /^VmRSS:\s+(\d+)/ }
    }
    return $kb;
}

sub wrk {
    my ($secs, $c) = @_;
    my $script = "$FindBin::Bin/load/mixed.lua";
    my $url = $t->base_url;
    my $out = `wrk -t2 -c$c -d${secs}s --timeout 30s --latency -s $script $url 2>&1`;
    my ($json) = $out =~ /^LOAD (\{.*\})$/m;
    my $r = $json ? decode_json($json) : {};
    $r->{text} = $out;
    return $r;
}

sub clean {
    my ($r, $what, $idle_closes) = @_;
    my $bad = join ', ', map { "$_=$r->{statuses}{$_}" } grep { $_ ne '200' } sort keys %{ $r->{statuses} || {} };
    ok($r->{requests} && $r->{requests} > 100, "$what: $r->{requests} requests")
        or diag($r->{text});
    is($bad, '', "$what: every answer was a 200");
    my %e = %{ $r->{errors} || {} };

    # a reload closes idle kept-alive connections (clients reconnect, as
    # HTTP allows): wrk counts each as a read error; in-flight requests
    # are finished by the old workers and are all in the statuses above
    my $idle = delete($e{read}) // 0;
    is_deeply(\%e, { connect => 0, write => 0, status => 0, timeout => 0 },
              "$what: no connect, write or status error, no timeout") or diag($r->{text});
    ok($idle <= ($idle_closes // 0),
       "$what: read errors ($idle) only from closed idle connections (at most "
       . ($idle_closes // 0) . ")") or diag($r->{text});
    is($r->{cut_streams}, 0, "$what: every stream ended with [DONE]");
}

# --- warm-up, then the main run ---------------------------------------------------

my $warm = wrk(3, 100);
clean($warm, 'warm-up');
my $rss0 = rss_kb();

my $main = wrk($seconds, $conns);
clean($main, "$conns connections for ${seconds}s");
my $rss1 = rss_kb();
diag(sprintf "load: %d requests, %.0f req/s, p50 %.1f ms, p99 %.1f ms; worker RSS %d -> %d kB",
     $main->{requests}, $main->{rps}, $main->{p50_us} / 1000, $main->{p99_us} / 1000,
     $rss0, $rss1);

# a second run of the same length: memory must not keep growing
my $again = wrk($seconds, $conns);
clean($again, 'a second run');
my $rss2 = rss_kb();
diag("load: worker RSS after the second run: $rss2 kB");
ok($rss2 - $rss1 < 16 * 1024,
   "worker memory flat: grew " . ($rss2 - $rss1) . " kB over the second run");

# --- reload under load: no request fails ----------------------------------------

my $pid = fork;
die "fork: $!" unless defined $pid;
if ($pid == 0) {
    my $r = wrk(12, 200);
    open my $fh, '>', $t->prefix . '/logs/reload-load.json' or POSIX::_exit(1);
    print $fh encode_json({ map { $_ => $r->{$_} } grep { $_ ne 'text' } keys %$r });
    print $fh "\n", $r->{text} =~ s/\n/ /gr;
    close $fh;
    POSIX::_exit(0);
}
sleep 2;
for (1 .. 3) {
    $t->reload;
    sleep 2;
}
waitpid($pid, 0);
my ($line, $text) = split /\n/, $t->read_file('logs/reload-load.json'), 2;
my $rl = decode_json($line);
$rl->{text} = $text;
clean($rl, 'three reloads under load', 3 * 200);

# --- a provider killed in the middle of streams -------------------------------------

my @kids;
for my $i (1 .. 6) {
    my $k = fork;
    if ($k == 0) {
        my $s = $t->stream('/v1/chat/completions',
            { model => 'openai/slow300', stream => \1,
              messages => [{ role => 'user', content => 'a long answer to be cut short' }] },
            timeout => 20);
        my $done = grep { $_ eq '[DONE]' } @{ $s->{events} };
        my $err = grep { ref && $_->{error} } @{ $s->{json_events} };
        POSIX::_exit(($s->{status} == 200 && !$done && $err) ? 0 : 1);
    }
    push @kids, $k;
}
sleep 1.2;
$t->stop_mock('m1');
my $cut_ok = 0;
for my $k (@kids) {
    waitpid($k, 0);
    $cut_ok++ if $? == 0;
}
is($cut_ok, 6, 'provider killed mid-stream: every stream ends with an error event, no [DONE]');

my $r = $t->post_json('/v1/chat/completions',
    { model => 'openai/gpt-4o', messages => [{ role => 'user', content => 'x' }] });
is($r->{status}, 502, 'provider gone: 502, the gateway still answers');

$t->done_testing_checks;
done_testing;
