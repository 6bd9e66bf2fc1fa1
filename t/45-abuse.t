#!/usr/bin/perl
# Hostile clients against limits and budgets (issue #14, points 2, 3, 8, 9):
# a "models" list is bounded, a request makes at most ai_max_attempts
# calls and every call counts against rpm and the budget; the estimate
# prices the costliest model of the plan and counts "n"; unpriced models
# are refused where a budget applies, priced by family or by ai_unpriced
# default=, and counted under one label; answers without usage are charged
# the estimate; streams a client cuts are charged what was relayed; an
# empty key is refused, shared or allowed as configured; a provider's
# absurd Retry-After is capped.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";

use Digest::SHA qw(sha256_hex);
use IO::Socket::INET;
use Test::More;
use Time::HiRes qw(time sleep);
use GatewayTest;

my $t = GatewayTest->new(name => 'abuse');
plan skip_all => 'module not built' unless $t->has_module;

$t->start_mock(name => 'm1');

$t->write_config($t->config_preamble . "http {\n" . $t->http_preamble . <<'EOF');
    ai_provider openai type=openai pass=/_ai/openai key=sk-provider;
    ai_provider google type=gemini pass=/_ai/google key=g-provider;

    ai_price openai/pricey-delay500 1000 1000;
    ai_price openai/pricey 1000 1000;
    ai_price openai/pricey-nousage 1000 1000;
    ai_price openai/pricey-badusage 1000 1000;
    ai_price openai/pricey-nousage-delay1500 1000 1000;
    ai_price openai/pricey-slow150 1000 1000;
    ai_price openai/fam* 1000 1000;
    ai_price openai/fam-special* 1 1;

    ai_rate_zone rl:1m;
    ai_cost_zone cz:1m;

    server {
        listen 127.0.0.1:%%PORT%%;

        location /v1/ {
            ai_gateway;
            ai_cost zone=cz key=$http_x_tenant;
        }

        location /att/v1/ {
            ai_gateway;
            ai_max_attempts 4;
            ai_max_models 16;
        }

        location /rl/v1/ {
            ai_gateway;
            ai_rate zone=rl key=$http_authorization rpm=3;
        }

        location /shared/v1/ {
            ai_gateway;
            ai_rate zone=rl key=$http_authorization rpm=2 empty=shared;
        }

        location /open/v1/ {
            ai_gateway;
            ai_rate zone=rl key=$http_authorization rpm=2 empty=allow;
        }

        location /fu/v1/ {
            ai_gateway;
            ai_pool openai/a openai/b openai/c judge=openai/judge mode=merge;
            ai_rate zone=rl key=$http_authorization rpm=2;
        }

        location /bud/v1/ {
            ai_gateway;
            ai_cost zone=cz key=$http_x_tenant budget=0.05;
        }

        location /budfree/v1/ {
            ai_gateway;
            ai_unpriced free;
            ai_cost zone=cz key=$http_x_tenant budget=0.05;
        }

        location /buddef/v1/ {
            ai_gateway;
            ai_unpriced default=1000,1000;
            ai_cost zone=cz key=$http_x_tenant budget=1;
        }

        location = /status { ai_status; }

        location /_ai/openai/ {
            internal;
            proxy_pass http://127.0.0.1:%%MOCK_PORT_m1%%/;
            proxy_buffering off;
        }

        location /_ai/google/ {
            internal;
            proxy_pass http://127.0.0.1:%%MOCK_PORT_m1%%/;
        }
    }
}
EOF
$t->start_nginx;

my @hi = (messages => [{ role => 'user', content => 'hi' }]);

sub calls { scalar @{ $t->mock_records('m1') } }

sub ledger {
    my ($route, $model, $key) = @_;
    my $s = $t->get('/status')->{json} or return undef;
    for my $e (@{ $s->{ledger} || [] }) {
        next unless $e->{route} eq $route && $e->{model} eq $model;
        next if defined $key && $e->{key} ne $key;
        return $e;
    }
    return undef;
}

