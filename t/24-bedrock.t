#!/usr/bin/perl
# type=bedrock through the gateway, against a mock that checks every
# request's AWS Signature V4 as AWS does (t/lib/mock_bedrock.pl): the
# Converse request the provider gets (path with the model id escaped,
# signed headers, no model in the body, messages of content blocks,
# system, inferenceConfig, toolConfig), the OpenAI answer (content,
# finish_reason, usage with the cache's tokens, tool calls), ConverseStream
# event streams translated chunk by chunk (tool calls, exceptions, a bad
# CRC, a cut), refusals of the signature (wrong secret, clock skew, Host
# not the signed one, session tokens valid and expired), provider errors,
# fallback and the ledger; embeddings by InvokeModel (Titan, Cohere); the
# secret is nowhere in what is logged.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use JSON::PP;
use Digest::SHA qw(sha256_hex);
use POSIX qw(strftime);
use GatewayTest;

my $t = GatewayTest->new(name => 'bedrock');
plan skip_all => 'module not built' unless $t->has_module;

my $SECRET = 'mock/Secret+Key/EXAMPLE0123456789abcdef';
my $SSECRET = 'session/Secret+Key/EXAMPLE9876543210fedc';

$t->start_mock(name => 'm1');
$t->write_file('conf/bedrock.key', "AKIDMOCKBEDROCK:$SECRET\n");
$t->write_file('conf/session.token', "MOCKSESSIONTOKEN\n");

my $loc = sub {
    my ($name, $host) = @_;
    my $set = $host ? "proxy_set_header Host $host;" : '';
    return <<"EOF";
        location ~ ^/_ai/$name(/.*)\$ {
            internal;
            proxy_pass http://127.0.0.1:%%MOCK_PORT_m1%%\$1;
            $set
        }
EOF
};
my $host = 'bedrock-runtime.us-east-1.amazonaws.com';

