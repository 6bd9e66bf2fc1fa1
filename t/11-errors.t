#!/usr/bin/perl
# Errors are OpenAI error objects: bad requests (400), wrong method (405),
# unknown endpoint (404), a body over client_max_body_size (413), and every
# way a provider can fail: its own 4xx/5xx, unreachable (502), timeout
# (504), garbage, no choices, a cut answer, a cut or broken stream.  No
# input crashes a worker (the harness checks the error log at the end).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use JSON::PP;
use GatewayTest;

my $t = GatewayTest->new(name => 'errors');
plan skip_all => 'module not built' unless $t->has_module;

$t->start_mock(name => 'm1');
my $dead = $t->free_port;

$t->write_config($t->config_preamble . "http {\n" . $t->http_preamble . <<"EOF");
    ai_provider openai type=openai pass=/_ai/openai key=sk-provider-secret;
    ai_provider dead   type=openai pass=/_ai/dead key=sk-dead;

    server {
        listen 127.0.0.1:%%PORT%%;
        client_max_body_size 64k;

        location /v1/ {
            ai_gateway;
        }

        location /_ai/openai/ {
            internal;
            proxy_pass http://127.0.0.1:%%MOCK_PORT_m1%%/;
            proxy_read_timeout 1s;
        }

        location /_ai/dead/ {
            internal;
            proxy_pass http://127.0.0.1:$dead/;
        }
    }
}
EOF
$t->start_nginx;

my $chat = '/v1/chat/completions';