# ---- "models" and attempts (point 2) ----

{
    $t->clear_records('m1');
    my @models = map { "openai/s$_-status500" } 1 .. 9;
    my $r = $t->post_json('/v1/chat/completions',
                          { model => 'openai/x-status500', models => \@models, @hi });
    is($r->{status}, 400, 'models: 9 entries over the default 8: 400');
    is($r->{json}{error}{code}, 'too_many_models', 'models: code too_many_models');
    like($r->{json}{error}{message}, qr/at most 8/, 'models: the message names the bound');
    is(calls(), 0, 'models: no provider call for a refused list');

    $t->clear_records('m1');
    pop @models;
    $r = $t->post_json('/v1/chat/completions',
                       { model => 'openai/x-status500', models => \@models, @hi });
    is($r->{status}, 502, 'models: 8 failing entries are tried');
    is(calls(), 9, 'models: the model and its 8 alternatives, 9 calls');

    $t->clear_records('m1');
    $r = $t->post_json('/att/v1/chat/completions',
                       { model => 'openai/x-status500', models => \@models, @hi });
    is($r->{status}, 502, 'ai_max_attempts 4: the request fails with what it has');
    is(calls(), 4, 'ai_max_attempts 4: exactly 4 provider calls');
    is($r->{headers}{'x-ai-attempts'}, 4, 'ai_max_attempts 4: X-AI-Attempts 4');
    like($r->{json}{error}{message}, qr/ai_max_attempts/, 'ai_max_attempts: named in the error');
}

{
    # every call counts against rpm: a chain of failing models stops at 3
    $t->clear_records('m1');
    my @models = map { "openai/r$_-status500" } 1 .. 6;
    my $r = $t->post_json('/rl/v1/chat/completions',
                          { model => 'openai/r0-status500', models => \@models, @hi },
                          headers => { Authorization => 'Bearer amp-1' });
    is($r->{status}, 429, 'rpm=3: the fourth call of a request is refused: 429');
    is(calls(), 3, 'rpm=3: three provider calls, not seven');
    is($r->{headers}{'x-ratelimit-remaining-requests'}, 0,
       'rpm=3: the calls took the whole minute');
    ok($r->{headers}{'retry-after'}, 'rpm=3: Retry-After on the refusal');
    like($r->{json}{error}{message}, qr{openai/r0-status500: HTTP 500.*Rate limit reached}s,
         'rpm=3: the message lists the calls made and the limit');

    $r = $t->post_json('/rl/v1/chat/completions', { model => 'openai/gpt-4o', @hi },
                       headers => { Authorization => 'Bearer amp-1' });
    is($r->{status}, 429, 'rpm=3: the key is spent for the next request too');

    $r = $t->post_json('/rl/v1/chat/completions', { model => 'openai/gpt-4o', @hi },
                       headers => { Authorization => 'Bearer amp-2' });
    is($r->{status}, 200, 'rpm=3: another key is not');
}

{
    # a fusion of 3 members and a judge under rpm=2: two calls, no judge
    $t->clear_records('m1');
    my $r = $t->post_json('/fu/v1/chat/completions', { model => 'x', @hi },
                          headers => { Authorization => 'Bearer fusion-1' });
    is($r->{status}, 200, 'fusion under rpm=2: answered');
    is(calls(), 2, 'fusion under rpm=2: two provider calls');
    my @members = grep { $_->{status} ne 'skipped' } @{ $r->{json}{fusion}{members} || [] };
    is(scalar @members, 2, 'fusion under rpm=2: two members called');
    isnt($r->{json}{fusion}{judge_status}, 'ok', 'fusion under rpm=2: no judge call');
}

# ---- n (point 3e) ----

