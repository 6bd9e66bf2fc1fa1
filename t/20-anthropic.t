#!/usr/bin/perl
# type=anthropic through the gateway: the Messages request the provider
# gets (path, headers, system apart, alternating merged turns, max_tokens
# from the request or ai_default_max_tokens, stop_sequences, sampling,
# images, tool_use / tool_result, tools and tool_choice), the OpenAI answer
# the client gets (content, finish_reason, usage with cache tokens, tool
# calls), streams translated event by event, provider errors, and the
# official openai SDK.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use JSON::PP;
use GatewayTest;

my $t = GatewayTest->new(name => 'anthropic');
plan skip_all => 'module not built' unless $t->has_module;

$t->start_mock(name => 'm1');
$t->write_config($t->config_preamble . "http {\n" . $t->http_preamble . <<'EOF');
    ai_provider claude type=anthropic pass=/_ai/claude key=sk-ant-provider-secret;

    server {
        listen 127.0.0.1:%%PORT%%;

        location /v1/ {
            ai_gateway;
            ai_default_max_tokens 777;
        }

        location /plain/v1/ {
            ai_gateway;
        }

        location /_ai/claude/ {
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
        { type => 'text', text => 'part one', cache_control => { type => 'ephemeral' } },
        { type => 'image_url', image_url => { url => "data:image/png;base64,$png" } },
        { type => 'image_url', image_url => { url => 'https://example.com/cat.jpg',
                                              detail => 'high' } },
        { type => 'image_url', image_url => { url => 'ftp://example.com/no.png' } },
        { type => 'input_audio', input_audio => { data => 'UklGRg==', format => 'wav' } },
        { type => 'file', file => { file_data => 'data:application/pdf;base64,JVBERi0=',
                                    filename => 'a.pdf' } },
        { type => 'file', file => { file_id => 'file-abc' } },
        { type => 'text', text => 'part two' } ] },
    { role => 'developer', content => 'no markdown' },
    { role => 'assistant', content => 'Earlier answer' },
    { role => 'assistant', content => [{ type => 'text', text => 'more' }] },
    { role => 'user', content => 'Final question' },
];

my $r = $t->post_json($chat,
    { model => 'claude/claude-3-7-sonnet-cache', messages => $msgs,
      max_tokens => 50, temperature => 1.5, top_p => 0.9, stop => 'END',
      user => 'user-42', seed => 7, n => 1, presence_penalty => 0.5 },
    headers => { Authorization => 'Bearer sk-client-own-key',
                 Cookie => 'session=abc', 'X-Custom' => 'client-only' });

is($r->{status}, 200, 'answer: 200');
like($r->{headers}{'content-type'}, qr{^application/json}, 'answer: JSON');
is($r->{headers}{'x-ai-model'}, 'claude/claude-3-7-sonnet-cache', 'answer: X-AI-Model');
my $j = $r->{json};
is($j->{object}, 'chat.completion', 'answer: chat.completion');
like($j->{id}, qr/^chatcmpl-msg_mock_/, 'answer: id from the message id');
is($j->{model}, 'claude/claude-3-7-sonnet-cache', 'answer: model as the client sent it');
like($j->{created}, qr/^\d+$/, 'answer: created');
is($j->{choices}[0]{index}, 0, 'answer: choice 0');
is($j->{choices}[0]{message}{role}, 'assistant', 'answer: role');
is($j->{choices}[0]{message}{content}, 'Mock answer to: Final question',
   'answer: content');
ok(!exists $j->{choices}[0]{message}{tool_calls}, 'answer: no tool_calls');
is($j->{choices}[0]{finish_reason}, 'stop', 'answer: end_turn -> stop');

# input_tokens (uncached) + cache_creation 5 + cache_read 7; cached = read
my $in = ptok("be brief\n\nno markdown", 'Hello', 'part one', 'part two',
              'Earlier answer', 'more', 'Final question');
is_deeply($j->{usage},
          { prompt_tokens => $in + 12, completion_tokens => 5,
            total_tokens => $in + 17,
            prompt_tokens_details => { cached_tokens => 7 } },
          "answer: usage = input $in + cache 5 + 7, cached_tokens 7");

