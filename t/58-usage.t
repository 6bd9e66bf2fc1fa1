#!/usr/bin/perl
# Usage exact in every client (issue #16, items 4, 5 and 7): the numbers
# of every answer and usage chunk equal the mock's deterministic usage and
# the ledger's, for each provider type; usage.cost (USD, OpenRouter's
# field) equal to the ledger's cost; the usage chunk only when the client
# asked (stream_options or OpenRouter's usage.include) while the gateway
# always asks the provider; a streamed fusion judge's usage in the total;
# the Messages API's message_start with the input tokens and no output
# tokens, message_delta with the output tokens once; Anthropic errors on
# Anthropic routes (404 too), OpenAI errors on OpenAI routes; a
# provider's retry-after-ms passed on with Retry-After; LangChain's
# ChatAnthropic reading the exact streamed usage.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use POSIX qw(ceil);
use JSON::PP;
use GatewayTest;

my $t = GatewayTest->new(name => 'usage');
plan skip_all => 'module not built' unless $t->has_module;

$t->start_mock(name => 'm1');
$t->write_config($t->config_preamble . "http {\n" . $t->http_preamble . <<'EOF');
    ai_provider openai type=openai pass=/_ai/mock key=sk-openai-provider;
    ai_provider claude type=anthropic pass=/_ai/mock key=sk-ant-provider;
    ai_provider google type=gemini pass=/_ai/mock key=gm-provider;

    ai_price openai/gpt-4o 2.50 10.00;
    ai_price claude/sonnet 3 15;
    ai_price google/gemini 1.25 5;
    ai_price openai/judge 0.5 1.5;
    ai_price openai/gpt-4o-slow30 2.50 10.00;
    ai_price claude/sonnet-slow30 3 15;
    ai_price google/gemini-slow30 1.25 5;

    ai_cost_zone cost:1m;

    server {
        listen 127.0.0.1:%%PORT%%;

        location /v1/ {
            ai_gateway;
            ai_cost zone=cost;
        }

        location /exact/v1/ {
            ai_gateway;
            ai_cost zone=cost;
            ai_messages_input_tokens exact;
        }

        location /fusion/v1/ {
            ai_gateway;
            ai_cost zone=cost;
            ai_pool openai/gpt-4o claude/sonnet judge=openai/judge mode=merge;
        }

        location = /status { ai_status; }

        location /_ai/mock/ {
            internal;
            proxy_pass http://127.0.0.1:%%MOCK_PORT_m1%%/;
        }
    }
}
EOF
$t->start_nginx;

my %price = ('openai/gpt-4o' => [2.5, 10], 'claude/sonnet' => [3, 15],
             'google/gemini' => [1.25, 5], 'openai/judge' => [0.5, 1.5]);
$price{"$_-slow30"} = $price{$_} for qw(openai/gpt-4o claude/sonnet google/gemini);

# the mock's rules: prompt = ceil(chars / 4), completion = the answer's words
sub ptok { my $c = 0; $c += length for @_; $c ? ceil($c / 4) : 1 }
sub words { scalar(() = $_[0] =~ /\S+/g) }
sub nano { my ($m, $in, $out) = @_;
           int($in * $price{$m}[0] * 1000) + int($out * $price{$m}[1] * 1000) }
sub usd_of { $_[0] / 1e9 }

sub status { $t->get('/status')->{json} }
sub ledger {
    my ($route, $model) = @_;
    my ($e) = grep { $_->{zone} eq 'cost' && $_->{route} eq $route
                     && $_->{model} eq $model } @{ status()->{ledger} };
    return $e // { cost_nano_usd => 0, input_tokens => 0, output_tokens => 0 };
}
sub last_record { $t->mock_records('m1')->[-1] }
sub chunks { grep { ref } @{ $_[0]{json_events} } }

my @types = (['openai', 'openai/gpt-4o'], ['anthropic', 'claude/sonnet'],
             ['gemini', 'google/gemini']);

# --- whole answers: usage and cost as the ledger has them ----------------------

