#!/usr/bin/perl
# The official openai npm SDK as a real client of the gateway: a chat call,
# a streamed call and a streamed call with include_usage, with only the
# base URL changed.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use GatewayTest;

my $t = GatewayTest->new(name => 'openai-sdk');
plan skip_all => 'module not built' unless $t->has_module;
plan skip_all => 'openai npm package not installed (./build.sh test installs it)'
    unless $t->has_node_sdk('openai');

$t->start_mock(name => 'm1');
$t->write_config($t->config_preamble . "http {\n" . $t->http_preamble . <<'EOF');
    ai_provider openai type=openai pass=/_ai/openai key=sk-provider-secret;

    server {
        listen 127.0.0.1:%%PORT%%;
        location /v1/ { ai_gateway; }
        location /_ai/openai/ {
            internal;
            proxy_pass http://127.0.0.1:%%MOCK_PORT_m1%%/;
        }
    }
}
EOF
$t->start_nginx;

my $answer = 'Mock answer to: Hello from the SDK';
my $r = $t->node_sdk('openai_chat.mjs', $t->base_url . '/v1', 'openai/gpt-4o',
                     'Hello from the SDK', { AI_GW_API_KEY => 'sk-client-key' });
is($r->{exit}, 0, 'sdk: exit 0') or diag($r->{stderr});
my $j = $r->{json};
ok($j->{ok}, 'sdk: ok');
is($j->{nonstream}{content}, $answer, 'sdk create: content');
is($j->{nonstream}{finish_reason}, 'stop', 'sdk create: finish_reason');
is_deeply($j->{nonstream}{usage},
          { prompt_tokens => 5, completion_tokens => 7, total_tokens => 12 },
          'sdk create: usage');
is($j->{stream}{content}, $answer, 'sdk stream: content');
is($j->{stream}{finish_reason}, 'stop', 'sdk stream: finish_reason');
is($j->{stream}{usage}, undef, 'sdk stream: no usage chunk unasked');
is($j->{stream_usage}{content}, $answer, 'sdk stream with usage: content');
is_deeply($j->{stream_usage}{usage},
          { prompt_tokens => 5, completion_tokens => 7, total_tokens => 12 },
          'sdk stream with usage: usage');

my $recs = $t->mock_records('m1');
is(scalar @$recs, 3, 'sdk: three provider calls');
is(scalar(grep { ($_->{headers}{authorization} // '') eq 'Bearer sk-provider-secret' }
          @$recs),
   3, 'sdk: the provider key on every call');
ok(!grep({ join(' ', values %{ $_->{headers} }) =~ /sk-client-key/ } @$recs),
   'sdk: the client key never reaches the provider');

# an error reaches the SDK with the provider's status
$r = $t->node_sdk('openai_chat.mjs', $t->base_url . '/v1', 'openai/x-status429');
is($r->{exit}, 1, 'sdk error: fails');
is($r->{json}{status}, 429, 'sdk error: 429 seen by the SDK');

$t->done_testing_checks;
done_testing;
