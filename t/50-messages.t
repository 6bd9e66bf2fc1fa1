#!/usr/bin/perl
# The Anthropic Messages API inbound (POST {location}messages): requests
# translated for openai-type, anthropic and gemini providers (system,
# content blocks, images, tools, stop sequences), answers and streams in
# Anthropic's form with Anthropic's event sequence and usage equal to what
# the provider reported, tool use both ways, errors as Anthropic error
# objects (gateway, provider, stream, nginx's own), fallback across
# provider types, fusion, limits and costs, the client's x-api-key and
# anthropic-version never forwarded, and the official @anthropic-ai/sdk.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use JSON::PP;
use GatewayTest;

my $t = GatewayTest->new(name => 'messages');
plan skip_all => 'module not built' unless $t->has_module;

$t->start_mock(name => 'm1');
$t->write_config($t->config_preamble . "http {\n" . $t->http_preamble . <<'EOF');
    ai_provider openai type=openai pass=/_ai/openai key=sk-openai-provider;
    ai_provider claude type=anthropic pass=/_ai/claude key=sk-ant-provider;
    ai_provider google type=gemini pass=/_ai/google key=gm-provider;

    ai_price openai/gpt-4o 2.50 10.00;

    ai_rate_zone rate:1m;
    ai_cost_zone cost:1m;

    server {
        listen 127.0.0.1:%%PORT%%;

        location /v1/ {
            ai_gateway;
            ai_cost zone=cost;
        }

        location /fb/v1/ {
            ai_gateway;
            ai_fallback openai/x-status500 claude/sonnet google/gemini
                        breaker=off;
        }

        location /fusion/v1/ {
            ai_gateway;
            ai_pool openai/gpt-4o claude/sonnet google/gemini
                    judge=openai/gpt-4o mode=vote;
        }

        location /rate/v1/ {
            ai_gateway;
            ai_rate zone=rate key=$http_x_api_key rpm=1;
        }

        location /small/v1/ {
            ai_gateway;
            client_max_body_size 1k;
        }

        location /_ai/openai/ {
            internal;
            proxy_pass http://127.0.0.1:%%MOCK_PORT_m1%%/;
        }

        location /_ai/claude/ {
            internal;
            proxy_pass http://127.0.0.1:%%MOCK_PORT_m1%%/;
        }

        location /_ai/google/ {
            internal;
            proxy_pass http://127.0.0.1:%%MOCK_PORT_m1%%/;
        }
    }
}
EOF
$t->start_nginx;

my $url = '/v1/messages';

# The mock's usage rule: prompt = ceil(characters of all text / 4), min 1;
# completion = words of the answer.
sub ptok { my $n = 0; $n += length for @_; return $n ? int(($n + 3) / 4) : 1 }
sub words { scalar(split ' ', $_[0]) }

sub last_record { $t->mock_records('m1')->[-1] }

sub msg { my ($model, $content, %o) = @_;
          return { model => $model, max_tokens => 256,
                   messages => [{ role => 'user', content => $content }], %o } }

# [name, json] of every event of an Anthropic stream
sub events {
    my ($s) = @_;
    return map { [$s->{event_names}[$_], $s->{json_events}[$_]] }
           0 .. $#{ $s->{events} };
}

