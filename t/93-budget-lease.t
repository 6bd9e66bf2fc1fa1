#!/usr/bin/perl
# Budget leases (ai_cost_zone ... sync_mode=lease; docs/cluster.md): two
# nginx hosts share one redis-server (started here, AOF fsynced at every
# write).  A priced model makes every call cost a known amount (1 input
# token at 2.50 and 4 output at 10.00 per 1M: 42500 nano-USD; estimated
# 40000 with max_tokens=4).  A cold burst alternating over the hosts
# spends at most the budget and the documented bound (measured against
# sync_mode=async); the fleet's spend in Redis is the sum of the hosts'
# ledgers; Redis killed mid-run: no request fails beyond budget refusals,
# each host admits on its share of what is left (sync_fallback=full: on
# the whole budget), and once Redis is back
# every delta is pushed; slices go back at their end and at a reload.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";

use List::Util qw(max sum);
use Test::More;
use Time::HiRes qw(time sleep);
use Digest::SHA qw(sha256_hex);
use GatewayTest;
use RedisTest qw(sync_of wait_for);

my @H = map { GatewayTest->new(name => "blease-$_") } qw(a b);
my ($A, $B) = @H;
plan skip_all => 'module not built' unless $A->has_module;
my $server = RedisTest::find_server();
plan skip_all => 'redis-server is not installed (apt-get install '
               . 'redis-server, or set AI_GW_REDIS_SERVER)' unless $server;

my $R = RedisTest->new(server => $server, port => $A->free_port,
                       dir => $A->prefix . '/redis', aof => 1);
$R->start;
my $rport = $R->{port};

my $SYNC = "sync=redis://127.0.0.1:$rport sync_interval=100ms sync_timeout=500ms";
my $BUDGET = 1_000_000;                # nano-USD: budget=0.001
my $COST = 42_500;                     # a call
my $EST = 40_000;                      # its estimate

