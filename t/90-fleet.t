#!/usr/bin/perl
# Limits and budgets across hosts (sync=redis://, docs/cluster.md): two
# nginx instances with their own prefixes and ports share one Redis
# (redis-server started here, on 127.0.0.1, without persistence).  They
# hold a global rpm within the documented bound (the over-admission is
# measured), share a budget, and strict mode admits exactly the limit
# (its latency cost is measured).  Redis hung (SIGSTOP), stopped and
# started again mid-test: no request fails or stalls, limits are local
# meanwhile and the status says so, and once Redis is back every ledger
# delta is pushed: the fleet's ledger in Redis equals, exactly, the sum of
# what both hosts charged.  A third instance talks to a fake Redis that
# answers garbage, and none of its workers crashes.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";

use IO::Select;
use IO::Socket::INET;
use List::Util qw(max sum);
use POSIX qw(WNOHANG);
use Test::More;
use Time::HiRes qw(time sleep);
use GatewayTest;
use RedisTest qw(sync_of wait_for);

my $REDIS = RedisTest::find_server();

my $A = GatewayTest->new(name => 'fleet-a');
plan skip_all => 'module not built' unless $A->has_module;
plan skip_all => 'redis-server is not installed (apt-get install '
               . 'redis-server, or set AI_GW_REDIS_SERVER)' unless $REDIS;

my $B = GatewayTest->new(name => 'fleet-b');

# the scripts as Redis runs them: the header ./build.sh makes from sync/*.lua
my $gen = `perl '$GatewayTest::ROOT/ngx_ai_gateway_module/sync/embed.pl' --stdout`;
is($gen, $A->read_file("$GatewayTest::ROOT/ngx_ai_gateway_module/ngx_ai_gateway_sync_lua.h"),
   'ngx_ai_gateway_sync_lua.h is generated from sync/*.lua (run sync/embed.pl)');

# --- Redis: started by the test, stopped with it ------------------------------

my $rport = $A->free_port;
my $rdir = $A->prefix . '/redis';
mkdir $rdir or die "mkdir $rdir: $!\n";

my $test_pid = $$;
my $R = RedisTest->new(server => $REDIS, port => $rport, dir => $rdir);

sub redis_start { $R->start }

# SHUTDOWN SAVE: Redis goes away, its data kept on disk for redis_start
sub redis_stop { $R->shutdown }

sub resp { $R->cmd(@_) }
sub resp_hash { $R->hash(@_) }

# --- configuration: nginx -t ------------------------------------------------

sub zone_conf {
    my ($zone) = @_;
    return $A->config_preamble . "http {\n" . $A->http_preamble . <<"EOF";
    ai_provider openai type=openai pass=/_ai/openai;
    $zone
    server { listen 127.0.0.1:%%PORT%%; location /v1/ { ai_gateway; } }
}
EOF
}