my $rec = last_record();
is($rec->{method}, 'POST', 'upstream: POST');
is($rec->{path}, '/v1/messages', 'upstream: /v1/messages');
is($rec->{headers}{'x-api-key'}, 'sk-ant-provider-secret', 'upstream: x-api-key');
is($rec->{headers}{'anthropic-version'}, '2023-06-01', 'upstream: anthropic-version');
ok(!exists $rec->{headers}{authorization}, 'upstream: no Authorization');
ok(!exists $rec->{headers}{cookie}, 'upstream: no cookies');
ok(!exists $rec->{headers}{'x-custom'}, 'upstream: no other client header');
ok(!grep({ /sk-client-own-key/ } values %{ $rec->{headers} }),
   'upstream: the client key is nowhere');
like($rec->{headers}{'content-type'}, qr{^application/json}, 'upstream: JSON');
is($rec->{headers}{'content-length'}, length($rec->{body}), 'upstream: Content-Length');

my $up = $rec->{body_json};
is($up->{model}, 'claude-3-7-sonnet-cache', 'upstream: model without the prefix');
is($up->{max_tokens}, 50, 'upstream: max_tokens from the request');
is($up->{system}, "be brief\n\nno markdown",
   'upstream: system and developer messages joined in the top-level system');
is_deeply($up->{messages}, [
    { role => 'user', content => [
        { type => 'text', text => 'Hello' },
        { type => 'text', text => 'part one', cache_control => { type => 'ephemeral' } },
        { type => 'image', source => { type => 'base64', media_type => 'image/png',
                                       data => $png } },
        { type => 'image', source => { type => 'url',
                                       url => 'https://example.com/cat.jpg' } },
        { type => 'document', source => { type => 'base64',
                                          media_type => 'application/pdf',
                                          data => 'JVBERi0=' } },
        { type => 'text', text => 'part two' } ] },
    { role => 'assistant', content => [
        { type => 'text', text => 'Earlier answer' },
        { type => 'text', text => 'more' } ] },
    { role => 'user', content => [{ type => 'text', text => 'Final question' }] },
], 'upstream: turns merged to alternate, content blocks, images, PDF, cache_control '
 . '(audio, file ids, other URLs dropped)')
    or diag(explain($up->{messages}));
ok(!grep({ $_->{role} eq 'system' || $_->{role} eq 'developer' } @{ $up->{messages} }),
   'upstream: no system role in messages');
is_deeply($up->{stop_sequences}, ['END'], 'upstream: stop string -> stop_sequences');
is($up->{temperature}, 1, 'upstream: temperature 1.5 clamped to 1');
ok(!exists $up->{top_p}, 'upstream: top_p not sent with temperature');
is_deeply($up->{metadata}, { user_id => 'user-42' }, 'upstream: user -> metadata.user_id');
ok(!exists $up->{$_}, "upstream: no $_")
    for qw(stream stop seed n presence_penalty user max_completion_tokens
           stream_options tools tool_choice);

# --- max_tokens, stop array, top_p alone, length ------------------------------

my $user = [{ role => 'user', content => 'hi there' }];

$r = $t->post_json($chat, { model => 'claude/sonnet', messages => $user,
                            top_p => 0.3, stop => ['a', 'b'] });
is($r->{status}, 200, 'no max_tokens: 200');
$up = last_record()->{body_json};
is($up->{max_tokens}, 777, 'no max_tokens: ai_default_max_tokens is sent');
is($up->{top_p}, 0.3, 'top_p alone: sent');
ok(!exists $up->{temperature}, 'top_p alone: no temperature');
is_deeply($up->{stop_sequences}, ['a', 'b'], 'stop array -> stop_sequences');
ok(!exists $up->{system}, 'no system message: no system');

$r = $t->post_json('/plain/v1/chat/completions',
                   { model => 'claude/sonnet', messages => $user });
is($r->{status}, 200, 'no directive: 200');
is(last_record()->{body_json}{max_tokens}, 4096,
   'no max_tokens, no directive: 4096');

$r = $t->post_json($chat, { model => 'claude/sonnet', messages => $user,
                            max_completion_tokens => 33 });
is(last_record()->{body_json}{max_tokens}, 33, 'max_completion_tokens -> max_tokens');

$r = $t->post_json($chat, { model => 'claude/sonnet', messages => $user,
                            max_tokens => 2 });
is($r->{status}, 200, 'max_tokens 2: 200');
is($r->{json}{choices}[0]{message}{content}, 'Mock answer', 'max_tokens 2: cut answer');
is($r->{json}{choices}[0]{finish_reason}, 'length', 'max_tokens 2: max_tokens -> length');
is_deeply($r->{json}{usage},
          { prompt_tokens => 2, completion_tokens => 2, total_tokens => 4 },
          'max_tokens 2: usage without cache fields has no details');