{
    my $r = $t->post_json('/v1/chat/completions',
                          '{"model":"openai/gpt-4o","n":1,"n":100,'
                          . '"messages":[{"role":"user","content":"hi"}]}');
    is($r->{status}, 400, 'n given twice: 400');
    is($r->{json}{error}{code}, 'duplicate_parameter', 'n given twice: duplicate_parameter');
    is($r->{json}{error}{param}, 'n', 'n given twice: param n');

    $r = $t->post_json('/v1/chat/completions', { model => 'openai/gpt-4o', n => 500, @hi });
    is($r->{status}, 400, 'n of 500: 400');
    is($r->{json}{error}{param}, 'n', 'n of 500: param n');

    # an estimate of n answers: 100 tokens at 0.001 USD is 0.1 USD in
    # flight, past the 0.05 budget, so a second request waits
    my @r = $t->parallel(
        sub { $t->post_json('/bud/v1/chat/completions',
                            { model => 'openai/pricey-delay500', n => 10,
                              max_tokens => 10, @hi },
                            headers => { 'X-Tenant' => 'n-test' }) },
        sub { sleep 0.2;
              $t->post_json('/bud/v1/chat/completions',
                            { model => 'openai/pricey-delay500', max_tokens => 10, @hi },
                            headers => { 'X-Tenant' => 'n-test' }) });
    is($r[0]{status}, 200, 'n=10: the first request is admitted');
    is($r[1]{status}, 402, 'n=10: its estimate (n x max_tokens) holds the budget');
    like($r[1]{json}{error}{message}, qr/0\.100000 USD in requests in flight/,
         'n=10: 10 x 10 tokens at 0.001 USD reserved');
}

# ---- the estimate prices the costliest model of the plan (point 3a) ----

{
    # "model" names no provider, "models" a priced one: 0.005 USD each is
    # reserved, so 10 of 20 concurrent requests fit a 0.05 budget
    $t->clear_records('m1');
    my @r = $t->parallel(map {
        sub { $t->post_json('/budfree/v1/chat/completions',
                            { model => 'nope/x', models => ['openai/pricey-delay500'],
                              max_tokens => 5, @hi },
                            headers => { 'X-Tenant' => 'plan-price' }) }
    } 1 .. 20);
    my $ok = grep { $_->{status} == 200 } @r;
    my $refused = grep { $_->{status} == 402 } @r;
    is($ok, 10, 'plan priced: 10 of 20 concurrent requests admitted (0.005 USD each)');
    is($refused, 10, 'plan priced: the others get 402');
    is(calls(), 10, 'plan priced: 10 provider calls');
}

# ---- unpriced models (point 3b) ----