delete $ENV{AIGW_TEST_UNSET};
for my $bad (
    [ 'ai_rate_zone r:1m strict;', qr/"strict" needs sync=redis:\/\/HOST:PORT/ ],
    [ 'ai_cost_zone c:1m sync_interval=1s;', qr/needs sync=/ ],
    [ 'ai_rate_zone r:1m sync=http://127.0.0.1:1;', qr/invalid "sync=http:.*expected redis:\/\// ],
    [ 'ai_cost_zone c:1m sync=rediss://127.0.0.1:1;', qr/TLS to Redis \(rediss:\/\/\) is not available/ ],
    [ 'ai_rate_zone r:1m sync=redis://u@127.0.0.1;', qr/invalid credentials/ ],
    [ 'ai_rate_zone r:1m sync=redis://:a@127.0.0.1 password=b;', qr/password .* is given twice/ ],
    [ 'ai_rate_zone r:1m sync=redis://u:@127.0.0.1;', qr/names a Redis user without a password/ ],
    [ 'ai_rate_zone r:1m sync=redis://127.0.0.1/x;', qr/invalid database/ ],
    [ 'ai_rate_zone r:1m sync=redis://127.0.0.1 sync_interval=5ms;', qr/invalid "sync_interval=5ms"/ ],
    [ 'ai_rate_zone r:1m sync=redis://127.0.0.1 sync_timeout=2m;', qr/invalid "sync_timeout=2m"/ ],
    [ 'ai_rate_zone r:1m sync=redis://127.0.0.1 password=env:AIGW_TEST_UNSET;', qr/variable "AIGW_TEST_UNSET" is not set/ ],
    [ 'ai_rate_zone r:1m sync=redis://127.0.0.1 retries=3;', qr/invalid parameter "retries=3"/ ],
) {
    $A->write_config(zone_conf($bad->[0]));
    my ($rc, $out) = $A->nginx_test_config;
    ok($rc != 0 && $out =~ $bad->[1] && $out =~ /nginx\.conf:\d+/,
       "nginx -t refuses: $bad->[0]") or diag $out;
}

$A->write_config(zone_conf('ai_rate_zone r:1m sync=redis://user:p%40ss@127.0.0.1:1/3 '
    . "sync_interval=250ms sync_timeout=50ms strict;\n"
    . '    ai_cost_zone c:1m sync=redis://127.0.0.1:1 password=file:/etc/hostname;'));
my ($trc, $tout) = $A->nginx_test_config;
is($trc, 0, 'nginx -t: a full sync= (it does not connect)') or diag $tout;

redis_start();

# --- two hosts ----------------------------------------------------------------

# (a generous timeout: the suite runs tests in parallel, a loaded machine
# must not turn a slow answer into a local decision)
my $SYNC = "sync=redis://127.0.0.1:$rport sync_interval=100ms sync_timeout=500ms";

sub host_conf {
    return $_[0]->config_preamble . "http {\n" . $_[0]->http_preamble . <<"EOF";
    ai_provider openai type=openai pass=/_ai/openai key=sk-provider;
    ai_price openai/gpt-4o 2.50 10.00;

    ai_rate_zone rate:1m $SYNC sync_mode=async;
    ai_rate_zone strict:1m $SYNC strict;
    ai_cost_zone cost:1m $SYNC;
    ai_cost_zone scost:1m $SYNC strict;

    server {
        listen 127.0.0.1:%%PORT%% reuseport;

        location /rpm/v1/ {
            ai_gateway;
            ai_rate zone=rate key=\$http_authorization rpm=20;
        }

        location /hold/v1/ {
            ai_gateway;
            ai_rate zone=rate key=\$http_authorization rpm=30;
        }

        location /strict/v1/ {
            ai_gateway;
            ai_rate zone=strict key=\$http_authorization rpm=20;
        }

        location /fast/v1/ {
            ai_gateway;
            ai_rate zone=rate key=\$http_authorization rpm=1000000;
        }

        location /sfast/v1/ {
            ai_gateway;
            ai_rate zone=strict key=\$http_authorization rpm=1000000;
        }

        location /budget/v1/ {
            ai_gateway;
            ai_cost zone=cost key=\$http_authorization budget=0.0001;
        }

        location /sbudget/v1/ {
            ai_gateway;
            ai_cost zone=scost key=\$http_authorization budget=0.0001;
        }

        location /ledger/v1/ {
            ai_gateway;
            ai_rate zone=rate key=\$http_authorization rpm=1000000;
            ai_cost zone=cost key=\$http_authorization;
        }

        location = /status { ai_status; }

        location /_ai/openai/ {
            internal;
            proxy_pass http://127.0.0.1:%%MOCK_PORT_m1%%/;
        }
    }
}
EOF
}

for my $h ($A, $B) {
    $h->start_mock(name => 'm1');
    $h->write_config(host_conf($h));
    $h->start_nginx;
}