for my $c (@types) {
    my ($type, $model) = @$c;
    my $q = "whole $type";
    my $before = ledger('/v1/', $model);
    my $r = $t->post_json('/v1/chat/completions',
        { model => $model, messages => [{ role => 'user', content => $q }] });
    is($r->{status}, 200, "$type answer: 200");
    my ($in, $out) = (ptok($q), words("Mock answer to: $q"));
    my $u = $r->{json}{usage};
    is_deeply([@$u{qw(prompt_tokens completion_tokens total_tokens)}],
              [$in, $out, $in + $out], "$type answer: usage exact");
    my $after = ledger('/v1/', $model);
    my $charged = $after->{cost_nano_usd} - $before->{cost_nano_usd};
    is($charged, nano($model, $in, $out), "$type answer: the ledger's charge");
    ok(defined $u->{cost} && abs($u->{cost} * 1e9 - $charged) < 0.5,
       "$type answer: usage.cost (" . ($u->{cost} // 'none')
       . ") is the ledger's cost");
}

# a model without a price: no cost (a provider's own would pass through)
my $r = $t->post_json('/v1/chat/completions',
    { model => 'openai/unpriced', messages => [{ role => 'user', content => 'x' }] });
ok(!exists $r->{json}{usage}{cost}, 'unpriced model: no usage.cost');

# --- streams: the usage chunk only when asked, the provider always asked ------

for my $c (@types) {
    my ($type, $model) = @$c;
    my $q = "stream $type";
    my ($in, $out) = (ptok($q), words("Mock answer to: $q"));

    my $s = $t->stream('/v1/chat/completions',
        { model => $model, stream => \1, messages => [{ role => 'user', content => $q }] });
    is($s->{events}[-1], '[DONE]', "$type stream: [DONE]");
    ok(!grep({ defined $_->{usage} } chunks($s)), "$type stream: no usage chunk unasked");
    if ($type eq 'openai') {
        is(last_record()->{body_json}{stream_options}{include_usage}, JSON::PP::true,
           'openai stream: the gateway asked the provider for usage anyway');
    }

    for my $ask ([stream_options => { include_usage => \1 }], [usage => { include => \1 }]) {
        my $before = ledger('/v1/', $model);
        $s = $t->stream('/v1/chat/completions',
            { model => $model, stream => \1, @$ask,
              messages => [{ role => 'user', content => $q }] });
        my @u = grep { defined $_->{usage} } chunks($s);
        is(scalar @u, 1, "$type stream ($ask->[0]): one usage chunk");
        my $u = @u ? $u[-1]{usage} : {};
        is_deeply([@$u{qw(prompt_tokens completion_tokens total_tokens)}],
                  [$in, $out, $in + $out], "$type stream ($ask->[0]): usage exact");
        my $charged = ledger('/v1/', $model)->{cost_nano_usd} - $before->{cost_nano_usd};
        is($charged, nano($model, $in, $out), "$type stream ($ask->[0]): the ledger's charge");
        ok(defined $u->{cost} && abs($u->{cost} * 1e9 - $charged) < 0.5,
           "$type stream ($ask->[0]): usage.cost is the ledger's cost");
        if ($type eq 'openai' && $ask->[0] eq 'usage') {
            ok(!exists last_record()->{body_json}{usage},
               'openai stream: OpenRouter\'s "usage" is not forwarded');
            is(last_record()->{body_json}{stream_options}{include_usage}, JSON::PP::true,
               'openai stream (usage.include): the provider asked for usage');
        }
    }
}

# --- fusion: the streamed judge's usage is in the total ------------------------

{
    my $q = 'fuse this';
    my %before = map { $_ => ledger('/fusion/v1/', $_) } qw(openai/gpt-4o claude/sonnet openai/judge);
    my $n = scalar @{ $t->mock_records('m1') };
    my $s = $t->stream('/fusion/v1/chat/completions',
        { model => 'fusion', stream => \1, stream_options => { include_usage => \1 },
          messages => [{ role => 'user', content => $q }] });
    is($s->{events}[-1], '[DONE]', 'fusion stream: [DONE]');
    my ($judge_rec) = grep { ($_->{body_json}{model} // '') eq 'judge' }
                      @{ $t->mock_records('m1') }[$n .. $#{ $t->mock_records('m1') }];
    is($judge_rec->{body_json}{stream_options}{include_usage}, JSON::PP::true,
       'fusion stream: the judge is asked for its usage');
    my $last = (chunks($s))[-1];
    my ($judge) = @{ $last->{fusion}{judges} // [] };
    ok($judge && $judge->{usage} && $judge->{usage}{completion_tokens} > 0,
       'fusion stream: the judge\'s usage is known');
    my ($in, $out, $cost) = (0, 0, 0);
    for my $m (qw(openai/gpt-4o claude/sonnet openai/judge)) {
        my $e = ledger('/fusion/v1/', $m);
        $in += $e->{input_tokens} - $before{$m}{input_tokens};
        $out += $e->{output_tokens} - $before{$m}{output_tokens};
        $cost += $e->{cost_nano_usd} - $before{$m}{cost_nano_usd};
    }
    is_deeply([@{ $last->{usage} }{qw(prompt_tokens completion_tokens total_tokens)}],
              [$in, $out, $in + $out], 'fusion stream: usage is the ledger\'s, judge included');
    ok(abs(($last->{usage}{cost} // -1) * 1e9 - $cost) < 0.5,
       'fusion stream: usage.cost is the ledger\'s');
}

# --- the Messages API: input tokens in message_start, output tokens once ------
# (the provider's events 30 ms apart, as a real stream comes)

my @slow = map { [$_->[0], "$_->[1]-slow30"] } @types;

# By default an OpenAI-type provider's stream goes out as it comes, and
# message_start carries the gateway's estimate (the provider tells the
# count last); message_delta has the exact count, which Anthropic's SDK
# takes.  With ai_messages_input_tokens exact, message_start waits for it.

for my $loc ('/v1/', '/exact/v1/') {
    my $exact = $loc eq '/exact/v1/';
    for my $c (@slow) {
        my ($type, $model) = @$c;
        my $q = "messages $type";
        my ($in, $out) = (ptok($q), words("Mock answer to: $q"));
        my $est = int(length($q) / 4) || 1;
        my $before = ledger($loc, $model);
        my $s = $t->stream("${loc}messages",
            { model => $model, max_tokens => 100, stream => \1,
              messages => [{ role => 'user', content => $q }] });
        my @ev = map { [$s->{event_names}[$_], $s->{json_events}[$_]] } 0 .. $#{ $s->{events} };
        my ($start) = map { $_->[1]{message} } grep { ($_->[0] // '') eq 'message_start' } @ev;
        my ($delta) = map { $_->[1] } grep { ($_->[0] // '') eq 'message_delta' } @ev;
        my $what = "$loc messages $type stream";
        if ($type eq 'openai' && !$exact) {
            is($start->{usage}{input_tokens}, $est, "$what: the estimate in message_start");
            my @times = @{ $s->{event_times} };
            ok($times[-1] - $times[0] >= 0.03 * 3,
               "$what: events go out as the provider sends them");
        } else {
            is($start->{usage}{input_tokens}, $in, "$what: input tokens in message_start");
        }
        is($start->{usage}{output_tokens}, 0, "$what: no output tokens in message_start");
        is($delta->{usage}{input_tokens}, $in, "$what: input tokens in message_delta");
        is($delta->{usage}{output_tokens}, $out, "$what: output tokens in message_delta");
        my $charged = ledger($loc, $model)->{cost_nano_usd} - $before->{cost_nano_usd};
        ok(abs(($delta->{usage}{cost} // -1) * 1e9 - $charged) < 0.5 && $charged > 0,
           "$what: message_delta's cost is the ledger's");
    }
}

# --- errors: Anthropic's on Anthropic routes, OpenAI's on OpenAI routes -------

for my $case (['POST', '/v1/messages/batches', 404, 'not_found_error'],
              ['POST', '/v1/messages/x/y', 404, 'not_found_error'],
              ['GET', '/v1/messages', 405, 'invalid_request_error']) {
    my ($method, $path, $status, $type) = @$case;
    $r = $t->request($method, $path, body => '{}',
                     headers => { 'Content-Type' => 'application/json' });
    is($r->{status}, $status, "$method $path: $status");
    is($r->{json}{type}, 'error', "$method $path: an Anthropic error object");
    is($r->{json}{error}{type}, $type, "$method $path: $type");
}
$r = $t->post_json('/v1/chat/nothing', {});
is($r->{status}, 404, 'OpenAI route: unknown path 404');
ok(!exists $r->{json}{type} && $r->{json}{error}{message},
   'OpenAI route: an OpenAI error object');

# --- retry-after-ms ------------------------------------------------------------

$r = $t->post_json('/v1/chat/completions',
    { model => 'openai/x-status429-retryafterms2500',
      messages => [{ role => 'user', content => 'x' }] });
is($r->{status}, 429, 'retry-after-ms: 429');
is($r->{headers}{'retry-after'}, 3, 'retry-after-ms 2500: Retry-After 3 (rounded up)');
is($r->{headers}{'retry-after-ms'}, 2500, 'retry-after-ms passed on');

$r = $t->post_json('/v1/chat/completions',
    { model => 'openai/x-status429-retryafter7-retryafterms900',
      messages => [{ role => 'user', content => 'x' }] });
is($r->{headers}{'retry-after'}, 7, 'both: the longer wish (Retry-After 7)');
is($r->{headers}{'retry-after-ms'}, 900, 'both: retry-after-ms as sent');

$r = $t->post_json('/v1/chat/completions',
    { model => 'openai/x-status429-retryafterms99999999',
      messages => [{ role => 'user', content => 'x' }] });
is($r->{headers}{'retry-after'}, 600, 'retry-after-ms: capped at 600 s');
is($r->{headers}{'retry-after-ms'}, 600000, 'retry-after-ms: capped at 600000');

$r = $t->post_json('/v1/messages',
    { model => 'openai/x-status429-retryafterms1200', max_tokens => 10,
      messages => [{ role => 'user', content => 'x' }] });
is($r->{json}{error}{type}, 'rate_limit_error', 'Messages 429: rate_limit_error');
is($r->{headers}{'retry-after'}, 2, 'Messages 429: Retry-After from retry-after-ms');

# --- LangChain's ChatAnthropic: the streamed usage_metadata ---------------------

SKIP: {
    skip '@langchain/anthropic not installed (./build.sh test installs it)', 3 * 4
        unless $t->has_node_sdk('@langchain/anthropic');
    for my $c (@slow) {
        my ($type, $model) = @$c;
        my $q = "langchain $type";
        my $n = $t->node_sdk('langchain_anthropic.mjs', $t->base_url . '/exact',
                             $model, $q);
        is($n->{exit}, 0, "langchain $type: exit 0") or diag($n->{stderr});
        is($n->{json}{content}, "Mock answer to: $q", "langchain $type: content");
        is($n->{json}{usage}{input_tokens}, ptok($q), "langchain $type: input tokens");
        is($n->{json}{usage}{output_tokens}, words("Mock answer to: $q"),
           "langchain $type: output tokens (not doubled)");
    }
}

$t->done_testing_checks;
done_testing;
