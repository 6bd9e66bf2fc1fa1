#!/usr/bin/perl
# Observability (ai_status formats, ai_metrics_zone, variables): traffic
# of every kind through the mock (answers, fallbacks, 5xx, refusals by
# ai_rate and by a budget, streams with a time to first token, a fusion),
# then ?format=prometheus passes `promtool check metrics` and its numbers
# are those of ?format=json, which agree with the cost ledger; no raw key
# anywhere; the per-minute series; the dashboard loaded by headless
# Chromium draws its charts from the live data with no JavaScript error,
# and its screenshot is saved as t/artifacts/dashboard.png; the variables
# in a real JSON access log; 4,000 ledger entries filtered by zone, key,
# route and model and paged with limit and offset.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";

use Digest::SHA qw(sha256_hex);
use IO::Socket::INET;
use File::Path qw(make_path);
use File::Temp qw(tempdir);
use JSON::PP;
use POSIX qw(ceil);
use Test::More;
use Time::HiRes qw(time sleep);
use GatewayTest;

my $t = GatewayTest->new(name => 'observability');
plan skip_all => 'module not built' unless $t->has_module;

my $PROMTOOL = $ENV{AI_GW_PROMTOOL} || '/usr/bin/promtool';
my $CHROMIUM = $ENV{AI_GW_CHROMIUM} || '/usr/bin/chromium';

$t->start_mock(name => 'm1');

