#!/usr/bin/perl
# OpenTelemetry GenAI semantic conventions: after known requests (a chat, a
# fallback from a 500 to the next model, a stream with a slow provider, an
# embedding, a refusal by ai_rate) ?format=prometheus carries the exact
# gen_ai_* series lines (token usage by gen_ai_token_type, request
# duration with error_type, time to first token, time per output token),
# passes `promtool check metrics`, and the $ai_gen_ai_* variables hold the
# same names in a real access log.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep);
use GatewayTest;

my $t = GatewayTest->new(name => 'genai');
plan skip_all => 'module not built' unless $t->has_module;

my $PROMTOOL = $ENV{AI_GW_PROMTOOL} || '/usr/bin/promtool';

$t->start_mock(name => 'm1');

my $conf = $t->config_preamble . "http {\n" . $t->http_preamble . <<'EOF';
    log_format genai escape=json '{"status":$status,'
        '"op":"$ai_gen_ai_operation_name",'
        '"provider":"$ai_gen_ai_provider_name",'
        '"request_model":"$ai_gen_ai_request_model",'
        '"response_model":"$ai_gen_ai_response_model",'
        '"input":"$ai_gen_ai_usage_input_tokens",'
        '"output":"$ai_gen_ai_usage_output_tokens","uri":"$request_uri"}';
    access_log logs/genai.json genai;

    ai_provider openai type=openai pass=/_ai/openai key=sk-provider;
    ai_price openai/gpt-4o 2.50 10.00;
    ai_price openai/x-status500 2.50 10.00;
    ai_price openai/gpt-4o-slow30 2.50 10.00;
    ai_price openai/text-embedding-3-small 0.02 0;

    ai_rate_zone rate:1m;
    ai_metrics_zone metrics:2m;

    server {
        listen 127.0.0.1:%%PORT%%;

        location /v1/ {
            ai_gateway;
            ai_fallback openai/gpt-4o;
        }

        location /limited/v1/ {
            ai_gateway;
            ai_rate zone=rate key=$remote_addr rpm=1;
        }

        location = /status { ai_status; }

        location /_ai/openai/ {
            internal;
            proxy_pass http://127.0.0.1:%%MOCK_PORT_m1%%/;
            proxy_buffering off;
        }
    }
}
EOF
$t->write_config($conf);
$t->start_nginx;

sub chat {
    my ($loc, $model, $text) = @_;
    return $t->post_json("$loc/chat/completions",
        { model => $model, messages => [{ role => 'user', content => $text }] });
}

# "Hello gateway" = 13 chars: 4 prompt tokens; the answer "Mock answer to:
# Hello gateway" is 5 words
my $r = chat('/v1', 'openai/gpt-4o', 'Hello gateway');
is($r->{status}, 200, 'chat: 200');
$r = chat('/v1', 'openai/x-status500', 'Hello gateway');
is($r->{status}, 200, 'fallback from a 500: 200');
is($r->{json}{model}, 'gpt-4o', 'fallback: answered by gpt-4o');
my $s = $t->stream('/v1/chat/completions',
    { model => 'openai/gpt-4o-slow30', stream => JSON::PP::true,
      stream_options => { include_usage => JSON::PP::true },
      messages => [{ role => 'user', content => 'Hello gateway' }] });
is($s->{status}, 200, 'stream: 200');
ok($s->{done}, 'stream: [DONE]');
$r = $t->post_json('/v1/embeddings',
    { model => 'openai/text-embedding-3-small', input => 'abcdefgh' });
is($r->{status}, 200, 'embeddings: 200');
is(chat('/limited/v1', 'openai/gpt-4o', 'Hello gateway')->{status}, 200,
   'limited: the first');
is(chat('/limited/v1', 'openai/gpt-4o', 'Hello gateway')->{status}, 429,
   'limited: the second is refused');

my $st;
for (1 .. 100) {
    $st = $t->get('/status')->{json};
    last if $st->{metrics}{totals}{requests} >= 6;
    sleep 0.05;
}
is($st->{metrics}{totals}{requests}, 6, 'six requests counted');

my $prom = $t->get('/status?format=prometheus')->{content};

SKIP: {
    skip "promtool not found at $PROMTOOL", 2 unless -x $PROMTOOL;
    my $file = $t->prefix . '/metrics.prom';
    $t->write_file($file, $prom);
    my $out = `$PROMTOOL check metrics < '$file' 2>&1`;
    is($?, 0, 'promtool check metrics: passes') or diag $out;
    is($out, '', 'promtool check metrics: no lint') or diag $out;
}

my %lines = map { $_ => 1 } split /\n/, $prom;

sub has {
    my ($line, $what) = @_;
    ok($lines{$line}, $what) or diag "no line: $line";
}

my $L = 'gen_ai_operation_name="chat",gen_ai_provider_name="openai"';
my $chat = "$L,gen_ai_request_model=\"gpt-4o\",gen_ai_response_model=\"gpt-4o\"";

