#!/usr/bin/perl
# type=gemini through the gateway: the generateContent request the provider
# gets (path with the model, :streamGenerateContent?alt=sse, x-goog-api-key,
# systemInstruction, user/model turns merged, generationConfig, images,
# functionCall / functionResponse, functionDeclarations with
# parametersJsonSchema, toolConfig), the OpenAI answer the client gets
# (content, finish_reason, usage with thoughts billed as output, tool
# calls), streams translated chunk by chunk, provider errors, and the
# official openai SDK.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use JSON::PP;
use GatewayTest;

my $t = GatewayTest->new(name => 'gemini');
plan skip_all => 'module not built' unless $t->has_module;

$t->start_mock(name => 'm1');
$t->write_config($t->config_preamble . "http {\n" . $t->http_preamble . <<'EOF');
    ai_provider google type=gemini pass=/_ai/google key=gm-provider-secret;

    server {
        listen 127.0.0.1:%%PORT%%;

        location /v1/ {
            ai_gateway;
            ai_default_max_tokens 777;
        }

        location /_ai/google/ {
            internal;
            proxy_pass http://127.0.0.1:%%MOCK_PORT_m1%%/;
        }
    }
}
EOF
$t->start_nginx;

my $chat = '/v1/chat/completions';
my $JSON = JSON::PP->new->canonical;

# The mock's usage rule: prompt = ceil(characters of all text / 4), min 1.
sub ptok { my $n = 0; $n += length for @_; return $n ? int(($n + 3) / 4) : 1 }

sub last_record { $t->mock_records('m1')->[-1] }

# The JSON chunks of a stream (not [DONE], not the error event).
sub chunks { grep { ref && $_->{object} } @{ $_[0]{json_events} } }