sub error_ok {
    my ($r, $status, $name, %want) = @_;
    is($r->{status}, $status, "$name: $status");
    like($r->{headers}{'content-type'} // '', qr{^application/json},
         "$name: JSON");
    my $e = $r->{json} && $r->{json}{error};
    ok(ref $e eq 'HASH' && defined $e->{message} && length $e->{message}
       && exists $e->{type} && exists $e->{param} && exists $e->{code},
       "$name: an OpenAI error object") or diag($r->{content});
    for my $k (sort keys %want) {
        if (ref $want{$k} eq 'Regexp') {
            like($e->{$k} // '', $want{$k}, "$name: $k");
        } else {
            is($e->{$k}, $want{$k}, "$name: $k");
        }
    }
    return $e;
}

sub post_raw {
    my ($body, %opt) = @_;
    return $t->request('POST', $chat, body => $body, %opt);
}

my $user = [{ role => 'user', content => 'hi' }];

# --- the client's mistakes --------------------------------------------------

error_ok(post_raw('{"model": "openai/gpt-4o", "messages": ['), 400,
         'truncated JSON', code => 'invalid_json');
error_ok(post_raw('not json at all'), 400, 'garbage body', code => 'invalid_json');
error_ok(post_raw(''), 400, 'empty body');
error_ok(post_raw('[1,2,3]'), 400, 'array body', code => 'invalid_type');
error_ok(post_raw('"just a string"'), 400, 'string body');
error_ok($t->post_json($chat, { messages => $user }), 400, 'no model',
         param => 'model', code => 'missing_required_parameter');
error_ok($t->post_json($chat, { model => 'openai/gpt-4o' }), 400, 'no messages',
         param => 'messages');
error_ok($t->post_json($chat, { model => 42, messages => $user }), 400,
         'model is a number', param => 'model', code => 'invalid_type');
error_ok($t->post_json($chat, { model => 'openai/gpt-4o', messages => 'hi' }), 400,
         'messages is a string', param => 'messages');
error_ok($t->post_json($chat, { model => 'openai/gpt-4o', messages => [] }), 400,
         'messages is empty', param => 'messages');
error_ok($t->post_json($chat, { model => 'openai/gpt-4o', messages => [42] }), 400,
         'message is a number');
error_ok($t->post_json($chat, { model => 'openai/gpt-4o',
                                messages => [{ role => 'wizard', content => 'x' }] }),
         400, 'unknown role');
error_ok($t->post_json($chat, { model => 'openai/gpt-4o',
                                messages => [{ role => 'user', content => { a => 1 } }] }),
         400, 'content is an object');
error_ok($t->post_json($chat, { model => 'openai/gpt-4o', messages => $user,
                                stream => 'yes' }), 400, 'stream is a string',
         param => 'stream');
error_ok($t->post_json($chat, { model => 'openai/gpt-4o', messages => $user,
                                stream_options => { include_usage => 1 } }), 400,
         'include_usage is a number');
error_ok($t->post_json($chat, { model => 'openai/gpt-4o', messages => $user,
                                max_tokens => -5 }), 400, 'negative max_tokens',
         param => 'max_tokens');
error_ok($t->post_json($chat, { model => 'openai/gpt-4o', messages => $user,
                                max_completion_tokens => 'lots' }), 400,
         'max_completion_tokens is a string');
error_ok($t->post_json($chat, { model => 'openai/gpt-4o', messages => $user,
                                temperature => 7 }), 400, 'temperature out of range',
         param => 'temperature');
error_ok($t->post_json($chat, { model => 'openai/gpt-4o', messages => $user,
                                top_p => 'high' }), 400, 'top_p is a string');
error_ok($t->post_json($chat, { model => 'openai/gpt-4o', messages => $user,
                                stop => [1, 2] }), 400, 'stop holds numbers',
         param => 'stop[0]');
error_ok(post_raw('{"model":"openai/gpt-4o","messages":[{"role":"user","content":"x"}],'
                  . '"extra":' . ('[' x 5000) . (']' x 5000) . '}'),
         400, 'nested 5000 deep', message => qr/nested too deeply/);
error_ok($t->post_json($chat, { model => 'nowhere/gpt-4o', messages => $user }), 400,
         'unknown provider', param => 'model', code => 'model_not_found');
error_ok($t->post_json($chat, { model => 'gpt-4o', messages => $user }), 400,
         'model without a provider', code => 'model_not_found');
for my $bad ('openai/../admin', "openai/a\r\nX-Evil: 1", 'openai/a b',
             'openai/a%2Fb', 'openai/' . ('x' x 300), 'openai/a?b=c') {
    (my $name = $bad) =~ s/[\r\n]/~/g;
    error_ok($t->post_json($chat, { model => $bad, messages => $user }), 400,
             'model name ' . substr($name, 0, 20), param => 'model');
}

# raw control bytes in strings (RFC 8259 forbids them) and invalid UTF-8:
# refused by the gateway, naming the byte and its offset, on both APIs
sub body_with {
    my ($bytes, $messages) = @_;
    return $messages
        ? '{"model":"openai/gpt-4o","max_tokens":5,"messages":'
          . '[{"role":"user","content":"hi' . $bytes . 'there"}]}'
        : '{"model":"openai/gpt-4o","messages":'
          . '[{"role":"user","content":"hi' . $bytes . 'there"}]}';
}

sub anthropic_error_ok {
    my ($r, $name, $re) = @_;
    is($r->{status}, 400, "$name: 400");
    my $j = $r->{json} || {};
    is($j->{type}, 'error', "$name: an Anthropic error") or diag($r->{content});
    is($j->{error} && $j->{error}{type}, 'invalid_request_error', "$name: type");
    like($j->{error} && $j->{error}{message} // '', $re, "$name: message");
}

for my $c ("\x01", "\x00", "\x1f", "\n") {
    my $body = body_with($c);
    my $at = index($body, $c);
    (my $name = sprintf 'raw 0x%02X in a string', ord $c);
    error_ok(post_raw($body), 400, "chat: $name", code => 'invalid_json',
             message => qr/control character \Q@{[sprintf '0x%02X', ord $c]}\E at offset $at\b/);
    $body = body_with($c, 1);
    $at = index($body, $c);
    anthropic_error_ok($t->request('POST', '/v1/messages', body => $body),
                       "messages: $name", qr/not valid JSON.* at offset $at\b/);
}

for my $case (['overlong', "\xc0\xaf"], ['surrogate', "\xed\xa0\x80"],
              ['above U+10FFFF', "\xf4\x90\x80\x80"], ['cut short', "\xe2\x82"],
              ['stray continuation', "caf\xc3\xa9\x80"], ['latin-1', "caf\xe9"])
{
    my ($name, $bytes) = @$case;
    my $body = body_with($bytes);
    my $at = index($body, 'hi') + 2 + ($name eq 'stray continuation' ? 5
                                        : $name eq 'latin-1' ? 3 : 0);
    error_ok(post_raw($body), 400, "chat: UTF-8 $name", code => 'invalid_encoding',
             message => qr/not valid UTF-8: the byte 0x[0-9A-F]{2} at offset $at\b/);
    $body = body_with($bytes, 1);
    $at = index($body, 'hi') + 2 + ($name eq 'stray continuation' ? 5
                                    : $name eq 'latin-1' ? 3 : 0);
    anthropic_error_ok($t->request('POST', '/v1/messages', body => $body),
                       "messages: UTF-8 $name", qr/not valid UTF-8.* at offset $at\b/);
}

# in a key, and in the streaming request too
error_ok(post_raw('{"model":"openai/gpt-4o","stream":true,"messages":'
                  . qq'[{"role":"user","content":"x","na\xffme":"a"}]}'),
         400, 'chat: bad UTF-8 in a key', code => 'invalid_encoding');

my $before = scalar @{ $t->mock_records('m1') };
is($before, 0, 'no bad request reached the provider');

# escaped controls and well-formed UTF-8 of every length pass, as sent
my $ok = $t->request('POST', $chat,
    body => '{"model":"openai/gpt-4o","messages":[{"role":"user","content":'
            . qq'"a\\u0001b\\tc caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \x7f"}]}');
is($ok->{status}, 200, 'escaped controls and well-formed UTF-8 pass');
my $rec = $t->wait_records('m1', $before + 1)->[-1];
like($rec->{body} // '', qr/a\\u0001b\\tc caf\x{e9} \x{20ac} \x{1f600} \x7f/,
     'the provider got them as sent');
$before = scalar @{ $t->mock_records('m1') };

# --- method, endpoint, size ---------------------------------------------------

my $r = $t->request('GET', $chat);
error_ok($r, 405, 'GET chat/completions', code => 'method_not_allowed');
is($r->{headers}{allow}, 'POST', '405: Allow');
$r = $t->request('DELETE', '/v1/models');
error_ok($r, 405, 'DELETE models');
is($r->{headers}{allow}, 'GET, HEAD', '405: Allow for models');
error_ok($t->get('/v1/images/generations'), 404, 'unknown endpoint', code => 'unknown_url');
error_ok(post_raw('{"model":"openai/gpt-4o","messages":[{"role":"user","content":"'
                  . ('x' x 100_000) . '"}]}'), 413, 'body over client_max_body_size',
         code => 'request_too_large');

# --- the provider's failures -------------------------------------------------

$r = $t->post_json($chat, { model => 'openai/x-status429-retryafter7', messages => $user });
error_ok($r, 429, 'provider 429', message => 'mock: status 429 requested');
is($r->{headers}{'retry-after'}, 7, 'provider 429: Retry-After passed on');
is($r->{headers}{'x-ai-model'}, 'openai/x-status429-retryafter7', 'provider 429: X-AI-Model');
error_ok($t->post_json($chat, { model => 'openai/x-status500', messages => $user }),
         500, 'provider 500');
error_ok($t->post_json($chat, { model => 'openai/x-status503', messages => $user }),
         503, 'provider 503');
error_ok($t->post_json($chat, { model => 'openai/x-status400', messages => $user }),
         400, 'provider 400');
error_ok($t->post_json($chat, { model => 'openai/x-status401', messages => $user }),
         401, 'provider 401');
error_ok($t->post_json($chat, { model => 'dead/gpt-4o', messages => $user }),
         502, 'provider unreachable', code => 'provider_unreachable',
         message => qr{^dead/gpt-4o: });
error_ok($t->post_json($chat, { model => 'openai/x-delay2500', messages => $user }),
         504, 'provider timeout', code => 'provider_timeout');
error_ok($t->post_json($chat, { model => 'openai/x-garbage', messages => $user }),
         502, 'provider garbage', code => 'invalid_response');
error_ok($t->post_json($chat, { model => 'openai/x-empty', messages => $user }),
         502, 'provider answer without choices', code => 'invalid_response');
error_ok($t->post_json($chat, { model => 'openai/x-drop', messages => $user }),
         502, 'provider drops the connection', code => 'provider_unreachable');
error_ok($t->post_json($chat, { model => 'openai/x-cut', messages => $user }),
         502, 'provider cuts its answer', code => 'response_incomplete');

# --- streams that fail -------------------------------------------------------

my $s = $t->stream($chat, { model => 'openai/x-cut', stream => \1, messages => $user });
is($s->{status}, 200, 'cut stream: began 200');
ok(scalar(grep { ref && $_->{choices} } @{ $s->{json_events} }) >= 2,
   'cut stream: the events before the cut arrived');
ok(!grep({ $_ eq '[DONE]' } @{ $s->{events} }), 'cut stream: no [DONE]');
my $last = $s->{json_events}[-1];
is(ref $last && $last->{error}{code}, 'stream_incomplete',
   'cut stream: ends with an OpenAI error event');

$s = $t->stream($chat, { model => 'openai/x-garbage', stream => \1, messages => $user });
is($s->{status}, 502, 'garbage stream before any event: 502');
is(eval { decode_json($s->{raw_body})->{error}{code} }, 'stream_error',
   'garbage stream: OpenAI error');

$s = $t->stream($chat, { model => 'openai/x-status429', stream => \1, messages => $user });
is($s->{status}, 429, 'stream request, provider 429: 429 before any event');

$s = $t->stream($chat, { model => 'dead/x', stream => \1, messages => $user });
is($s->{status}, 502, 'stream request, provider unreachable: 502');

$s = $t->stream($chat, { model => 'openai/x-delay2500', stream => \1,
                         messages => $user });
is($s->{status}, 504, 'stream request, provider silent: 504');

$s = $t->stream($chat, { model => 'openai/x-headerdelay2500', stream => \1,
                         messages => $user });
is($s->{status}, 502, 'stream request, provider silent after its header: 502');
is(eval { decode_json($s->{raw_body})->{error}{code} }, 'stream_incomplete',
   'provider silent after its header: stream_incomplete');

# the gateway still works after all that
$r = $t->post_json($chat, { model => 'openai/gpt-4o', messages => $user });
is($r->{status}, 200, 'still answering');

$t->done_testing_checks;
done_testing;