sub names { join ' ', map { $_->[0] // '(none)' } @_ }

sub text_of { join '', map { $_->[1]{delta}{text} // '' }
                       grep { $_->[0] eq 'content_block_delta' } @_ }

sub error_ok {
    my ($r, $status, $type, $name, $re) = @_;
    is($r->{status}, $status, "$name: $status");
    like($r->{headers}{'content-type'} // '', qr{^application/json},
         "$name: JSON");
    my $j = $r->{json} // eval { decode_json($r->{raw_body}) };
    is($j && $j->{type}, 'error', "$name: an Anthropic error object")
        or diag($r->{content} // $r->{raw_body});
    is($j && $j->{error}{type}, $type, "$name: type $type");
    like($j && $j->{error}{message} // '', $re // qr/\S/, "$name: message");
}

my $hdrs = { 'x-api-key' => 'sk-client-own-key',
             'anthropic-version' => '2099-01-01',
             'anthropic-beta' => 'client-beta' };

# --- whole answers from each provider type ------------------------------------

my %answered;

for my $case (['openai', 'openai/gpt-4o', '/v1/chat/completions'],
              ['anthropic', 'claude/sonnet', '/v1/messages'],
              ['gemini', 'google/gemini-pro',
               '/v1beta/models/gemini-pro:generateContent']) {
    my ($type, $model, $path) = @$case;

    my $r = $t->post_json($url, msg($model, 'Hello there',
                                    system => 'be brief',
                                    stop_sequences => ['END'],
                                    temperature => 0.5),
                          headers => $hdrs);
    is($r->{status}, 200, "$type: 200");
    like($r->{headers}{'content-type'}, qr{^application/json}, "$type: JSON");
    is($r->{headers}{'x-ai-model'}, $model, "$type: X-AI-Model");
    my $j = $r->{json};
    $answered{$type} = $j;
    like($j->{id}, qr/^msg_/, "$type: id msg_...");
    is($j->{type}, 'message', "$type: type message");
    is($j->{role}, 'assistant', "$type: role");
    is_deeply($j->{content}, [{ type => 'text', text => 'Mock answer to: Hello there' }],
              "$type: one text block");
    is($j->{stop_reason}, 'end_turn', "$type: stop_reason end_turn");
    ok(exists $j->{stop_sequence} && !defined $j->{stop_sequence},
       "$type: stop_sequence null");
    my $in = ptok('be brief', 'Hello there');
    is($j->{usage}{input_tokens}, $in, "$type: usage input_tokens as the mock counted");
    is($j->{usage}{output_tokens}, 5, "$type: usage output_tokens as the mock counted");
    is($j->{usage}{cache_read_input_tokens}, 0, "$type: no cache read");
    ok(!exists $j->{choices} && !exists $j->{object}, "$type: nothing of OpenAI's");

    my $rec = last_record();
    is($rec->{path}, $path, "$type upstream: native path");
    ok(!grep({ /sk-client-own-key|2099-01-01|client-beta/ } values %{ $rec->{headers} }),
       "$type upstream: the client's x-api-key, anthropic-version and -beta are not sent");
    my $up = $rec->{body_json};

    if ($type eq 'openai') {
        is($rec->{headers}{authorization}, 'Bearer sk-openai-provider',
           'openai upstream: the provider key');
        ok(!exists $rec->{headers}{'x-api-key'}, 'openai upstream: no x-api-key');
        is($up->{model}, 'gpt-4o', 'openai upstream: model without prefix');
        is_deeply($up->{messages}, [{ role => 'system', content => 'be brief' },
                                    { role => 'user', content => 'Hello there' }],
                  'openai upstream: system as a system message');
        is($up->{max_tokens}, 256, 'openai upstream: max_tokens');
        is_deeply($up->{stop}, ['END'], 'openai upstream: stop_sequences -> stop');
        is($up->{temperature}, 0.5, 'openai upstream: temperature');
        ok(!exists $up->{$_}, "openai upstream: no $_")
            for qw(system stop_sequences stream stream_options);
    } elsif ($type eq 'anthropic') {
        is($rec->{headers}{'x-api-key'}, 'sk-ant-provider', 'anthropic upstream: the provider key');
        is($rec->{headers}{'anthropic-version'}, '2023-06-01',
           "anthropic upstream: the gateway's anthropic-version");
        ok(!exists $rec->{headers}{'anthropic-beta'}, 'anthropic upstream: no anthropic-beta');
        is($up->{model}, 'sonnet', 'anthropic upstream: model');
        is($up->{system}, 'be brief', 'anthropic upstream: system');
        is_deeply($up->{messages},
                  [{ role => 'user', content => [{ type => 'text', text => 'Hello there' }] }],
                  'anthropic upstream: messages');
        is_deeply($up->{stop_sequences}, ['END'], 'anthropic upstream: stop_sequences');
        is($up->{max_tokens}, 256, 'anthropic upstream: max_tokens');
    } else {
        is($rec->{headers}{'x-goog-api-key'}, 'gm-provider', 'gemini upstream: the provider key');
        is_deeply($up->{systemInstruction}, { parts => [{ text => 'be brief' }] },
                  'gemini upstream: systemInstruction');
        is($up->{generationConfig}{maxOutputTokens}, 256, 'gemini upstream: maxOutputTokens');
    }
}
like($answered{anthropic}{id}, qr/^msg_mock_/, 'anthropic: the provider\'s message id');

# Anthropic usage with cache tokens, exactly as the provider reported them
my $r = $t->post_json($url, msg('claude/sonnet-cache', 'cache me'));
is_deeply($r->{json}{usage},
          { input_tokens => ptok('cache me'), cache_creation_input_tokens => 5,
            cache_read_input_tokens => 7, output_tokens => 5 },
          'anthropic cache: usage as the provider reported it');

# max_tokens reached
$r = $t->post_json($url, { model => 'openai/gpt-4o', max_tokens => 2,
                           messages => [{ role => 'user', content => 'cut me' }] });
is($r->{json}{content}[0]{text}, 'Mock answer', 'max_tokens: cut answer');
is($r->{json}{stop_reason}, 'max_tokens', 'max_tokens: stop_reason max_tokens');

# costs apply: X-AI-Cost for a priced model
like($r->{headers}{'x-ai-cost'} // '', qr/^\d+\.\d+$/, 'cost: X-AI-Cost on /messages');

# --- content blocks, images, documents ----------------------------------------

my $png = 'iVBORw0KGgoAAAANSUhEUg==';
my $blocks = [
    { type => 'text', text => 'look at', cache_control => { type => 'ephemeral' } },
    { type => 'image', source => { type => 'base64', media_type => 'image/png', data => $png } },
    { type => 'image', source => { type => 'url', url => 'https://example.com/cat.jpg' } },
    { type => 'document', source => { type => 'base64', media_type => 'application/pdf',
                                      data => 'JVBERi0=' } },
    { type => 'text', text => 'this' },
];
$r = $t->post_json($url, { model => 'openai/gpt-4o', max_tokens => 50,
    system => [{ type => 'text', text => 'sys A' }, { type => 'text', text => 'sys B' }],
    messages => [{ role => 'user', content => 'first' },
                 { role => 'assistant', content => [{ type => 'text', text => 'ok' }] },
                 { role => 'user', content => $blocks }] });
is($r->{status}, 200, 'blocks to openai: 200');
is($r->{json}{content}[0]{text}, 'Mock answer to: look at this', 'blocks to openai: answered');
is_deeply(last_record()->{body_json}{messages}, [
    { role => 'system', content => [{ type => 'text', text => 'sys A' },
                                    { type => 'text', text => 'sys B' }] },
    { role => 'user', content => 'first' },
    { role => 'assistant', content => 'ok' },
    { role => 'user', content => [
        { type => 'text', text => 'look at', cache_control => { type => 'ephemeral' } },
        { type => 'image_url', image_url => { url => "data:image/png;base64,$png" } },
        { type => 'image_url', image_url => { url => 'https://example.com/cat.jpg' } },
        { type => 'file', file => { file_data => 'data:application/pdf;base64,JVBERi0=' } },
        { type => 'text', text => 'this' } ] },
], 'blocks to openai: system blocks, text, images as data and https URLs, PDF as a file')
    or diag(explain(last_record()->{body_json}{messages}));

$r = $t->post_json($url, { model => 'claude/sonnet', max_tokens => 50,
                           messages => [{ role => 'user', content => $blocks }] });
is($r->{status}, 200, 'blocks to anthropic: 200');
is_deeply(last_record()->{body_json}{messages}, [{ role => 'user', content => [
    { type => 'text', text => 'look at', cache_control => { type => 'ephemeral' } },
    { type => 'image', source => { type => 'base64', media_type => 'image/png', data => $png } },
    { type => 'image', source => { type => 'url', url => 'https://example.com/cat.jpg' } },
    { type => 'document', source => { type => 'base64', media_type => 'application/pdf',
                                      data => 'JVBERi0=' } },
    { type => 'text', text => 'this' } ] }],
    'blocks to anthropic: the blocks arrive as the client sent them')
    or diag(explain(last_record()->{body_json}{messages}));

# --- streams from each provider type ------------------------------------------

for my $case (['openai', 'openai/gpt-4o-slow50'], ['anthropic', 'claude/sonnet-slow50-cache'],
              ['gemini', 'google/gemini-slow50']) {
    my ($type, $model) = @$case;
    my $s = $t->stream($url, msg($model, 'one two three', system => 'sys', stream => \1),
                       headers => $hdrs);
    is($s->{status}, 200, "$type stream: 200");
    like($s->{headers}{'content-type'}, qr{^text/event-stream}, "$type stream: event-stream");
    ok($s->{complete}, "$type stream: the body ended properly");
    my @e = events($s);
    is(scalar(grep { !defined $_->[1] || $_->[1]{type} ne $_->[0] } @e), 0,
       "$type stream: every event is named and its data has that type");
    ok(!grep({ $_->[1] && exists $_->[1]{object} } @e), "$type stream: no OpenAI chunk");
    ok(!grep({ $_ eq '[DONE]' } @{ $s->{events} }), "$type stream: no [DONE]");
    my $n = names(@e);
    like($n, qr/^message_start content_block_start(?: content_block_delta)+ content_block_stop message_delta message_stop$/,
         "$type stream: Anthropic's event sequence") or diag($n);
    is($e[1][1]{index}, 0, "$type stream: block 0");
    is_deeply($e[1][1]{content_block}, { type => 'text', text => '' },
              "$type stream: a text block");
    is(text_of(@e), 'Mock answer to: one two three', "$type stream: deltas join to the answer");
    is(scalar(grep { $_->[0] eq 'content_block_delta' } @e), 6,
       "$type stream: one delta per provider delta");
    my $start = $e[0][1]{message};
    like($start->{id}, qr/^msg_/, "$type stream: message id");
    is($start->{model}, $type eq 'openai' ? 'gpt-4o-slow50' : $model,
       "$type stream: model in message_start");
    is_deeply($start->{content}, [], "$type stream: message_start with no content");
    my ($delta) = map { $_->[1] } grep { $_->[0] eq 'message_delta' } @e;
    is($delta->{delta}{stop_reason}, 'end_turn', "$type stream: stop_reason");
    my $in = ptok('sys', 'one two three');
    is($delta->{usage}{output_tokens}, 6, "$type stream: output tokens in message_delta");
    if ($type eq 'anthropic') {
        is($delta->{usage}{input_tokens}, $in, 'anthropic stream: input tokens');
        is($delta->{usage}{cache_creation_input_tokens}, 5, 'anthropic stream: cache creation');
        is($delta->{usage}{cache_read_input_tokens}, 7, 'anthropic stream: cache read');
        is($start->{usage}{input_tokens}, $in,
           'anthropic stream: input tokens already in message_start');
    } else {
        is($delta->{usage}{input_tokens}, $in, "$type stream: input tokens in message_delta");
    }
    # message_start has the input tokens (LangChain reads them there only;
    # an OpenAI-type provider tells them last, so there the gateway's
    # estimate, unless ai_messages_input_tokens exact: t/58-usage.t) and no
    # output tokens (LangChain adds message_start's to message_delta's)
    if ($type eq 'openai') {
        ok($start->{usage}{input_tokens} >= 1, 'openai stream: an estimate in message_start');
    } else {
        is($start->{usage}{input_tokens}, $in, "$type stream: input tokens in message_start");
    }
    is($start->{usage}{output_tokens}, 0, "$type stream: no output tokens in message_start");
    my @times = @{ $s->{event_times} };
    ok($times[-1] - $times[2] >= 0.05 * 4,
       "$type stream: events spread in time as the provider sent them");
    my $rec = last_record();
    ok(!grep({ /sk-client-own-key|2099-01-01/ } values %{ $rec->{headers} }),
       "$type stream upstream: no client header");
    if ($type eq 'openai') {
        is($rec->{body_json}{stream}, JSON::PP::true, 'openai stream upstream: stream');
        is_deeply($rec->{body_json}{stream_options}, { include_usage => JSON::PP::true },
                  'openai stream upstream: usage asked');
    }
}

my $s = $t->stream($url, { model => 'claude/sonnet', max_tokens => 2, stream => \1,
                           messages => [{ role => 'user', content => 'cut me' }] });
my ($delta) = map { $_->[1] } grep { $_->[0] eq 'message_delta' } events($s);
is($delta->{delta}{stop_reason}, 'max_tokens', 'stream max_tokens: stop_reason');
is(text_of(events($s)), 'Mock answer', 'stream max_tokens: cut answer');

# --- tools, both ways ---------------------------------------------------------

my $schema = { type => 'object', properties => { city => { type => 'string' } },
               required => ['city'] };
my $tools = [{ name => 'get_weather', description => 'Weather for a city',
               input_schema => $schema },
             { type => 'web_search_20250305', name => 'web_search' }];

for my $case (['openai', 'openai/x-toolcall'], ['anthropic', 'claude/x-toolcall'],
              ['gemini', 'google/x-toolcall']) {
    my ($type, $model) = @$case;
    $r = $t->post_json($url, msg($model, 'weather in Paris', tools => $tools,
                                 tool_choice => { type => 'any' }));
    is($r->{status}, 200, "$type tool answer: 200");
    my $j = $r->{json};
    my @tu = grep { $_->{type} eq 'tool_use' } @{ $j->{content} };
    is(scalar @tu, 1, "$type tool answer: one tool_use block");
    ok(length($tu[0]{id} // ''), "$type tool answer: an id");
    is($tu[0]{name}, 'get_weather', "$type tool answer: name");
    is_deeply($tu[0]{input}, { text => 'weather in Paris' }, "$type tool answer: input object");
    is($j->{stop_reason}, 'tool_use', "$type tool answer: stop_reason tool_use");
    my $up = last_record()->{body_json};
    if ($type eq 'openai') {
        is_deeply($up->{tools}, [{ type => 'function', function => {
            name => 'get_weather', description => 'Weather for a city',
            parameters => $schema } }],
            'openai tool upstream: tools as functions, the server tool dropped');
        is($up->{tool_choice}, 'required', 'openai tool upstream: any -> required');
    } elsif ($type eq 'anthropic') {
        is_deeply($up->{tools}, [{ name => 'get_weather', description => 'Weather for a city',
                                   input_schema => $schema }],
                  'anthropic tool upstream: tools as the client sent them');
        is_deeply($up->{tool_choice}, { type => 'any' }, 'anthropic tool upstream: tool_choice');
    }

    $s = $t->stream($url, msg($model, 'weather in Paris', tools => $tools, stream => \1));
    my @e = events($s);
    like(names(@e), qr/^message_start content_block_start(?: content_block_delta)* content_block_stop message_delta message_stop$/,
         "$type tool stream: event sequence") or diag(names(@e));
    is($e[1][1]{content_block}{type}, 'tool_use', "$type tool stream: a tool_use block");
    is($e[1][1]{content_block}{name}, 'get_weather', "$type tool stream: name");
    is_deeply($e[1][1]{content_block}{input}, {}, "$type tool stream: input {} at the start");
    my $json = join '', map { $_->[1]{delta}{partial_json} }
                        grep { $_->[0] eq 'content_block_delta' } @e;
    is_deeply(eval { decode_json($json) }, { text => 'weather in Paris' },
              "$type tool stream: input_json_delta fragments join to the input");
    ok(!grep({ $_->[0] eq 'content_block_delta' && $_->[1]{delta}{type} ne 'input_json_delta' } @e),
       "$type tool stream: only input_json_delta");
    ($delta) = map { $_->[1] } grep { $_->[0] eq 'message_delta' } @e;
    is($delta->{delta}{stop_reason}, 'tool_use', "$type tool stream: stop_reason tool_use");
}

# a tool result going back
my $conv = { model => 'openai/gpt-4o', max_tokens => 100, tools => $tools, messages => [
    { role => 'user', content => 'weather in Paris?' },
    { role => 'assistant', content => [
        { type => 'text', text => 'Let me check.' },
        { type => 'tool_use', id => 'toolu_1', name => 'get_weather', input => { city => 'Paris' } }] },
    { role => 'user', content => [
        { type => 'tool_result', tool_use_id => 'toolu_1', content => '21 degrees' },
        { type => 'text', text => 'and tomorrow?' }] }] };
$r = $t->post_json($url, $conv);
is($r->{status}, 200, 'tool result to openai: 200');
is($r->{json}{content}[0]{text}, 'Mock answer to: and tomorrow?', 'tool result to openai: answered');
is_deeply(last_record()->{body_json}{messages}, [
    { role => 'user', content => 'weather in Paris?' },
    { role => 'assistant', content => 'Let me check.', tool_calls => [
        { id => 'toolu_1', type => 'function',
          function => { name => 'get_weather', arguments => '{"city":"Paris"}' } }] },
    { role => 'tool', tool_call_id => 'toolu_1', content => '21 degrees' },
    { role => 'user', content => [{ type => 'text', text => 'and tomorrow?' }] },
], 'tool result to openai: tool_use -> tool_calls, tool_result -> a tool message')
    or diag(explain(last_record()->{body_json}{messages}));

$conv->{model} = 'claude/sonnet';
$r = $t->post_json($url, $conv);
is($r->{status}, 200, 'tool result to anthropic: 200');
is_deeply(last_record()->{body_json}{messages}, [
    { role => 'user', content => [{ type => 'text', text => 'weather in Paris?' }] },
    { role => 'assistant', content => [
        { type => 'text', text => 'Let me check.' },
        { type => 'tool_use', id => 'toolu_1', name => 'get_weather', input => { city => 'Paris' } }] },
    { role => 'user', content => [
        { type => 'tool_result', tool_use_id => 'toolu_1', content => '21 degrees' },
        { type => 'text', text => 'and tomorrow?' }] },
], 'tool result to anthropic: the conversation arrives as the client sent it')
    or diag(explain(last_record()->{body_json}{messages}));

# --- errors, in Anthropic's form ----------------------------------------------

error_ok($t->post_json($url, '{"model":'), 400, 'invalid_request_error', 'not JSON',
         qr/not valid JSON/);
error_ok($t->post_json($url, { model => 'openai/gpt-4o',
                               messages => [{ role => 'user', content => 'x' }] }),
         400, 'invalid_request_error', 'no max_tokens', qr/^max_tokens: Field required$/);
error_ok($t->post_json($url, { model => 'openai/gpt-4o', max_tokens => 10,
                               messages => [{ role => 'system', content => 'x' }] }),
         400, 'invalid_request_error', 'bad role', qr/^messages\.0\.role: /);
error_ok($t->post_json($url, { model => 'openai/gpt-4o', max_tokens => 0,
                               messages => [{ role => 'user', content => 'x' }] }),
         400, 'invalid_request_error', 'max_tokens 0', qr/^max_tokens: /);
error_ok($t->post_json($url, msg('nope/model', 'x')), 400, 'invalid_request_error',
         'unknown model', qr/^model: Unknown model/);
$r = $t->get($url);
error_ok($r, 405, 'invalid_request_error', 'GET', qr/POST/);
is($r->{headers}{allow}, 'POST', 'GET: Allow: POST');
error_ok($t->post_json('/small/v1/messages', msg('openai/gpt-4o', 'x' x 4000)),
         413, 'request_too_large', 'body over client_max_body_size');

for my $case (['openai/x-status429-retryafter3', 429, 'rate_limit_error'],
              ['claude/x-status529', 503, 'overloaded_error'],
              ['openai/x-status500', 500, 'api_error'],
              ['claude/x-status401', 401, 'authentication_error'],
              ['google/x-status403', 403, 'permission_error'],
              ['openai/x-garbage', 502, 'api_error'],
              ['openai/x-drop', 502, 'api_error']) {
    my ($model, $status, $type) = @$case;
    $r = $t->post_json($url, msg($model, 'x'));
    error_ok($r, $status, $type, "provider $model");
    unlike($r->{content}, qr/sk-openai-provider|sk-ant-provider|gm-provider/,
           "provider $model: no key in the error");
}
is($t->post_json($url, msg('openai/x-status429-retryafter3', 'x'))->{headers}{'retry-after'},
   3, 'provider 429: Retry-After passed on');

$s = $t->stream($url, msg('claude/x-status529', 'x', stream => \1));
error_ok($s, 503, 'overloaded_error', 'stream failing before any event');

for my $model ('openai/x-cut', 'claude/x-cut', 'google/x-cut') {
    $s = $t->stream($url, msg($model, 'x', stream => \1));
    is($s->{status}, 200, "$model stream: began 200");
    my @e = events($s);
    is(text_of(@e), 'Mock answer', "$model stream: the events before the cut arrived");
    is($e[-1][0], 'error', "$model stream: ends with an error event");
    is($e[-1][1]{type}, 'error', "$model stream: error data");
    ok(length($e[-1][1]{error}{message} // ''), "$model stream: error message");
    ok(!grep({ $_->[0] eq 'message_stop' || $_->[0] eq 'message_delta' } @e),
       "$model stream: no message_delta, no message_stop");
}

# --- fallback across provider types -------------------------------------------

$r = $t->post_json('/fb/v1/messages', msg('openai/x-status500', 'fall back'));
is($r->{status}, 200, 'fallback: 200');
is($r->{headers}{'x-ai-model'}, 'claude/sonnet', 'fallback: answered by the anthropic provider');
is($r->{headers}{'x-ai-attempts'}, 2, 'fallback: two attempts');
is($r->{json}{content}[0]{text}, 'Mock answer to: fall back', 'fallback: the answer');
is($r->{json}{usage}{input_tokens}, ptok('fall back'), 'fallback: usage of the answer');

$s = $t->stream('/fb/v1/messages', msg('claude/x-status503', 'fall back', stream => \1));
is($s->{headers}{'x-ai-model'}, 'claude/sonnet', 'stream fallback: the next model answered')
    or diag($s->{raw_body});
like(names(events($s)), qr/^message_start .* message_stop$/, 'stream fallback: a whole message');
is(text_of(events($s)), 'Mock answer to: fall back', 'stream fallback: the answer');

$r = $t->post_json('/fb/v1/messages', msg('google/x-status500', 'past two'));
is($r->{headers}{'x-ai-model'}, 'claude/sonnet',
   'fallback: from gemini past openai to anthropic');
is($r->{headers}{'x-ai-attempts'}, 3, 'fallback: three attempts');
is($r->{json}{content}[0]{text}, 'Mock answer to: past two', 'fallback: answered');

# --- fusion -------------------------------------------------------------------

$r = $t->post_json('/fusion/v1/messages', msg('fusion', 'two plus two'));
is($r->{status}, 200, 'fusion: 200');
is($r->{json}{type}, 'message', 'fusion: a message');
is($r->{json}{content}[0]{text}, 'Mock answer to: two plus two', 'fusion: the voted answer');
is($r->{json}{fusion}{mode}, 'vote', 'fusion: the fusion report kept');
is(scalar @{ $r->{json}{fusion}{members} }, 3, 'fusion: three members');
is($r->{json}{usage}{output_tokens}, 3 * words('Mock answer to: two plus two'),
   'fusion: usage summed over the members');

$s = $t->stream('/fusion/v1/messages', msg('fusion', 'two plus two', stream => \1));
like(names(events($s)), qr/^(?:ping )*message_start content_block_start(?: content_block_delta)+ content_block_stop message_delta message_stop$/,
     'fusion stream: Anthropic events') or diag(names(events($s)));
is(text_of(events($s)), 'Mock answer to: two plus two', 'fusion stream: the answer');

# --- rate limits --------------------------------------------------------------

$r = $t->post_json('/rate/v1/messages', msg('openai/gpt-4o', 'x'),
                   headers => { 'x-api-key' => 'rate-key' });
is($r->{status}, 200, 'rate: the first request passes');
$r = $t->post_json('/rate/v1/messages', msg('openai/gpt-4o', 'x'),
                   headers => { 'x-api-key' => 'rate-key' });
error_ok($r, 429, 'rate_limit_error', 'rate: the second is refused');
ok($r->{headers}{'retry-after'}, 'rate: Retry-After');

# --- chat/completions on the same location is unchanged -----------------------

$r = $t->post_json('/v1/chat/completions',
                   { model => 'openai/gpt-4o', messages => [{ role => 'user', content => 'Hi' }] });
is($r->{json}{object}, 'chat.completion', 'chat/completions: still OpenAI');
$r = $t->post_json('/v1/chat/completions', { model => 'nope/x', messages => [] });
ok($r->{json}{error} && !exists $r->{json}{type}, 'chat/completions: OpenAI errors');

# --- the official Anthropic SDK -----------------------------------------------

SKIP: {
    skip '@anthropic-ai/sdk not installed (./build.sh test installs it)', 3 * 19 + 2
        unless $t->has_node_sdk('@anthropic-ai/sdk');

    for my $case (['openai', 'openai/gpt-4o'], ['anthropic', 'claude/sonnet-cache'],
                  ['gemini', 'google/gemini-pro']) {
        my ($type, $model) = @$case;
        $t->clear_records('m1');
        my $prompt = "Hello from the SDK via $type";
        my $answer = "Mock answer to: $prompt";
        my $in = ptok($prompt);
        my $n = $t->node_sdk('anthropic_messages.mjs', $t->base_url, $model, $prompt,
                             { AI_GW_API_KEY => 'sk-client-sdk-key' });
        is($n->{exit}, 0, "sdk $type: exit 0") or diag($n->{stderr});
        my $j = $n->{json};
        is($j->{nonstream}{content}, $answer, "sdk $type create: content");
        like($j->{nonstream}{id}, qr/^msg_/, "sdk $type create: id");
        is($j->{nonstream}{stop_reason}, 'end_turn', "sdk $type create: stop_reason");
        is($j->{nonstream}{usage}{input_tokens}, $in, "sdk $type create: input tokens");
        is($j->{nonstream}{usage}{output_tokens}, words($answer), "sdk $type create: output tokens");
        is($j->{stream}{content}, $answer, "sdk $type stream: content");
        is($j->{stream}{stop_reason}, 'end_turn', "sdk $type stream: stop_reason");
        is($j->{stream}{input_tokens}, $in, "sdk $type stream: input tokens");
        is($j->{stream}{output_tokens}, words($answer), "sdk $type stream: output tokens");
        is($j->{stream}{event_types}[0], 'message_start', "sdk $type stream: message_start first");
        is($j->{stream}{event_types}[-1], 'message_stop', "sdk $type stream: message_stop last");
        is($j->{final}{content}, $answer, "sdk $type messages.stream: final message");
        is($j->{final}{usage}{input_tokens}, $in, "sdk $type messages.stream: final usage");
        is($j->{final}{usage}{output_tokens}, words($answer),
           "sdk $type messages.stream: final output tokens");
        is($j->{stream}{start_usage}{input_tokens}, $in,
           "sdk $type stream: input tokens in message_start");
        is($j->{stream}{start_usage}{output_tokens}, 0,
           "sdk $type stream: no output tokens in message_start (added by some clients)");
        my $recs = $t->mock_records('m1');
        is(scalar @$recs, 3, "sdk $type: three provider calls");
        ok(!grep({ join(' ', values %{ $_->{headers} }) =~ /sk-client-sdk-key/ } @$recs),
           "sdk $type: the client's key never reaches the provider");
    }

    my $n = $t->node_sdk('anthropic_messages.mjs', $t->base_url, 'claude/x-status529');
    is($n->{exit}, 1, 'sdk error: fails');
    is($n->{json}{status}, 503, 'sdk error: the status seen by the SDK');
}

$t->done_testing_checks;
done_testing;
