#!/usr/bin/perl
# The test harness and the mock provider on their own (no nginx, no
# module): every wire format, the deterministic content / usage rule, the
# behaviours, the records, and the HTTP / SSE helpers.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";

use IO::Socket::INET;
use JSON::PP;
use Test::More;
use Time::HiRes qw(time);
use GatewayTest;

my $t = GatewayTest->new(name => 'harness');
ok(-d $t->prefix . "/$_", "prefix has $_/") for qw(logs conf temp);
like($t->port, qr/^\d+$/, 'gateway port chosen');
isnt($t->free_port, $t->port, 'free_port gives another port');

my $port = $t->start_mock(name => 'm1');
like($port, qr/^\d+$/, "mock started on port $port");
my %M = (port => $port);        # options to talk to the mock directly

my $json = JSON::PP->new->canonical;
sub user { return { role => 'user', content => $_[0] } }

# Expected usage: prompt = ceil(chars / 4), min 1; completion = words.
sub ptok { my $n = 0; $n += length for @_; return $n ? int(($n + 3) / 4) : 1 }
sub words { my @w = split ' ', $_[0]; return scalar @w }

# ------------------------------------------------------------------ OpenAI

my $r = $t->post_json('/v1/chat/completions', {
    model => 'gpt-4o',
    messages => [{ role => 'system', content => 'You are terse.' },
                 user('First question'),
                 { role => 'assistant', content => 'First answer' },
                 user('Hello world')] }, %M);
is($r->{status}, 200, 'openai: 200');
my $j = $r->{json};
is($j->{object}, 'chat.completion', 'openai: object');
is($j->{model}, 'gpt-4o', 'openai: model echoed');
like($j->{id}, qr/^chatcmpl-/, 'openai: id');
is($j->{choices}[0]{message}{role}, 'assistant', 'openai: role');
is($j->{choices}[0]{message}{content}, 'Mock answer to: Hello world',
   'openai: answer to the last user message');
is($j->{choices}[0]{finish_reason}, 'stop', 'openai: finish_reason');
my $pt = ptok('You are terse.', 'First question', 'First answer', 'Hello world');
is_deeply($j->{usage}, { prompt_tokens => $pt, completion_tokens => 5,
                         total_tokens => $pt + 5 }, "openai: usage ($pt + 5)");
like($r->{headers}{'content-type'}, qr{application/json}, 'openai: JSON type');

# content-part arrays: text parts joined with a space
$r = $t->post_json('/v1/chat/completions', { model => 'm', messages => [
    { role => 'user', content => [
        { type => 'text', text => 'Describe' },
        { type => 'image_url', image_url => { url => 'http://x/y.png' } },
        { type => 'text', text => 'this image' } ] }] }, %M);
is($r->{json}{choices}[0]{message}{content}, 'Mock answer to: Describe this image',
   'openai: content parts joined');
is($r->{json}{usage}{prompt_tokens}, ptok('Describe', 'this image'),
   'openai: parts counted without separators');

# max_tokens cuts the answer and says "length"
$r = $t->post_json('/v1/chat/completions',
    { model => 'm', max_tokens => 2, messages => [user('a b c d')] }, %M);
is($r->{json}{choices}[0]{message}{content}, 'Mock answer', 'openai: max_tokens cut');
is($r->{json}{choices}[0]{finish_reason}, 'length', 'openai: length');
is($r->{json}{usage}{completion_tokens}, 2, 'openai: cut usage');

# stream without usage
$r = $t->stream('/v1/chat/completions',
    { model => 'gpt-4o', stream => JSON::PP::true, messages => [user('Tell me a joke')] }, %M);
