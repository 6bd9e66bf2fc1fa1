#!/usr/bin/perl
# Real clients of the Responses API inbound: the openai SDK's
# client.responses (create, stream, a tool round trip, a streamed tool
# call, a failure mid-stream) against each provider type and through
# fallback and fusion locations, and the Vercel AI SDK (ai 6 with
# @ai-sdk/openai, whose createOpenAI({baseURL})(model) speaks the
# Responses API by default): generateText, streamText with a tool and
# generateObject.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use GatewayTest;

my $t = GatewayTest->new(name => 'responses-sdk');
plan skip_all => 'module not built' unless $t->has_module;
plan skip_all => 'openai npm package not installed (./build.sh test installs it)'
    unless $t->has_node_sdk('openai');

$t->start_mock(name => 'm1');
$t->write_config($t->config_preamble . "http {\n" . $t->http_preamble . <<'EOF');
    ai_provider openai type=openai pass=/_ai/openai key=sk-openai-provider;
    ai_provider claude type=anthropic pass=/_ai/claude key=sk-ant-provider;
    ai_provider google type=gemini pass=/_ai/google key=gm-provider;

    server {
        listen 127.0.0.1:%%PORT%%;

        location /v1/ { ai_gateway; }

        location /fb/v1/ {
            ai_gateway;
            ai_fallback openai/x-status500 claude/sonnet breaker=off;
        }

        location /fusion/v1/ {
            ai_gateway;
            ai_pool openai/gpt-4o claude/sonnet google/gemini
                    judge=openai/gpt-4o mode=vote;
        }

        location /fusiontool/v1/ {
            ai_gateway;
            ai_pool openai/x-toolcall claude/x-toolcall google/x-toolcall
                    judge=openai/gpt-4o mode=vote;
        }

        location /_ai/openai/ {
            internal;
            proxy_pass http://127.0.0.1:%%MOCK_PORT_m1%%/;
            proxy_buffering off;
        }

        location /_ai/claude/ {
            internal;
            proxy_pass http://127.0.0.1:%%MOCK_PORT_m1%%/;
            proxy_buffering off;
        }

        location /_ai/google/ {
            internal;
            proxy_pass http://127.0.0.1:%%MOCK_PORT_m1%%/;
            proxy_buffering off;
        }
    }
}
EOF
$t->start_nginx;

sub ptok { my $n = 0; $n += length for @_; return $n ? int(($n + 3) / 4) : 1 }
sub words { scalar(split ' ', $_[0]) }

my $prompt = 'Hello from the SDK';
my $answer = "Mock answer to: $prompt";
my $seq = 'response.created response.in_progress response.output_item.added '
        . 'response.content_part.added response.output_text.delta '
        . 'response.output_text.done response.content_part.done '
        . 'response.output_item.done response.completed';

sub squeeze { my @o; for (@_) { push @o, $_ unless @o && $o[-1] eq $_ && /\.delta$/ } join ' ', @o }

sub usage { my ($in, $out) = @_;
            return { input_tokens => $in, output_tokens => $out, total_tokens => $in + $out,
                     input_tokens_details => { cached_tokens => 0 },
                     output_tokens_details => { reasoning_tokens => 0 } } }

# [name, location, model, answers summed, the tool call's env]
for my $case (['openai', '/v1', 'openai/gpt-4o', 1,
               { AI_GW_TOOL_MODEL => 'openai/x-toolcall' }],
              ['anthropic', '/v1', 'claude/sonnet', 1,
               { AI_GW_TOOL_MODEL => 'claude/x-toolcall' }],
              ['gemini', '/v1', 'google/gemini-pro', 1,
               { AI_GW_TOOL_MODEL => 'google/x-toolcall' }],
              ['fallback', '/fb/v1', 'openai/x-status500', 1,
               { AI_GW_TOOL_MODEL => 'openai/x-status500',
                 AI_GW_TOOL_MODELS => '["claude/x-toolcall"]' }],
              ['fusion', '/fusion/v1', 'fusion', 3,
               { AI_GW_TOOL_BASE_URL => $t->base_url . '/fusiontool/v1' }]) {
    my ($name, $loc, $model, $members, $env) = @$case;
    my $r = $t->node_sdk('openai_responses.mjs', $t->base_url . $loc, $model, $prompt,
                         $env);
    is($r->{exit}, 0, "openai sdk $name: exit 0") or diag($r->{stderr} . $r->{stdout});
    my $j = $r->{json} or next;

    my $c = $j->{create};
    like($c->{id}, qr/^resp_/, "openai sdk $name create: id");
    is($c->{status}, 'completed', "openai sdk $name create: completed");
    is($c->{output_text}, $answer, "openai sdk $name create: output_text");
    is_deeply($c->{usage}, usage($members * ptok('be brief', $prompt), $members * words($answer)),
              "openai sdk $name create: usage") or diag(explain($c->{usage}));

    is(squeeze(@{ $j->{stream}{events} }), $seq, "openai sdk $name stream: the event sequence");
    is($j->{stream}{text}, $answer, "openai sdk $name stream: deltas");
    is($j->{stream}{final}{output_text}, $answer, "openai sdk $name stream: finalResponse");
    is($j->{stream}{final}{status}, 'completed', "openai sdk $name stream: completed");
    is_deeply($j->{stream}{final}{usage},
              usage($members * ptok($prompt), $members * words($answer)),
              "openai sdk $name stream: usage");

    is(squeeze(@{ $j->{events}{names} }), $seq, "openai sdk $name events: the sequence");
    is($j->{events}{text}, $answer, "openai sdk $name events: text");

    my $call = $j->{tools}{call};
    is($call->{name}, 'get_weather', "openai sdk $name tools: the call");
    is($call->{arguments}, qq({"text":"$prompt"}), "openai sdk $name tools: arguments");
    ok(length $call->{call_id}, "openai sdk $name tools: call_id");
    # the mock answers the last user turn's text: for anthropic and gemini
    # that turn holds the tool result only
    if ($name =~ /^(?:anthropic|gemini|fallback)$/) {
        is($j->{tools}{answer}, 'Mock answer to: ',
           "openai sdk $name tools: answered after the tool result");
    } else {
        like($j->{tools}{answer}, qr/^Mock answer to: /,
             "openai sdk $name tools: answered after the tool result");
    }

    is($j->{tools_stream}{call}{name}, 'get_weather', "openai sdk $name tools stream: the call");
    is($j->{tools_stream}{args_deltas}, qq({"text":"$prompt"}),
       "openai sdk $name tools stream: argument deltas");
    is($j->{tools_stream}{call}{arguments}, qq({"text":"$prompt"}),
       "openai sdk $name tools stream: final arguments");
}