sub chat {
    my ($h, $loc, $key, %o) = @_;
    my $body = { model => 'openai/gpt-4o',
                 messages => [{ role => 'user', content => $o{text} // 'Hi' }] };
    $body->{max_tokens} = $o{max_tokens} if defined $o{max_tokens};
    return $h->post_json("/$loc/v1/chat/completions", $body,
                         headers => { Authorization => "Bearer $key" });
}

# waits until every synced zone of both hosts is in the state, and (with
# synced) has nothing left to push
sub wait_sync {
    my (%o) = @_;
    my $deadline = time + ($o{timeout} // 8);
    while (time < $deadline) {
        my $ok = 1;
        for my $h ($A, $B) {
            my $st = $h->get('/status')->{json};
            my @s = @{ ($st && $st->{sync}) || [] };
            $ok = 0 unless @s == 4;
            for my $s (@s) {
                $ok = 0 if $s->{state} ne $o{state};
                $ok = 0 if $o{synced} && $s->{unsynced};
            }
        }
        return 1 if $ok;
        sleep 0.05;
    }
    return 0;
}

sub admitted { scalar grep { $_ == 200 } @_ }

# what one host did, the other sees: every delta pushed, then two sync
# batches of each host after that (a batch pulls what the other pushed);
# at least the 0.35 s of three sync intervals, longer on a loaded machine
sub settle {
    my $t0 = time;
    my $batches = sub {
        my $st = $_[0]->get('/status')->{json};
        my $n = 0;
        $n += $_->{batches} for @{ ($st && $st->{sync}) || [] };
        return $n;
    };
    wait_sync(state => 'ok', synced => 1, timeout => 5);
    my %b = (A => $batches->($A), B => $batches->($B));
    wait_for(sub { $batches->($A) >= $b{A} + 2 * 4 && $batches->($B) >= $b{B} + 2 * 4 }, 5);
    my $left = 0.35 - (time - $t0);
    sleep $left if $left > 0;
}

ok(wait_sync(state => 'ok'), 'both hosts: every zone synced with Redis');

my $s = sync_of($A, 'strict');
is($s->{redis}, "redis://127.0.0.1:$rport/0", 'status: the Redis server, without credentials');
ok($s->{strict} && $s->{interval_ms} == 100 && $s->{timeout_ms} == 500,
   'status: strict, interval and timeout');

# --- a global rpm, sequential: what host A took, host B sees ------------------

my $k = 'sk-seq';
my $t0 = time;              # the bucket refills from its first use: a
                            # bound on what can have refilled since
is(chat($B, 'rpm', $k)->{status}, 200, 'rpm: host B serves the key once');
settle();                                    # B's next sync pushes it
my @a = map { chat($A, 'rpm', $k)->{status} } 1 .. 25;
is(admitted(@a), 19, 'rpm=20 across hosts: host A admits the 19 left after B\'s one')
    or diag "@a";
settle();                                    # a sync of each host
my @b = map { chat($B, 'rpm', $k)->{status} } 1 .. 10;
my $refill = int((time - $t0) * 20 / 60) + 1;
cmp_ok(admitted(@b), '<=', $refill,
       "rpm: then host B admits only what refilled since (" . admitted(@b)
       . " <= $refill)");
is($b[-1], 429, 'rpm: host B refuses the key');
my $r = chat($B, 'rpm', $k);
ok($r->{headers}{'retry-after'} >= 1, 'rpm: a 429 with Retry-After on host B');

# --- a burst on a key neither host has seen: the worst case ------------------

my @jobs = ((map { [$A, $_] } 1 .. 20), (map { [$B, $_] } 1 .. 20));
my @res = $A->parallel(map { my $j = $_; sub { chat($j->[0], 'rpm', 'sk-burst')->{status} } } @jobs);
my $burst = admitted(@res);
cmp_ok($burst, '>=', 20, "cold burst: at least the limit (20) admitted ($burst)");
cmp_ok($burst, '<=', 40, "cold burst: at most H x rpm = 40 admitted ($burst)");
diag sprintf "measured: a cold burst of 40 on rpm=20 over 2 hosts admits %d "
           . "(over-admission %d; bound (H-1) x rpm = 20)", $burst, $burst - 20;

# --- sustained load past the limit: the steady-state over-admission ----------

$k = 'sk-hold';
@a = map { chat($A, 'hold', $k)->{status} } 1 .. 30;       # the bucket emptied
is(admitted(@a), 30, 'sustained: host A empties the bucket of rpm=30');
sleep 0.35;
$t0 = time;
my $dur = 4;
@res = $A->parallel(map {
    my $h = $_;
    sub {
        my @st;
        my $start = time;
        while (time - $start < $dur) {
            push @st, chat($h, 'hold', $k)->{status};
            sleep 0.03;
        }
        return \@st;
    }
} $A, $B);
my $elapsed = time - $t0 + 0.35;
my @all = map { @$_ } @res;
my $held = admitted(@all);
my $allowed = int($elapsed * 30 / 60) + 1;
# documented bound: what refilled, plus (H-1) x (what refills in 2 sync
# intervals + 1) on each refill the hosts see at once
my $bound = $allowed + int(2 * 0.1 * 30 / 60 + 1) * 2;
cmp_ok($held, '<=', $bound, "sustained: " . scalar(@all) . " requests over "
       . sprintf('%.1f', $elapsed) . "s, $held admitted <= $bound (refill $allowed)");
diag sprintf "measured: sustained load, 2 hosts x %d requests in %.1fs on "
           . "rpm=30: %d admitted, %.1f refilled (over-admission %d)",
           scalar(@{ $res[0] }), $elapsed, $held, $elapsed * 30 / 60,
           max(0, $held - int($elapsed * 30 / 60));

# --- strict: an atomic reservation in Redis per request -----------------------

@res = $A->parallel(map { my $j = $_; sub { chat($j->[0], 'strict', 'sk-strict')->{status} } } @jobs);
is(admitted(@res), 20, 'strict: a cold burst of 40 on rpm=20 over 2 hosts admits exactly 20');
is(scalar(grep { $_ == 429 } @res), 20, 'strict: the 20 others get 429');
is(chat($B, 'strict', 'sk-strict')->{status}, 429, 'strict: the next one too, on either host');

# latency: requests to a synced and to a strict location, interleaved
my (@fast, @strict);
for my $i (1 .. 210) {
    my $f = chat($A, 'fast', 'sk-lat-fast')->{elapsed} * 1000;
    my $x = chat($A, 'sfast', 'sk-lat-strict')->{elapsed} * 1000;
    next if $i <= 10;                                       # warm
    push @fast, $f;
    push @strict, $x;
}
sub median { my @v = sort { $a <=> $b } @_; return $v[int(@v / 2)] }
sub p99 { my @v = sort { $a <=> $b } @_; return $v[int(@v * 0.99)] }
diag sprintf "measured: latency of a request (gateway + canned provider), "
           . "200 each, interleaved: synced %.2f ms mean / %.2f median / "
           . "%.2f p99, strict %.2f / %.2f / %.2f: strict adds %.2f ms mean, "
           . "%.2f median (one Redis round trip and script on 127.0.0.1)",
           sum(@fast) / @fast, median(@fast), p99(@fast),
           sum(@strict) / @strict, median(@strict), p99(@strict),
           sum(@strict) / @strict - sum(@fast) / @fast,
           median(@strict) - median(@fast);
cmp_ok(median(@strict), '<', median(@fast) + 20, 'strict: a Redis round trip, not more');
$s = sync_of($A, 'strict');
ok($s->{strict_admissions} >= 60, "status: strict admissions counted ($s->{strict_admissions})");
is($s->{strict_local}, 0, 'status: none decided locally while Redis answers');

# --- a shared budget ------------------------------------------------------------

# a call: 1 input token at 2.50 and 4 output at 10.00 per 1M = 42500 nano-USD

is(chat($B, 'budget', 'sk-money')->{status}, 200, 'budget: host B spends first');
settle();
my @st = map { chat($A, 'budget', 'sk-money')->{status} } 1 .. 3;
is_deeply(\@st, [200, 200, 402], 'budget: host A counts what B spent (3 x 42500 > 100000)');
settle();
$r = chat($B, 'budget', 'sk-money');
is($r->{status}, 402, 'budget: host B refuses what A spent, once synced');
is($r->{json}{error}{code}, 'budget_exceeded', 'budget: budget_exceeded');
like($r->{json}{error}{message}, qr/is spent \(0\.000127 USD/, 'budget: the fleet\'s spend');

# strict budget: reservations in Redis, no waiting for a sync

@st = map { chat($_, 'sbudget', 'sk-strict-money', max_tokens => 4)->{status} } $A, $B, $A, $B;
is_deeply(\@st, [200, 200, 200, 402], 'strict budget: alternating hosts, no sleep: refused at once');
@res = $A->parallel(map { my $j = $_; sub { chat($j->[0], 'sbudget', 'sk-strict-burst', max_tokens => 4)->{status} } } @jobs);
is(admitted(@res), 3, 'strict budget: 40 concurrent on 2 hosts, 3 fit (3 x 40000 reserved < 100000)');

# --- a reload: the old workers push what they have, the new ones go on ------

chat($A, 'ledger', 'sk-reload', text => "before reload $_") for 1 .. 5;
ok($A->reload, 'host A reloaded');
chat($A, 'ledger', 'sk-reload', text => "after reload $_") for 1 .. 5;
ok(wait_sync(state => 'ok', synced => 1), 'after the reload: in sync');

# --- Redis hung: no request waits for it (but a strict one, sync_timeout) ------

my ($pid) = (resp('INFO', 'server') // '') =~ /process_id:(\d+)/;
ok($pid && kill('STOP', $pid), 'Redis hung (SIGSTOP)');

my (%charged, @lat, @slat, @codes);
for my $i (1 .. 12) {
    for my $h ($A, $B) {
        my $x = chat($h, 'ledger', "sk-led-" . ($i % 3), text => "hung $i");
        push @codes, $x->{status};
        push @lat, $x->{elapsed} * 1000;
        $x = chat($h, 'sfast', 'sk-hung');
        push @codes, $x->{status};
        push @slat, $x->{elapsed} * 1000;
    }
}
is(scalar(grep { $_ != 200 } @codes), 0, 'Redis hung: every request answered 200');
cmp_ok(max(@lat), '<', 150, sprintf 'Redis hung: synced requests never wait (max %.0f ms)', max(@lat));
cmp_ok(max(@slat), '<', 500 + 250, sprintf 'Redis hung: a strict one waits at most sync_timeout (max %.0f ms)', max(@slat));
kill 'CONT', $pid;
diag sprintf "measured: Redis hung: synced requests max %.0f ms, strict "
           . "requests max %.0f ms (sync_timeout 500 ms), then local",
           max(@lat), max(@slat);

# --- Redis stopped, then started again -----------------------------------------

sleep 0.3;
redis_stop();
ok(!resp('PING'), 'Redis stopped (SHUTDOWN SAVE)');

@codes = ();
for my $i (1 .. 15) {
    for my $h ($A, $B) {
        push @codes, chat($h, 'ledger', "sk-led-" . ($i % 4), text => "down $i")->{status};
        push @codes, chat($h, 'strict', "sk-down-$i")->{status};
    }
}
is(scalar(grep { $_ != 200 } @codes), 0, 'Redis down: no failed request (limits are local)');

$s = sync_of($A, 'cost');
is($s->{state}, 'down', 'status: the zone\'s sync is down');
ok($s->{unsynced} > 0, "status: deltas kept for Redis ($s->{unsynced} unsynced)");
like($s->{last_error}, qr/refused|closed|did not answer/, "status: why ($s->{last_error})");
ok(sync_of($B, 'strict')->{strict_local} > 0, 'status: strict admissions decided locally');
ok($A->wait_for_log(qr/\[error\].*ai sync: .*local until it is back/, 3),
   'error log: Redis unreachable, limits local');

redis_start();
ok(wait_sync(state => 'ok', synced => 1), 'Redis back: every delta pushed, both hosts in sync');
ok($A->wait_for_log(qr/\[notice\].*ai sync: .* is reachable again/, 3),
   'error log: Redis reachable again');

# the fleet's ledger in Redis is the sum of what the hosts charged: exact

sub zone_totals {
    my ($h) = @_;
    my ($z) = grep { $_->{zone} eq 'cost' } @{ $h->get('/status')->{json}{zones} };
    return $z->{totals};
}

my ($ta, $tb) = (zone_totals($A), zone_totals($B));
my $tr = resp_hash('HGETALL', 'aigw:cost:totals');
my @f = qw(requests errors input_tokens output_tokens cost_nano_usd);
is_deeply([map { $tr->{$_} // 0 } @f], [map { $ta->{$_} + $tb->{$_} } @f],
          "fleet totals in Redis = host A + host B, exact ($tr->{requests} calls, "
          . "$tr->{cost_nano_usd} nano-USD)");
is_deeply(sync_of($B, 'cost')->{fleet_totals}{cost_nano_usd}, $tr->{cost_nano_usd} + 0,
          'status: the fleet\'s totals as last pulled');

my %want;
for my $h ($A, $B) {
    for my $e (grep { $_->{zone} eq 'cost' } @{ $h->get('/status')->{json}{ledger} }) {
        my $w = $want{join ' ', $e->{key} // '-', $e->{route}, $e->{model}} //= [0, 0, 0, 0];
        $w->[0] += $e->{requests};
        $w->[1] += $e->{input_tokens};
        $w->[2] += $e->{output_tokens};
        $w->[3] += $e->{cost_nano_usd};
    }
}
my %got;
for my $key (@{ resp('KEYS', 'aigw:cost:l:*') || [] }) {
    my $e = resp_hash('HGETALL', $key);
    $got{join ' ', ($e->{key} ne '' ? substr($e->{key}, 0, 8) : '-'), $e->{route}, $e->{model}}
        = [map { $e->{$_} // 0 } qw(requests input_tokens output_tokens cost_nano_usd)];
}
is_deeply(\%got, \%want, 'fleet ledger in Redis, entry by entry = host A + host B, exact ('
          . scalar(keys %want) . ' entries)');
my @raw = grep { /sk-/ } @{ resp('KEYS', '*') || [] };
is(scalar(@raw), 0, 'Redis holds key digests, never keys');

# a graceful stop: the syncing worker pushes what it has before it exits

for my $i (1 .. 6) {
    chat($_, 'ledger', 'sk-last', text => "last $i") for $A, $B;
}
($ta, $tb) = (zone_totals($A), zone_totals($B));
$_->stop_nginx for $A, $B;
$tr = resp_hash('HGETALL', 'aigw:cost:totals');
is_deeply([map { $tr->{$_} // 0 } @f], [map { $ta->{$_} + $tb->{$_} } @f],
          'a graceful stop right after requests: their deltas pushed on exit');

# --- credentials: an ACL user with the commands docs/cluster.md lists --------

is(resp('ACL', 'SETUSER', 'aigw', 'on', '>p@ss/w:rd', '~aigw:*', '+select',
        '+script|load', '+evalsha', '+time', '+get', '+set', '+hmget', '+hset',
        '+hincrby', '+incrby', '+expire', '+pexpire'), 'OK', 'Redis: an ACL user');
for my $h ($A, $B) {
    my $url = $h == $A ? 'redis://aigw:p%40ss%2Fw%3Ard@127.0.0.1:' . $rport . '/2'
                       : 'redis://aigw:wrong@127.0.0.1:' . $rport . '/2';
    (my $conf = host_conf($h)) =~ s{redis://127\.0\.0\.1:$rport}{$url}g;
    $h->write_config($conf);
    $h->start_nginx;
}
ok(wait_for(sub { (sync_of($A, 'strict') // {})->{state} eq 'ok' }),
   'host A: synced as the ACL user, in database 2');
@codes = map { (chat($A, 'ledger', 'sk-acl')->{status}, chat($A, 'strict', 'sk-acl')->{status},
                chat($A, 'sbudget', "sk-acl$_", max_tokens => 1)->{status}) } 1 .. 3;
is_deeply(\@codes, [(200) x 9], 'host A: batches, strict reservations and pulls allowed');
ok(wait_for(sub { !(sync_of($A, 'cost') // {})->{unsynced} }), 'host A: its deltas pushed');
my $db2 = resp('EVAL', "redis.call('SELECT', 2) return redis.call('KEYS', 'aigw:*')", 0);
ok(ref $db2 && grep({ /^aigw:cost:l:/ } @$db2) && grep({ /^aigw:strict:r:/ } @$db2),
   'database 2 holds them');
$s = sync_of($B, 'cost');
ok($s->{state} ne 'ok' && ($s->{last_error} // '') =~ /refused the AUTH or SELECT: WRONGPASS/,
   'host B, a wrong password: not synced, and why (' . ($s->{last_error} // '') . ')');
unlike($B->read_file('logs/error.log'), qr/wrong/, 'the password is not in the log');
is(chat($B, 'ledger', 'sk-acl')->{status}, 200, 'host B: serves locally');
$_->stop_nginx for $A, $B;

# --- a Redis that answers garbage --------------------------------------------

my $C = GatewayTest->new(name => 'fleet-c');
my $fport = $C->free_port;
my $fake = fork // die "fork: $!\n";
if ($fake == 0) { fake_redis($fport); POSIX::_exit(0) }
END { if ($fake && $$ == $test_pid) { kill 'KILL', $fake; waitpid($fake, 0) } }

$C->start_mock(name => 'm1');
(my $cconf = host_conf($C)) =~ s/127\.0\.0\.1:$rport sync_interval=100ms sync_timeout=500ms/127.0.0.1:$fport sync_interval=20ms sync_timeout=100ms/g;
$C->write_config($cconf);
$C->start_nginx;

@codes = ();
my $cend = time + 3;
my $n = 0;
while (time < $cend) {
    $n++;
    push @codes, chat($C, 'strict', "sk-c$n")->{status};
    push @codes, chat($C, 'ledger', 'sk-c')->{status};
    push @codes, chat($C, 'sbudget', "sk-c$n", max_tokens => 1)->{status};
}
is(scalar(grep { $_ != 200 } @codes), 0,
   'a Redis answering garbage: ' . scalar(@codes) . ' requests, all answered 200 (local)');
my $conns = () = ($C->read_file('logs/fake-redis.log') // '') =~ /^conn /mg;
cmp_ok($conns, '>=', 5, "the fake Redis was tried again and again ($conns connections)");
ok($C->error_log_contains(qr/ai sync: .*(invalid answer|nothing asked|too large|did not answer|closed)/),
   'the garbage is reported');

for my $h ($A, $B, $C) { $h->done_testing_checks }   # no crashed worker
done_testing;


# A server speaking RESP badly, a different way on each connection: an
# answer nothing asked for, absurd lengths, protocol errors, wrong shapes,
# error replies, silence.
sub fake_redis {
    my ($port) = @_;
    my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port,
                                  Listen => 64, ReuseAddr => 1) or die "listen: $!";
    open my $log, '>>', "$C->{prefix}/logs/fake-redis.log";
    $log->autoflush(1);
    my $sel = IO::Select->new($l);
    my (%buf, %mode, $nconn);
    my @shapes = ("*3\r\n:1\r\n:2\r\n:3\r\n", "-ERR nope\r\n", ":5\r\n", "\$-1\r\n",
                  "*2\r\n\$1\r\nx\r\n*1\r\n:1\r\n", "*1\r\n*1\r\n*1\r\n:1\r\n",
                  "*6\r\n:0\r\n:99\r\n:1\r\n:1\r\n:1\r\n:1\r\n", "*2\r\n:1\r\n+now\r\n",
                  "-NOSCRIPT No matching script\r\n",
                  "*4\r\n:1\r\n:0\r\n\$3\r\nabc\r\n:-99999999999999999999\r\n");
    while (getppid() == $test_pid) {
        for my $s ($sel->can_read(0.1)) {
            if ($s == $l) {
                my $c = $l->accept or next;
                $sel->add($c);
                my $m = $nconn++ % 8;
                $mode{$c} = $m;
                $buf{$c} = '';
                print $log "conn $nconn mode $m\n";
                syswrite($c, "+OK\r\n") if $m == 0;         # nothing asked for
                next;
            }
            my $n = sysread($s, my $data, 65536);
            if (!$n) { $sel->remove($s); close $s; next }
            $buf{$s} .= $data;
            my $m = $mode{$s};
            my @cmds;
            while ($buf{$s} =~ s/\A\*(\d+)\r\n((?:\$\d+\r\n[^\r]*\r\n)*)//) {
                my ($cnt, $body) = ($1, $2);
                my @args;
                while ($body =~ /\$(\d+)\r\n/g) {
                    push @args, substr($body, pos($body), $1);
                    pos($body) += $1 + 2;
                }
                push @cmds, \@args;
            }
            for my $cmd (@cmds) {
                my $name = uc($cmd->[0] // '');
                my $out;
                if ($m == 1) { $out = "*2147483647\r\n" }
                elsif ($m == 2) { $out = "\$99999999999\r\nabc"; }
                elsif ($m == 3) { $out = join '', map { chr int rand 256 } 1 .. 200 }
                elsif ($m == 4) { $out = undef }                      # silence
                elsif ($m == 5) { $out = "+OK\r\n+OK\r\n" }           # one too many
                elsif ($name eq 'SCRIPT') { $out = "\$40\r\n" . ('a' x 40) . "\r\n" }
                elsif ($name eq 'EVALSHA') { $out = $shapes[int rand @shapes] }
                else { $out = "+OK\r\n" }
                syswrite($s, $out) if defined $out;
                if ($m == 2) { $sel->remove($s); close $s; last }
            }
        }
    }
}