is($r->{status}, 200, 'openai stream: 200');
like($r->{headers}{'content-type'}, qr{text/event-stream}, 'openai stream: SSE type');
is($r->{headers}{'transfer-encoding'}, 'chunked', 'openai stream: chunked');
ok($r->{complete} && !$r->{closed_early}, 'openai stream: complete');
ok($r->{done}, 'openai stream: [DONE]');
is($r->{events}[-1], '[DONE]', 'openai stream: [DONE] last');
my @ev = grep { defined } @{$r->{json_events}};
is($ev[0]{choices}[0]{delta}{role}, 'assistant', 'openai stream: role delta first');
my @deltas = map { $_->{choices}[0]{delta}{content} }
             grep { @{$_->{choices}} && defined $_->{choices}[0]{delta}{content}
                    && length $_->{choices}[0]{delta}{content} } @ev;
is(join('', @deltas), 'Mock answer to: Tell me a joke', 'openai stream: deltas join');
is(scalar @deltas, words('Mock answer to: Tell me a joke'), 'openai stream: one delta per word');
is($ev[-1]{choices}[0]{finish_reason}, 'stop', 'openai stream: finish chunk last');
ok(!grep({ exists $_->{usage} } @ev), 'openai stream: no usage without include_usage');
is($ev[0]{object}, 'chat.completion.chunk', 'openai stream: chunk object');
is(scalar @{$r->{event_times}}, scalar @{$r->{events}}, 'stream: a time per event');

# stream with include_usage
$r = $t->stream('/v1/chat/completions',
    { model => 'gpt-4o', stream => JSON::PP::true,
      stream_options => { include_usage => JSON::PP::true },
      messages => [user('Tell me a joke')] }, %M);
@ev = grep { defined } @{$r->{json_events}};
is_deeply($ev[-1]{choices}, [], 'openai stream usage: last chunk has no choices');
is_deeply($ev[-1]{usage}, { prompt_tokens => ptok('Tell me a joke'),
    completion_tokens => 7, total_tokens => ptok('Tell me a joke') + 7 },
    'openai stream usage: usage chunk');
is($ev[-2]{choices}[0]{finish_reason}, 'stop', 'openai stream usage: finish before usage');
ok($r->{done}, 'openai stream usage: [DONE]');

# GET /v1/models
$r = $t->get('/v1/models', %M);
is($r->{json}{object}, 'list', 'models: list');

# --------------------------------------------------------------- Anthropic

my $amsg = { model => 'claude-3-7-sonnet', max_tokens => 100,
             system => 'Be kind.', messages => [user('Hi there')] };
$r = $t->post_json('/v1/messages', $amsg, %M);
is($r->{status}, 200, 'anthropic: 200');
$j = $r->{json};
is($j->{type}, 'message', 'anthropic: type');
is($j->{model}, 'claude-3-7-sonnet', 'anthropic: model');
is_deeply($j->{content}, [{ type => 'text', text => 'Mock answer to: Hi there' }],
          'anthropic: content');
is($j->{stop_reason}, 'end_turn', 'anthropic: stop_reason');
is_deeply($j->{usage}, { input_tokens => ptok('Be kind.', 'Hi there'), output_tokens => 5 },
          'anthropic: usage');

# system as text blocks, content as blocks, cache token
$r = $t->post_json('/v1/messages', { model => 'claude-cache', max_tokens => 100,
    system => [{ type => 'text', text => 'Sys one' }],
    messages => [{ role => 'user', content => [{ type => 'text', text => 'Blocky' }] }] }, %M);
is_deeply($r->{json}{usage}, { input_tokens => ptok('Sys one', 'Blocky'), output_tokens => 4,
    cache_creation_input_tokens => 5, cache_read_input_tokens => 7 },
    'anthropic: cache usage');

$r = $t->post_json('/v1/messages', { model => 'c', messages => [user('x')] }, %M);
is($r->{status}, 400, 'anthropic: max_tokens required');
is($r->{json}{type}, 'error', 'anthropic: error form');
is($r->{json}{error}{type}, 'invalid_request_error', 'anthropic: error type');
$r = $t->post_json('/v1/messages', { model => 'c', max_tokens => 5,
    messages => [{ role => 'system', content => 's' }, user('x')] }, %M);