# non-ASCII text and a large image travel intact both ways
my $big = 'A' x 60_000;
$r = $t->post_json($chat, { model => 'claude/sonnet', messages => [
    { role => 'user', content => [
        { type => 'image_url', image_url => { url => "data:image/jpeg;base64,$big" } },
        { type => 'text', text => "caf\x{e9} \x{2014} \x{4e16}\x{754c} \"q\" \\ \x{1f600}" } ] }] });
is($r->{status}, 200, 'unicode and a large image: 200');
is($r->{json}{choices}[0]{message}{content},
   "Mock answer to: caf\x{e9} \x{2014} \x{4e16}\x{754c} \"q\" \\ \x{1f600}",
   'unicode: answer intact');
$up = last_record()->{body_json};
is($up->{messages}[0]{content}[0]{source}{data}, $big, 'large image: data forwarded whole');
is($up->{messages}[0]{content}[0]{source}{media_type}, 'image/jpeg', 'large image: media type');
is($up->{messages}[0]{content}[1]{text},
   "caf\x{e9} \x{2014} \x{4e16}\x{754c} \"q\" \\ \x{1f600}", 'unicode: prompt intact');

# --- streams ------------------------------------------------------------------

my $s = $t->stream($chat,
    { model => 'claude/sonnet-slow100-cache', stream => \1,
      stream_options => { include_usage => \1 },
      messages => [{ role => 'system', content => 'sys' },
                   { role => 'user', content => 'one two three' }] });
is($s->{status}, 200, 'stream: 200');
like($s->{headers}{'content-type'}, qr{^text/event-stream}, 'stream: event-stream');
is($s->{headers}{'x-ai-model'}, 'claude/sonnet-slow100-cache', 'stream: X-AI-Model');
ok($s->{complete}, 'stream: the body ended properly');
is($s->{events}[-1], '[DONE]', 'stream: [DONE] last');
is(scalar(grep { $_ eq '[DONE]' } @{ $s->{events} }), 1, 'stream: one [DONE]');
my @c = chunks($s);
is(scalar(@c), scalar(@{ $s->{events} }) - 1, 'stream: every other event is a chunk');
is(scalar(grep { $_->{object} ne 'chat.completion.chunk' } @c), 0,
   'stream: chat.completion.chunk objects');
my %ids = map { $_->{id} => 1 } @c;
is(scalar(keys %ids), 1, 'stream: one id across chunks');
like($c[0]{id}, qr/^chatcmpl-msg_mock_/, 'stream: id from message_start');
is(scalar(grep { $_->{model} ne 'claude/sonnet-slow100-cache' } @c), 0,
   'stream: the model as sent in every chunk');
is_deeply($c[0]{choices}[0]{delta}, { role => 'assistant', content => '' },
          'stream: role delta first');
is(content_of(@c), 'Mock answer to: one two three', 'stream: deltas join to the answer');
is(scalar(grep { @{ $_->{choices} } && defined $_->{choices}[0]{delta}{content}
                 && length $_->{choices}[0]{delta}{content} } @c),
   6, 'stream: one content delta per provider text_delta');
my @fin = grep { @{ $_->{choices} } && $_->{choices}[0]{finish_reason} } @c;
is(scalar(@fin), 1, 'stream: one finish chunk');
is($fin[0]{choices}[0]{finish_reason}, 'stop', 'stream: finish_reason stop');
is_deeply($fin[0]{choices}[0]{delta}, {}, 'stream: finish chunk has an empty delta');
is_deeply($c[-1]{choices}, [], 'stream: the usage chunk last, without choices');
is_deeply($c[-1]{usage},
          { prompt_tokens => ptok('sys', 'one two three') + 12,
            completion_tokens => 6,
            total_tokens => ptok('sys', 'one two three') + 18,
            prompt_tokens_details => { cached_tokens => 7 } },
          'stream: usage from message_start and message_delta');
is(scalar(grep { $_->{usage} } @c), 1, 'stream: usage only in the usage chunk');
my @times = @{ $s->{event_times} };
ok($times[-1] - $times[1] >= 0.1 * 6,
   'stream: events spread in time as the provider sent them')
    or diag(explain([map { $_ - $s->{start_time} } @times]));
