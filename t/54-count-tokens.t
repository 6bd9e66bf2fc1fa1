#!/usr/bin/perl
# POST {loc}messages/count_tokens: an anthropic-type provider gets
# /v1/messages/count_tokens with only what that endpoint takes (model
# without its prefix, system, messages, tools), a gemini-type one
# :countTokens with the conversation as a generateContentRequest; the
# client gets Anthropic's {"input_tokens":N}.  An openai-type provider has
# no counting endpoint: a 400 Anthropic error, never a made-up count.  A
# count costs nothing in the ledger and counts as a request for rpm.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use JSON::PP;
use GatewayTest;

my $t = GatewayTest->new(name => 'count-tokens');
plan skip_all => 'module not built' unless $t->has_module;

$t->start_mock(name => 'm1');
$t->write_config($t->config_preamble . "http {\n" . $t->http_preamble . <<'EOF');
    ai_provider openai type=openai pass=/_ai/openai key=sk-provider;
    ai_provider anthropic type=anthropic pass=/_ai/anthropic key=sk-ant;
    ai_provider google type=gemini pass=/_ai/google key=gm-key;
    ai_price anthropic/claude-sonnet-4 3 15;
    ai_price google/gemini-2.5-pro 1.25 10;

    ai_cost_zone cost:1m;
    ai_rate_zone rate:1m;

    server {
        listen 127.0.0.1:%%PORT%%;

        location /v1/ {
            ai_gateway;
            ai_cost zone=cost;
        }

        location /rpm/v1/ {
            ai_gateway;
            ai_rate zone=rate rpm=2 tpm=10;
        }

        location /fb/v1/ {
            ai_gateway;
            ai_fallback openai/gpt-4o anthropic/claude-sonnet-4;
        }

        location = /status { ai_status; }

        location /_ai/openai/ {
            internal;
            proxy_pass http://127.0.0.1:%%MOCK_PORT_m1%%/;
        }

        location /_ai/anthropic/ {
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

my $count = '/v1/messages/count_tokens';

sub ptok { my $n = 0; $n += length for @_; return $n ? int(($n + 3) / 4) : 1 }
sub last_record { $t->mock_records('m1')->[-1] }
sub status { $t->get('/status')->{json} }

my $tools = [{ name => 'get_weather', description => 'Weather of a city',
               input_schema => { type => 'object',
                                 properties => { city => { type => 'string' } } } }];
my %conv = (system => 'You are terse.',
            messages => [{ role => 'user', content => 'What is the weather in Paris?' },
                         { role => 'assistant', content => 'Let me check.' },
                         { role => 'user', content => [{ type => 'text', text => 'Now, please.' }] }],
            tools => $tools);
my $want = ptok('You are terse.', 'What is the weather in Paris?', 'Let me check.',
                'Now, please.');

# --- anthropic type: passthrough -------------------------------------------------

my $r = $t->post_json($count, { model => 'anthropic/claude-sonnet-4', %conv });
is($r->{status}, 200, 'anthropic: 200');
like($r->{headers}{'content-type'}, qr{^application/json}, 'anthropic: JSON');
is_deeply($r->{json}, { input_tokens => $want }, 'anthropic: {input_tokens}');
is($r->{headers}{'x-ai-model'}, 'anthropic/claude-sonnet-4', 'anthropic: X-AI-Model');

my $rec = last_record();
is($rec->{path}, '/v1/messages/count_tokens', 'upstream: /v1/messages/count_tokens');
is($rec->{headers}{'x-api-key'}, 'sk-ant', 'upstream: x-api-key');
is($rec->{headers}{'anthropic-version'}, '2023-06-01', 'upstream: anthropic-version');
my $b = $rec->{body_json};
is($b->{model}, 'claude-sonnet-4', 'upstream: model without its prefix');
is_deeply([sort keys %$b], [qw(messages model system tool_choice tools)],
          'upstream: only what count_tokens takes (no max_tokens, stream)');
is(scalar @{ $b->{messages} }, 3, 'upstream: the three messages');
is($b->{tools}[0]{name}, 'get_weather', 'upstream: the tool');

# max_tokens and stream from a client are not passed on
$r = $t->post_json($count, { model => 'anthropic/claude-sonnet-4', max_tokens => 100,
                             stream => JSON::PP::true, %conv });
is($r->{status}, 200, 'anthropic with max_tokens and stream: 200');
ok(!exists last_record()->{body_json}{max_tokens}, 'upstream: no max_tokens');
ok(!exists last_record()->{body_json}{stream}, 'upstream: no stream');

# the ledger: one request, no tokens, no cost
my ($e) = grep { $_->{route} eq '/v1/' && $_->{model} eq 'anthropic/claude-sonnet-4' }
          @{ status()->{ledger} };
is_deeply([@$e{qw(requests errors input_tokens output_tokens cost_nano_usd
                  estimated_input_tokens)}],
          [2, 0, 0, 0, 0, 0], 'ledger: two requests, nothing charged');

# --- gemini type: countTokens -------------------------------------------------------

$r = $t->post_json($count, { model => 'google/gemini-2.5-pro', %conv });
is($r->{status}, 200, 'gemini: 200');
is_deeply($r->{json}, { input_tokens => $want }, 'gemini: totalTokens -> input_tokens');
$rec = last_record();
is($rec->{path}, '/v1beta/models/gemini-2.5-pro:countTokens', 'gemini upstream: :countTokens');
my $g = $rec->{body_json}{generateContentRequest};
is($g->{model}, 'models/gemini-2.5-pro', 'gemini upstream: generateContentRequest.model');
is_deeply($g->{systemInstruction}{parts}, [{ text => 'You are terse.' }],
          'gemini upstream: systemInstruction');
is_deeply([map { $_->{role} } @{ $g->{contents} }], [qw(user model user)],
          'gemini upstream: contents');
is($g->{tools}[0]{functionDeclarations}[0]{name}, 'get_weather', 'gemini upstream: tools');
ok(!exists $g->{generationConfig}, 'gemini upstream: no generationConfig');

# --- openai type: no counting endpoint ---------------------------------------------------

my $before = scalar @{ $t->mock_records('m1') };
$r = $t->post_json($count, { model => 'openai/gpt-4o', %conv });
is($r->{status}, 400, 'openai: 400, not a made-up count');
is($r->{json}{type}, 'error', 'openai: an Anthropic error');
is($r->{json}{error}{type}, 'invalid_request_error', 'openai: error type');
like($r->{json}{error}{message}, qr/openai-type providers have no count_tokens/,
     'openai: says why');
ok(!exists $r->{json}{input_tokens}, 'openai: no input_tokens');
is(scalar @{ $t->mock_records('m1') }, $before, 'openai: no provider called');

# a fallback chain skips it
$r = $t->post_json('/fb/v1/messages/count_tokens', { model => 'openai/gpt-4o', %conv });
is($r->{status}, 200, 'fallback chain: 200');
is($r->{headers}{'x-ai-model'}, 'anthropic/claude-sonnet-4', 'fallback chain: anthropic counted');
is($r->{json}{input_tokens}, $want, 'fallback chain: the count');

# --- errors: Anthropic's form ---------------------------------------------------------

$r = $t->post_json($count, { model => 'anthropic/claude-sonnet-4-status500', %conv });
is($r->{status}, 500, 'provider 500: passed on');
is($r->{json}{type}, 'error', 'provider 500: Anthropic error');
$r = $t->post_json($count, { model => 'anthropic/claude-sonnet-4' });
is($r->{status}, 400, 'no messages: 400');
is($r->{json}{error}{message}, 'messages: Field required', 'no messages: Anthropic message');
$r = $t->post_json($count, { model => 'anthropic/claude-sonnet-4-garbage', %conv });
is($r->{status}, 502, 'garbage answer: 502');
is($r->{json}{type}, 'error', 'garbage answer: Anthropic error');
$r = $t->get($count);
is($r->{status}, 405, 'GET count_tokens: 405');
is($r->{json}{type}, 'error', 'GET count_tokens: an Anthropic error');
$r = $t->post_json('/v1/messages/nope', { model => 'anthropic/claude-sonnet-4', %conv });
is($r->{status}, 404, 'unknown under messages/: 404');
is($r->{json}{type}, 'error', 'unknown under messages/: an Anthropic error');

# --- rpm counts a count; tpm reserves nothing for it ------------------------------------

my @st = map { $t->post_json('/rpm/v1/messages/count_tokens',
                             { model => 'anthropic/claude-sonnet-4', %conv })->{status} }
         1 .. 3;
is_deeply(\@st, [200, 200, 429], 'rpm=2: two counts pass, the third is refused '
          . '(tpm=10 is no obstacle)');

$t->done_testing_checks;
done_testing;