is($r->{status}, 400, 'anthropic: system role in messages refused');

$r = $t->stream('/v1/messages', { %$amsg, model => 'claude-cache', stream => JSON::PP::true }, %M);
is($r->{status}, 200, 'anthropic stream: 200');
my @names = @{$r->{event_names}};
is_deeply([@names[0 .. 2]], [qw(message_start content_block_start ping)],
          'anthropic stream: opening events');
is_deeply([@names[-3 .. -1]], [qw(content_block_stop message_delta message_stop)],
          'anthropic stream: closing events');
@ev = @{$r->{json_events}};
is($ev[0]{message}{usage}{input_tokens}, ptok('Be kind.', 'Hi there'),
   'anthropic stream: input tokens in message_start');
is($ev[0]{message}{usage}{output_tokens}, 1, 'anthropic stream: output 1 at start');
is($ev[0]{message}{usage}{cache_read_input_tokens}, 7, 'anthropic stream: cache usage');
my @text = map { $_->{delta}{text} } grep { $_->{type} eq 'content_block_delta' } @ev;
is(join('', @text), 'Mock answer to: Hi there', 'anthropic stream: deltas join');
is($ev[-2]{delta}{stop_reason}, 'end_turn', 'anthropic stream: stop_reason');
is($ev[-2]{usage}{output_tokens}, 5, 'anthropic stream: output_tokens');
ok(!$r->{done}, 'anthropic stream: no [DONE]');
ok($r->{complete}, 'anthropic stream: complete');

$r = $t->post_json('/v1/messages', { %$amsg, model => 'claude-status529' }, %M);
is($r->{status}, 529, 'anthropic: status529');
is($r->{json}{error}{type}, 'overloaded_error', 'anthropic: overloaded_error');

# ------------------------------------------------------------------ Gemini

my $gbody = { systemInstruction => { parts => [{ text => 'Sys' }] },
              contents => [{ role => 'user', parts => [{ text => 'Old' }] },
                           { role => 'model', parts => [{ text => 'Older answer' }] },
                           { role => 'user', parts => [{ text => 'Why is' }, { text => 'the sky blue?' }] }] };
my $gp = ptok('Sys', 'Old', 'Older answer', 'Why is', 'the sky blue?');
$r = $t->post_json('/v1beta/models/gemini-2.5-pro:generateContent', $gbody, %M);
is($r->{status}, 200, 'gemini: 200');
$j = $r->{json};
is($j->{candidates}[0]{content}{parts}[0]{text}, 'Mock answer to: Why is the sky blue?',
   'gemini: answer');
is($j->{candidates}[0]{content}{role}, 'model', 'gemini: role model');
is($j->{candidates}[0]{finishReason}, 'STOP', 'gemini: finishReason');
is($j->{modelVersion}, 'gemini-2.5-pro', 'gemini: modelVersion');
is_deeply($j->{usageMetadata}, { promptTokenCount => $gp, candidatesTokenCount => 8,
                                 totalTokenCount => $gp + 8 }, 'gemini: usage');

$r = $t->stream('/v1beta/models/gemini-thoughts:streamGenerateContent?alt=sse', $gbody, %M);
is($r->{status}, 200, 'gemini stream: 200');
@ev = @{$r->{json_events}};
is(scalar @ev, 8, 'gemini stream: one chunk per word');
is(join('', map { $_->{candidates}[0]{content}{parts}[0]{text} } @ev),
   'Mock answer to: Why is the sky blue?', 'gemini stream: parts join');
is_deeply([map { $_->{usageMetadata}{candidatesTokenCount} } @ev], [1 .. 8],
          'gemini stream: running counts');