my $conf = $t->config_preamble . "http {\n" . $t->http_preamble . <<'EOF';
    log_format ai_json escape=json '{"status":$status,'
        '"model":"$ai_model","provider":"$ai_provider",'
        '"attempts":"$ai_attempts","prompt_tokens":"$ai_prompt_tokens",'
        '"completion_tokens":"$ai_completion_tokens","cost":"$ai_cost",'
        '"fusion_mode":"$ai_fusion_mode","ttft_ms":"$ai_ttft",'
        '"rate_status":"$ai_rate_status","uri":"$request_uri"}';
    access_log logs/ai.json ai_json;

    ai_provider openai type=openai pass=/_ai/openai key=sk-provider;
    ai_price openai/gpt-4o 2.50 10.00;
    ai_price openai/gpt-4o-mini 0.15 0.60;
    ai_price openai/gpt-4o-slow50 2.50 10.00;
    ai_price openai/x-status500 2.50 10.00;
    ai_price openai/alpha 1.00 2.00;
    ai_price openai/beta 1.00 2.00;
    ai_price openai/verdict 1.00 2.00;
    ai_price openai/gpt-4o-delay1500 2.50 10.00;
    ai_price openai/gpt-4o-slow300 2.50 10.00;

    ai_rate_zone rate:1m;
    ai_cost_zone cost:1m;
    ai_metrics_zone metrics:2m series=16;

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

        location /hedge/v1/ {
            ai_gateway;
            ai_cost zone=cost key=$http_authorization;
            ai_fallback openai/gpt-4o-delay1500 openai/gpt-4o hedge=200ms;
        }

        location /budget/v1/ {
            ai_gateway;
            ai_cost zone=cost key=$http_authorization budget=0.000001;
        }

        location "/fusion/v1/" {
            ai_gateway;
            ai_cost zone=cost key=$http_authorization;
            ai_pool openai/alpha openai/beta judge=openai/verdict mode=merge;
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

my $J = JSON::PP->new->canonical;

sub chat {
    my ($loc, $key, %o) = @_;
    my $body = { model => $o{model} // 'openai/gpt-4o',
                 messages => [{ role => 'user', content => $o{text} // 'Hello gateway' }] };
    return $t->post_json("$loc/chat/completions", $body,
        headers => { Authorization => "Bearer $key" });
}

sub prefix { substr(sha256_hex("Bearer $_[0]"), 0, 8) }

sub status_json { $t->get($_[0] // '/status')->{json} }

# the status once N requests are counted: a request is counted in the log
# phase, just after its answer went out (the client may ask first)
sub counted {
    my ($n) = @_;
    my $st;
    for (1 .. 100) {
        $st = status_json();
        last if $st->{metrics} && $st->{metrics}{totals}{requests} >= $n;
        sleep 0.05;
    }
    return $st;
}

# --- traffic ------------------------------------------------------------------

my %sent;    # status => count, for the totals

for my $i (1 .. 3) {
    my $r = chat('/v1', 'sk-alice', text => "question number $i");
    is($r->{status}, 200, "answer $i");
    $sent{200}++;
}

# a fallback: the first model fails with 500, the chain answers
my $r = chat('/v1', 'sk-bob', model => 'openai/x-status500');
is($r->{status}, 200, 'fallback: answered');
is($r->{headers}{'x-ai-model'}, 'openai/gpt-4o-mini', 'fallback: by the chain');
$sent{200}++;

# refusals by ai_rate: rpm=2 for this key
for my $i (1 .. 4) {
    my $x = chat('/limited/v1', 'sk-carol');
    $sent{$x->{status}}++;
    push @{ $sent{limited} }, $x->{status};
}
is_deeply([sort @{ $sent{limited} }], [200, 200, 429, 429], 'ai_rate: 2 answered, 2 refused');

# a budget refusal: the first request spends past it, the second is refused
$r = chat('/budget/v1', 'sk-dave');
is($r->{status}, 200, 'budget: the first passes');
$sent{200}++;
$r = chat('/budget/v1', 'sk-dave');
is($r->{status}, 402, 'budget: the second is refused');
$sent{402}++;

# streams: a time to the first token
for my $i (1 .. 2) {
    my $s = $t->stream('/v1/chat/completions',
        { model => 'openai/gpt-4o-slow50', stream => JSON::PP::true(),
          stream_options => { include_usage => JSON::PP::true() },
          messages => [{ role => 'user', content => "stream number $i" }] },
        headers => { Authorization => 'Bearer sk-alice' });
    ok($s->{done}, "stream $i complete");
    $sent{200}++;
}

# a fusion
$r = chat('/fusion/v1', 'sk-erin', model => 'fusion', text => 'fuse this');
is($r->{status}, 200, 'fusion: answered');
is($r->{json}{model}, 'fusion/merge', 'fusion: merge');
$sent{200}++;

# a hedge: the slow first call is stopped when the hedge answers
$r = chat('/hedge/v1', 'sk-frank', model => 'openai/gpt-4o-delay1500');
is($r->{status}, 200, 'hedge: answered');
is($r->{headers}{'x-ai-model'}, 'openai/gpt-4o', 'hedge: by the hedge');
$sent{200}++;

# a client that leaves in the middle of a stream: its call is charged as
# aborted in the log phase, before the metrics see it
my $body = JSON::PP->new->encode({ model => 'openai/gpt-4o-slow300', stream => JSON::PP::true(),
                                   messages => [{ role => 'user', content => 'one two three four five six' }] });
my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $t->port, Proto => 'tcp')
    or die "connect: $!";
print $sock "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
          . "Authorization: Bearer sk-leaver\r\nContent-Type: application/json\r\n"
          . "Content-Length: " . length($body) . "\r\n\r\n$body";
my $got = '';
while ($got !~ /data: /) {
    sysread($sock, $got, 4096, length $got) or last;
}
like($got, qr/^HTTP\/1\.1 200/, 'client gone: the stream started');
close $sock;
$sent{200}++;

# an invalid request: counted, with no model
$r = $t->post_json('/v1/chat/completions', { model => 'openai/gpt-4o' },
                   headers => { Authorization => 'Bearer sk-alice' });
is($r->{status}, 400, 'invalid request: 400');
$sent{400}++;

my $total = 0;
$total += $sent{$_} for grep { /^\d+$/ } keys %sent;

# --- JSON ------------------------------------------------------------------------

my $st = counted($total);
my $m = $st->{metrics};
ok($m, 'json: metrics') or BAIL_OUT('no metrics in ai_status');
is($m->{zone}, 'metrics', 'json: the zone');
is($m->{totals}{requests}, $total, "json: $total requests in all");
is($m->{totals}{status_2xx}, $sent{200}, 'json: 2xx');
is($m->{totals}{status_4xx}, $sent{400} + $sent{402} + $sent{429}, 'json: 4xx');
is($m->{totals}{rate_limited}, 2, 'json: rate_limited');
is($m->{totals}{budget_refused}, 1, 'json: budget_refused');
is($m->{totals}{fallbacks}, 1, 'json: one fallback');
is($m->{totals}{fusions}, 1, 'json: one fusion');
is($m->{totals}{ttft_ms}{count}, $sent{200}, 'json: a ttft for every answer');
is($m->{totals}{aborted}, $st->{totals}{aborted}, "json: aborted calls = the ledger's ($m->{totals}{aborted})");
is($m->{totals}{aborted}, 2, 'json: the hedge loser and the stream cut');
is($m->{totals}{estimated_cost_nano_usd}, $st->{totals}{estimated_cost_nano_usd},
   "json: their estimated cost = the ledger's");
is($m->{totals}{duration_ms}{count}, $total, 'json: a duration for every request');

my ($zone) = grep { $_->{type} eq 'metrics' } @{ $st->{zones} };
ok($zone && $zone->{zone} eq 'metrics' && $zone->{size} == 2 * 1024 * 1024,
   'json: the zone in "zones"') or diag explain $st->{zones};

# requests by (route, model, status)
my %req = map { ("$_->{route}|" . ($_->{model} // '') . "|$_->{status}") => $_ }
          @{ $m->{requests} };
is($req{'/v1/|openai/gpt-4o|200'}{requests}, 3, 'json: requests by route, model, status');
is($req{'/v1/|openai/gpt-4o-mini|200'}{requests}, 1, 'json: the fallback under the model that answered');
is($req{'/limited/v1/|openai/gpt-4o|429'}{requests}, 2, 'json: refusals under the model asked for');
is($req{'/budget/v1/|openai/gpt-4o|402'}{requests}, 1, 'json: the budget refusal');
is($req{'/fusion/v1/|fusion/merge|200'}{requests}, 1, 'json: fusion under its pool');
is($req{'/v1/||400'}{requests}, 1, 'json: an invalid request, without a model');
is($req{'/v1/||400'}{provider}, undef, 'json: ... and without a provider');
is($req{'/v1/|openai/gpt-4o-slow50|200'}{ttft_ms}{count}, 2, 'json: ttft of the streams');

my %calls = map { ("$_->{route}|$_->{model}") => $_ } @{ $m->{calls} };
is($calls{'/v1/|openai/x-status500'}{errors}, 1, 'json: the failed call');
is($calls{'/v1/|openai/x-status500'}{fallbacks}, 1, 'json: ... fallen back from');
is($calls{'/fusion/v1/|openai/verdict'}{calls}, 1, 'json: the judge call');

my %ref = map { ("$_->{route}|$_->{limit}") => $_->{requests} } @{ $m->{refusals} };
is_deeply(\%ref, { '/limited/v1/|rate' => 2, '/budget/v1/|budget' => 1 }, 'json: refusals');

is_deeply([map { [$_->{route}, $_->{mode}, $_->{judge_status}, $_->{requests}] } @{ $m->{fusion} }],
          [['/fusion/v1/', 'merge', 'ok', 1]], 'json: fusion outcomes');

# the metrics agree with the ledger (every route here has ai_cost)
my %sum;
for my $c (@{ $m->{calls} }) {
    $sum{$_} += $c->{$_} for qw(calls errors input_tokens output_tokens cost_nano_usd);
}
is($sum{cost_nano_usd}, $st->{totals}{cost_nano_usd}, "json: cost = the ledger's ($sum{cost_nano_usd} nano-USD)");
is($sum{input_tokens}, $st->{totals}{input_tokens}, 'json: input tokens = the ledger\'s');
is($sum{output_tokens}, $st->{totals}{output_tokens}, 'json: output tokens = the ledger\'s');
is($sum{calls}, $st->{totals}{requests}, 'json: calls = the ledger\'s');
is($sum{errors}, $st->{totals}{errors}, 'json: call errors = the ledger\'s');
is($m->{totals}{cost_nano_usd}, $sum{cost_nano_usd}, 'json: totals = the sum of the entries');

# per key (digests), the series' cumulative figures
my %keys = map { ($_->{key} => $_) } @{ $m->{keys} };
is($keys{prefix('sk-alice')}{requests}, 6, 'json: requests of a key (its digest)');
my ($alice) = grep { defined $_->{key} && $_->{key} eq prefix('sk-alice') && $_->{model} eq 'openai/gpt-4o' }
              @{ $st->{ledger} };
ok($alice, 'ledger entry of the key');

# latency percentiles: ordered, within the histogram
my $d = $m->{totals}{duration_ms};
ok($d->{p50} <= $d->{p90} && $d->{p90} <= $d->{p99}, "json: p50 $d->{p50} <= p90 $d->{p90} <= p99 $d->{p99}");

# --- the series ------------------------------------------------------------------

my $se = status_json('/status?format=json&series=1&minutes=5')->{series};
ok($se, 'series: present with series=1');
is($se->{minutes}, 5, 'series: 5 minutes');
is($se->{step}, 60, 'series: per minute');
is(scalar @{ $se->{totals}{requests} }, 5, 'series: 5 slots');
my $now_minute = int(time / 60) * 60;
ok($se->{start} == $now_minute - 240 || $se->{start} == $now_minute - 180,
   'series: ends with the current minute');
my $sr = 0;
$sr += $_ for @{ $se->{totals}{requests} };
is($sr, $total + 0, "series: every request in the last minutes ($sr)");
my $sc = 0;
$sc += $_ for @{ $se->{totals}{cost_nano_usd} };
is($sc, $m->{totals}{cost_nano_usd}, 'series: the cost');
my ($sk) = grep { $_->{key} eq prefix('sk-alice') } @{ $se->{keys} };
ok($sk, 'series: per key digest');
my ($smodel) = grep { $_->{model} eq 'openai/gpt-4o' } @{ $se->{models} };
ok($smodel, 'series: per model');
my ($sroute) = grep { $_->{route} eq '/fusion/v1/' } @{ $se->{routes} };
ok($sroute, 'series: per route');
ok(!exists status_json()->{series}, 'series: not without series=1');

# --- Prometheus -----------------------------------------------------------------

my $p = $t->get('/status?format=prometheus');
is($p->{status}, 200, 'prometheus: 200');
like($p->{headers}{'content-type'}, qr{^text/plain; version=0\.0\.4}, 'prometheus: its content type');
my $prom = $p->{content};
make_path("$FindBin::Bin/artifacts");
$t->write_file("$FindBin::Bin/artifacts/metrics.prom", $prom);

SKIP: {
    skip "promtool not found at $PROMTOOL (Debian package prometheus)", 2
        unless -x $PROMTOOL;
    my $file = $t->prefix . '/metrics.prom';
    $t->write_file($file, $prom);
    my $out = `$PROMTOOL check metrics < '$file' 2>&1`;
    is($?, 0, 'promtool check metrics: passes') or diag $out;
    is($out, '', 'promtool check metrics: no lint') or diag $out;
}

# parse the exposition
my (%samples, %types, %help);
for my $line (split /\n/, $prom) {
    if ($line =~ /^# TYPE (\S+) (\S+)$/) { $types{$1} = $2; next }
    if ($line =~ /^# HELP (\S+) (.+)$/) { $help{$1} = $2; next }
    next if $line =~ /^#/ || $line eq '';
    my ($name, $labels, $value) = $line =~ /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/
        or do { fail("prometheus: a sample line: $line"); next };
    my %l;
    while (($labels // '') =~ /\G([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)",?/gc) {
        my ($k, $v) = ($1, $2);
        $v =~ s/\\(.)/$1 eq 'n' ? "\n" : $1/ge;
        $l{$k} = $v;
    }
    push @{ $samples{$name} }, { labels => \%l, value => $value };
}

for my $name (qw(ai_gateway_requests_total ai_gateway_tokens_total
                 ai_gateway_cost_usd_total ai_gateway_fallbacks_total
                 ai_gateway_rate_limited_total)) {
    is($types{$name}, 'counter', "prometheus: $name is a counter");
    ok($help{$name}, "prometheus: $name has HELP");
}
for my $name (qw(ai_gateway_request_duration_seconds ai_gateway_ttft_seconds)) {
    is($types{$name}, 'histogram', "prometheus: $name is a histogram");
}

sub prom {
    my ($name, %want) = @_;
    my $sum = 0;
    S: for my $s (@{ $samples{$name} || [] }) {
        for my $k (keys %want) {
            next S unless defined $s->{labels}{$k} && $s->{labels}{$k} eq $want{$k};
        }
        $sum += $s->{value};
    }
    return $sum;
}

sub nano_usd { sprintf '%d.%09d', int($_[0] / 1e9), $_[0] % 1e9 }

# every figure of the JSON, in the exposition
my $mismatch = 0;
for my $e (@{ $m->{requests} }) {
    my %l = (route => $e->{route}, model => $e->{model} // '', status => $e->{status});
    $mismatch++, diag("requests_total @{[%l]}") if prom('ai_gateway_requests_total', %l) != $e->{requests};
    my @b = @{ $e->{duration_ms}{buckets} };
    my $cum = 0;
    my @le = qw(0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 5 10 30 60 120 +Inf);
    for my $i (0 .. $#le) {
        $cum += $b[$i];
        $mismatch++, diag("bucket $le[$i] @{[%l]}")
            if prom('ai_gateway_request_duration_seconds_bucket', %l, le => $le[$i]) != $cum;
    }
    $mismatch++ if prom('ai_gateway_request_duration_seconds_count', %l) != $e->{duration_ms}{count};
    $mismatch++, diag("sum @{[%l]}")
        if abs(prom('ai_gateway_request_duration_seconds_sum', %l) - $e->{duration_ms}{sum} / 1000) > 1e-9;
    if ($e->{ttft_ms}{count}) {
        $mismatch++ if prom('ai_gateway_ttft_seconds_count', %l) != $e->{ttft_ms}{count};
        $mismatch++ if abs(prom('ai_gateway_ttft_seconds_sum', %l) - $e->{ttft_ms}{sum} / 1000) > 1e-9;
    }
}
for my $c (@{ $m->{calls} }) {
    my %l = (route => $c->{route}, model => $c->{model}, provider => $c->{provider});
    $mismatch++, diag("tokens @{[%l]}")
        if prom('ai_gateway_tokens_total', %l, type => 'input') != $c->{input_tokens}
        || prom('ai_gateway_tokens_total', %l, type => 'output') != $c->{output_tokens};
    my ($cost) = map { $_->{value} } grep { $_->{labels}{route} eq $c->{route} && $_->{labels}{model} eq $c->{model} }
                 @{ $samples{ai_gateway_cost_usd_total} };
    $mismatch++, diag("cost @{[%l]}: $cost") if ($cost // '') ne nano_usd($c->{cost_nano_usd});
    $mismatch++ if prom('ai_gateway_fallbacks_total', %l) != $c->{fallbacks};
    $mismatch++ if prom('ai_gateway_provider_calls_total', %l, outcome => 'error') != $c->{errors};
    $mismatch++ if prom('ai_gateway_provider_calls_total', %l, outcome => 'ok') != $c->{calls} - $c->{errors};
}
for my $f (@{ $m->{refusals} }) {
    $mismatch++ if prom('ai_gateway_rate_limited_total', route => $f->{route}, limit => $f->{limit})
                   != $f->{requests};
}
for my $f (@{ $m->{fusion} }) {
    $mismatch++ if prom('ai_gateway_fusion_total', mode => $f->{mode}, judge_status => $f->{judge_status})
                   != $f->{requests};
}
is($mismatch, 0, 'prometheus: every number matches the JSON');

is(prom('ai_gateway_requests_total'), $total, 'prometheus: requests in all');
is(prom('ai_gateway_rate_limited_total', limit => 'rate'), 2, 'prometheus: rate-limited');
is(prom('ai_gateway_fallbacks_total'), 1, 'prometheus: fallbacks');
is(prom('ai_gateway_requests_total', provider => 'openai', status => 200), $sent{200} - 1,
   'prometheus: provider label');
my ($rl) = grep { $_->{labels}{key} eq prefix('sk-carol') && $_->{labels}{type} eq 'requests' }
           @{ $samples{ai_gateway_rate_limit} || [] };
is($rl && $rl->{value}, 2, 'prometheus: rate limit by key digest');
my ($rr) = grep { $_->{labels}{key} eq prefix('sk-carol') && $_->{labels}{type} eq 'requests' }
           @{ $samples{ai_gateway_rate_remaining} || [] };
my ($jr) = grep { defined $_->{key} && $_->{key} eq prefix('sk-carol') } @{ $st->{rate} };
ok($rr && $jr && $rr->{value} <= $jr->{rpm_remaining} + 1, 'prometheus: rate headroom');
is(prom('ai_gateway_breaker_state', model => 'openai/x-status500', state => 'closed'), 1,
   'prometheus: breaker state');

# --- no raw key anywhere ---------------------------------------------------------

my $json_text = $t->get('/status?format=json&series=1&minutes=1440')->{content};
$t->write_file("$FindBin::Bin/artifacts/status.json",
               $t->get('/status?format=json&series=1&minutes=5')->{content});
for my $key (qw(sk-alice sk-bob sk-carol sk-dave sk-erin sk-provider)) {
    unlike($prom, qr/\Q$key\E/, "prometheus: no $key");
    unlike($json_text, qr/\Q$key\E/, "json: no $key");
}

# --- formats -----------------------------------------------------------------

$r = $t->get('/status?format=xml');
is($r->{status}, 400, 'format=xml: 400');
like($r->{content}, qr/format=prometheus/, 'format=xml: names the formats');
$r = $t->request('POST', '/status', body => '{}');
is($r->{status}, 405, 'POST: 405');

my $h = $t->get('/status?format=html');
is($h->{status}, 200, 'html: 200');
like($h->{headers}{'content-type'}, qr{^text/html}, 'html: text/html');
like($h->{headers}{'content-security-policy'} // '', qr/default-src 'none'/, 'html: a CSP that forbids other origins');
unlike($h->{content}, qr{(?:src|href)\s*=\s*["']?(?:https?:)?//}i, 'html: nothing from elsewhere');
like($h->{content}, qr{<canvas}, 'html: canvas charts');

# the header made from the page is up to date
my $gen = `perl '$GatewayTest::ROOT/ngx_ai_gateway_module/dashboard/embed.pl' --stdout`;
is($gen, $t->read_file("$GatewayTest::ROOT/ngx_ai_gateway_module/ngx_ai_gateway_dashboard.h"),
   'ngx_ai_gateway_dashboard.h is generated from dashboard.html (run dashboard/embed.pl)');

# --- the dashboard in a browser ----------------------------------------------------

SKIP: {
    skip "chromium not found at $CHROMIUM (Debian package chromium)", 9
        unless -x $CHROMIUM;

    my @chrome = ($CHROMIUM, qw(--headless --no-sandbox --disable-gpu --disable-quic
                  --no-first-run --disable-background-networking
                  --disable-component-update --disable-sync
                  --disable-dev-shm-usage --hide-scrollbars --mute-audio));
    my $url = $t->base_url . '/status?format=html';

    my $profile = tempdir(CLEANUP => 1);
    my $dom = run_chrome(@chrome, "--user-data-dir=$profile",
                         '--virtual-time-budget=8000', '--dump-dom', $url);
    my %attr;
    if ($dom =~ /<body([^>]*)>/) {
        my $b = $1;
        $attr{$1} = $2 while $b =~ /([\w-]+)="([^"]*)"/g;
    }
    ok(($attr{'data-updates'} // 0) >= 1, "dashboard: fetched live data ($attr{'data-updates'} updates)")
        or diag substr($dom, 0, 3000);
    is($attr{'data-charts'}, 9, 'dashboard: 9 charts drawn');
    ok(($attr{'data-points'} // 0) > 0, "dashboard: $attr{'data-points'} points drawn");
    is($attr{'data-requests'}, status_json()->{metrics}{totals}{requests} - 0,
       'dashboard: drew the live totals');
    is($attr{'data-errors'}, '0', 'dashboard: no JavaScript error');
    my ($errors) = $dom =~ m{<pre id="errors">(.*?)</pre>}s;
    is($errors, '', 'dashboard: nothing in its error box') or diag $errors;
    my ($canvas) = $dom =~ m{(<canvas[^>]*id="c-cost-key"[^>]*>)};
    like($canvas // '', qr{data-points="[1-9]}, 'dashboard: spend by key has points')
        or diag $canvas;

    my $shot = "$FindBin::Bin/artifacts/dashboard.png";
    unlink $shot;
    $profile = tempdir(CLEANUP => 1);
    run_chrome(@chrome, "--user-data-dir=$profile", '--virtual-time-budget=8000',
               "--screenshot=$shot", '--window-size=1400,1000', $url);
    ok(-s $shot, "dashboard: screenshot saved as t/artifacts/dashboard.png");
    my $png = -s $shot ? $t->read_file($shot) : '';
    ok(substr($png, 0, 8) eq "\x89PNG\r\n\x1a\n", 'dashboard: a PNG');
}

sub run_chrome {
    my @cmd = @_;
    unshift @cmd, 'timeout', '120' if -x '/usr/bin/timeout';
    my $pid = open(my $fh, '-|');
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        open STDERR, '>', '/dev/null';
        exec @cmd or exit 127;
    }
    local $/;
    my $out = <$fh>;
    close $fh;
    return $out // '';
}

# --- variables in the access log -----------------------------------------------------

my @log;
for (1 .. 50) {
    @log = map { $J->decode($_) } grep { /\S/ } split /\n/, $t->read_file('logs/ai.json');
    last if grep { $_->{uri} =~ /fusion/ } @log;
    sleep 0.1;
}
my @fb = grep { $_->{model} eq 'openai/gpt-4o-mini' } @log;
is(scalar @fb, 1, 'log: the fallback');
is($fb[0]{attempts}, '2', 'log: $ai_attempts');
is($fb[0]{provider}, 'openai', 'log: $ai_provider');
ok($fb[0]{prompt_tokens} > 0 && $fb[0]{completion_tokens} > 0, 'log: tokens');
like($fb[0]{cost}, qr/^\d+\.\d{6}$/, 'log: $ai_cost');
my ($fu) = grep { $_->{uri} =~ /fusion/ } @log;
is($fu->{fusion_mode}, 'merge', 'log: $ai_fusion_mode');
is($fb[0]{fusion_mode}, '', 'log: $ai_fusion_mode empty without fusion');
my @lim = grep { $_->{uri} =~ m{^/limited/} } @log;
is_deeply([sort map { $_->{rate_status} } @lim], [qw(PASSED PASSED REJECTED REJECTED)],
          'log: $ai_rate_status');
my @st = grep { $_->{model} eq 'openai/gpt-4o-slow50' } @log;
is(scalar @st, 2, 'log: the streams');
like($st[0]{ttft_ms}, qr/^\d+$/, 'log: $ai_ttft');
ok(scalar(@log) >= $total, 'log: a line per request');
$t->write_file("$FindBin::Bin/artifacts/access.json", $t->read_file('logs/ai.json'));

# --- ai_metrics_zone off, reload keeps the zone ------------------------------------

my $before = status_json()->{metrics}{totals}{requests};
$t->reload;
chat('/v1', 'sk-alice');
is(counted($before + 1)->{metrics}{totals}{requests}, $before + 1, 'reload: the zone is kept');

(my $off = $conf) =~ s/ai_metrics_zone metrics:2m series=16;/ai_metrics_zone off;/;
$t->write_config($off);
$t->reload;
is(status_json()->{metrics}, undef, 'ai_metrics_zone off: metrics null');
$p = $t->get('/status?format=prometheus');
like($p->{content}, qr/^ai_gateway_info\{version="0\.1\.0"\} 1$/m, 'off: prometheus still serves');
unlike($p->{content}, qr/ai_gateway_requests_total/, 'off: without the zone\'s families');

(my $default = $conf) =~ s/ai_metrics_zone metrics:2m series=16;//;
$t->write_config($default);
$t->reload;
chat('/v1', 'sk-alice');
my $dz = counted(1)->{metrics};
is($dz->{zone}, 'ai_gateway_metrics', 'default: a zone where ai_status is');
is($dz->{totals}{requests}, 1, 'default: counting');

# --- no cost or rate zone: the metrics zone alone in "zones" ----------------------

$t->write_config($t->config_preamble . "http {\n" . $t->http_preamble . <<'EOF');
    ai_provider openai type=openai pass=/_ai/openai key=sk-provider;
    server {
        listen 127.0.0.1:%%PORT%%;
        location /v1/ { ai_gateway; }
        location = /status { ai_status; }
        location /_ai/openai/ { internal; proxy_pass http://127.0.0.1:%%MOCK_PORT_m1%%/; }
    }
}
EOF
$t->reload;
chat('/v1', 'sk-alice');
my $alone = counted(2);
is_deeply([map { $_->{zone} } @{ $alone->{zones} || [] }], ['ai_gateway_metrics'],
          'alone: the metrics zone in "zones"');
is_deeply($alone->{metrics}{keys}, $dz->{keys},
          'alone: the zone kept across the reload; no key without ai_cost or ai_rate key=');
like($t->get('/status?format=prometheus')->{content}, qr/^ai_gateway_requests_total\{route="\/v1\/"/m,
     'alone: prometheus');

# --- ?zone= ?key= ?route= ?model= ?limit= ?offset=: 4,000 ledger entries -----------

# a provider that is a static answer of nginx's own: 4,000 calls cost no
# mock process
my $sport = $t->free_port;
$t->write_config($t->config_preamble . "http {\n" . $t->http_preamble . <<"EOF");
    ai_provider stat type=openai pass=/_ai/stat key=sk-stat;
    ai_price stat/a 1.00 2.00;
    ai_price stat/b 1.00 2.00;
    ai_rate_zone prate:4m;
    ai_cost_zone pages:4m;
    ai_cost_zone pages2:1m;
    server {
        listen 127.0.0.1:%%PORT%%;
        location /p/v1/ {
            ai_gateway;
            ai_rate zone=prate key=\$http_authorization rpm=1000000;
            ai_cost zone=pages key=\$http_authorization budget=1000;
        }
        location /q/v1/ { ai_gateway; ai_cost zone=pages2 key=\$http_authorization; }
        location = /status { ai_status; }
        location /_ai/stat/ { internal; proxy_pass http://127.0.0.1:$sport/; }
    }
    server {
        listen 127.0.0.1:$sport;
        access_log off;
        location / {
            default_type application/json;
            return 200 '{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"a","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}';
        }
    }
}
EOF
$t->reload;

my $NKEYS = 2000;

# one curl for all the calls: one kept-alive connection, no Nagle delay
my $cfg = $t->prefix . '/curl-pages.cfg';
open my $cf, '>', $cfg or die "$cfg: $!";
my @calls = ((map { my $i = $_; map { ['/p/v1', "sk-page-$i", $_] } 'stat/a', 'stat/b' }
              1 .. $NKEYS),
             map { ['/q/v1', "sk-q-$_", 'stat/a'] } 1 .. 5);
for my $c (@calls) {
    print $cf join "\n",
        'url = "' . $t->base_url . "$c->[0]/chat/completions\"",
        'header = "Content-Type: application/json"',
        "header = \"Authorization: Bearer $c->[1]\"",
        "data = \"{\\\"model\\\":\\\"$c->[2]\\\",\\\"messages\\\":[{\\\"role\\\":"
        . "\\\"user\\\",\\\"content\\\":\\\"hi\\\"}]}\"",
        'output = "/dev/null"', 'write-out = "%{http_code}\\n"', "next\n";
}
close $cf;
my @codes = split /\n/, `curl -s -K $cfg`;
my $failed = grep { $_ ne '200' } @codes;
$failed += @calls - @codes;
is($failed, 0, '4,005 calls answered');

my $full_r = $t->get('/status');
my $full = $full_r->{json};
is(scalar @{ $full->{ledger} }, 2 * $NKEYS + 5, 'no parameters: every ledger entry');
ok(!exists $full->{page}, 'no parameters: no "page" object');
is(scalar @{ $full->{rate} }, $NKEYS, 'no parameters: every rate entry');
my $NSPEND = scalar @{ $full->{spend} };
is($NSPEND, $NKEYS + 5, 'no parameters: every spend entry (each key an account)');
diag(sprintf 'ai_status with %d ledger entries: %d bytes',
             scalar @{ $full->{ledger} }, length $full_r->{content});
my @czones = grep { ($_->{type} // '') eq 'cost' } @{ $full->{zones} };
is_deeply([map { $_->{evicted} } @czones], [0, 0], 'nothing evicted');

sub ids { [sort map { join '|', map { $_ // '-' } @$_{qw(zone key route model)} } @{ $_[0] }] }

# pages of 1,000 give every entry exactly once, and say how many there are
my (%seen_ledger, %seen_rate, %seen_spend, $max_bytes);
for (my $off = 0; $off < 2 * $NKEYS + 5; $off += 1000) {
    my $pr = $t->get("/status?limit=1000&offset=$off");
    my $j = $pr->{json};
    $max_bytes = length $pr->{content} if length $pr->{content} > ($max_bytes // 0);
    is_deeply($j->{page}, { limit => 1000, offset => $off,
                            ledger_total => 2 * $NKEYS + 5, spend_total => $NSPEND,
                            rate_total => $NKEYS }, "page at $off: the page object");
    ok(@{ $j->{ledger} } <= 1000 && @{ $j->{rate} } <= 1000 && @{ $j->{spend} } <= 1000,
       "page at $off: at most 1,000 of each");
    is_deeply($j->{totals}, $full->{totals}, "page at $off: the zone totals, unfiltered");
    $seen_ledger{$_}++ for @{ ids($j->{ledger}) };
    $seen_rate{$_}++ for @{ ids($j->{rate}) };
    $seen_spend{$_}++ for @{ ids($j->{spend}) };
}
is_deeply([sort keys %seen_ledger], ids($full->{ledger}), 'pages: every ledger entry');
is_deeply([grep { $seen_ledger{$_} != 1 } keys %seen_ledger], [], 'pages: each once');
is_deeply([sort keys %seen_rate], ids($full->{rate}), 'pages: every rate entry');
is_deeply([sort keys %seen_spend], ids($full->{spend}), 'pages: every spend entry');
ok($max_bytes < 3 * 1000 * 400 + 30_000, "pages: at most $max_bytes bytes each");

my $pg = $t->get('/status?limit=10');
ok(length $pg->{content} < 3 * 10 * 400 + 30_000,
   'limit=10: ' . length($pg->{content}) . ' bytes');
is(scalar @{ $pg->{json}{ledger} }, 10, 'limit=10: 10 ledger entries');
$pg = $t->get('/status?limit=0')->{json};
is_deeply([scalar @{ $pg->{ledger} }, $pg->{page}{ledger_total}], [0, 2 * $NKEYS + 5],
          'limit=0: only the counts');
$pg = $t->get('/status?offset=4000')->{json};
is_deeply([scalar @{ $pg->{ledger} }, $pg->{page}{limit}, scalar @{ $pg->{rate} }],
          [5, undef, 0], 'offset alone: the rest, no limit');

# filters
$pg = $t->get('/status?zone=pages2')->{json};
is_deeply([map { $_->{zone} } @{ $pg->{ledger} }], [('pages2') x 5], 'zone=pages2: its ledger');
is_deeply([scalar @{ $pg->{rate} }, $pg->{page}{spend_total}, $pg->{page}{ledger_total}],
          [0, 5, 5], 'zone=pages2: no rate or spend entry of another zone');
ok(!grep({ $_->{zone} ne 'pages2' } @{ $pg->{spend} }), 'zone=pages2: its spend');
is_deeply([map { $_->{zone} } @{ $t->get('/status?zone=prate&limit=3')->{json}{rate} }],
          [('prate') x 3], 'zone=prate: rate entries');

my $k77 = sha256_hex('Bearer sk-page-77');
for my $want (substr($k77, 0, 8), $k77, uc substr($k77, 0, 12)) {
    $pg = $t->get("/status?key=$want")->{json};
    is_deeply([sort map { $_->{model} } @{ $pg->{ledger} }], ['stat/a', 'stat/b'],
              'key of ' . length($want) . ' digits: the key\'s ledger entries');
    is_deeply([map { $_->{key} } @{ $pg->{rate} }, @{ $pg->{spend} }],
              [substr($k77, 0, 8), substr($k77, 0, 8)],
              'key of ' . length($want) . ' digits: its rate and spend entries');
}
$pg = $t->get('/status?key=' . substr($k77, 0, 1))->{json};
ok($pg->{page}{ledger_total} > 0
   && !grep({ substr($_->{key} // '', 0, 1) ne substr($k77, 0, 1) } @{ $pg->{ledger} }),
   'key of 1 digit: only keys with that first digit');

$pg = $t->get('/status?route=/q/v1/')->{json};
is_deeply([map { $_->{route} } @{ $pg->{ledger} }], [('/q/v1/') x 5], 'route=/q/v1/');
is($t->get('/status?route=%2Fq%2Fv1%2F')->{json}{page}{ledger_total}, 5, 'route %-encoded');
is($t->get('/status?route=/q/v1')->{json}{page}{ledger_total}, 0, 'route: exact only');
$pg = $t->get('/status?model=stat/b')->{json};
is_deeply([$pg->{page}{ledger_total}, scalar @{ $pg->{spend} }, scalar @{ $pg->{rate} }],
          [$NKEYS, 0, 0], 'model=stat/b: ledger entries only (spend and rate have no model)');
ok(!grep({ $_->{model} ne 'stat/b' } @{ $pg->{ledger} }), 'model=stat/b: only that model');
$pg = $t->get('/status?zone=pages&model=stat/a&route=/p/v1/&limit=7&offset=3')->{json};
is_deeply([scalar @{ $pg->{ledger} }, $pg->{page}{ledger_total}, $pg->{page}{offset}],
          [7, $NKEYS, 3], 'filters together, paged');

# bad values: 400 naming the parameter
for my $bad (['key=xyz', 'key'], ['key=', 'key'], ['key=' . ('a' x 65), 'key'],
             ['limit=-1', 'limit'], ['limit=100001', 'limit'], ['limit=ten', 'limit'],
             ['offset=-3', 'offset'], ['offset=1e3', 'offset'], ['zone=nope', 'zone'],
             ['zone=', 'zone'], ['route=', 'route'], ['model=%zz', 'model']) {
    my $br = $t->get("/status?$bad->[0]");
    is($br->{status}, 400, "$bad->[0]: 400");
    is($br->{json} && $br->{json}{error}{param}, $bad->[1], "$bad->[0]: names $bad->[1]");
    is($br->{json} && $br->{json}{error}{code}, 'invalid_value', "$bad->[0]: invalid_value");
}
is($t->get('/status?limit=100000')->{status}, 200, 'limit=100000: the largest');

# the other formats ignore them
$pg = $t->get('/status?format=prometheus&limit=ten&zone=nope');
is($pg->{status}, 200, 'prometheus: the parameters ignored');
like($pg->{content}, qr/^ai_gateway_requests_total\{route="\/p\/v1\/"/m, 'prometheus: whole');
is($t->get('/status?format=html&limit=ten')->{status}, 200, 'html: the parameters ignored');

# --- configuration errors ------------------------------------------------------

for my $b (['ai_metrics_zone metrics;', qr/invalid zone "metrics"/],
           ['ai_metrics_zone metrics:100k;', qr/too small: at least 1m/],
           ['ai_metrics_zone metrics:1m series=x;', qr/invalid "series=x"/],
           ['ai_metrics_zone metrics:1m color=red;', qr/invalid parameter "color=red"/],
           ['ai_metrics_zone off off;', qr/takes no parameters with "off"/],
           ["ai_metrics_zone a:1m;\n    ai_metrics_zone b:1m;", qr/is duplicate/],
           ['ai_metrics_zone rate:1m;', qr/already declared|different use/]) {
    (my $bad = $conf) =~ s/ai_metrics_zone metrics:2m series=16;/$b->[0]/;
    $t->write_config($bad);
    my ($rc, $out) = $t->nginx_test_config;
    isnt($rc, 0, "nginx -t fails: $b->[0]");
    like($out, $b->[1], "message: $b->[1]") or diag $out;
}
$t->write_config($conf);

$t->done_testing_checks;
done_testing;