ok($times[1] - $s->{start_time} < $times[-1] - $s->{start_time} - 0.4,
   'stream: the first events arrive long before the last (not buffered)');

$rec = last_record();
is($rec->{path}, '/v1/messages', 'stream upstream: /v1/messages');
is($rec->{body_json}{stream}, JSON::PP::true, 'stream upstream: stream true');
is($rec->{body_json}{system}, 'sys', 'stream upstream: system');
ok(!exists $rec->{body_json}{stream_options}, 'stream upstream: no stream_options');
is($rec->{headers}{'x-api-key'}, 'sk-ant-provider-secret', 'stream upstream: x-api-key');

$s = $t->stream($chat, { model => 'claude/sonnet', stream => \1,
                         messages => $user, max_tokens => 2 });
is($s->{status}, 200, 'stream without usage: 200');
is($s->{events}[-1], '[DONE]', 'stream without usage: [DONE] last');
@c = chunks($s);
ok(!grep({ exists $_->{usage} } @c), 'stream without usage: no usage chunk');
is(content_of(@c), 'Mock answer', 'stream max_tokens 2: cut answer');
is($c[-1]{choices}[0]{finish_reason}, 'length', 'stream max_tokens 2: length');

$s = $t->stream($chat, { model => 'claude/sonnet-crlf', stream => \1,
                         messages => [{ role => 'user', content => "\x{e9}t\x{e9} \x{2603}" }] });
is($s->{events}[-1], '[DONE]', 'CRLF stream: [DONE]');
is(content_of(chunks($s)), "Mock answer to: \x{e9}t\x{e9} \x{2603}",
   'CRLF stream, non-ASCII: deltas join to the answer');

# --- tools: the request -------------------------------------------------------

my $weather = { type => 'object', properties => { city => { type => 'string' } },
                required => ['city'], additionalProperties => JSON::PP::false };