is($ev[-1]{usageMetadata}{thoughtsTokenCount}, 3, 'gemini stream: thoughts');
is($ev[-1]{usageMetadata}{totalTokenCount}, $gp + 8 + 3, 'gemini stream: total has thoughts');
is($ev[-1]{candidates}[0]{finishReason}, 'STOP', 'gemini stream: finishReason last');
ok(!exists $ev[-2]{candidates}[0]{finishReason}, 'gemini stream: not before');
ok(!$r->{done} && $r->{complete}, 'gemini stream: no [DONE], complete');

$r = $t->stream('/v1beta/models/gemini-crlf:streamGenerateContent?alt=sse', $gbody, %M);
is(scalar(grep { defined } @{$r->{json_events}}), 8, 'gemini stream: CRLF events parsed');
like($r->{raw_body}, qr/\r\n\r\n/, 'gemini stream: CRLF on the wire');

$r = $t->post_json('/v1beta/models/gemini-status429:generateContent', $gbody, %M);
is($r->{status}, 429, 'gemini: 429');
is_deeply($r->{json}, { error => { code => 429, status => 'RESOURCE_EXHAUSTED',
    message => 'mock: status 429 requested' } }, 'gemini: Google error form');
is($r->{headers}{'retry-after'}, 1, 'gemini: Retry-After default 1');

$r = $t->post_json('/v1beta/models/g:generateContent',
                   { contents => [{ role => 'assistant', parts => [{ text => 'x' }] }] }, %M);
is($r->{status}, 400, 'gemini: role assistant refused');

# -------------------------------------------------------------- behaviours

$r = $t->post_json('/v1/chat/completions',
    { model => 'x-status429-retryafter2-retryafterms1500', messages => [user('q')] }, %M);
is($r->{status}, 429, "status 429");
is($r->{headers}{'retry-after'}, 2, '429: Retry-After');
is($r->{headers}{'retry-after-ms'}, 1500, '429: retry-after-ms');
is($r->{json}{error}{code}, 'rate_limit_exceeded', '429: OpenAI error object');
$r = $t->post_json('/v1/chat/completions', { model => 'x-status500', messages => [user('q')] }, %M);
is($r->{status}, 500, "status 500");
is($r->{json}{error}{type}, 'server_error', '500: server_error');

$r = $t->post_json('/v1/chat/completions', { model => 'x-garbage', messages => [user('q')] }, %M);
is($r->{status}, 200, 'garbage: 200');
ok(length $r->{content} && !defined $r->{json}, 'garbage: body is not JSON');
$r = $t->stream('/v1/chat/completions',
    { model => 'x-garbage', stream => JSON::PP::true, messages => [user('q')] }, %M);
is($r->{status}, 200, 'garbage stream: 200');
is(scalar @{$r->{events}}, 1, 'garbage stream: one event');
ok(!defined $r->{json_events}[0], 'garbage stream: not JSON');
ok($r->{closed_early}, 'garbage stream: closed without terminator');

$r = $t->post_json('/v1/chat/completions', { model => 'x-empty', messages => [user('q')] }, %M);
is_deeply($r->{json}, {}, 'empty: {}');

$r = $t->post_json('/v1/chat/completions', { model => 'x-drop', messages => [user('q')] }, %M);
is($r->{status}, 599, 'drop: no response');
$r = $t->stream('/v1/chat/completions', { model => 'x-drop', messages => [user('q')] }, %M);
ok($r->{error} && !$r->{status}, 'drop: stream sees no headers');

$r = $t->post_json('/v1/chat/completions', { model => 'x-cut', messages => [user('q')] }, %M);
is($r->{status}, 599, 'cut: short body is an error for HTTP::Tiny');
$r = $t->stream('/v1/chat/completions', { model => 'x-cut', messages => [user('q')] }, %M);
ok($r->{closed_early} && !$r->{complete}, 'cut: body shorter than Content-Length');
$r = $t->stream('/v1/chat/completions',
    { model => 'x-cut', stream => JSON::PP::true, messages => [user('one two three')] }, %M);
