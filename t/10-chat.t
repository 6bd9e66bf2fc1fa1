#!/usr/bin/perl
# POST {location}chat/completions through the gateway to an openai-type
# provider: routing, the translated request the provider gets (its key
# injected, the client's headers never forwarded), answers, streams relayed
# event by event, and GET {location}models.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use GatewayTest;

my $t = GatewayTest->new(name => 'chat');
plan skip_all => 'module not built' unless $t->has_module;

$t->start_mock(name => 'm1');
$t->write_config($t->config_preamble . "http {\n" . $t->http_preamble . <<'EOF');
    ai_provider openai type=openai pass=/_ai/openai key=sk-provider-secret;
    ai_provider groq   pass=/_ai/groq key=gsk-second-provider;
    ai_price openai/gpt-4o 2.50 10.00;
    ai_price openai/gpt-4o-mini 0.15 0.6;
    ai_price groq/llama-3.3-70b 0.59 0.79;

    upstream mock {
        server 127.0.0.1:%%MOCK_PORT_m1%%;
        keepalive 8;
    }

    server {
        listen 127.0.0.1:%%PORT%%;

        location /v1/ {
            ai_gateway;
        }

        location /other/v1/ {
            ai_gateway;
        }

        location /_ai/openai/ {
            internal;
            proxy_pass http://mock/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }

        location /_ai/groq/ {
            internal;
            proxy_pass http://127.0.0.1:%%MOCK_PORT_m1%%/;
            proxy_set_header X-Via groq-location;
        }
    }
}
EOF
$t->start_nginx;

my $msgs = [{ role => 'system', content => 'be brief' },
            { role => 'user', content => 'Hello gateway' }];

# --- a whole answer -------------------------------------------------------

my $r = $t->post_json('/v1/chat/completions',
    { model => 'openai/gpt-4o', messages => $msgs, temperature => 0.2,
      max_tokens => 50, top_p => 0.9, stop => ['x'] },
    headers => { Authorization => 'Bearer sk-client-own-key',
                 Cookie => 'session=abc', 'Accept-Encoding' => 'gzip',
                 'X-Custom' => 'client-only' });

is($r->{status}, 200, 'chat: 200');
like($r->{headers}{'content-type'}, qr{^application/json}, 'chat: JSON');
is($r->{headers}{'x-ai-model'}, 'openai/gpt-4o', 'chat: X-AI-Model');
is($r->{headers}{'x-ai-attempts'}, 1, 'chat: X-AI-Attempts');
is($r->{json}{object}, 'chat.completion', 'chat: chat.completion');
is($r->{json}{choices}[0]{message}{content}, 'Mock answer to: Hello gateway',
   'chat: the provider\'s answer');
is($r->{json}{choices}[0]{finish_reason}, 'stop', 'chat: finish_reason');
# the mock's usage rule: ceil(chars / 4) of all message text; words
is_deeply($r->{json}{usage},
          { prompt_tokens => 6, completion_tokens => 5, total_tokens => 11,
            cost => 6 * 2.5e-6 + 5 * 10e-6 },
          'chat: usage as the provider reported it, with its cost');

my $rec = $t->mock_records('m1')->[-1];
is($rec->{path}, '/v1/chat/completions', 'upstream: native path');
is($rec->{method}, 'POST', 'upstream: POST');
is($rec->{headers}{authorization}, 'Bearer sk-provider-secret',
   'upstream: the provider key is injected');
ok(!grep({ /sk-client-own-key/ } values %{ $rec->{headers} }),
   'upstream: the client key is not forwarded');
ok(!exists $rec->{headers}{cookie}, 'upstream: no cookies');
ok(!exists $rec->{headers}{'accept-encoding'}, 'upstream: no Accept-Encoding');
ok(!exists $rec->{headers}{'x-custom'}, 'upstream: no other client header');
is($rec->{headers}{'content-type'}, 'application/json', 'upstream: JSON');
my $up = $rec->{body_json};
is($up->{model}, 'gpt-4o', 'upstream: provider prefix stripped');
is_deeply($up->{messages}, $msgs, 'upstream: messages as sent');
is($up->{temperature}, 0.2, 'upstream: temperature');
is($up->{max_tokens}, 50, 'upstream: max_tokens');
is($up->{top_p}, 0.9, 'upstream: top_p');
is_deeply($up->{stop}, ['x'], 'upstream: stop');
is($rec->{headers}{'content-length'}, length($rec->{body}),
   'upstream: Content-Length of the new body');

# a second provider, routed by its prefix, with its own key and location
$r = $t->post_json('/v1/chat/completions',
    { model => 'groq/llama-3.3-70b', messages => $msgs });