{
    $t->clear_records('m1');
    my $r = $t->post_json('/bud/v1/chat/completions', { model => 'openai/gpt-4o-x', @hi },
                          headers => { 'X-Tenant' => 'unpriced' });
    is($r->{status}, 400, 'unpriced model where a budget applies: 400');
    is($r->{json}{error}{code}, 'model_not_priced', 'unpriced: code model_not_priced');
    is(calls(), 0, 'unpriced: no provider call');

    $r = $t->post_json('/bud/v1/chat/completions',
                       { model => 'openai/gpt-4o-x', models => ['openai/pricey'], @hi },
                       headers => { 'X-Tenant' => 'unpriced' });
    is($r->{status}, 400, 'unpriced: a plan with one unpriced model is refused too');

    # a family price
    $r = $t->post_json('/bud/v1/chat/completions',
                       { model => 'openai/fam-2024-08-06', max_tokens => 3, @hi },
                       headers => { 'X-Tenant' => 'family' });
    is($r->{status}, 200, 'family: openai/fam* prices a dated name');
    my $usage = $r->{json}{usage};
    my $want = ($usage->{prompt_tokens} + $usage->{completion_tokens}) * 0.001;
    is($r->{headers}{'x-ai-cost'}, sprintf('%.6f', $want), 'family: charged at its price');
    my $e = ledger('/bud/v1/', 'openai/fam*');
    ok($e && $e->{requests} == 1, 'family: the ledger counts it under the family');

    $r = $t->post_json('/bud/v1/chat/completions',
                       { model => 'openai/fam-special-1', max_tokens => 3, @hi },
                       headers => { 'X-Tenant' => 'family' });
    $usage = $r->{json}{usage};
    is($r->{headers}{'x-ai-cost'},
       sprintf('%.6f', ($usage->{prompt_tokens} + $usage->{completion_tokens}) * 0.000001),
       'family: the longest prefix wins (1 USD per 1M, not 1000)');

    # ai_unpriced default=
    $r = $t->post_json('/buddef/v1/chat/completions',
                       { model => 'openai/other-x', max_tokens => 3, @hi },
                       headers => { 'X-Tenant' => 'default' });
    is($r->{status}, 200, 'ai_unpriced default=: an unpriced model is served');
    $usage = $r->{json}{usage};
    $want = ($usage->{prompt_tokens} + $usage->{completion_tokens}) * 0.001;
    is($r->{headers}{'x-ai-cost'}, sprintf('%.6f', $want),
       'ai_unpriced default=: charged at the default price');

    # names a client makes up are counted under one label
    for my $i (1 .. 12) {
        $t->post_json('/v1/chat/completions', { model => "openai/made-up-$i", @hi },
                      headers => { 'X-Tenant' => 'cardinality' });
    }
    my $s = $t->get('/status')->{json};
    my @made = grep { $_->{route} eq '/v1/' && $_->{model} =~ /made-up/ } @{ $s->{ledger} };
    is(scalar @made, 0, 'labels: no ledger entry per made-up name');
    $e = ledger('/v1/', 'openai/*');
    ok($e && $e->{requests} >= 12, 'labels: they are counted as openai/*');
    my $prom = $t->get('/status?format=prometheus')->{content};
    unlike($prom, qr/made-up/, 'labels: no Prometheus series per made-up name');
}

# ---- answers without usable usage are charged the estimate (point 3d) ----

{
    for my $m ('openai/pricey-nousage', 'openai/pricey-badusage') {
        my $r = $t->post_json('/bud/v1/chat/completions',
                              { model => $m, max_tokens => 20,
                                messages => [{ role => 'user', content => 'x' x 40 }] },
                              headers => { 'X-Tenant' => "usage-$m" });
        is($r->{status}, 200, "$m: answered");
        # the estimate: 40 bytes / 4 = 10 input tokens, 20 output
        is($r->{headers}{'x-ai-cost'}, '0.030000', "$m: X-AI-Cost is the estimate");
        my $e = ledger('/bud/v1/', $m);
        ok($e, "$m: in the ledger") or next;
        is($e->{requests}, 1, "$m: one request");
        is($e->{estimated_cost_nano_usd}, 30_000_000, "$m: charged as an estimate");
        is($e->{cost_nano_usd}, 0, "$m: nothing exact");
    }

    # a budget cannot be spent for free: the estimate counts
    my $n = 0;
    for (1 .. 6) {
        my $r = $t->post_json('/bud/v1/chat/completions',
                              { model => 'openai/pricey-nousage', max_tokens => 20,
                                messages => [{ role => 'user', content => 'x' x 40 }] },
                              headers => { 'X-Tenant' => 'nousage-budget' });
        $n++ if $r->{status} == 200;
    }
    is($n, 2, 'no usage: the 0.05 budget admits two 0.03 USD answers');

    my $r = $t->stream('/bud/v1/chat/completions',
                       { model => 'openai/pricey-nousage', stream => JSON::PP::true,
                         max_tokens => 20, messages => [{ role => 'user', content => 'x' x 40 }] },
                       headers => { 'X-Tenant' => 'nousage-stream' });
    ok($r->{done}, 'no usage, stream: whole');
    my $e = ledger('/bud/v1/', 'openai/pricey-nousage', substr(sha256_hex('nousage-stream'), 0, 8));
    is($e && $e->{estimated_cost_nano_usd}, 30_000_000,
       'no usage, stream: charged the estimate');
}