is(scalar @{$r->{events}}, 3, 'cut stream: role + 2 content events');
ok(!$r->{done} && $r->{closed_early}, 'cut stream: no [DONE], no last chunk');
$r = $t->stream('/v1/messages',
    { %$amsg, model => 'claude-cut', stream => JSON::PP::true }, %M);
is_deeply($r->{event_names}, [qw(message_start content_block_start ping
                                 content_block_delta content_block_delta)],
          'cut stream (anthropic): opening + 2 deltas');

# slow<N>: events at least N ms apart
$r = $t->stream('/v1/chat/completions',
    { model => 'x-slow80', stream => JSON::PP::true, messages => [user('a b')] }, %M);
my @times = @{$r->{event_times}};
my @gaps = map { $times[$_] - $times[$_ - 1] } 1 .. $#times;
is(scalar @times, 8, 'slow: all events');
# (the mock spaces its writes >= N ms; allow the client 10 ms of jitter)
ok(!grep({ $_ < 0.07 } @gaps), "slow: events ~80 ms apart")
    or diag("gaps: @gaps");

# delay / headerdelay
$r = $t->post_json('/v1/chat/completions', { model => 'x-delay200', messages => [user('q')] }, %M);
ok($r->{elapsed} >= 0.2, sprintf('delay200: %.3f s', $r->{elapsed}));
$r = $t->stream('/v1/chat/completions',
    { model => 'x-headerdelay250', stream => JSON::PP::true, messages => [user('q')] }, %M);
ok($r->{first_byte_time} - $r->{start_time} < 0.2, 'headerdelay: headers at once');
ok($r->{body_time} - $r->{start_time} >= 0.25, 'headerdelay: body later');
ok($r->{done}, 'headerdelay: whole stream');

# x-mock-behave header; the model name wins where both set a token
$r = $t->post_json('/v1/chat/completions', { model => 'plain', messages => [user('q')] },
                   %M, headers => { 'x-mock-behave' => 'status503' });
is($r->{status}, 503, 'x-mock-behave: status503');
$r = $t->post_json('/v1/chat/completions', { model => 'x-status404', messages => [user('q')] },
                   %M, headers => { 'x-mock-behave' => 'status503-retryafter3' });
is($r->{status}, 404, 'model token wins over header');
is($r->{headers}{'retry-after'}, 3, 'header tokens still apply');

# canned answers
$t->mock_answer('m1', 'judge-1', 'Source 2 is best');
$r = $t->post_json('/v1/chat/completions', { model => 'judge-1', messages => [user('q')] }, %M);
is($r->{json}{choices}[0]{message}{content}, 'Source 2 is best', 'canned answer');
is($r->{json}{usage}{completion_tokens}, 4, 'canned answer usage');
$t->mock_answer('m1', 'judge-1', undef);
$r = $t->post_json('/v1/chat/completions', { model => 'judge-1', messages => [user('q')] }, %M);
is($r->{json}{choices}[0]{message}{content}, 'Mock answer to: q', 'canned answer removed');

# ----------------------------------------------------------- HTTP details

# errors for bad input
$r = $t->request('POST', '/v1/chat/completions', body => '{not json', %M);
is($r->{status}, 400, 'bad JSON: 400');
$r = $t->get('/nowhere', %M);
is($r->{status}, 404, 'unknown path: 404');

# keep-alive: two requests on one connection
$t->clear_records('m1');
$t->post_json('/v1/chat/completions', { model => 'k', messages => [user('1')] }, %M, keep_alive => 1);
$r = $t->post_json('/v1/chat/completions', { model => 'k', messages => [user('2')] }, %M, keep_alive => 1);
is($r->{headers}{'x-mock-conn-request'}, 2, 'keep-alive: second request on the connection');
my $recs = $t->mock_records('m1');
is(scalar @$recs, 2, 'records: two');
is($recs->[0]{conn}, $recs->[1]{conn}, 'records: same connection');
is_deeply([map { $_->{conn_request} } @$recs], [1, 2], 'records: conn_request');