my $conf = <<'EOF';
    ai_provider bedrock type=bedrock region=us-east-1 pass=/_ai/bedrock
                key=file:%%PREFIX%%/conf/bedrock.key;
    ai_provider wrong type=bedrock region=us-east-1 pass=/_ai/wrong
                key=AKIDMOCKBEDROCK:not-the-secret;
    ai_provider nohost type=bedrock region=us-east-1 pass=/_ai/nohost
                key=AKIDMOCKBEDROCK:mock/Secret+Key/EXAMPLE0123456789abcdef;
    ai_provider sess type=bedrock region=us-east-1 pass=/_ai/sess
                key=ASIAMOCKSESSION:session/Secret+Key/EXAMPLE9876543210fedc
                session_token=file:%%PREFIX%%/conf/session.token;
    ai_provider old type=bedrock region=us-east-1 pass=/_ai/old
                key=ASIAMOCKSESSION:session/Secret+Key/EXAMPLE9876543210fedc
                session_token=MOCKEXPIREDTOKEN;

    ai_price bedrock/anthropic.claude-3-7-sonnet-20250219-v1:0 3.00 15.00;
    ai_price bedrock/mock-status500 3.00 15.00;
    ai_price bedrock/amazon.titan-embed-text-v2:0 0.02 0;
    ai_price bedrock/cohere.embed-english-v3 0.10 0;
    ai_cost_zone cost:1m;

    server {
        listen 127.0.0.1:%%PORT%%;

        location /v1/ {
            ai_gateway;
            ai_cost zone=cost key=$http_authorization;
        }

        location /fb/v1/ {
            ai_gateway;
            ai_fallback bedrock/mock-status500
                        bedrock/anthropic.claude-3-7-sonnet-20250219-v1:0;
            ai_cost zone=cost key=$http_authorization;
        }

        location = /status { ai_status; }

EOF
$t->write_config($t->config_preamble . "http {\n" . $t->http_preamble . $conf
    . $loc->('bedrock', '$http_host') . $loc->('wrong', $host) . $loc->('nohost')
    . $loc->('sess', $host) . $loc->('old', $host) . "    }\n}\n");
$t->start_nginx;

my $chat = '/v1/chat/completions';
my $claude = 'anthropic.claude-3-7-sonnet-20250219-v1:0';

sub ptok { my $n = 0; $n += length for @_; return $n ? int(($n + 3) / 4) : 1 }
sub last_record { $t->mock_records('m1')->[-1] }
sub chunks { grep { ref && $_->{object} } @{ $_[0]{json_events} } }
sub content_of { join '', map { $_->{choices}[0]{delta}{content} // '' }
                          grep { @{ $_->{choices} } } @_ }
sub error_ok {
    my ($r, $status, $name, $re) = @_;
    is($r->{status}, $status, "$name: $status");
    like($r->{json}{error}{message} // '', $re, "$name: message")
        or diag explain $r->{json};
}

# --- a whole answer: the signed request and the translated answer -----------

my $png = 'iVBORw0KGgoAAAANSUhEUg==';
my $r = $t->post_json($chat,
    { model => "bedrock/$claude", max_tokens => 50, temperature => 0.5,
      top_p => 0.9, stop => ['END'],
      messages => [
        { role => 'system', content => 'be brief' },
        { role => 'user', content => [
            { type => 'text', text => 'Hello' },
            { type => 'image_url', image_url => { url => "data:image/png;base64,$png" } }] },
        { role => 'assistant', content => 'Earlier' },
        { role => 'user', content => 'Final question' } ] },
    headers => { Authorization => 'Bearer sk-client' });

is($r->{status}, 200, 'answer: 200') or diag explain $r->{json};
my $j = $r->{json};
is($j->{object}, 'chat.completion', 'answer: chat.completion');
is($j->{model}, "bedrock/$claude", 'answer: the model as sent');
is($j->{choices}[0]{message}{content}, 'Mock answer to: Final question',
   'answer: content');
is($j->{choices}[0]{finish_reason}, 'stop', 'answer: end_turn -> stop');
my $in = ptok('be brief', 'Hello', 'Earlier', 'Final question');
is_deeply($j->{usage}, { prompt_tokens => $in, completion_tokens => 5,
                         total_tokens => $in + 5,
                         cost => sprintf('%.6f', ($in * 3 + 5 * 15) / 1e6) },
          "answer: usage $in + 5, its cost at the ai_price");

my $rec = last_record();
my $day = strftime('%Y%m%d', gmtime);
is($rec->{path}, '/model/anthropic.claude-3-7-sonnet-20250219-v1%3A0/converse',
   'upstream: the model id escaped once in the path');
like($rec->{headers}{authorization},
     qr{^AWS4-HMAC-SHA256 Credential=AKIDMOCKBEDROCK/$day/us-east-1/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date, Signature=[0-9a-f]{64}$},
     'upstream: Authorization AWS4-HMAC-SHA256 with the day\'s scope');
is($rec->{headers}{host}, $host, 'upstream: Host the signed one');
is($rec->{headers}{'x-amz-content-sha256'}, sha256_hex($rec->{body}),
   'upstream: x-amz-content-sha256 of the body sent');
like($rec->{headers}{'x-amz-date'}, qr/^${day}T\d{6}Z$/, 'upstream: x-amz-date');
ok(!exists $rec->{headers}{'x-amz-security-token'}, 'upstream: no session token');
unlike(join(' ', values %{ $rec->{headers} }), qr/sk-client|\Q$SECRET\E/,
       'upstream: neither the client key nor the secret in a header');
my $b = $rec->{body_json};
ok(!exists $b->{model}, 'upstream: no model in the body');
is_deeply($b->{system}, [{ text => 'be brief' }], 'upstream: system');
is_deeply($b->{messages}, [
    { role => 'user', content => [{ text => 'Hello' },
        { image => { format => 'png', source => { bytes => $png } } }] },
    { role => 'assistant', content => [{ text => 'Earlier' }] },
    { role => 'user', content => [{ text => 'Final question' }] } ],
    'upstream: messages of content blocks');
is_deeply($b->{inferenceConfig}, { maxTokens => 50, temperature => 0.5,
                                   topP => 0.9, stopSequences => ['END'] },
          'upstream: inferenceConfig');

# --- an inference profile ARN: ":" and "/" escaped ---------------------------

my $arn = 'arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.' . $claude;
$r = $t->post_json($chat, { model => "bedrock/$arn",
                            messages => [{ role => 'user', content => 'Hi' }] });
is($r->{status}, 200, 'ARN: 200') or diag explain $r->{json};
is(last_record()->{path},
   '/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile'
   . '%2Fus.anthropic.claude-3-7-sonnet-20250219-v1%3A0/converse',
   'ARN: escaped in the path, signed as sent');

# --- cache tokens, max_tokens, tools -----------------------------------------

$r = $t->post_json($chat, { model => 'bedrock/mock-cache',
                            messages => [{ role => 'user', content => 'one two' }] });
is($r->{status}, 200, 'cache: 200');
is_deeply($r->{json}{usage}, { prompt_tokens => ptok('one two') + 12,
    completion_tokens => 5, total_tokens => ptok('one two') + 17,
    prompt_tokens_details => { cached_tokens => 7 } },
    'cache: read and write tokens in prompt_tokens, the read ones cached');

$r = $t->post_json($chat, { model => 'bedrock/mock', max_tokens => 2,
                            messages => [{ role => 'user', content => 'one two' }] });
is($r->{json}{choices}[0]{finish_reason}, 'length', 'max_tokens -> length');
is($r->{json}{choices}[0]{message}{content}, 'Mock answer', 'max_tokens: cut');

my $tools = [{ type => 'function', function => { name => 'lookup',
    description => 'find', parameters => { type => 'object',
    properties => { text => { type => 'string' } } } } }];
$r = $t->post_json($chat, { model => 'bedrock/mock-toolcall', tools => $tools,
    tool_choice => { type => 'function', function => { name => 'lookup' } },
    messages => [{ role => 'user', content => 'find me' }] });
is($r->{status}, 200, 'tool call: 200');
my $call = $r->{json}{choices}[0]{message}{tool_calls}[0];
is($r->{json}{choices}[0]{finish_reason}, 'tool_calls', 'tool call: finish_reason');
is($call->{id}, 'tooluse_mock_1', 'tool call: id');
is($call->{function}{name}, 'lookup', 'tool call: name');
is_deeply(decode_json($call->{function}{arguments}), { text => 'find me' },
          'tool call: arguments');
$b = last_record()->{body_json};
is_deeply($b->{toolConfig}, { tools => [{ toolSpec => { name => 'lookup',
    description => 'find', inputSchema => { json => $tools->[0]{function}{parameters} } } }],
    toolChoice => { tool => { name => 'lookup' } } }, 'tool call: toolConfig');

# the call and its result sent back
$r = $t->post_json($chat, { model => 'bedrock/mock', tools => $tools,
    messages => [{ role => 'user', content => 'find me' },
                 { role => 'assistant', content => undef, tool_calls => [$call] },
                 { role => 'tool', tool_call_id => $call->{id}, content => 'found' }] });
is($r->{status}, 200, 'tool result: 200') or diag explain $r->{json};
is_deeply(last_record()->{body_json}{messages}[1], { role => 'assistant',
    content => [{ toolUse => { toolUseId => 'tooluse_mock_1', name => 'lookup',
                               input => { text => 'find me' } } }] },
    'tool result: toolUse block');
is_deeply(last_record()->{body_json}{messages}[2], { role => 'user',
    content => [{ toolResult => { toolUseId => 'tooluse_mock_1',
                                  content => [{ text => 'found' }] } }] },
    'tool result: toolResult block');

# --- streams --------------------------------------------------------------

my $s = $t->stream($chat, { model => "bedrock/$claude", stream => \1,
    stream_options => { include_usage => \1 },
    messages => [{ role => 'user', content => 'one two three' }] });
is($s->{status}, 200, 'stream: 200');
like($s->{headers}{'content-type'}, qr{^text/event-stream}, 'stream: SSE out');
ok($s->{complete}, 'stream: ended properly');
is($s->{events}[-1], '[DONE]', 'stream: [DONE] last');
my @c = chunks($s);
is(content_of(@c), 'Mock answer to: one two three', 'stream: deltas join');
my @fin = grep { @{ $_->{choices} } && $_->{choices}[0]{finish_reason} } @c;
is(scalar(@fin), 1, 'stream: one finish chunk');
is($fin[0]{choices}[0]{finish_reason}, 'stop', 'stream: stop');
my $sp = ptok('one two three');
is_deeply($c[-1]{usage}, { prompt_tokens => $sp, completion_tokens => 6,
    total_tokens => $sp + 6, cost => sprintf('%.6f', ($sp * 3 + 6 * 15) / 1e6) },
    'stream: usage from metadata');
$rec = last_record();
is($rec->{path}, '/model/anthropic.claude-3-7-sonnet-20250219-v1%3A0/converse-stream',
   'stream upstream: converse-stream');
is($rec->{headers}{accept}, 'application/vnd.amazon.eventstream',
   'stream upstream: Accept the event stream');

$s = $t->stream($chat, { model => 'bedrock/mock-toolcall-slow20', stream => \1,
    tools => $tools, messages => [{ role => 'user', content => 'find me' }] });
@c = chunks($s);
my ($first) = grep { @{ $_->{choices} } && $_->{choices}[0]{delta}{tool_calls} } @c;
is($first->{choices}[0]{delta}{tool_calls}[0]{function}{name}, 'lookup',
   'tool stream: the call named first');
my $args = join '', map { $_->{choices}[0]{delta}{tool_calls}[0]{function}{arguments} // '' }
                    grep { @{ $_->{choices} } && $_->{choices}[0]{delta}{tool_calls} } @c;
is_deeply(decode_json($args), { text => 'find me' }, 'tool stream: arguments join');
@fin = grep { @{ $_->{choices} } && $_->{choices}[0]{finish_reason} } @c;
is($fin[0]{choices}[0]{finish_reason}, 'tool_calls', 'tool stream: tool_calls');

$s = $t->stream($chat, { model => 'bedrock/mock-streamerror', stream => \1,
    messages => [{ role => 'user', content => 'a b c d' }] });
is($s->{status}, 200, 'stream exception: began 200');
my $last = $s->{json_events}[-1];
like(ref $last && $last->{error}{message}, qr/mock: error in the stream/,
     'stream exception: its message in an error event');
ok(!grep({ $_ eq '[DONE]' } @{ $s->{events} }), 'stream exception: no [DONE]');

$s = $t->stream($chat, { model => 'bedrock/mock-badcrc', stream => \1,
    messages => [{ role => 'user', content => 'a b c d' }] });
$last = $s->{json_events}[-1];
like(ref $last && ($last->{error}{message} // ''), qr/checksum/,
     'stream with a bad CRC: an error event says so');
is(content_of(chunks($s)), 'Mock', 'bad CRC: what came before it arrived');

$s = $t->stream($chat, { model => 'bedrock/mock-cut', stream => \1,
    messages => [{ role => 'user', content => 'a b c d' }] });
$last = $s->{json_events}[-1];
is(ref $last && $last->{error}{code}, 'stream_incomplete', 'cut stream: stream_incomplete');

# --- signatures refused ------------------------------------------------------

my $user = [{ role => 'user', content => 'Hi' }];
error_ok($t->post_json($chat, { model => 'wrong/mock', messages => $user }),
         403, 'wrong secret', qr/signature we calculated does not match/);
error_ok($t->post_json($chat, { model => 'bedrock/mock-skew1200', messages => $user }),
         403, 'clock 20 minutes off', qr/^Signature (?:expired|not yet current)/);
error_ok($t->post_json($chat, { model => 'nohost/mock', messages => $user }),
         403, 'Host not the signed one (no proxy_set_header Host)', qr/is not bedrock-runtime/);
error_ok($t->post_json($chat, { model => 'old/mock', messages => $user }),
         403, 'expired session token', qr/security token included in the request is expired/);

$r = $t->post_json($chat, { model => 'sess/mock', messages => $user });
is($r->{status}, 200, 'session token: 200') or diag explain $r->{json};
$rec = last_record();
is($rec->{headers}{'x-amz-security-token'}, 'MOCKSESSIONTOKEN',
   'session token: x-amz-security-token sent');
like($rec->{headers}{authorization},
     qr{SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token,},
     'session token: signed');

# --- provider errors ---------------------------------------------------------

$r = $t->post_json($chat, { model => 'bedrock/mock-status429', messages => $user });
is($r->{status}, 429, 'throttled: 429');
is($r->{json}{error}{code}, 'ThrottlingException', 'throttled: code');
$r = $t->post_json($chat, { model => 'bedrock/mock-status400', messages => $user });
is($r->{status}, 400, 'validation: 400');
is($r->{json}{error}{message}, 'mock: status 400 requested', 'validation: message');

# --- fallback and the ledger -------------------------------------------------

$r = $t->post_json('/fb/v1/chat/completions',
    { model => 'bedrock/mock-status500', messages => $user },
    headers => { Authorization => 'Bearer sk-fb' });
is($r->{status}, 200, 'fallback: answered by the second model');
is($r->{headers}{'x-ai-model'}, "bedrock/$claude", 'fallback: X-AI-Model');
is($r->{headers}{'x-ai-attempts'}, 2, 'fallback: two calls');

$s = $t->stream('/fb/v1/chat/completions', { model => 'bedrock/mock-status500',
    stream => \1, messages => [{ role => 'user', content => 'fall back' }] },
    headers => { Authorization => 'Bearer sk-fb' });
is($s->{status}, 200, 'stream fallback: 200');
is($s->{headers}{'x-ai-model'}, "bedrock/$claude", 'stream fallback: the second model');
is(content_of(chunks($s)), 'Mock answer to: fall back', 'stream fallback: its events');
is($s->{events}[-1], '[DONE]', 'stream fallback: [DONE]');

my $st = $t->get('/status')->{json};
my ($e) = grep { $_->{route} eq '/fb/v1/' && $_->{model} eq "bedrock/$claude" }
          @{ $st->{ledger} };
my $p = ptok('Hi');
my $pf = ptok('fall back');
is_deeply([@$e{qw(requests errors input_tokens output_tokens cost_nano_usd)}],
          [2, 0, $p + $pf, 4 + 5, ($p + $pf) * 3000 + 9 * 15000],
          'ledger: both answers charged, the streamed one too')
    or diag explain $st->{ledger};
($e) = grep { $_->{route} eq '/fb/v1/' && $_->{model} eq 'bedrock/mock-status500' }
       @{ $st->{ledger} };
is_deeply([@$e{qw(requests errors cost_nano_usd)}], [2, 2, 0],
          'ledger: the failed calls errors');

# --- the Messages and Responses APIs inbound, on a bedrock provider --------

$r = $t->post_json('/v1/messages', { model => "bedrock/$claude", max_tokens => 100,
    system => 'be brief', messages => [{ role => 'user', content => 'Hello there' }] });
is($r->{status}, 200, 'Messages API: 200') or diag explain $r->{json};
is($r->{json}{type}, 'message', 'Messages API: a message');
is($r->{json}{content}[0]{text}, 'Mock answer to: Hello there', 'Messages API: text');
is($r->{json}{stop_reason}, 'end_turn', 'Messages API: end_turn');
is_deeply([@{ $r->{json}{usage} }{qw(input_tokens output_tokens)}],
          [ptok('be brief', 'Hello there'), 5], 'Messages API: usage');
is_deeply(last_record()->{body_json}{system}, [{ text => 'be brief' }],
          'Messages API: system reaches Converse');

$s = $t->stream('/v1/messages', { model => "bedrock/$claude", max_tokens => 100,
    stream => \1, messages => [{ role => 'user', content => 'Hello there' }] });
is($s->{status}, 200, 'Messages API stream: 200');
is(join('', map { $_->{delta}{text} // '' }
            grep { ref && ($_->{type} // '') eq 'content_block_delta' }
            @{ $s->{json_events} }),
   'Mock answer to: Hello there', 'Messages API stream: text deltas join');
is($s->{event_names}[-1], 'message_stop', 'Messages API stream: message_stop last');

$r = $t->post_json('/v1/responses', { model => "bedrock/$claude",
    instructions => 'be brief', input => 'Hello there' });
is($r->{status}, 200, 'Responses API: 200') or diag explain $r->{json};
is($r->{json}{object}, 'response', 'Responses API: a response');
is($r->{json}{output}[0]{content}[0]{text}, 'Mock answer to: Hello there',
   'Responses API: text');
is($r->{json}{usage}{output_tokens}, 5, 'Responses API: usage');

$s = $t->stream('/v1/responses', { model => "bedrock/$claude", stream => \1,
                                   input => 'Hello there' });
is($s->{status}, 200, 'Responses API stream: 200');
is($s->{event_names}[-1], 'response.completed', 'Responses API stream: completed');

# --- the official openai SDK --------------------------------------------------

SKIP: {
    skip 'openai npm package not installed (./build.sh test installs it)', 8
        unless $t->has_node_sdk('openai');

    $t->clear_records('m1');
    my $answer = 'Mock answer to: Hello from the SDK';
    my $p = ptok('Hello from the SDK');
    my $usage = { prompt_tokens => $p, completion_tokens => 7,
                  total_tokens => $p + 7 };
    my $n = $t->node_sdk('openai_chat.mjs', $t->base_url . '/v1',
                         "bedrock/$claude", 'Hello from the SDK',
                         { AI_GW_API_KEY => 'sk-client-key' });
    is($n->{exit}, 0, 'sdk: exit 0') or diag($n->{stderr});
    my $sj = $n->{json};
    is($sj->{nonstream}{content}, $answer, 'sdk create: content');
    is($sj->{stream}{content}, $answer, 'sdk stream: content');
    is($sj->{stream}{finish_reason}, 'stop', 'sdk stream: finish_reason');
    is($sj->{stream_usage}{usage}{completion_tokens}, 7,
       'sdk stream with usage: completion tokens');
    is($sj->{stream_usage}{usage}{prompt_tokens}, $p,
       'sdk stream with usage: prompt tokens');
    my $recs = $t->mock_records('m1');
    is_deeply([map { $_->{path} } @$recs],
              ["/model/anthropic.claude-3-7-sonnet-20250219-v1%3A0/converse",
               ("/model/anthropic.claude-3-7-sonnet-20250219-v1%3A0/converse-stream") x 2],
              'sdk: three signed calls on the native paths');
    $n = $t->node_sdk('openai_chat.mjs', $t->base_url . '/v1', 'bedrock/mock-status429');
    is($n->{json}{status}, 429, 'sdk error: 429 seen by the SDK');
}

# --- embeddings: InvokeModel, Titan and Cohere ------------------------------

my $emb = '/v1/embeddings';
my $titan = 'amazon.titan-embed-text-v2:0';
my $ncalls = @{ $t->mock_records('m1') };
$r = $t->post_json($emb, { model => "bedrock/$titan", input => 'hello world',
                           dimensions => 256 },
                   headers => { Authorization => 'Bearer sk-emb' });
is($r->{status}, 200, 'titan: 200 (the mock checked the signature)')
    or diag explain $r->{json};
$rec = last_record();
is($rec->{path}, '/model/amazon.titan-embed-text-v2%3A0/invoke', 'titan: InvokeModel path');
is_deeply($rec->{body_json}, { inputText => 'hello world', dimensions => 256 },
          "titan: Titan's own body");
like($rec->{headers}{authorization}, qr/^AWS4-HMAC-SHA256 Credential=AKIDMOCKBEDROCK\//,
     'titan: signed');
is(scalar @{ $r->{json}{data} }, 1, 'titan: one vector');
is_deeply($r->{json}{data}[0]{embedding}, [map { (11 + $_) / 1024 } 0 .. 255],
          'titan: its 256 values');
is(delete $r->{json}{usage}{cost}, 0.00000006, 'titan: usage.cost');
is_deeply($r->{json}{usage}, { prompt_tokens => 3, total_tokens => 3 },
          "titan: exact usage (inputTextTokenCount)");

$r = $t->post_json($emb, { model => "bedrock/$titan", input => 'abc',
                           encoding_format => 'base64' });
is($r->{status}, 200, 'titan base64: 200');
require MIME::Base64;
my @f = unpack 'f<*', MIME::Base64::decode_base64($r->{json}{data}[0]{embedding});
is(scalar @f, 1024, 'titan base64: 1024 float32 values (its default)');
is($f[1], 4 / 1024, 'titan base64: the values');

$ncalls = @{ $t->mock_records('m1') };
error_ok($t->post_json($emb, { model => "bedrock/$titan", input => ['a', 'b'] }),
         400, 'titan, two inputs', qr/one input per call/);
error_ok($t->post_json($emb, { model => "bedrock/$claude", input => 'a' }),
         400, 'a chat model', qr/has no embeddings/);
error_ok($t->post_json($emb, { model => "bedrock/$titan", input => [[1, 2]] }),
         400, 'tokens', qr/embeds text only/);
is(scalar @{ $t->mock_records('m1') }, $ncalls, 'refused requests: no call made');
error_ok($t->post_json($emb, { model => "bedrock/$titan", input => 'a', dimensions => 300 }),
         400, "titan's own refusal", qr/300 is not a valid enum value/);
error_ok($t->post_json($emb, { model => "wrong/$titan", input => 'a' }),
         403, 'titan, wrong secret', qr/signature we calculated does not match/);

$r = $t->post_json($emb, { model => 'bedrock/cohere.embed-english-v3',
                           input => ['ab', 'cde'] },
                   headers => { Authorization => 'Bearer sk-emb' });
is($r->{status}, 200, 'cohere: 200') or diag explain $r->{json};
$rec = last_record();
is($rec->{path}, '/model/cohere.embed-english-v3/invoke', 'cohere: path');
is_deeply($rec->{body_json}, { texts => ['ab', 'cde'], input_type => 'search_document' },
          "cohere: Cohere's own body");
is_deeply([map { $_->{embedding} } @{ $r->{json}{data} }],
          [[map { (2 + $_) / 1024 } 0 .. 2], [map { (3 + $_) / 1024 } 0 .. 2]],
          'cohere: both vectors, in order');
is_deeply($r->{json}{usage}, { prompt_tokens => 2, total_tokens => 2, cost => 0.0000002 },
          "cohere: exact usage from Bedrock's X-Amzn-Bedrock-Input-Token-Count");

$r = $t->post_json($emb, { model => 'bedrock/cohere.embed-english-v3-noheadercount',
                           input => ['ab', 'cde'] });
is($r->{status}, 200, 'cohere without the header: 200');
is($r->{json}{usage}{prompt_tokens}, 1, 'cohere without the header: the estimate');

$st = $t->get('/status')->{json};
my ($te) = grep { $_->{model} eq "bedrock/$titan" && defined $_->{key} } @{ $st->{ledger} };
is_deeply($te && [@$te{qw(requests errors input_tokens estimated_input_tokens cost_nano_usd)}],
          [1, 0, 3, 0, 3 * 20], 'ledger: titan exact') or diag explain $st->{ledger};
my ($ce) = grep { $_->{model} eq 'bedrock/cohere.embed-english-v3' } @{ $st->{ledger} };
is_deeply($ce && [@$ce{qw(requests errors input_tokens estimated_input_tokens
                         cost_nano_usd)}],
          [1, 0, 2, 0, 200], "ledger: cohere exact, from Bedrock's header")
    or diag explain $st->{ledger};

# --- a provider that echoes the secret or the session token: scrubbed -------

$t->mock_answer('m1', 'mock-leaky', "secret $SECRET and token MOCKSESSIONTOKEN end");
$r = $t->post_json($chat, { model => 'bedrock/mock-leaky', messages => $user });
is($r->{status}, 200, 'echo: 200');
unlike($r->{json}{choices}[0]{message}{content}, qr/\Q$SECRET\E/, 'echo: no secret');
like($r->{json}{choices}[0]{message}{content}, qr/\[REDACTED\]/, 'echo: redacted');
$s = $t->stream($chat, { model => 'bedrock/mock-leaky', stream => \1, messages => $user });
unlike(content_of(chunks($s)), qr/\Q$SECRET\E|MOCKSESSIONTOKEN/,
       'echo in a stream: neither secret nor token');
$t->mock_answer('m1', 'mock-leaky', undef);

# --- the secret is nowhere logged --------------------------------------------

my $log = $t->read_file('logs/error.log') // '';
unlike($log, qr/\Q$SECRET\E|\Q$SSECRET\E|not-the-secret/, 'error.log: no secret');
unlike($log, qr/MOCKSESSIONTOKEN|MOCKEXPIREDTOKEN/, 'error.log: no session token');

$t->done_testing_checks;
done_testing();
