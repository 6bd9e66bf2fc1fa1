#!/usr/bin/perl
# Fallback: every trigger moves the request to the next model; streams fall
# back until their first byte and end with an error event after it;
# Retry-After and retries; a request's own "models"; the per-attempt
# timeout; all attempts failing; hedging; the variables in the access log.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(time);
use JSON::PP;
use GatewayTest;

my $t = GatewayTest->new(name => 'fallback');
plan skip_all => 'module not built' unless $t->has_module;

$t->start_mock(name => 'm1');
my $dead = $t->free_port;

$t->write_config($t->config_preamble . "http {\n" . $t->http_preamble . <<"EOF");
    log_format ai '\$status model=\$ai_model provider=\$ai_provider '
                  'attempts=\$ai_attempts in=\$ai_prompt_tokens '
                  'out=\$ai_completion_tokens ttft=\$ai_ttft';

    ai_provider openai pass=/_ai/openai key=sk-openai;
    ai_provider dead   pass=/_ai/dead   key=sk-dead;

    upstream mock {
        server 127.0.0.1:%%MOCK_PORT_m1%%;
        keepalive 8;
    }

    server {
        listen 127.0.0.1:%%PORT%%;
        access_log %%PREFIX%%/logs/ai.log ai;

        location /v1/ {
            ai_gateway;
            ai_fallback openai/gpt-4o-mini;
        }

        location /chain/v1/ {
            ai_gateway;
            ai_fallback openai/x-status500 openai/x-status429 dead/x
                        openai/gpt-4o;
        }

        location /on5xx/v1/ {
            ai_gateway;
            ai_fallback openai/gpt-4o on=5xx;
        }

        location /on4xx/v1/ {
            ai_gateway;
            ai_fallback openai/gpt-4o on=4xx,5xx;
        }

        location /retry/v1/ {
            ai_gateway;
            ai_fallback openai/gpt-4o retries=1;
        }

        location /timeout/v1/ {
            ai_gateway;
            ai_fallback openai/gpt-4o timeout=400ms;
        }

        location /alltimeout/v1/ {
            ai_gateway;
            ai_fallback openai/x-y-delay3000 timeout=300ms;
        }

        location /hedge/v1/ {
            ai_gateway;
            ai_fallback openai/x-headerdelay100-slow50 hedge=200ms;
        }

        location /plain/v1/ {
            ai_gateway;
        }

        location /_ai/openai/ {
            internal;
            proxy_pass http://mock/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }

        location /_ai/dead/ {
            internal;
            proxy_pass http://127.0.0.1:$dead/;
        }
    }
}
EOF
$t->start_nginx;

my $user = [{ role => 'user', content => 'hello there' }];

sub chat {
    my ($path, $model, %extra) = @_;
    return $t->post_json("$path/v1/chat/completions",
                         { model => $model, messages => $user, %extra });
}