# raw HTTP/1.0, chunked request body, pipelining
sub raw {
    my ($req) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port) or die;
    print $s $req;
    local $/;
    return scalar <$s>;
}
my $body = $json->encode({ model => 'h10', stream => JSON::PP::true, messages => [user('old')] });
my $resp = raw("POST /v1/chat/completions HTTP/1.0\r\nContent-Length: "
               . length($body) . "\r\n\r\n$body");
like($resp, qr/^HTTP\/1\.1 200/, 'HTTP/1.0: 200');
unlike($resp, qr/Transfer-Encoding/i, 'HTTP/1.0: no chunked');
like($resp, qr/Connection: close/, 'HTTP/1.0: close');
like($resp, qr/data: \[DONE\]\n\n\z/, 'HTTP/1.0: stream ends with the close');

$body = $json->encode({ model => 'ch', messages => [user('chunked body')] });
my $half = int(length($body) / 2);
$resp = raw("POST /v1/chat/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
    . "Connection: close\r\n\r\n"
    . sprintf("%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n", $half, substr($body, 0, $half),
              length($body) - $half, substr($body, $half)));
like($resp, qr/Mock answer to: chunked body/, 'chunked request body');

$body = $json->encode({ model => 'p', messages => [user('pipelined')] });
my $one = "POST /v1/chat/completions HTTP/1.1\r\nContent-Length: " . length($body)
        . "\r\n\r\n$body";
$resp = raw($one . $one . "GET /v1/models HTTP/1.1\r\nConnection: close\r\n\r\n");
my @statuses = $resp =~ /HTTP\/1\.1 (\d{3}) /g;
is_deeply(\@statuses, [200, 200, 200], 'pipelined: three responses in order');

# records: headers and raw body
$t->clear_records('m1');
$t->post_json('/v1/chat/completions', { model => 'rec', messages => [user("recorded \x{e9}")] },
              %M, headers => { 'X-Test-Id' => 'abc', Authorization => 'Bearer sk-1' });