sub content_of { join '', map { $_->{choices}[0]{delta}{content} // '' }
                          grep { @{ $_->{choices} } } @_ }

# --- a whole answer: the translated request and the translated answer ------

my $png = 'iVBORw0KGgoAAAANSUhEUg==';
my $msgs = [
    { role => 'system', content => 'be brief' },
    { role => 'user', content => 'Hello' },
    { role => 'user', content => [
        { type => 'text', text => 'part one' },
        { type => 'image_url', image_url => { url => "data:image/png;base64,$png" } },
        { type => 'image_url', image_url => { url => 'https://example.com/cat.webp?x=1' } },
        { type => 'image_url', image_url => { url => 'ftp://example.com/no.png' } },
        { type => 'input_audio', input_audio => { data => 'UklGRg==', format => 'wav' } },
        { type => 'file', file => { file_data => 'data:application/pdf;base64,JVBERi0=' } },
        { type => 'file', file => { file_id => 'file-abc' } },
        { type => 'text', text => 'part two' } ] },
    { role => 'developer', content => [{ type => 'text', text => 'no markdown' }] },
    { role => 'assistant', content => 'Earlier answer' },
    { role => 'assistant', content => [{ type => 'text', text => 'more' }] },
    { role => 'user', content => 'Final question' },
];

my $r = $t->post_json($chat,
    { model => 'google/gemini-2.5-pro-thoughts', messages => $msgs,
      max_tokens => 50, temperature => 1.5, top_p => 0.9, stop => 'END',
      seed => 7, n => 1, presence_penalty => 0.5, user => 'u1' },
    headers => { Authorization => 'Bearer sk-client-own-key',
                 Cookie => 'session=abc', 'X-Custom' => 'client-only' });

is($r->{status}, 200, 'answer: 200');
like($r->{headers}{'content-type'}, qr{^application/json}, 'answer: JSON');
is($r->{headers}{'x-ai-model'}, 'google/gemini-2.5-pro-thoughts', 'answer: X-AI-Model');
my $j = $r->{json};
is($j->{object}, 'chat.completion', 'answer: chat.completion');
like($j->{id}, qr/^chatcmpl-ai\d+$/, 'answer: id made up (no responseId)');
is($j->{model}, 'google/gemini-2.5-pro-thoughts', 'answer: model as the client sent it');
is($j->{choices}[0]{message}{role}, 'assistant', 'answer: role');
is($j->{choices}[0]{message}{content}, 'Mock answer to: Final question',
   'answer: content');
ok(!exists $j->{choices}[0]{message}{tool_calls}, 'answer: no tool_calls');
is($j->{choices}[0]{finish_reason}, 'stop', 'answer: STOP -> stop');

# thoughts (3) are billed as output and reported as reasoning tokens
my $in = ptok("be brief\n\nno markdown", 'Hello', 'part one', 'part two',
              'Earlier answer', 'more', 'Final question');
is_deeply($j->{usage},
          { prompt_tokens => $in, completion_tokens => 5 + 3, total_tokens => $in + 8,
            completion_tokens_details => { reasoning_tokens => 3 } },
          "answer: usage = prompt $in, candidates 5 + thoughts 3");

my $rec = last_record();
is($rec->{method}, 'POST', 'upstream: POST');
is($rec->{path}, '/v1beta/models/gemini-2.5-pro-thoughts:generateContent',
   'upstream: /v1beta/models/MODEL:generateContent');
is($rec->{headers}{'x-goog-api-key'}, 'gm-provider-secret', 'upstream: x-goog-api-key');
ok(!exists $rec->{headers}{authorization}, 'upstream: no Authorization');
ok(!exists $rec->{headers}{'x-api-key'}, 'upstream: no x-api-key');
ok(!exists $rec->{headers}{cookie}, 'upstream: no cookies');
ok(!exists $rec->{headers}{'x-custom'}, 'upstream: no other client header');
ok(!grep({ /sk-client-own-key/ } values %{ $rec->{headers} }),
   'upstream: the client key is nowhere');
like($rec->{headers}{'content-type'}, qr{^application/json}, 'upstream: JSON');
is($rec->{headers}{'content-length'}, length($rec->{body}), 'upstream: Content-Length');

my $up = $rec->{body_json};
ok(!exists $up->{$_}, "upstream: no $_ in the body")
    for qw(model stream messages max_tokens temperature top_p stop seed n user
           presence_penalty tools toolConfig);
is_deeply($up->{systemInstruction}, { parts => [{ text => "be brief\n\nno markdown" }] },
          'upstream: system and developer messages joined in systemInstruction');
is_deeply($up->{contents}, [
    { role => 'user', parts => [
        { text => 'Hello' },
        { text => 'part one' },
        { inlineData => { mimeType => 'image/png', data => $png } },
        { fileData => { mimeType => 'image/webp',
                        fileUri => 'https://example.com/cat.webp?x=1' } },
        { inlineData => { mimeType => 'audio/wav', data => 'UklGRg==' } },
        { inlineData => { mimeType => 'application/pdf', data => 'JVBERi0=' } },
        { text => 'part two' } ] },
    { role => 'model', parts => [{ text => 'Earlier answer' }, { text => 'more' }] },
    { role => 'user', parts => [{ text => 'Final question' }] },
], 'upstream: turns merged, assistant -> model, images, audio, PDF as parts '
 . '(file ids, other URLs dropped)')
    or diag(explain($up->{contents}));
is_deeply($up->{generationConfig},
          { maxOutputTokens => 50, temperature => 1.5, topP => 0.9,
            stopSequences => ['END'], seed => 7 },
          'upstream: generationConfig (max_tokens, temperature, top_p, stop, seed)');

# --- max_tokens, stop array, length --------------------------------------------

my $user = [{ role => 'user', content => 'hi there' }];

$r = $t->post_json($chat, { model => 'google/gemini-2.5-flash', messages => $user });
is($r->{status}, 200, 'no max_tokens: 200');
$up = last_record()->{body_json};
ok(!exists $up->{generationConfig},
   'no max_tokens: no generationConfig (ai_default_max_tokens is for Anthropic only)');
ok(!exists $up->{systemInstruction}, 'no system message: no systemInstruction');

$r = $t->post_json($chat, { model => 'google/gemini-2.5-flash', messages => $user,
                            max_completion_tokens => 33, stop => ['a', 'b'] });
is_deeply(last_record()->{body_json}{generationConfig},
          { maxOutputTokens => 33, stopSequences => ['a', 'b'] },
          'max_completion_tokens -> maxOutputTokens, stop array -> stopSequences');

$r = $t->post_json($chat, { model => 'google/gemini-2.5-flash', messages => $user,
                            max_tokens => 2 });
is($r->{status}, 200, 'max_tokens 2: 200');
is($r->{json}{choices}[0]{message}{content}, 'Mock answer', 'max_tokens 2: cut answer');
is($r->{json}{choices}[0]{finish_reason}, 'length', 'max_tokens 2: MAX_TOKENS -> length');
is_deeply($r->{json}{usage},
          { prompt_tokens => 2, completion_tokens => 2, total_tokens => 4 },
          'max_tokens 2: usage without thoughts has no details');

my $schema = { type => 'object', properties => { a => { type => 'integer' } } };
$r = $t->post_json($chat, { model => 'google/gemini-2.5-flash', messages => $user,
    response_format => { type => 'json_schema',
                         json_schema => { name => 's', schema => $schema } } });
is_deeply(last_record()->{body_json}{generationConfig},
          { responseMimeType => 'application/json', responseJsonSchema => $schema },
          'response_format json_schema -> responseMimeType + responseJsonSchema');
$r = $t->post_json($chat, { model => 'google/gemini-2.5-flash', messages => $user,
                            response_format => { type => 'json_object' } });
is_deeply(last_record()->{body_json}{generationConfig},
          { responseMimeType => 'application/json' },
          'response_format json_object -> responseMimeType');

# non-ASCII text and a large image travel intact both ways
my $big = 'A' x 60_000;
my $uni = "caf\x{e9} \x{2014} \x{4e16}\x{754c} \"q\" \\ \x{1f600}";
$r = $t->post_json($chat, { model => 'google/gemini-2.5-flash', messages => [
    { role => 'user', content => [
        { type => 'image_url', image_url => { url => "data:image/jpeg;base64,$big" } },
        { type => 'text', text => $uni } ] }] });
is($r->{status}, 200, 'unicode and a large image: 200');
is($r->{json}{choices}[0]{message}{content}, "Mock answer to: $uni", 'unicode: answer intact');
$up = last_record()->{body_json};
is($up->{contents}[0]{parts}[0]{inlineData}{data}, $big, 'large image: data forwarded whole');
is($up->{contents}[0]{parts}[1]{text}, $uni, 'unicode: prompt intact');

# --- streams ------------------------------------------------------------------

my $s = $t->stream($chat,
    { model => 'google/gemini-2.5-flash-slow100-thoughts', stream => \1,
      stream_options => { include_usage => \1 }, max_tokens => 40,
      messages => [{ role => 'system', content => 'sys' },
                   { role => 'user', content => 'one two three' }] });
is($s->{status}, 200, 'stream: 200');
like($s->{headers}{'content-type'}, qr{^text/event-stream}, 'stream: event-stream');
is($s->{headers}{'x-ai-model'}, 'google/gemini-2.5-flash-slow100-thoughts',
   'stream: X-AI-Model');
ok($s->{complete}, 'stream: the body ended properly');
is($s->{events}[-1], '[DONE]', 'stream: [DONE] last');
is(scalar(grep { $_ eq '[DONE]' } @{ $s->{events} }), 1, 'stream: one [DONE]');
my @c = chunks($s);
is(scalar(@c), scalar(@{ $s->{events} }) - 1, 'stream: every other event is a chunk');
is(scalar(grep { $_->{object} ne 'chat.completion.chunk' } @c), 0,
   'stream: chat.completion.chunk objects');
my %ids = map { $_->{id} => 1 } @c;
is(scalar(keys %ids), 1, 'stream: one id across chunks');
like($c[0]{id}, qr/^chatcmpl-/, 'stream: chatcmpl- id');
is(scalar(grep { $_->{model} ne 'google/gemini-2.5-flash-slow100-thoughts' } @c), 0,
   'stream: the model as sent in every chunk');
is_deeply($c[0]{choices}[0]{delta}, { role => 'assistant', content => '' },
          'stream: role delta first');
is(content_of(@c), 'Mock answer to: one two three', 'stream: deltas join to the answer');
is(scalar(grep { @{ $_->{choices} } && length($_->{choices}[0]{delta}{content} // '') } @c),
   6, 'stream: one content delta per Gemini chunk');
my @fin = grep { @{ $_->{choices} } && $_->{choices}[0]{finish_reason} } @c;
is(scalar(@fin), 1, 'stream: one finish chunk');
is($fin[0]{choices}[0]{finish_reason}, 'stop', 'stream: finish_reason stop');
is_deeply($fin[0]{choices}[0]{delta}, {}, 'stream: finish chunk has an empty delta');
is_deeply($c[-1]{choices}, [], 'stream: the usage chunk last, without choices');
my $sp = ptok('sys', 'one two three');
is_deeply($c[-1]{usage},
          { prompt_tokens => $sp, completion_tokens => 6 + 3,
            total_tokens => $sp + 9,
            completion_tokens_details => { reasoning_tokens => 3 } },
          'stream: usage from the last usageMetadata, thoughts included');
is(scalar(grep { $_->{usage} } @c), 1, 'stream: usage only in the usage chunk');
my @times = @{ $s->{event_times} };
ok($times[-1] - $times[1] >= 0.1 * 5,
   'stream: events spread in time as the provider sent them')
    or diag(explain([map { $_ - $s->{start_time} } @times]));
ok($times[1] - $s->{start_time} < $times[-1] - $s->{start_time} - 0.4,
   'stream: the first events arrive long before the last (not buffered)');

$rec = last_record();
is($rec->{path},
   '/v1beta/models/gemini-2.5-flash-slow100-thoughts:streamGenerateContent?alt=sse',
   'stream upstream: :streamGenerateContent?alt=sse');
ok(!exists $rec->{body_json}{stream}, 'stream upstream: no stream field');
ok(!exists $rec->{body_json}{stream_options}, 'stream upstream: no stream_options');
is_deeply($rec->{body_json}{systemInstruction}, { parts => [{ text => 'sys' }] },
          'stream upstream: systemInstruction');
is($rec->{body_json}{generationConfig}{maxOutputTokens}, 40,
   'stream upstream: maxOutputTokens');
is($rec->{headers}{'x-goog-api-key'}, 'gm-provider-secret', 'stream upstream: x-goog-api-key');

$s = $t->stream($chat, { model => 'google/gemini-2.5-flash', stream => \1,
                         messages => $user, max_tokens => 2 });
is($s->{status}, 200, 'stream without usage: 200');
is($s->{events}[-1], '[DONE]', 'stream without usage: [DONE] last');
@c = chunks($s);
ok(!grep({ exists $_->{usage} } @c), 'stream without usage: no usage chunk');
is(content_of(@c), 'Mock answer', 'stream max_tokens 2: cut answer');
is($c[-1]{choices}[0]{finish_reason}, 'length', 'stream max_tokens 2: MAX_TOKENS -> length');

$s = $t->stream($chat, { model => 'google/gemini-crlf', stream => \1,
                         messages => [{ role => 'user', content => "\x{e9}t\x{e9} \x{2603}" }] });
is($s->{events}[-1], '[DONE]', 'CRLF stream: [DONE]');
is(content_of(chunks($s)), "Mock answer to: \x{e9}t\x{e9} \x{2603}",
   'CRLF stream, non-ASCII: deltas join to the answer');

# --- tools: the request -------------------------------------------------------

my $weather = { type => 'object', properties => { city => { type => 'string' } },
                required => ['city'], additionalProperties => JSON::PP::false,
                '$schema' => 'http://json-schema.org/draft-07/schema#' };
my $tools = [
    { type => 'function', function => { name => 'get_weather',
          description => 'Weather for a city', parameters => $weather } },
    { type => 'function', function => { name => 'get_time',
                                         description => 'The time' } },
];
my $conv = [
    { role => 'system', content => 'use tools' },
    { role => 'user', content => 'weather in Paris?' },
    { role => 'assistant', content => 'Let me check.', tool_calls => [
        { id => 'call_1', type => 'function',
          function => { name => 'get_weather', arguments => '{"city":"Paris"}' } },
        { id => 'call_2', type => 'function',
          function => { name => 'get_time', arguments => '' } } ] },
    { role => 'tool', tool_call_id => 'call_1', content => '{"temp":21}' },
    { role => 'tool', tool_call_id => 'call_2',
      content => [{ type => 'text', text => '12:00' }] },
    { role => 'user', content => 'and tomorrow?' },
];

$r = $t->post_json($chat, { model => 'google/gemini-2.5-flash', messages => $conv,
                            tools => $tools,
                            tool_choice => { type => 'function',
                                             function => { name => 'get_weather' } } });
is($r->{status}, 200, 'tools request: 200');
is($r->{json}{choices}[0]{message}{content}, 'Mock answer to: and tomorrow?',
   'tools request: answered');
$up = last_record()->{body_json};
is_deeply($up->{contents}, [
    { role => 'user', parts => [{ text => 'weather in Paris?' }] },
    { role => 'model', parts => [
        { text => 'Let me check.' },
        { functionCall => { name => 'get_weather', args => { city => 'Paris' } },
          thoughtSignature => 'skip_thought_signature_validator' },
        { functionCall => { name => 'get_time', args => {} } } ] },
    { role => 'user', parts => [
        { functionResponse => { name => 'get_weather',
                                response => { content => { temp => 21 } } } },
        { functionResponse => { name => 'get_time', response => { content => '12:00' } } },
        { text => 'and tomorrow?' } ] },
], 'tools request: tool_calls -> functionCall (first signed), tool messages -> '
 . 'functionResponse in a user turn, named after their call')
    or diag(explain($up->{contents}));
is_deeply($up->{tools}, [{ functionDeclarations => [
    { name => 'get_weather', description => 'Weather for a city',
      parametersJsonSchema => $weather },
    { name => 'get_time', description => 'The time' } ] }],
    'tools request: functionDeclarations with parametersJsonSchema as sent');
is_deeply($up->{toolConfig},
          { functionCallingConfig => { mode => 'ANY',
                                       allowedFunctionNames => ['get_weather'] } },
          'tools request: tool_choice function -> ANY + allowedFunctionNames');
is_deeply($up->{systemInstruction}, { parts => [{ text => 'use tools' }] },
          'tools request: systemInstruction');

for my $case (['auto', 'AUTO'], ['required', 'ANY'], ['none', 'NONE']) {
    $r = $t->post_json($chat, { model => 'google/gemini-2.5-flash', messages => $user,
                                tools => $tools, tool_choice => $case->[0] });
    is($r->{status}, 200, "tool_choice $case->[0]: 200");
    is_deeply(last_record()->{body_json}{toolConfig},
              { functionCallingConfig => { mode => $case->[1] } },
              "tool_choice $case->[0] -> mode $case->[1]");
}

# --- tools: the answer --------------------------------------------------------

my $ask = [{ role => 'user', content => 'weather in Paris' }];
$r = $t->post_json($chat, { model => 'google/gemini-2.5-flash-toolcall',
                            messages => $ask, tools => $tools });
is($r->{status}, 200, 'tool answer: 200');
ok(!exists last_record()->{body_json}{toolConfig}, 'tool answer: no tool_choice, no toolConfig');
my $m = $r->{json}{choices}[0]{message};
is($m->{content}, undef, 'tool answer: content null');
is(scalar @{ $m->{tool_calls} // [] }, 1, 'tool answer: one tool call');
my $call = $m->{tool_calls}[0];
is($call->{id}, 'call_0', 'tool answer: id call_0 (Gemini sent none)');
is($call->{type}, 'function', 'tool answer: type function');
is($call->{function}{name}, 'get_weather', 'tool answer: name');
is_deeply(eval { decode_json($call->{function}{arguments}) },
          { text => 'weather in Paris' }, 'tool answer: arguments are args as JSON text');
is($r->{json}{choices}[0]{finish_reason}, 'tool_calls',
   'tool answer: STOP with a functionCall -> tool_calls');
is_deeply($r->{json}{usage},
          { prompt_tokens => 4, completion_tokens => 6, total_tokens => 10 },
          'tool answer: usage');

$s = $t->stream($chat, { model => 'google/gemini-2.5-flash-toolcall', messages => $ask,
                         tools => $tools, stream => \1,
                         stream_options => { include_usage => \1 } });
is($s->{status}, 200, 'tool stream: 200');
is($s->{events}[-1], '[DONE]', 'tool stream: [DONE] last');
is(last_record()->{path},
   '/v1beta/models/gemini-2.5-flash-toolcall:streamGenerateContent?alt=sse',
   'tool stream: streaming path');
@c = chunks($s);
is_deeply($c[0]{choices}[0]{delta}, { role => 'assistant', content => '' },
          'tool stream: role delta first');
my @tc = map { $_->{choices}[0]{delta}{tool_calls}[0] }
         grep { @{ $_->{choices} } && $_->{choices}[0]{delta}{tool_calls} } @c;
is(scalar @tc, 1, 'tool stream: one delta with the whole call');
is($tc[0]{index}, 0, 'tool stream: index 0');
is($tc[0]{id}, 'call_0', 'tool stream: id');
is($tc[0]{type}, 'function', 'tool stream: type');
is($tc[0]{function}{name}, 'get_weather', 'tool stream: name');
is_deeply(eval { decode_json($tc[0]{function}{arguments}) },
          { text => 'weather in Paris' }, 'tool stream: all the arguments');
is(content_of(@c), '', 'tool stream: no content');
@fin = grep { @{ $_->{choices} } && $_->{choices}[0]{finish_reason} } @c;
is(scalar(@fin), 1, 'tool stream: one finish chunk');
is($fin[0]{choices}[0]{finish_reason}, 'tool_calls', 'tool stream: finish tool_calls');
is_deeply($c[-1]{usage}, { prompt_tokens => 4, completion_tokens => 6, total_tokens => 10 },
          'tool stream: usage chunk');
is(scalar(keys %{{ map { $_->{id} => 1 } @c }}), 1, 'tool stream: one id');

# --- provider errors ----------------------------------------------------------

sub error_ok {
    my ($r, $status, $name, %want) = @_;
    is($r->{status}, $status, "$name: $status");
    like($r->{headers}{'content-type'} // '', qr{^application/json}, "$name: JSON");
    my $e = $r->{json} && $r->{json}{error};
    ok(ref $e eq 'HASH' && exists $e->{type} && exists $e->{param}
       && exists $e->{code} && defined $e->{message} && length $e->{message},
       "$name: an OpenAI error object") or diag($r->{content});
    for my $k (sort keys %want) {
        ref $want{$k} eq 'Regexp' ? like($e->{$k} // '', $want{$k}, "$name: $k")
                                  : is($e->{$k}, $want{$k}, "$name: $k");
    }
    unlike($r->{content} // '', qr/gm-provider-secret/, "$name: no key in it");
}

for my $case ([429, 'rate_limit_exceeded', 'RESOURCE_EXHAUSTED'],
              [400, 'invalid_request_error', 'INVALID_ARGUMENT'],
              [401, 'authentication_error', 'UNAUTHENTICATED'],
              [403, 'permission_error', 'PERMISSION_DENIED'],
              [404, 'not_found_error', 'NOT_FOUND'],
              [500, 'server_error', 'INTERNAL'],
              [503, 'server_error', 'UNAVAILABLE'],
              [504, 'server_error', 'DEADLINE_EXCEEDED']) {
    my ($status, $type, $code) = @$case;
    $r = $t->post_json($chat, { model => "google/x-status$status", messages => $user });
    error_ok($r, $status, "provider $status", type => $type, code => $code,
             message => "mock: status $status requested");
    is($r->{headers}{'x-ai-model'}, "google/x-status$status", "provider $status: X-AI-Model");
}
$r = $t->post_json($chat, { model => 'google/x-status429-retryafter7', messages => $user });
is($r->{headers}{'retry-after'}, 7, 'provider 429: Retry-After passed on');

error_ok($t->post_json($chat, { model => 'google/x-garbage', messages => $user }),
         502, 'provider garbage', code => 'invalid_response');
error_ok($t->post_json($chat, { model => 'google/x-empty', messages => $user }),
         502, 'provider answer without candidates', code => 'invalid_response');
error_ok($t->post_json($chat, { model => 'google/x-cut', messages => $user }),
         502, 'provider cuts its answer', code => 'response_incomplete');

$s = $t->stream($chat, { model => 'google/x-status429', stream => \1, messages => $user });
is($s->{status}, 429, 'stream, provider 429: 429 before any event');
is(eval { decode_json($s->{raw_body})->{error}{code} }, 'RESOURCE_EXHAUSTED',
   'stream, provider 429: OpenAI error');

$s = $t->stream($chat, { model => 'google/x-cut', stream => \1, messages => $user });
is($s->{status}, 200, 'cut stream: began 200');
@c = chunks($s);
is(content_of(@c), 'Mock answer', 'cut stream: the events before the cut arrived');
ok(!grep({ $_ eq '[DONE]' } @{ $s->{events} }), 'cut stream: no [DONE]');
ok(!grep({ @{ $_->{choices} } && $_->{choices}[0]{finish_reason} } @c),
   'cut stream: no finish chunk');
my $last = $s->{json_events}[-1];
is(ref $last && $last->{error}{code}, 'stream_incomplete',
   'cut stream: ends with an OpenAI error event');

$s = $t->stream($chat, { model => 'google/x-garbage', stream => \1, messages => $user });
is($s->{status}, 502, 'garbage stream before any event: 502');
is(eval { decode_json($s->{raw_body})->{error}{code} }, 'stream_error',
   'garbage stream: OpenAI error stream_error');

$s = $t->stream($chat, { model => 'google/x-empty', stream => \1, messages => $user });
is($s->{status}, 502, 'empty stream: 502');
is(eval { decode_json($s->{raw_body})->{error}{code} }, 'stream_incomplete',
   'empty stream: stream_incomplete');

$r = $t->post_json($chat, { model => 'google/gemini-2.5-flash', messages => $user });
is($r->{status}, 200, 'still answering after the failures');

# --- the official openai SDK --------------------------------------------------

SKIP: {
    skip 'openai npm package not installed (./build.sh test installs it)', 14
        unless $t->has_node_sdk('openai');

    $t->clear_records('m1');
    my $answer = 'Mock answer to: Hello from the SDK';
    my $p = ptok('Hello from the SDK');
    my $usage = { prompt_tokens => $p, completion_tokens => 7 + 3,
                  total_tokens => $p + 10,
                  completion_tokens_details => { reasoning_tokens => 3 } };
    my $n = $t->node_sdk('openai_chat.mjs', $t->base_url . '/v1',
                         'google/gemini-2.5-flash-thoughts', 'Hello from the SDK',
                         { AI_GW_API_KEY => 'sk-client-key' });
    is($n->{exit}, 0, 'sdk: exit 0') or diag($n->{stderr});
    my $sj = $n->{json};
    is($sj->{nonstream}{content}, $answer, 'sdk create: content');
    is($sj->{nonstream}{finish_reason}, 'stop', 'sdk create: finish_reason');
    is_deeply($sj->{nonstream}{usage}, $usage, 'sdk create: usage');
    is($sj->{stream}{content}, $answer, 'sdk stream: content');
    is($sj->{stream}{finish_reason}, 'stop', 'sdk stream: finish_reason');
    is($sj->{stream}{usage}, undef, 'sdk stream: no usage chunk unasked');
    is($sj->{stream_usage}{content}, $answer, 'sdk stream with usage: content');
    is_deeply($sj->{stream_usage}{usage}, $usage, 'sdk stream with usage: usage');

    my $recs = $t->mock_records('m1');
    is_deeply([map { $_->{path} } @$recs],
              ['/v1beta/models/gemini-2.5-flash-thoughts:generateContent',
               ('/v1beta/models/gemini-2.5-flash-thoughts:streamGenerateContent?alt=sse') x 2],
              'sdk: three provider calls, on the native paths');
    is(scalar(grep { ($_->{headers}{'x-goog-api-key'} // '') eq 'gm-provider-secret' }
              @$recs), 3, 'sdk: the provider key on every call');
    ok(!grep({ join(' ', values %{ $_->{headers} }) =~ /sk-client-key/ } @$recs),
       'sdk: the client key never reaches the provider');

    $n = $t->node_sdk('openai_chat.mjs', $t->base_url . '/v1', 'google/x-status503');
    is($n->{exit}, 1, 'sdk error: fails');
    is($n->{json}{status}, 503, 'sdk error: 503 seen by the SDK');
}

$t->done_testing_checks;
done_testing;