my $tools = [
    { type => 'function', function => { name => 'get_weather',
          description => 'Weather for a city', parameters => $weather } },
    { type => 'function', function => { name => 'get_time' } },
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

$r = $t->post_json($chat, { model => 'claude/sonnet', messages => $conv,
                            tools => $tools, parallel_tool_calls => \0,
                            tool_choice => { type => 'function',
                                             function => { name => 'get_weather' } } });
is($r->{status}, 200, 'tools request: 200');
is($r->{json}{choices}[0]{message}{content}, 'Mock answer to: and tomorrow?',
   'tools request: answered');
$up = last_record()->{body_json};
is_deeply($up->{messages}, [
    { role => 'user', content => [{ type => 'text', text => 'weather in Paris?' }] },
    { role => 'assistant', content => [
        { type => 'text', text => 'Let me check.' },
        { type => 'tool_use', id => 'call_1', name => 'get_weather',
          input => { city => 'Paris' } },
        { type => 'tool_use', id => 'call_2', name => 'get_time', input => {} } ] },
    { role => 'user', content => [
        { type => 'tool_result', tool_use_id => 'call_1', content => '{"temp":21}' },
        { type => 'tool_result', tool_use_id => 'call_2', content => '12:00' },
        { type => 'text', text => 'and tomorrow?' } ] },
], 'tools request: tool_calls -> tool_use, tool messages -> tool_result in a user turn')
    or diag(explain($up->{messages}));
is_deeply($up->{tools}, [
    { name => 'get_weather', description => 'Weather for a city',
      input_schema => $weather },
    { name => 'get_time', input_schema => { type => 'object', properties => {} } },
], 'tools request: tools with input_schema');
is_deeply($up->{tool_choice},
          { type => 'tool', name => 'get_weather', disable_parallel_tool_use => JSON::PP::true },
          'tools request: tool_choice function -> tool, parallel_tool_calls false');
is($up->{system}, 'use tools', 'tools request: system');

# a user text between the call and its result: the merged user turn must
# still start with the tool_result
$r = $t->post_json($chat, { model => 'claude/sonnet', tools => $tools, messages => [
    { role => 'user', content => 'weather?' },
    { role => 'assistant', tool_calls => [{ id => 'call_9', type => 'function',
        function => { name => 'get_weather', arguments => '{"city":"Oslo"} trailing' } }] },
    { role => 'user', content => 'hurry' },
    { role => 'tool', tool_call_id => 'call_9', content => 'cold' } ] });
is($r->{status}, 200, 'tool result after user text: 200');
is($r->{json}{choices}[0]{message}{content}, 'Mock answer to: hurry',
   'tool result after user text: answered');
is_deeply(last_record()->{body_json}{messages}, [
    { role => 'user', content => [{ type => 'text', text => 'weather?' }] },
    { role => 'assistant', content => [{ type => 'tool_use', id => 'call_9',
                                         name => 'get_weather', input => {} }] },
    { role => 'user', content => [
        { type => 'tool_result', tool_use_id => 'call_9', content => 'cold' },
        { type => 'text', text => 'hurry' } ] },
], 'tool result after user text: tool_result first in the user turn, '
 . 'arguments that are not one JSON object -> {}')
    or diag(explain(last_record()->{body_json}{messages}));

for my $case (['auto', { type => 'auto' }], ['required', { type => 'any' }],
              ['none', { type => 'none' }]) {
    $r = $t->post_json($chat, { model => 'claude/sonnet', messages => $user,
                                tools => $tools, tool_choice => $case->[0] });
    is($r->{status}, 200, "tool_choice $case->[0]: 200");
    is_deeply(last_record()->{body_json}{tool_choice}, $case->[1],
              "tool_choice $case->[0] -> " . $JSON->encode($case->[1]));
}

# --- tools: the answer --------------------------------------------------------

my $ask = [{ role => 'user', content => 'weather in Paris' }];
$r = $t->post_json($chat, { model => 'claude/sonnet-toolcall', messages => $ask,
                            tools => $tools });
is($r->{status}, 200, 'tool answer: 200');
my $m = $r->{json}{choices}[0]{message};
is($m->{content}, undef, 'tool answer: content null');
is(scalar @{ $m->{tool_calls} // [] }, 1, 'tool answer: one tool call');
my $call = $m->{tool_calls}[0];
like($call->{id}, qr/^toolu_mock_\d+$/, 'tool answer: id of the tool_use');
is($call->{type}, 'function', 'tool answer: type function');
is($call->{function}{name}, 'get_weather', 'tool answer: name');
is_deeply(eval { decode_json($call->{function}{arguments}) },
          { text => 'weather in Paris' }, 'tool answer: arguments are the input as JSON text');
is($r->{json}{choices}[0]{finish_reason}, 'tool_calls', 'tool answer: tool_use -> tool_calls');
is_deeply($r->{json}{usage},
          { prompt_tokens => 4, completion_tokens => 6, total_tokens => 10 },
          'tool answer: usage');
is_deeply(last_record()->{body_json}{tool_choice}, { type => 'auto' },
          'tool answer: tools without tool_choice -> auto');

$s = $t->stream($chat, { model => 'claude/sonnet-toolcall', messages => $ask,
                         tools => $tools, stream => \1,
                         stream_options => { include_usage => \1 } });
is($s->{status}, 200, 'tool stream: 200');
is($s->{events}[-1], '[DONE]', 'tool stream: [DONE] last');
@c = chunks($s);
is_deeply($c[0]{choices}[0]{delta}, { role => 'assistant', content => '' },
          'tool stream: role delta first');
my @tc = map { $_->{choices}[0]{delta}{tool_calls}[0] }
         grep { @{ $_->{choices} } && $_->{choices}[0]{delta}{tool_calls} } @c;
is(scalar @tc, 3, 'tool stream: the call, then two argument fragments (empty one skipped)');
like($tc[0]{id}, qr/^toolu_mock_\d+$/, 'tool stream: first delta has the id');
is($tc[0]{type}, 'function', 'tool stream: first delta has the type');
is($tc[0]{function}{name}, 'get_weather', 'tool stream: first delta has the name');
is($tc[0]{function}{arguments}, '', 'tool stream: first delta has empty arguments');
is(scalar(grep { $_->{index} != 0 } @tc), 0, 'tool stream: index 0 throughout');
ok(!grep({ exists $_->{id} } @tc[1 .. $#tc]), 'tool stream: later deltas carry no id');
is_deeply(eval { decode_json(join '', map { $_->{function}{arguments} } @tc) },
          { text => 'weather in Paris' }, 'tool stream: fragments join to the arguments');
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
    unlike($r->{content} // '', qr/sk-ant-provider-secret/, "$name: no key in it");
}

for my $case ([429, 429, 'rate_limit_exceeded', 'rate_limit_error'],
              [529, 503, 'server_error', 'overloaded_error'],
              [400, 400, 'invalid_request_error', 'invalid_request_error'],
              [401, 401, 'authentication_error', 'authentication_error'],
              [403, 403, 'permission_error', 'permission_error'],
              [404, 404, 'not_found_error', 'not_found_error'],
              [413, 413, 'invalid_request_error', 'request_too_large'],
              [500, 500, 'server_error', 'api_error']) {
    my ($sent, $status, $type, $code) = @$case;
    $r = $t->post_json($chat, { model => "claude/x-status$sent", messages => $user });
    error_ok($r, $status, "provider $sent", type => $type, code => $code,
             message => "mock: status $sent requested");
    is($r->{headers}{'x-ai-model'}, "claude/x-status$sent", "provider $sent: X-AI-Model");
}
$r = $t->post_json($chat, { model => 'claude/x-status429-retryafter7', messages => $user });
is($r->{headers}{'retry-after'}, 7, 'provider 429: Retry-After passed on');

error_ok($t->post_json($chat, { model => 'claude/x-garbage', messages => $user }),
         502, 'provider garbage', code => 'invalid_response');
error_ok($t->post_json($chat, { model => 'claude/x-empty', messages => $user }),
         502, 'provider answer without content', code => 'invalid_response');
error_ok($t->post_json($chat, { model => 'claude/x-cut', messages => $user }),
         502, 'provider cuts its answer', code => 'response_incomplete');

$s = $t->stream($chat, { model => 'claude/x-status529', stream => \1, messages => $user });
is($s->{status}, 503, 'stream, provider 529: 503 before any event');
is(eval { decode_json($s->{raw_body})->{error}{code} }, 'overloaded_error',
   'stream, provider 529: OpenAI error');

$s = $t->stream($chat, { model => 'claude/x-cut', stream => \1, messages => $user });
is($s->{status}, 200, 'cut stream: began 200');
@c = chunks($s);
is(content_of(@c), 'Mock answer', 'cut stream: the events before the cut arrived');
ok(!grep({ $_ eq '[DONE]' } @{ $s->{events} }), 'cut stream: no [DONE]');
ok(!grep({ @{ $_->{choices} } && $_->{choices}[0]{finish_reason} } @c),
   'cut stream: no finish chunk');
my $last = $s->{json_events}[-1];
is(ref $last && $last->{error}{code}, 'stream_incomplete',
   'cut stream: ends with an OpenAI error event');

$s = $t->stream($chat, { model => 'claude/x-garbage', stream => \1, messages => $user });
is($s->{status}, 502, 'garbage stream before any event: 502');
is(eval { decode_json($s->{raw_body})->{error}{code} }, 'stream_error',
   'garbage stream: OpenAI error stream_error');
ok(!grep({ $_ eq '[DONE]' } @{ $s->{events} }), 'garbage stream: no [DONE]');

$r = $t->post_json($chat, { model => 'claude/sonnet', messages => $user });
is($r->{status}, 200, 'still answering after the failures');

# --- the official openai SDK --------------------------------------------------

SKIP: {
    skip 'openai npm package not installed (./build.sh test installs it)', 14
        unless $t->has_node_sdk('openai');

    $t->clear_records('m1');
    my $answer = 'Mock answer to: Hello from the SDK';
    my $usage = { prompt_tokens => ptok('Hello from the SDK') + 12,
                  completion_tokens => 7,
                  total_tokens => ptok('Hello from the SDK') + 19,
                  prompt_tokens_details => { cached_tokens => 7 } };
    my $n = $t->node_sdk('openai_chat.mjs', $t->base_url . '/v1',
                         'claude/claude-3-7-sonnet-cache', 'Hello from the SDK',
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
    is(scalar @$recs, 3, 'sdk: three provider calls');
    is(scalar(grep { ($_->{headers}{'x-api-key'} // '') eq 'sk-ant-provider-secret' }
              @$recs), 3, 'sdk: the provider key on every call');
    ok(!grep({ join(' ', values %{ $_->{headers} }) =~ /sk-client-key/ } @$recs),
       'sdk: the client key never reaches the provider');

    $n = $t->node_sdk('openai_chat.mjs', $t->base_url . '/v1', 'claude/x-status529');
    is($n->{exit}, 1, 'sdk error: fails');
    is($n->{json}{status}, 503, 'sdk error: Anthropic 529 seen as 503');
}

$t->done_testing_checks;
done_testing;