$recs = $t->wait_records('m1', 1);
is(scalar @$recs, 1, 'records: one after clear');
my $rec = $recs->[0];
is($rec->{method}, 'POST', 'record: method');
is($rec->{path}, '/v1/chat/completions', 'record: path');
is($rec->{headers}{'x-test-id'}, 'abc', 'record: header, lowercased');
is($rec->{headers}{authorization}, 'Bearer sk-1', 'record: authorization');
is($rec->{body_json}{messages}[0]{content}, "recorded \x{e9}", 'record: body (UTF-8)');
like($rec->{body}, qr/^\{/, 'record: raw body');
ok(abs($rec->{time} - time) < 5, 'record: time');
$t->get('/v1beta/models/q:generateContent?alt=sse&x=1', %M);
is($t->mock_records('m1')->[-1]{path}, '/v1beta/models/q:generateContent?alt=sse&x=1',
   'record: path with query');

# behaviour "toolcall": a call of the first declared tool, in each format
{
    my $args = { text => 'weather here' };
    my $oa = { type => 'function', function => { name => 'get_weather' } };
    $r = $t->post_json('/v1/chat/completions', { model => 'm-toolcall',
        tools => [$oa], messages => [user('weather here')] }, %M);
    my $m = $r->{json}{choices}[0]{message};
    is($m->{content}, undef, 'toolcall openai: no content');
    is($m->{tool_calls}[0]{function}{name}, 'get_weather', 'toolcall openai: name');
    is_deeply(decode_json($m->{tool_calls}[0]{function}{arguments}), $args,
              'toolcall openai: arguments');
    is($r->{json}{choices}[0]{finish_reason}, 'tool_calls', 'toolcall openai: finish');
    $r = $t->stream('/v1/chat/completions', { model => 'm-toolcall', stream => \1,
        tools => [$oa], messages => [user('weather here')] }, %M);
    my @tc = map { $_->{choices}[0]{delta}{tool_calls}[0] }
             grep { ref && @{$_->{choices}} && $_->{choices}[0]{delta}{tool_calls} }
             @{$r->{json_events}};
    is($tc[0]{function}{name}, 'get_weather', 'toolcall openai stream: name first');
    is_deeply(decode_json(join '', map { $_->{function}{arguments} } @tc), $args,
              'toolcall openai stream: fragments join');
    ok($r->{done}, 'toolcall openai stream: [DONE]');

    $r = $t->post_json('/v1/messages', { model => 'c-toolcall', max_tokens => 9,
        tools => [{ name => 'lookup', input_schema => { type => 'object' } }],
        messages => [user('weather here')] }, %M);
    is($r->{json}{content}[0]{type}, 'tool_use', 'toolcall anthropic: tool_use');
    is($r->{json}{content}[0]{name}, 'lookup', 'toolcall anthropic: name');
    is_deeply($r->{json}{content}[0]{input}, $args, 'toolcall anthropic: input');
    is($r->{json}{stop_reason}, 'tool_use', 'toolcall anthropic: stop_reason');
    $r = $t->stream('/v1/messages', { model => 'c-toolcall', max_tokens => 9,
        stream => \1, messages => [user('weather here')] }, %M);
    my @ev = grep { ref } @{$r->{json_events}};
    my ($start) = grep { $_->{type} eq 'content_block_start' } @ev;
    is($start->{content_block}{name}, 'mock_tool', 'toolcall anthropic stream: no tools');
    is_deeply(decode_json(join '', map { $_->{delta}{partial_json} }
                          grep { $_->{type} eq 'content_block_delta' } @ev),
              $args, 'toolcall anthropic stream: input_json_delta fragments join');

    $r = $t->post_json('/v1beta/models/g-toolcall:generateContent', {
        tools => [{ functionDeclarations => [{ name => 'find' }] }],
        contents => [{ role => 'user', parts => [{ text => 'weather here' }] }] }, %M);
    is_deeply($r->{json}{candidates}[0]{content}{parts},
              [{ functionCall => { name => 'find', args => $args } }],
              'toolcall gemini: functionCall');
    $r = $t->stream('/v1beta/models/g-toolcall:streamGenerateContent?alt=sse', {
        contents => [{ role => 'user', parts => [{ text => 'weather here' }] }] }, %M);
    is(scalar @{$r->{events}}, 1, 'toolcall gemini stream: one chunk');
    is($r->{json_events}[0]{candidates}[0]{finishReason}, 'STOP',
       'toolcall gemini stream: finishReason');
}

# concurrency: 16 requests each delayed 300 ms, served at once
my $t0 = time;
my @res = $t->parallel(map { my $i = $_; sub {
    my $x = $t->post_json('/v1/chat/completions',
        { model => 'c-delay300', messages => [user("n$i")] }, %M);
    return { status => $x->{status}, content => $x->{json}{choices}[0]{message}{content} };
} } 1 .. 16);
my $took = time - $t0;
is(scalar(grep { $_->{status} == 200 } @res), 16, 'parallel: 16 answers');
is($res[6]{content}, 'Mock answer to: n7', 'parallel: results in order');
ok($took < 1.5, sprintf('parallel: concurrent (%.2f s)', $took));

# stop_mock: port closed, records still readable
my $pid_ok = kill 0, $t->{mocks}{m1}{pid};
$t->stop_mock('m1');
ok($pid_ok, 'mock was running');
ok(!IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port), 'mock stopped');
ok(scalar @{$t->mock_records('m1')} > 0, 'records readable after stop');

is_deeply([$t->error_log_problems], [], 'no problems');
$t->done_testing_checks;
done_testing;