# ---- a stream the client cuts is charged what was relayed (point 3c) ----

{
    my $words = join ' ', map { "w$_" } 1 .. 40;
    my $body = JSON::PP->new->encode({ model => 'openai/pricey-slow150', stream => JSON::PP::true,
                                       messages => [{ role => 'user', content => $words }] });
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $t->port,
                                     Proto => 'tcp') or die "connect: $!";
    print $sock "POST /bud/v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
              . "X-Tenant: cutter\r\nContent-Type: application/json\r\n"
              . "Content-Length: " . length($body) . "\r\n\r\n" . $body;
    my ($buf, $deltas) = ('', 0);
    my $deadline = time + 20;
    while ($deltas < 12 && time < $deadline) {
        my $n = sysread($sock, $buf, 4096, length $buf);
        last unless $n;
        $deltas = () = $buf =~ /"content":"[^"]+"/g;
    }
    close $sock;
    ok($deltas >= 12, "cut stream: the client read $deltas deltas, then closed");

    my $e;
    for (1 .. 100) {
        $e = ledger('/bud/v1/', 'openai/pricey-slow150');
        last if $e && $e->{aborted};
        sleep 0.1;
    }
    ok($e && $e->{aborted} == 1, 'cut stream: charged as stopped');
    # 12+ words relayed at 0.001 USD each, on top of the input estimate
    my $in = int(length($words) / 4);
    cmp_ok($e ? $e->{estimated_cost_nano_usd} : 0, '>=', ($in + 12) * 1_000_000,
           'cut stream: the output relayed is charged, not the input alone');
}

# ---- empty keys (point 9) ----

{
    my $r = $t->post_json('/rl/v1/chat/completions', { model => 'openai/gpt-4o', @hi });
    is($r->{status}, 401, 'empty key, empty=deny (the default): 401');
    is($r->{json}{error}{code}, 'missing_key', 'empty key: code missing_key');

    my @s = map { $t->post_json('/shared/v1/chat/completions', { model => 'openai/gpt-4o', @hi })->{status} } 1 .. 3;
    is_deeply(\@s, [200, 200, 429], 'empty=shared: keyless requests share one bucket');

    @s = map { $t->post_json('/open/v1/chat/completions', { model => 'openai/gpt-4o', @hi })->{status} } 1 .. 3;
    is_deeply(\@s, [200, 200, 200], 'empty=allow: keyless requests are not limited');

    $r = $t->post_json('/bud/v1/chat/completions', { model => 'openai/pricey', @hi });
    is($r->{status}, 401, 'a budget per key: a request without a key gets 401');
}

# ---- a provider's Retry-After is capped (point 8) ----

{
    my $r = $t->post_json('/v1/chat/completions',
                          { model => 'openai/x-status429-retryafter999999999', @hi });
    is($r->{status}, 429, 'provider 429: passed on');
    is($r->{headers}{'retry-after'}, '600', 'provider Retry-After 999999999: capped to 600');
}

# ---- Gemini model names (point 8) ----

{
    $t->clear_records('m1');
    for my $m ('google/x:countTokens', 'google/a;b=1', 'google/a@b', 'google/a/b') {
        my $r = $t->post_json('/v1/chat/completions', { model => $m, @hi });
        is($r->{status}, 400, "gemini model \"$m\": 400");
    }
    is(calls(), 0, 'gemini: no provider call for a name outside [A-Za-z0-9._-]');
    my $r = $t->post_json('/v1/chat/completions', { model => 'google/gemini-2.5-pro', @hi });
    is($r->{status}, 200, 'gemini: a model id is served');
}

$t->done_testing_checks;
done_testing();