sub host_conf {
    my ($h) = @_;
    return $h->config_preamble . "http {\n" . $h->http_preamble . <<"EOF";
    ai_provider openai type=openai pass=/_ai/openai key=sk-provider;
    ai_price openai/gpt-4o 2.50 10.00;

    ai_cost_zone cost:1m $SYNC sync_mode=lease;
    ai_cost_zone acost:1m $SYNC sync_mode=async;
    ai_cost_zone fcost:1m $SYNC sync_mode=lease sync_fallback=full;

    server {
        listen 127.0.0.1:%%PORT%% reuseport;

        location /budget/v1/ {
            ai_gateway;
            ai_cost zone=cost key=\$http_authorization budget=0.001;
        }

        location /abudget/v1/ {
            ai_gateway;
            ai_cost zone=acost key=\$http_authorization budget=0.001;
        }

        location /fbudget/v1/ {
            ai_gateway;
            ai_cost zone=fcost key=\$http_authorization budget=0.001;
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

for my $h (@H) {
    $h->start_mock(name => 'm1');
    $h->write_config(host_conf($h));
    $h->start_nginx;
}

sub chat {
    my ($h, $loc, $key) = @_;
    my $body = { model => 'openai/gpt-4o', max_tokens => 4,
                 messages => [{ role => 'user', content => 'Hi' }] };
    return $h->post_json("/$loc/v1/chat/completions", $body,
                         headers => { Authorization => "Bearer $key" });
}

sub wait_sync {
    my (%o) = @_;
    return wait_for(sub {
        for my $h (@H) {
            my @s = @{ ($h->get('/status')->{json} // {})->{sync} || [] };
            return 0 unless @s == 3;
            for my $s (@s) {
                return 0 if $s->{state} ne 'ok';
                return 0 if $o{synced} && $s->{unsynced};
            }
        }
        return 1;
    }, $o{timeout} // 10);
}

sub admitted { scalar grep { $_ == 200 } @_ }

# the fleet's spend of a key in Redis (the account's total)
sub redis_spend {
    my ($zone, $key) = @_;
    my $id = pack('C', 2) . pack('C', 1) . pack("H*", sha256_hex("Bearer $key"));
    return $R->cmd('GET', "aigw:$zone:a:" . substr(sha256_hex($id), 0, 32) . ':total') // 0;
}

sub zone_totals {
    my ($h, $zone) = @_;
    my ($z) = grep { $_->{zone} eq $zone } @{ $h->get('/status')->{json}{zones} };
    return $z->{totals};
}

ok(wait_sync(), 'two hosts: the three cost zones synced with Redis');

my $s = sync_of($A, 'cost');
is($s->{mode}, 'lease', 'status: ai_cost_zone sync_mode=lease');
is($s->{lease}{fallback}, 'share', 'status: sync_fallback=share by default');
is(sync_of($A, 'acost')->{mode}, 'async', 'status: a synced cost zone is async by default');

# documented bound (docs/cluster.md): H x max(E, B / (20 H)) unleased,
# plus one estimate (the last grant), plus (C - E) per request in flight
my $bound = 2 * max($EST, $BUDGET / 40) + $EST + 2 * ($COST - $EST);

# --- a cold burst, alternating over the two hosts -------------------------------

sub burst {
    my ($loc, $key) = @_;
    my $t0 = time;
    my @st;
    for my $i (0 .. 39) {
        push @st, chat($i % 2 ? $B : $A, $loc, $key)->{status};
        my $next = $t0 + ($i + 1) * 0.05;
        sleep $next - time if $next > time;
    }
    return @st;
}

my @seq = burst('budget', 'sk-cold');
my $spent = admitted(@seq) * $COST;
is(scalar(grep { $_ != 200 && $_ != 402 } @seq), 0, 'cold burst: every other answer a 402')
    or diag "@seq";
cmp_ok($spent, '<=', $BUDGET + $bound, "cold burst of 40 alternating over 2 hosts: "
       . admitted(@seq) . " admitted, $spent nano-USD <= budget $BUDGET + bound $bound");
cmp_ok($spent, '>=', $BUDGET - 2 * $COST, "cold burst: the budget is used, not starved ($spent)");
my $r = chat($A, 'budget', 'sk-cold');
is($r->{status}, 402, 'cold burst: the key is refused once its budget is spent');
is($r->{json}{error}{code}, 'budget_exceeded', 'cold burst: budget_exceeded');

my @aseq = burst('abudget', 'sk-cold');
my $aspent = admitted(@aseq) * $COST;
diag sprintf "measured: cold burst, 40 requests alternating over 2 hosts every 50 ms, "
           . "budget 0.001 USD at 0.0000425 a call: lease %d admitted (%d nano-USD, over %d), "
           . "async %d admitted (%d nano-USD, over %d)",
           admitted(@seq), $spent, max(0, $spent - $BUDGET),
           admitted(@aseq), $aspent, max(0, $aspent - $BUDGET);

# concurrent: 10 at once on each host, a key neither has seen
my @jobs = ((map { $A } 1 .. 10), (map { $B } 1 .. 10));
my @par = $A->parallel(map { my $h = $_; sub { chat($h, 'budget', 'sk-par')->{status} } } @jobs);
is(scalar(grep { $_ != 200 && $_ != 402 && $_ != 429 } @par), 0,
   'concurrent: the others get 402 or 429 (a slice on its way)');
my @apar = $A->parallel(map { my $h = $_; sub { chat($h, 'abudget', 'sk-par')->{status} } } @jobs);
diag "measured: 20 at once (10 per host), a new key, budget for 23.5 calls: lease "
   . admitted(@par) . " admitted, async " . admitted(@apar);
cmp_ok(admitted(@par) * $COST, '<=', $BUDGET + $bound, 'concurrent: within the budget and the bound');

ok(wait_sync(synced => 1), 'all pushed');
is(redis_spend('cost', 'sk-cold'), $spent, "Redis: the key's fleet spend is what the hosts admitted ($spent)");

my @f = qw(requests cost_nano_usd);
my $tr = $R->hash('HGETALL', 'aigw:cost:totals');
my %sum;
for my $h (@H) {
    my $t = zone_totals($h, 'cost');
    $sum{$_} += $t->{$_} for @f;
}
is_deeply([map { $tr->{$_} // 0 } @f], [map { $sum{$_} } @f],
          "fleet totals in Redis = the sum of the 2 hosts' ledgers ($sum{requests} calls)");

$s = sync_of($A, 'cost');
ok($s->{lease}{slices} > 0 && $s->{lease}{nano_usd}{leased} > 0,
   "status: slices granted ($s->{lease}{slices}, $s->{lease}{usd}{leased} USD)");
ok($s->{lease}{nano_usd}{used} > 0, "status: used from slices ($s->{lease}{usd}{used} USD)");
is($s->{lease}{hosts}, 2, 'status: two hosts asked for slices');
like($s->{lease}{usd}{leased}, qr/^\d+\.\d{6}$/, 'status: USD as a decimal string');

my $m = $A->get('/status?format=prometheus')->{content} // '';
like($m, qr/^ai_gateway_sync_lease_usd_total\{zone="cost",what="leased"\} \d+\.\d{9}$/m,
     'metrics: USD leased');
unlike($m, qr/^ai_gateway_sync_lease_requests_total\{zone="cost"/m,
       'metrics: no requests of a cost zone\'s slices');

# --- slices go back at their end ---------------------------------------------------

chat($_, 'budget', 'sk-back')->{status} for $A, $B, $A, $B;
ok(wait_for(sub { $s = sync_of($A, 'cost'); $s->{lease}{nano_usd}{returned} > 0 }, 5),
   "unused slices go back at their end ($s->{lease}{usd}{returned} USD)");
ok(wait_for(sub { !@{ $R->cmd('KEYS', 'aigw:cost:b:*') || [] } }, 8),
   'Redis: no host holds a slice once they ended and all is pushed');
my $asks = sync_of($A, 'cost')->{lease}{asks};
sleep 0.6;
is(sync_of($A, 'cost')->{lease}{asks}, $asks, 'idle: nothing more is asked of Redis once the slices went back');

# --- a reload: the old workers give their slices back -------------------------------

chat($A, 'budget', 'sk-reload') for 1 .. 3;
my $ret = sync_of($A, 'cost')->{lease}{nano_usd}{returned};
ok($A->reload, 'host A reloaded');
ok(wait_for(sub { sync_of($A, 'cost')->{lease}{nano_usd}{returned} > $ret }, 1),
   'the old workers gave back the slice they held (before it ended)');
is(chat($A, 'budget', 'sk-reload')->{status}, 200, 'after the reload: admitted');

# --- Redis killed mid-run: the share of what is left ------------------------------

my $key = 'sk-outage';
my @codes = map { chat($H[$_ % 2], 'budget', $key)->{status} } 1 .. 6;
my @fcodes = map { chat($H[$_ % 2], 'fbudget', $key)->{status} } 1 .. 6;
ok(wait_sync(synced => 1), 'before the outage: all pushed');
my $before = redis_spend('cost', $key);
ok($R->kill9, 'Redis killed (SIGKILL)');
ok(wait_for(sub { sync_of($A, 'cost')->{state} eq 'down' && sync_of($B, 'cost')->{state} eq 'down' }, 5),
   'status: both hosts see Redis down');
sleep 1.3;                             # the slices end
my @down = map { chat($H[$_ % 2], 'budget', $key)->{status} } 1 .. 30;
push @codes, @down;
my @fdown = map { chat($H[$_ % 2], 'fbudget', $key)->{status} } 1 .. 30;
push @fcodes, @fdown;
is(scalar(grep { $_ != 200 && $_ != 402 } @codes), 0, 'Redis away: no request fails beyond budget refusals');
my $left = $BUDGET - $before;
# each host: its share of what is left as it last knew it (the other's
# last call may not have reached it: one more), one call past its estimate
my $share = int($left / 2 / $COST) + 1;
cmp_ok(admitted(@down), '<=', 2 * ($share + 1), 'Redis away: the hosts admit their shares of what is left ('
       . admitted(@down) . " <= 2 x ($share + 1))");
cmp_ok(admitted(@down), '>=', 2, 'Redis away: the hosts still admit on their shares');
cmp_ok(sync_of($A, 'cost')->{lease}{fallback_admissions}, '>', 0, 'status: admissions on the share counted');
is(sync_of($A, 'fcost')->{lease}{fallback}, 'full', 'status: sync_fallback=full');
is(admitted(@fdown), 30, 'sync_fallback=full: each host admits on the whole budget as last known (30 '
   . 'admitted, ' . (2 * $share) . ' on the shares would be)');
ok($A->wait_for_log(qr/\[warn\].*no budget slices from Redis \(away, or refusing them\), budgets of a lease zone are this host's share \(1\/2/, 3),
   'error log: admitting on the share');
$R->start;
ok(wait_sync(synced => 1, timeout => 15), 'Redis back: every delta pushed');
my $total = admitted(@codes) * $COST;
is(redis_spend('cost', $key), $total, "Redis back: the key's fleet spend is every call's ($total), none lost");
is(redis_spend('fcost', $key), admitted(@fcodes) * $COST, 'Redis back: sync_fallback=full, the same');
cmp_ok($total, '<=', $BUDGET + $bound, 'over the outage: within the budget and the bound');
diag sprintf "measured: Redis killed after %d nano-USD spent: %d admitted on the shares (%d nano-USD "
           . "for %d left), fleet spend %d",
           $before, admitted(@down), admitted(@down) * $COST, $left, $total;

$tr = $R->hash('HGETALL', 'aigw:cost:totals');
%sum = ();
for my $h (@H) {
    my $t = zone_totals($h, 'cost');
    $sum{$_} += $t->{$_} for @f;
}
is_deeply([map { $tr->{$_} // 0 } @f], [map { $sum{$_} } @f],
          "after the outage: fleet totals in Redis = the sum of the hosts' ledgers");

done_testing();
