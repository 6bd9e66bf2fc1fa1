#!/usr/bin/perl
# The cost ledger and budgets (ai_cost_zone, ai_cost, ai_status): exact
# sums in nano-USD after many concurrent requests of known usage, streams
# charged with their real usage, errors counted, keys shown only as a
# short SHA-256 prefix, X-AI-Cost and $ai_cost, budgets refused with 402
# before the provider is called (and never overshot by more than one
# request under concurrency), the ledger kept across reload, restart and
# a killed nginx (state file), a damaged state file reported (t/44-state.t).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";

use Digest::SHA qw(sha256_hex);
use POSIX qw(ceil);
use Test::More;
use Time::HiRes qw(time sleep);
use GatewayTest;

my $t = GatewayTest->new(name => 'cost');
plan skip_all => 'module not built' unless $t->has_module;

$t->start_mock(name => 'm1');

my $conf = $t->config_preamble . "http {\n" . $t->http_preamble . <<'EOF';
    log_format cost '$request_uri $status $ai_cost $ai_budget_status';
    access_log logs/cost.log cost;

    ai_provider openai type=openai pass=/_ai/openai key=sk-provider;
    ai_price openai/gpt-4o 2.50 10.00;
    ai_price openai/gpt-4o-mini 0.15 0.60;
    ai_price openai/gpt-4o-delay500 2.50 10.00;
    ai_price openai/gpt-4o-status500 2.50 10.00;
    ai_price openai/gpt-4o-slow100 2.50 10.00;

    ai_cost_zone cost:1m state=%%PREFIX%%/state/cost.state interval=1s;
    ai_cost_zone budget:1m;

    server {
        listen 127.0.0.1:%%PORT%% reuseport;

        location /v1/ {
            ai_gateway;
            ai_cost zone=cost key=$http_authorization;
        }

        location /route/v1/ {
            ai_gateway;
            ai_cost zone=cost;
        }

        location /budget/v1/ {
            ai_gateway;
            ai_cost zone=budget key=$http_authorization budget=0.0001/day;
        }

        location /conc/v1/ {
            ai_gateway;
            ai_cost zone=budget key=$http_authorization budget=0.001;
        }

        location /nocost/v1/ {
            ai_gateway;
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
$t->write_config($conf);
$t->start_nginx;

my %price = ('openai/gpt-4o' => [2500, 10000], 'openai/gpt-4o-mini' => [150, 600],
             'openai/gpt-4o-delay500' => [2500, 10000],
             'openai/gpt-4o-slow100' => [2500, 10000]);

# the mock's usage rule (its header): prompt = ceil(chars / 4), completion =
# words of "Mock answer to: TEXT"
sub usage_of {
    my ($text) = @_;
    my $p = ceil(length($text) / 4);
    $p = 1 if $p < 1;
    my @w = split ' ', "Mock answer to: $text";
    return ($p, scalar @w);
}

# the gateway's cost of one call, in nano-USD
sub cost_of {
    my ($model, $in, $out) = @_;
    my $pr = $price{$model} or return 0;
    return $in * $pr->[0] + $out * $pr->[1];
}

sub usd { sprintf '%d.%06d', int($_[0] / 1e9), int(($_[0] % 1e9) / 1000) }

sub chat {
    my ($loc, $key, %o) = @_;
    my $body = { model => $o{model} // 'openai/gpt-4o',
                 messages => [{ role => 'user', content => $o{text} // 'Hello gateway' }] };
    $body->{max_tokens} = $o{max_tokens} if defined $o{max_tokens};
    return $t->post_json("$loc/chat/completions", $body,
        headers => { defined $key ? (Authorization => "Bearer $key") : () });
}

sub status { $t->get('/status')->{json} }

sub prefix { substr(sha256_hex("Bearer $_[0]"), 0, 8) }

sub ledger_of {
    my ($st, $zone, $key, $route, $model) = @_;
    my ($e) = grep { $_->{zone} eq $zone && $_->{route} eq $route
                     && $_->{model} eq $model
                     && (defined $key ? (defined $_->{key} && $_->{key} eq prefix($key))
                                      : !defined $_->{key}) }
              @{ $st->{ledger} };
    return $e;
}

# --- one request: its cost in the header, in the ledger ------------------------

my $r = chat('/v1', 'sk-one');
is($r->{status}, 200, 'chat: 200');
my ($in, $out) = usage_of('Hello gateway');
is_deeply([$r->{json}{usage}{prompt_tokens}, $r->{json}{usage}{completion_tokens}],
          [$in, $out], 'chat: usage as the mock reports it');
is($r->{headers}{'x-ai-cost'}, usd(cost_of('openai/gpt-4o', $in, $out)),
   "X-AI-Cost: USD with 6 decimals ($r->{headers}{'x-ai-cost'})");

my $st = status();
is($st->{version}, '0.1.0', 'status: version');
ok(abs($st->{time} - time) < 5, 'status: time');
is_deeply($st->{breakers}, [], 'status: breakers (none configured here)');
my $e = ledger_of($st, 'cost', 'sk-one', '/v1/', 'openai/gpt-4o');
ok($e, 'ledger: an entry per (key, route, model)') or diag explain $st;
is($e->{key}, prefix('sk-one'), 'ledger: key is the 8-digit prefix of its SHA-256');
is_deeply([@$e{qw(requests errors input_tokens output_tokens cost_nano_usd cost_usd)}],
          [1, 0, $in, $out, cost_of('openai/gpt-4o', $in, $out),
           usd(cost_of('openai/gpt-4o', $in, $out))], 'ledger: the figures');
ok($e->{first_seen} && $e->{last_seen} >= $e->{first_seen}, 'ledger: first and last seen');
is($e->{aborted}, 0, 'ledger: nothing aborted');
is($e->{estimated_cost_nano_usd}, 0, 'ledger: no estimate');

# --- many concurrent requests of known usage: exact sums -----------------------

my @jobs;
for my $i (1 .. 40) {
    my $key = $i % 2 ? 'sk-one' : 'sk-two';
    my $model = $i % 3 ? 'openai/gpt-4o' : 'openai/gpt-4o-mini';
    my $text = "question number $i " . ('z' x ($i % 7));
    push @jobs, [$key, $model, $text];
}
my @res = $t->parallel(map {
    my $j = $_;
    sub {
        my $x = chat('/v1', $j->[0], model => $j->[1], text => $j->[2]);
        return { status => $x->{status}, cost => $x->{headers}{'x-ai-cost'} };
    }
} @jobs);
is(scalar(grep { $_->{status} == 200 } @res), 40, 'concurrent: 40 answers');

my %want;
my ($tr, $ti, $to, $tc) = (1, $in, $out, cost_of('openai/gpt-4o', $in, $out));
$want{'sk-one openai/gpt-4o'} = [1, $in, $out, $tc];
my $costs_ok = 1;
for my $n (0 .. $#jobs) {
    my ($key, $model, $text) = @{ $jobs[$n] };
    my ($p, $c) = usage_of($text);
    my $cost = cost_of($model, $p, $c);
    my $w = $want{"$key $model"} //= [0, 0, 0, 0];
    $w->[0]++; $w->[1] += $p; $w->[2] += $c; $w->[3] += $cost;
    $tr++; $ti += $p; $to += $c; $tc += $cost;
    $costs_ok = 0 unless $res[$n]{cost} eq usd($cost);
}
ok($costs_ok, 'concurrent: every X-AI-Cost is its own call\'s cost');

$st = status();
for my $k (sort keys %want) {
    my ($key, $model) = split / /, $k;
    my $e = ledger_of($st, 'cost', $key, '/v1/', $model);
    is_deeply([$e ? @$e{qw(requests input_tokens output_tokens cost_nano_usd)} : ()],
              $want{$k}, "ledger exact: $k");
}
is_deeply([@{ $st->{totals} }{qw(requests errors input_tokens output_tokens cost_nano_usd)}],
          [$tr, 0, $ti, $to, $tc], "totals exact: $tr calls, $tc nano-USD");
is($st->{totals}{cost_usd}, usd($tc), 'totals: cost_usd');

# --- errors, streams, per-route ledger, no ai_cost ------------------------------

$r = chat('/v1', 'sk-one', model => 'openai/gpt-4o-status500');
isnt($r->{status}, 200, 'provider error: an error answer');
is($r->{headers}{'x-ai-cost'}, '0.000000', 'provider error: X-AI-Cost 0');
$e = ledger_of(status(), 'cost', 'sk-one', '/v1/', 'openai/gpt-4o-status500');
is_deeply([@$e{qw(requests errors cost_nano_usd)}], [1, 1, 0],
          'provider error: counted as a call and an error, no cost');
$tr++;

my $s = $t->stream('/v1/chat/completions',
    { model => 'openai/gpt-4o-slow100', stream => JSON::PP::true(),
      messages => [{ role => 'user', content => 'stream this answer' }] },
    headers => { Authorization => 'Bearer sk-stream' });
ok($s->{done}, 'stream: complete');
ok(!exists $s->{headers}{'x-ai-cost'}, 'stream: no X-AI-Cost header');
($in, $out) = usage_of('stream this answer');
my $scost = cost_of('openai/gpt-4o-slow100', $in, $out);
$e = ledger_of(status(), 'cost', 'sk-stream', '/v1/', 'openai/gpt-4o-slow100');
is_deeply([@$e{qw(requests input_tokens output_tokens cost_nano_usd)}],
          [1, $in, $out, $scost], 'stream: charged with its real usage');
$tr++; $ti += $in; $to += $out; $tc += $scost;

$r = chat('/route/v1', undef);
($in, $out) = usage_of('Hello gateway');
$e = ledger_of(status(), 'cost', undef, '/route/v1/', 'openai/gpt-4o');
is($e->{requests}, 1, 'no key=: the ledger is per route, key null');
$tr++; $ti += $in; $to += $out; $tc += cost_of('openai/gpt-4o', $in, $out);

$r = chat('/nocost/v1', 'sk-one');
is($r->{headers}{'x-ai-cost'}, usd(cost_of('openai/gpt-4o', $in, $out)),
   'without ai_cost: X-AI-Cost still comes from the prices');

$st = status();
is($st->{totals}{requests}, $tr, 'totals: every call in the zone');
is($st->{totals}{cost_nano_usd}, $tc, 'totals: every cost');

# --- keys never in clear --------------------------------------------------------

my $body = $t->get('/status')->{content};
unlike($body, qr/sk-(one|two|stream)/, 'status: no raw key anywhere');
unlike($body, qr/Bearer/, 'status: no Authorization value');
my @keys = grep { defined } map { $_->{key} } @{ $st->{ledger} }, @{ $st->{spend} };
ok(!grep({ !/^[0-9a-f]{8}$/ } @keys), 'status: keys are 8 hex digits');
my ($acct) = grep { defined $_->{key} && $_->{key} eq prefix('sk-two') } @{ $st->{spend} };
is($acct->{total_nano_usd}, $want{'sk-two openai/gpt-4o'}[3] + $want{'sk-two openai/gpt-4o-mini'}[3],
   'spend: an account per key, across models');

# --- $ai_cost -------------------------------------------------------------------

my $log = '';
for (1 .. 100) {
    $log = $t->read_file('logs/cost.log') // '';
    last if $log =~ m{^/nocost/}m;
    sleep 0.02;
}
like($log, qr{^/v1/chat/completions 200 ${\ usd($scost)} -$}m,
     '$ai_cost: a stream\'s cost in the access log');
like($log, qr{^/nocost/v1/chat/completions 200 \d+\.\d{6} -$}m, '$ai_cost: USD');

# --- budgets: refused before the provider is called ------------------------------

# a call's reservation is given back in its log phase, just after its
# answer went out (a call that comes in meanwhile counts it still, and
# may be refused for it): the next call waits for that, as the test's
# sequence means "after the first was settled"
sub charged {
    my ($n) = @_;
    for (1 .. 100) {
        my $st = status();
        my $e = ledger_of($st, 'budget', 'sk-budget', '/budget/v1/', 'openai/gpt-4o');
        my ($a) = grep { $_->{zone} eq 'budget' && defined $_->{key}
                         && $_->{key} eq prefix('sk-budget') } @{ $st->{spend} };
        return if $e && $e->{requests} >= $n && $a && !$a->{in_flight_nano_usd};
        select(undef, undef, undef, 0.02);
    }
}
$t->clear_records('m1');
my @b;
for my $i (1 .. 3) {
    push @b, chat('/budget/v1', 'sk-budget');
    charged($i) if $b[-1]{status} == 200;
}
is_deeply([map { $_->{status} } @b], [200, 200, 402],
          'budget 0.0001/day: two calls of 0.00006 (the second starts below it), then 402');
is($b[2]{json}{error}{code}, 'budget_exceeded', '402: code budget_exceeded');
is($b[2]{json}{error}{type}, 'insufficient_quota', '402: type');
like($b[2]{json}{error}{message}, qr/budget of 0\.000100 USD per day \(UTC\) for this key is spent \(0\.000120 USD/,
     '402: message');
my $midnight = 86400 - time % 86400;
ok(abs($b[2]{headers}{'retry-after'} - $midnight) <= 2, '402: Retry-After until 00:00 UTC');
is($b[2]{headers}{'x-ai-cost'}, '0.000000', '402: X-AI-Cost 0');
is(scalar @{ $t->mock_records('m1') }, 2, '402: the provider never saw the refused request');
is(chat('/budget/v1', 'sk-other-budget')->{status}, 200, 'budget: per key');
$log = '';
for (1 .. 100) {
    $log = $t->read_file('logs/cost.log') // '';
    last if $log =~ m{^/budget/v1/chat/completions 402}m;
    sleep 0.02;
}
like($log, qr{^/budget/v1/chat/completions 402 0\.000000 REJECTED$}m, '$ai_budget_status: REJECTED');
like($log, qr{^/budget/v1/chat/completions 200 0\.000060 PASSED$}m, '$ai_budget_status: PASSED');

# concurrent requests: reservations keep them within one request of the budget
$t->clear_records('m1');
@res = $t->parallel(map {
    sub {
        my $x = chat('/conc/v1', 'sk-conc', model => 'openai/gpt-4o-delay500',
                     max_tokens => 10);
        return { status => $x->{status} };
    }
} 1 .. 30);
my %by;
$by{$_->{status}}++ for @res;
ok($by{200} >= 1 && $by{402} >= 1, "budget, concurrent: $by{200} admitted, $by{402} refused");
is(scalar @{ $t->mock_records('m1') }, $by{200}, 'budget, concurrent: refused ones never reached the provider');
my $n = $by{200};

# a request's reservation is given back in its log phase, which nginx runs
# after the answer's last byte left: wait for it before the next request
sub settled {
    for (1 .. 100) {
        my ($a) = grep { $_->{zone} eq 'budget' && defined $_->{key}
                         && $_->{key} eq prefix('sk-conc') } @{ status()->{spend} };
        return if $a && $a->{in_flight_nano_usd} == 0;
        sleep 0.02;
    }
}

# then one at a time until refused
settled();
for (1 .. 40) {
    my $x = chat('/conc/v1', 'sk-conc', max_tokens => 10);
    last if $x->{status} == 402;
    $n++;
    settled();
}
($in, $out) = usage_of('Hello gateway');
my $one = cost_of('openai/gpt-4o', $in, $out);
($acct) = grep { $_->{zone} eq 'budget' && defined $_->{key} && $_->{key} eq prefix('sk-conc') }
          @{ status()->{spend} };
is($acct->{total_nano_usd}, $n * $one, "budget: $n calls charged");
ok($acct->{total_nano_usd} >= 1_000_000 && $acct->{total_nano_usd} < 1_000_000 + $one,
   "budget: spend $acct->{total_nano_usd} passed 1000000 by less than one call ($one)");
is($acct->{in_flight_nano_usd}, 0, 'budget: nothing in flight');

# --- reload, restart, kill: the ledger stays ---------------------------------------

# the "cost" zone (the one with state=) as text: its totals, ledger, accounts
sub snapshot {
    my $st = status();
    my @l = sort map { join ' ', map { $_ // '-' } @$_{qw(zone key route model requests errors
        input_tokens output_tokens cost_nano_usd first_seen last_seen)} }
            grep { $_->{zone} eq 'cost' } @{ $st->{ledger} };
    my @a = sort map { join ' ', map { $_ // '-' } @$_{qw(zone key route total_nano_usd
        day_nano_usd month_nano_usd)} }
            grep { $_->{zone} eq 'cost' } @{ $st->{spend} };
    my ($z) = grep { $_->{zone} eq 'cost' } @{ $st->{zones} };
    my $tot = join ' ', @{ $z->{totals} }{qw(requests errors input_tokens output_tokens
                                             cost_nano_usd)};
    return join "\n", "totals $tot", "entries $z->{entries} $z->{accounts}", @l, @a;
}

my $before = snapshot();
$t->reload;
is(snapshot(), $before, 'reload: ledger, accounts and totals unchanged');

$t->stop_nginx;
like($t->read_file('state/cost.state') // '', qr/^ngx_ai_gateway_cost_state 2 [0-9a-f]{8}\n/,
     'stop: the state file is written');
unlike($t->read_file('state/cost.state') // '', qr/sk-|Bearer/, 'state file: no raw key');
ok(!-e $t->prefix . '/state/budget.state', 'no state= : no file');
$t->start_nginx;
is(snapshot(), $before, 'restart: the cost zone is read back whole');
my ($bz) = grep { $_->{zone} eq 'budget' } @{ status()->{zones} };
is($bz->{totals}{requests}, 0, 'restart: a zone without state= starts empty');
ok($t->wait_for_log(qr/ai_cost_zone "cost": \d+ records read from/), 'restart: logged');

# a killed nginx: what the timer wrote survives
chat('/v1', 'sk-after-restart');
my $want_snap = snapshot();
sleep 1.6;                                 # interval=1s
my @pids = ($t->nginx_pid, $t->worker_pids);
kill 'KILL', @pids;
sleep 0.1 while grep { GatewayTest::process_alive($_) } @pids;
delete $t->{nginx_pid};
$t->start_nginx;
is(snapshot(), $want_snap, 'SIGKILL: the ledger as the timer last wrote it');

# --- a damaged state file: what checks out is read (t/44-state.t has more) ------

$t->stop_nginx;
my $file = $t->prefix . '/state/cost.state';
my $good = $t->read_file($file);
$t->write_file($file, substr($good, 0, length($good) - 20), raw => 1);
$t->start_nginx;
my $line = $t->wait_for_log(qr/ai_cost_zone "cost": the state file .* is truncated/);
ok($line, 'truncated state: reported') or diag $t->read_file('logs/error.log');
like($line // '', qr/\[error\]/, 'truncated state: at error level, not fatal');
my ($cz) = grep { $_->{zone} eq 'cost' } @{ status()->{zones} };
ok($cz->{accounts} > 0, 'truncated state: the budget accounts (first in the file) are read');
ok(!-e "$file.corrupt", 'truncated state: not moved aside, something was read');
is(chat('/v1', 'sk-one')->{status}, 200, 'truncated state: nginx serves');

$t->stop_nginx;
for my $bad ("garbage\n", '', "ngx_ai_gateway_cost_state 1\nzone =cost\n") {
    $t->write_file($file, $bad, raw => 1);
    unlink "$file.corrupt";
    $t->start_nginx;
    is(status()->{totals}{requests}, 0, 'corrupt state ignored: ' . substr($bad =~ s/\n/|/gr, 0, 30));
    ok(-e "$file.corrupt", 'corrupt state: kept as .corrupt');
    $t->stop_nginx;
}
ok($t->error_log_contains(qr/the state file .* is corrupt \(it is empty\) and is ignored; it was kept as/),
   'an empty file is reported as corrupt');

# --- configuration errors ------------------------------------------------------------

sub conf_with {
    my ($http, $loc) = @_;
    return $t->config_preamble . "http {\n" . $t->http_preamble . $http . <<"EOF";
    ai_provider openai pass=/_ai/openai;
    server {
        listen 127.0.0.1:%%PORT%%;
        location /v1/ { ai_gateway; $loc }
    }
}
EOF
}

my @bad = (
    [ "ai_cost_zone c;\n", '', qr/invalid zone "c": ai_cost_zone takes NAME:SIZE/ ],
    [ "ai_cost_zone c:1m interval=1ms;\n", '', qr/invalid "interval=1ms"/ ],
    [ "ai_cost_zone c:1m colour=red;\n", '', qr/invalid parameter "colour=red"/ ],
    [ "ai_cost_zone c:1m;\n", 'ai_cost key=$remote_addr;', qr/"ai_cost" must have the "zone=" parameter/ ],
    [ "ai_cost_zone c:1m;\n", 'ai_cost zone=c budget=ten;', qr/invalid "budget=ten"/ ],
    [ "ai_cost_zone c:1m;\n", 'ai_cost zone=c budget=5/week;', qr/invalid "budget=5\/week"/ ],
    [ "ai_cost_zone c:1m;\n", 'ai_cost zone=c; ai_cost zone=c;', qr/"ai_cost" directive is duplicate/ ],
    [ "ai_cost_zone c:1m;\n    ai_rate_zone c:1m;\n", '', qr/already declared for a different use|duplicate/ ],
);
for my $b (@bad) {
    $t->write_config(conf_with($b->[0], $b->[1]));
    my ($rc, $out) = $t->nginx_test_config;
    isnt($rc, 0, "nginx -t fails: $b->[0]$b->[1]");
    like($out, $b->[2], "message: $b->[2]");
}

$t->done_testing_checks;
done_testing;