is($r->{status}, 200, 'second provider: 200');
is($r->{headers}{'x-ai-model'}, 'groq/llama-3.3-70b', 'second provider: X-AI-Model');
$rec = $t->mock_records('m1')->[-1];
is($rec->{headers}{'x-via'}, 'groq-location', 'second provider: its location');
is($rec->{path}, '/v1/chat/completions', 'second provider: native path');
is($rec->{headers}{authorization}, 'Bearer gsk-second-provider', 'second provider: its key');
is($rec->{body_json}{model}, 'llama-3.3-70b', 'second provider: model');

# content-part arrays pass through
$r = $t->post_json('/other/v1/chat/completions',
    { model => 'openai/gpt-4o-mini',
      messages => [{ role => 'user', content => [
          { type => 'text', text => 'part one' },
          { type => 'image_url', image_url => { url => 'data:image/png;base64,AAAA' } },
          { type => 'text', text => 'part two' } ] }] });
is($r->{status}, 200, 'content parts: 200');
is($r->{json}{choices}[0]{message}{content}, 'Mock answer to: part one part two',
   'content parts: answered');
is_deeply($t->mock_records('m1')->[-1]{body_json}{messages}[0]{content}[1],
          { type => 'image_url', image_url => { url => 'data:image/png;base64,AAAA' } },
          'content parts: image part forwarded');

# keep-alive: several requests on one client connection
my $http = HTTP::Tiny->new(keep_alive => 1);
my @codes;
for (1 .. 3) {
    my $res = $http->post($t->base_url . '/v1/chat/completions',
        { content => '{"model":"openai/gpt-4o","messages":[{"role":"user","content":"again"}]}' });
    push @codes, $res->{status};
}
is_deeply(\@codes, [200, 200, 200], 'keep-alive: three answers on one connection');

# a body larger than client_body_buffer_size is read back from its temp file
my $long = 'word ' x 5000;
$r = $t->post_json('/v1/chat/completions',
    { model => 'openai/gpt-4o', messages => [{ role => 'user', content => $long }] });
is($r->{status}, 200, 'large body: 200');
is($t->mock_records('m1')->[-1]{body_json}{messages}[0]{content}, $long,
   'large body: forwarded whole');

# --- streams -------------------------------------------------------------

my $s = $t->stream('/v1/chat/completions',
    { model => 'openai/slow150', stream => \1,
      messages => [{ role => 'user', content => 'one two three' }] });
is($s->{status}, 200, 'stream: 200');
like($s->{headers}{'content-type'}, qr{^text/event-stream}, 'stream: event-stream');
is($s->{headers}{'x-ai-model'}, 'openai/slow150', 'stream: X-AI-Model');
is($s->{events}[-1], '[DONE]', 'stream: ends with [DONE]');
my @chunks = grep { ref } @{ $s->{json_events} };
is(join('', map { $_->{choices}[0]{delta}{content} // '' } @chunks),
   'Mock answer to: one two three', 'stream: deltas join to the answer');
ok(!grep({ $_->{usage} } @chunks), 'stream: no usage chunk when not asked');
my @times = @{ $s->{event_times} };
ok($times[-1] - $times[1] >= 0.15 * 4,
   'stream: events arrive as the provider sends them, not buffered')
    or diag(explain(\@times));
ok($times[2] - $s->{start_time} < $times[-1] - $s->{start_time} - 0.3,
   'stream: the first events arrive long before the last');

$rec = $t->mock_records('m1')->[-1];
is($rec->{body_json}{stream}, JSON::PP::true, 'stream: upstream asked to stream');
is($rec->{body_json}{stream_options}{include_usage}, JSON::PP::true,
   'stream: the gateway asks the provider for usage');
is($rec->{headers}{accept}, 'text/event-stream', 'stream: Accept');

$s = $t->stream('/v1/chat/completions',
    { model => 'openai/gpt-4o', stream => \1,
      stream_options => { include_usage => \1 },
      messages => [{ role => 'user', content => 'count me' }] });
is($s->{events}[-1], '[DONE]', 'stream with usage: [DONE]');
@chunks = grep { ref } @{ $s->{json_events} };
is_deeply($chunks[-1]{usage},
          { prompt_tokens => 2, completion_tokens => 5, total_tokens => 7,
            cost => 2 * 2.5e-6 + 5 * 10e-6 },
          'stream with usage: the usage chunk, with its cost');
is_deeply($chunks[-1]{choices}, [], 'stream with usage: usage chunk has no choices');

# --- models ----------------------------------------------------------------

$r = $t->get('/v1/models');
is($r->{status}, 200, 'models: 200');
is($r->{json}{object}, 'list', 'models: list');
is_deeply([map { $_->{id} } @{ $r->{json}{data} }],
          ['openai/gpt-4o', 'openai/gpt-4o-mini', 'groq/llama-3.3-70b'],
          'models: every configured model');
is($r->{json}{data}[0]{object}, 'model', 'models: model objects');
is($r->{json}{data}[0]{owned_by}, 'openai', 'models: owned_by the provider');
is($r->{json}{data}[2]{pricing}{input_usd_per_1m}, '0.59', 'models: price');

$t->done_testing_checks;
done_testing;