sub calls_since {
    my ($n) = @_;
    my $recs = $t->mock_records('m1');
    return [ map { $_->{body_json}{model} } @{$recs}[$n .. $#$recs] ];
}

sub nrec { scalar @{ $t->mock_records('m1') } }

# --- every default trigger moves on --------------------------------------------

for my $case (['x-status500', '5xx'], ['x-status503', '5xx'],
              ['x-status429', '429'], ['x-garbage', 'invalid JSON'],
              ['x-empty', 'no choices'], ['x-drop', 'dropped connection'],
              ['x-cut', 'cut answer'])
{
    my ($model, $what) = @$case;
    my $n = nrec();
    my $r = chat('', "openai/$model");
    is($r->{status}, 200, "$what: answered");
    is($r->{headers}{'x-ai-model'}, 'openai/gpt-4o-mini', "$what: by the next model");
    is($r->{headers}{'x-ai-attempts'}, 2, "$what: two calls");
    is_deeply(calls_since($n), [$model, 'gpt-4o-mini'], "$what: the mock saw both, in order");
}

my $r = chat('', 'dead/gpt-4o');
is($r->{status}, 200, 'connection refused: answered');
is($r->{headers}{'x-ai-model'}, 'openai/gpt-4o-mini', 'connection refused: by the next model');

# a 4xx other than 429 is the client's problem: no fallback by default
my $n = nrec();
$r = chat('', 'openai/x-status400');
is($r->{status}, 400, '400: passed on');
is_deeply(calls_since($n), ['x-status400'], '400: no other model called');

$r = chat('/on4xx', 'openai/x-status404');
is($r->{status}, 200, 'on=4xx: a 404 falls back');
is($r->{headers}{'x-ai-model'}, 'openai/gpt-4o', 'on=4xx: by the chain');

# on= limits the triggers
$r = chat('/on5xx', 'openai/x-status429');
is($r->{status}, 429, 'on=5xx: a 429 is passed on');
$r = chat('/on5xx', 'openai/x-status502');
is($r->{status}, 200, 'on=5xx: a 502 falls back');

# --- the chain in order, without repeats ----------------------------------------

$n = nrec();
$r = chat('/chain', 'openai/x-status500');
is($r->{status}, 200, 'chain: answered');
is($r->{headers}{'x-ai-model'}, 'openai/gpt-4o', 'chain: by its last model');
is($r->{headers}{'x-ai-attempts'}, 4, 'chain: 4 calls (the requested model once)');
is_deeply(calls_since($n), ['x-status500', 'x-status429', 'gpt-4o'],
          'chain: order kept, the requested model not repeated');

# a model outside the chain comes first
$n = nrec();
$r = chat('/chain', 'openai/x-status503');
is($r->{headers}{'x-ai-attempts'}, 5, 'requested model first, then the chain');
is(calls_since($n)->[0], 'x-status503', 'requested model called first');

# all fail: 502 listing every attempt
$r = $t->post_json('/plain/v1/chat/completions',
    { model => 'openai/x-status500', messages => $user,
      models => ['dead/x', 'openai/x-garbage'] });
is($r->{status}, 502, 'all fail: 502');
is($r->{json}{error}{code}, 'all_providers_failed', 'all fail: code');
my $msg = $r->{json}{error}{message} // '';
like($msg, qr{openai/x-status500: HTTP 500}, 'all fail: the 500 listed');
like($msg, qr{dead/x: could not be reached}, 'all fail: the refused one listed');
like($msg, qr{openai/x-garbage: .*not a JSON}, 'all fail: the garbage one listed');
unlike($msg, qr/sk-/, 'all fail: no key in the message');

# --- the request's own models ----------------------------------------------------

$n = nrec();
$r = $t->post_json('/plain/v1/chat/completions',
    { model => 'openai/x-status500', messages => $user,
      models => ['openai/x-status503', 'openai/gpt-4o-mini'] });
is($r->{status}, 200, 'models: answered');
is($r->{headers}{'x-ai-model'}, 'openai/gpt-4o-mini', 'models: by the last one');
is_deeply(calls_since($n), ['x-status500', 'x-status503', 'gpt-4o-mini'],
          'models: tried in order');
ok(!exists $t->mock_records('m1')->[-1]{body_json}{models},
   'models: not forwarded to the provider');

$r = $t->post_json('/plain/v1/chat/completions',
    { model => 'openai/gpt-4o', messages => $user, models => ['elsewhere/x'] });
is($r->{status}, 400, 'models: an unconfigured provider is refused');
is($r->{json}{error}{code}, 'model_not_found', 'models: model_not_found');

# --- Retry-After and retries ------------------------------------------------------

$n = nrec();
my $t0 = time;
$r = chat('/retry', 'openai/x-status429-retryafter1');
my $recs = $t->mock_records('m1');
is($r->{status}, 200, 'retry: answered');
is_deeply(calls_since($n), ['x-status429-retryafter1', 'x-status429-retryafter1', 'gpt-4o'],
          'retry: the same model again, then the chain');
ok($recs->[$n + 1]{time} - $recs->[$n]{time} >= 0.95,
   'retry: waited the Retry-After second') or diag($recs->[$n + 1]{time} - $recs->[$n]{time});

$n = nrec();
$t0 = time;
$r = chat('/retry', 'openai/x-status429-retryafter60');
is_deeply(calls_since($n), ['x-status429-retryafter60', 'gpt-4o'],
          'retry: a Retry-After beyond the wait bound moves on at once');
ok(time - $t0 < 2, 'retry: without waiting');

$n = nrec();
$r = chat('/retry', 'openai/x-status429-retryafterms300');
$recs = $t->mock_records('m1');
is(scalar @{ calls_since($n) }, 3, 'retry-after-ms: retried');
my $gap = $recs->[$n + 1]{time} - $recs->[$n]{time};
ok($gap >= 0.28 && $gap < 0.9, "retry-after-ms: waited about 300 ms ($gap)");

# --- the per-attempt timeout --------------------------------------------------------

$t0 = time;
$r = chat('/timeout', 'openai/x-delay3000');
my $took = time - $t0;
is($r->{status}, 200, 'timeout: answered');
is($r->{headers}{'x-ai-model'}, 'openai/gpt-4o', 'timeout: by the next model');
ok($took < 1.5, "timeout: after the attempt's 400 ms, not the provider's 3 s ($took)");

$r = chat('/alltimeout', 'openai/x-delay3000');
is($r->{status}, 504, 'every attempt timed out: 504');
is($r->{json}{error}{code}, 'provider_timeout', 'every attempt timed out: code');

# --- streams ------------------------------------------------------------------------

my $s = $t->stream('/v1/chat/completions',
    { model => 'openai/x-status500', stream => \1, messages => $user });
is($s->{status}, 200, 'stream, 500 before the first byte: 200');
is($s->{headers}{'x-ai-model'}, 'openai/gpt-4o-mini', 'stream: answered by the next model');
is($s->{events}[-1], '[DONE]', 'stream: whole, [DONE]');

$s = $t->stream('/v1/chat/completions',
    { model => 'openai/x-garbage', stream => \1, messages => $user });
is($s->{status}, 200, 'stream, garbage first event: falls back');
is($s->{headers}{'x-ai-model'}, 'openai/gpt-4o-mini', 'stream, garbage: next model');
is(join('', map { ref $_ ? ($_->{choices}[0]{delta}{content} // '') : '' }
        @{ $s->{json_events} }),
   'Mock answer to: hello there', 'stream, garbage: nothing of the garbage leaked');

$s = $t->stream('/v1/chat/completions',
    { model => 'openai/x-empty', stream => \1, messages => $user });
is($s->{headers}{'x-ai-model'}, 'openai/gpt-4o-mini',
   'stream, a lone [DONE] with no answer: falls back');
is($s->{events}[-1], '[DONE]', 'stream, empty first: the next model\'s whole answer');

$s = $t->stream('/v1/chat/completions',
    { model => 'openai/x-cut', stream => \1, messages => $user });
is($s->{headers}{'x-ai-model'}, 'openai/x-cut', 'stream cut after its first byte: no fallback');
ok(!grep({ $_ eq '[DONE]' } @{ $s->{events} }), 'stream cut: no [DONE]');
is(ref $s->{json_events}[-1] && $s->{json_events}[-1]{error}{code}, 'stream_incomplete',
   'stream cut: an error event ends it');

# --- hedging -------------------------------------------------------------------------

# the first model answers only after 1.5 s; the hedge starts the
# next after 200 ms and wins; the loser is stopped, so the next request on
# the same connection is not held up by it
my $http = HTTP::Tiny->new(keep_alive => 1, timeout => 10);
$n = nrec();
$t0 = time;
my $res = $http->post($t->base_url . '/hedge/v1/chat/completions',
    { content => encode_json({ model => 'openai/x-delay1500', messages => $user }) });
$took = time - $t0;
is($res->{status}, 200, 'hedge: answered');
is($res->{headers}{'x-ai-model'}, 'openai/x-headerdelay100-slow50', 'hedge: by the hedge');
is($res->{headers}{'x-ai-attempts'}, 2, 'hedge: two calls');
ok($took >= 0.2 && $took < 1.2, "hedge: not waiting for the slow one ($took)");
$t0 = time;
$res = $http->post($t->base_url . '/plain/v1/chat/completions',
    { content => encode_json({ model => 'openai/gpt-4o', messages => $user }) });
$took = time - $t0;
is($res->{status}, 200, 'hedge: the next request on the same connection');
ok($took < 0.5, "hedge: not held by the stopped loser ($took)");
is_deeply([sort @{ calls_since($n) }],
          [sort 'x-delay1500', 'x-headerdelay100-slow50', 'gpt-4o'],
          'hedge: both models were called');

# a stream hedges too
$t0 = time;
$s = $t->stream('/hedge/v1/chat/completions',
    { model => 'openai/x-delay1500', stream => \1, messages => $user });
is($s->{status}, 200, 'stream hedge: 200');
is($s->{headers}{'x-ai-model'}, 'openai/x-headerdelay100-slow50', 'stream hedge: by the hedge');
is($s->{events}[-1], '[DONE]', 'stream hedge: whole');
ok($s->{first_byte_time} - $s->{start_time} < 1.0, 'stream hedge: first byte early');

# a fast first model needs no hedge
$n = nrec();
$r = chat('/hedge', 'openai/gpt-4o');
is($r->{headers}{'x-ai-attempts'}, 1, 'hedge: a fast model is not hedged');
is_deeply(calls_since($n), ['gpt-4o'], 'hedge: one call');

# --- the log variables --------------------------------------------------------------

$t->stop_nginx;
my @log = split /\n/, $t->read_file('logs/ai.log');
ok((grep { m{^200 model=openai/gpt-4o provider=openai attempts=4 in=\d+ out=\d+ ttft=\d+$} } @log),
   'access log: $ai_model, $ai_provider, $ai_attempts, tokens, ttft')
    or diag(join "\n", @log[0 .. 5]);

$t->done_testing_checks;
done_testing;