# the round trip reached the provider as chat: tool_calls, then a tool message
my ($round) = grep { $_->{path} eq '/v1/chat/completions'
                     && grep({ $_->{role} eq 'tool' } @{ $_->{body_json}{messages} // [] }) }
              @{ $t->mock_records('m1') };
ok($round, 'openai sdk tools upstream: a chat request with a tool message');
is_deeply([map { $_->{role} } @{ $round->{body_json}{messages} }], [qw(user assistant tool)],
          'openai sdk tools upstream: user, assistant with the call, tool');
is($round->{body_json}{messages}[1]{tool_calls}[0]{function}{name}, 'get_weather',
   'openai sdk tools upstream: the call');

# a failure in the middle of a stream: the SDK does not see a completion
for my $model ('openai/x-streamerror', 'claude/x-cut') {
    my $r = $t->node_sdk('openai_responses.mjs', $t->base_url . '/v1', $model, $prompt,
                         { AI_GW_STEPS => 'fail' });
    is($r->{exit}, 0, "openai sdk $model: exit 0") or diag($r->{stderr});
    my $f = $r->{json}{fail};
    ok($f->{threw}, "openai sdk $model: the stream throws") or diag(explain($f));
    ok((grep { $_ eq 'response.failed' } @{ $f->{names} }), "openai sdk $model: response.failed seen");
    ok(!(grep { $_ eq 'response.completed' } @{ $f->{names} }),
       "openai sdk $model: no response.completed");
}

# --- the Vercel AI SDK --------------------------------------------------------

SKIP: {
    skip 'ai / @ai-sdk/openai not installed', 1
        unless $t->has_node_sdk('ai') && $t->has_node_sdk('@ai-sdk/openai');

    $t->mock_answer('m1', 'gpt-4o-json', '{"city":"Paris","temperature":21}');

    for my $case (['openai', 'openai'], ['anthropic', 'claude'], ['gemini', 'google']) {
        my ($name, $p) = @$case;
        my $r = $t->node_sdk('vercel_ai.mjs', $t->base_url . '/v1', "$p/gpt-4o", $prompt,
                             { AI_GW_OBJECT_MODEL => "$p/gpt-4o-json",
                               AI_GW_TOOL_MODEL => "$p/x-toolcall" });
        is($r->{exit}, 0, "vercel $name: exit 0") or diag($r->{stderr} . $r->{stdout});
        my $j = $r->{json} or next;
        is($j->{generate}{text}, $answer, "vercel $name generateText: text");
        is($j->{generate}{finishReason}, 'stop', "vercel $name generateText: finishReason");
        is($j->{generate}{usage}{inputTokens}, ptok($prompt), "vercel $name generateText: input tokens");
        is($j->{generate}{usage}{outputTokens}, words($answer), "vercel $name generateText: output tokens");
        is($j->{stream}{toolCalls}[0]{toolName}, 'get_weather', "vercel $name streamText: the tool call");
        is_deeply($j->{stream}{toolCalls}[0]{input}, { text => $prompt },
                  "vercel $name streamText: its input");
        is($j->{stream}{toolResults}[0]{output}, '21 degrees', "vercel $name streamText: the tool ran");
        is($j->{stream}{steps}, 2, "vercel $name streamText: two steps");
        is($j->{stream}{text}, $name eq 'openai' ? $answer : 'Mock answer to: ',
           "vercel $name streamText: the answer after the tool (to the last user text)");
        is($j->{stream}{finishReason}, 'stop', "vercel $name streamText: finishReason");
        is_deeply($j->{object}{object}, { city => 'Paris', temperature => 21 },
                  "vercel $name generateObject: the object");
    }
    my ($obj) = grep { ($_->{body_json}{model} // '') eq 'gpt-4o-json' } @{ $t->mock_records('m1') };
    is($obj && $obj->{body_json}{response_format}{type}, 'json_schema',
       'vercel generateObject upstream: response_format json_schema');
}

$t->done_testing_checks;
done_testing;