for my $type ('# TYPE gen_ai_client_token_usage histogram',
              '# TYPE gen_ai_server_request_duration_seconds histogram',
              '# TYPE gen_ai_server_time_to_first_token_seconds histogram',
              '# TYPE gen_ai_server_time_per_output_token_seconds histogram') {
    has($type, $type);
}

# the chat and the limited one's first: two calls of 4 input tokens
has("gen_ai_client_token_usage_bucket{$chat,gen_ai_token_type=\"input\",le=\"1\"} 0",
    'token usage: input, le=1 empty');
has("gen_ai_client_token_usage_bucket{$chat,gen_ai_token_type=\"input\",le=\"4\"} 2",
    'token usage: input, le=4 holds both calls');
has("gen_ai_client_token_usage_sum{$chat,gen_ai_token_type=\"input\"} 8",
    'token usage: input sum');
has("gen_ai_client_token_usage_count{$chat,gen_ai_token_type=\"input\"} 2",
    'token usage: input count');
has("gen_ai_client_token_usage_sum{$chat,gen_ai_token_type=\"output\"} 10",
    'token usage: output sum (5 words each)');
has("gen_ai_client_token_usage_bucket{$chat,gen_ai_token_type=\"output\",le=\"16\"} 2",
    'token usage: output, le=16');

# the fallback: asked x-status500, answered by gpt-4o
my $fb = "$L,gen_ai_request_model=\"x-status500\",gen_ai_response_model=\"gpt-4o\"";
has("gen_ai_client_token_usage_count{$fb,gen_ai_token_type=\"output\"} 1",
    'fallback: the answer\'s tokens under the model asked and the one that answered');
has("gen_ai_server_request_duration_seconds_count{$fb} 1",
    'fallback: its duration');
has("gen_ai_server_request_duration_seconds_count{$chat} 2",
    'duration: the chat and the first limited one');
has("gen_ai_server_request_duration_seconds_bucket{$chat,le=\"+Inf\"} 2",
    'duration: +Inf bucket');

# the refusal: no answer, error_type 429
has("gen_ai_server_request_duration_seconds_count{$L,gen_ai_request_model=\"gpt-4o\",gen_ai_response_model=\"\",error_type=\"429\"} 1",
    'refused: error_type="429", no response model');

# the stream: 5 words 30 ms apart
my $sl = "$L,gen_ai_request_model=\"gpt-4o-slow30\",gen_ai_response_model=\"gpt-4o-slow30\"";
has("gen_ai_server_time_to_first_token_seconds_count{$sl} 1", 'stream: ttft counted');
has("gen_ai_server_time_per_output_token_seconds_count{$sl} 1", 'stream: tpot counted');
has("gen_ai_server_time_per_output_token_seconds_bucket{$sl,le=\"0.025\"} 0",
    'stream: 30 ms or more per token is above 0.025 s');
has("gen_ai_server_time_per_output_token_seconds_bucket{$sl,le=\"+Inf\"} 1",
    'stream: tpot +Inf bucket');
ok(!grep(/^gen_ai_server_time_to_first_token_seconds_count\{\Q$chat\E\}/, keys %lines),
   'ttft: not for answers that are not streamed');

# embeddings: ceil(8 / 4) = 2 input tokens
my $em = 'gen_ai_operation_name="embeddings",gen_ai_provider_name="openai",'
       . 'gen_ai_request_model="text-embedding-3-small",'
       . 'gen_ai_response_model="text-embedding-3-small"';
has("gen_ai_client_token_usage_sum{$em,gen_ai_token_type=\"input\"} 2",
    'embeddings: operation "embeddings", its input tokens');
ok(!grep(/^gen_ai_client_token_usage_count\{\Q$em\E,gen_ai_token_type="output"/, keys %lines),
   'embeddings: no output tokens');

# the old names stay
ok(grep(/^ai_gateway_requests_total\{/, keys %lines), 'ai_gateway_requests_total stays');

# the access log
my @log;
for (1 .. 50) {
    @log = map { decode_json($_) } grep { /\S/ }
           split /\n/, ($t->read_file($t->prefix . '/logs/genai.json') // '');
    last if @log >= 6;
    sleep 0.05;
}
my ($lfb) = grep { $_->{request_model} eq 'x-status500' } @log;
ok($lfb, 'log: the fallback\'s line');
is_deeply([@$lfb{qw(op provider request_model response_model input output)}],
          ['chat', 'openai', 'x-status500', 'gpt-4o', 4, 5],
          'log: gen_ai names and usage of the fallback');
my ($lem) = grep { $_->{uri} eq '/v1/embeddings' } @log;
is_deeply([@$lem{qw(op request_model response_model input)}],
          ['embeddings', 'text-embedding-3-small', 'text-embedding-3-small', 2],
          'log: the embedding');
my ($l429) = grep { $_->{status} == 429 } @log;
is_deeply([@$l429{qw(op provider request_model response_model)}],
          ['chat', 'openai', 'gpt-4o', ''], 'log: the refusal has no response model');

$t->done_testing_checks;
done_testing;
