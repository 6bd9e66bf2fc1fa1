#!/usr/bin/perl
# POST {loc}embeddings: an openai-type provider gets the client's request
# (model without its prefix, input, dimensions, encoding_format), a
# gemini-type one :batchEmbedContents, translated both ways (floats, and
# little-endian float32 base64 as OpenAI sends them); an anthropic-type one
# is refused with a 400.  Usage in the answer, the ledger (a Gemini answer
# has no usage: charged the estimate, marked as one), tpm counting the
# input tokens, fallback from a failing provider, validation, ai_pool
# locations refusing.  Also GET {loc}models/{id}.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use JSON::PP;
use MIME::Base64 qw(decode_base64);
use GatewayTest;

my $t = GatewayTest->new(name => 'embeddings');
plan skip_all => 'module not built' unless $t->has_module;

$t->start_mock(name => 'm1');
$t->write_config($t->config_preamble . "http {\n" . $t->http_preamble . <<'EOF');
    ai_provider openai type=openai pass=/_ai/openai key=sk-provider;
    ai_provider anthropic type=anthropic pass=/_ai/anthropic key=sk-ant;
    ai_provider google type=gemini pass=/_ai/google key=gm-key;
    ai_price openai/text-embedding-3-small 0.02 0;
    ai_price google/gemini-embedding-001 0.15 0;

    ai_cost_zone cost:1m;
    ai_rate_zone rate:1m;

    server {
        listen 127.0.0.1:%%PORT%%;

        location /v1/ {
            ai_gateway;
            ai_cost zone=cost;
            ai_rate zone=rate tpm=100000;
        }

        location /tpm/v1/ {
            ai_gateway;
            ai_rate zone=rate tpm=100;
        }

        location /fb/v1/ {
            ai_gateway;
            ai_cost zone=cost;
            ai_fallback anthropic/claude-x google/gemini-embedding-001;
        }

        location /guard/v1/ {
            ai_gateway;
            ai_guard secret regex=TOPSECRET action=deny;
            ai_guard word regex=Bluebird action=redact;
        }

        location /pool/v1/ {
            ai_gateway;
            ai_pool openai/alpha openai/beta judge=openai/verdict;
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

my $emb = '/v1/embeddings';

sub ptok { my $n = 0; $n += length for @_; return $n ? int(($n + 3) / 4) : 1 }
sub vec_of { my ($n, $d) = @_; [map { ($n + $_) / 1024 } 0 .. ($d // 3) - 1] }
sub last_record { $t->mock_records('m1')->[-1] }
sub status { $t->get('/status')->{json} }

sub ledger_of {
    my ($route, $model) = @_;
    my ($e) = grep { $_->{route} eq $route && $_->{model} eq $model }
              @{ status()->{ledger} };
    return $e;
}

# --- openai type: passthrough ---------------------------------------------------

my $r = $t->post_json($emb, { model => 'openai/text-embedding-3-small',
                              input => ['hello', 'embedding world'],
                              dimensions => 4, encoding_format => 'float',
                              user => 'u1' });
is($r->{status}, 200, 'openai: 200');
is($r->{headers}{'x-ai-model'}, 'openai/text-embedding-3-small', 'openai: X-AI-Model');
my $j = $r->{json};
is($j->{object}, 'list', 'openai: a list');
is($j->{model}, 'openai/text-embedding-3-small', 'openai: the model the client named');
is(scalar @{ $j->{data} }, 2, 'openai: one vector per input');
is_deeply([map { [$_->{object}, $_->{index}] } @{ $j->{data} }],
          [['embedding', 0], ['embedding', 1]], 'openai: objects and indexes');
is_deeply($j->{data}[0]{embedding}, vec_of(5, 4), 'openai: vector 0 (dimensions 4)');
is_deeply($j->{data}[1]{embedding}, vec_of(15, 4), 'openai: vector 1');
my $in = ptok('hello', 'embedding world');
my $cost = delete $j->{usage}{cost};
is_deeply($j->{usage}, { prompt_tokens => $in, total_tokens => $in }, 'openai: usage');
ok(abs($cost - $in * 0.02 / 1e6) < 1e-12, "openai: usage.cost, the input at 0.02/1M ($cost)");

my $rec = last_record();
is($rec->{path}, '/v1/embeddings', 'upstream: /v1/embeddings');
is($rec->{headers}{authorization}, 'Bearer sk-provider', 'upstream: provider key');
is_deeply($rec->{body_json},
          { model => 'text-embedding-3-small', input => ['hello', 'embedding world'],
            dimensions => 4, encoding_format => 'float', user => 'u1' },
          'upstream: the request, model without its prefix');

my $e = ledger_of('/v1/', 'openai/text-embedding-3-small');
is_deeply([@$e{qw(requests errors input_tokens output_tokens cost_nano_usd
                  estimated_input_tokens)}],
          [1, 0, $in, 0, $in * 20, 0], 'ledger: the input tokens at 0.02/1M');

# base64 from the provider, passed on
$r = $t->post_json($emb, { model => 'openai/text-embedding-3-small',
                           input => 'abc', encoding_format => 'base64' });
is($r->{status}, 200, 'openai base64: 200');
is_deeply([unpack 'f<*', decode_base64($r->{json}{data}[0]{embedding})], vec_of(3),
          'openai base64: little-endian float32');

# token arrays
$r = $t->post_json($emb, { model => 'openai/text-embedding-3-small',
                           input => [[1, 2, 3], [4, 5]] });
is($r->{status}, 200, 'tokens: 200');
is_deeply([map { $_->{embedding} } @{ $r->{json}{data} }], [vec_of(3), vec_of(2)],
          'tokens: vectors');
is($r->{json}{usage}{prompt_tokens}, 5, 'tokens: usage');
is_deeply(last_record()->{body_json}{input}, [[1, 2, 3], [4, 5]],
          'tokens: sent as they are');

# --- gemini type: batchEmbedContents ----------------------------------------------

$r = $t->post_json($emb, { model => 'google/gemini-embedding-001',
                           input => ['one', 'three'], dimensions => 2 });
is($r->{status}, 200, 'gemini: 200');
$j = $r->{json};
is($j->{object}, 'list', 'gemini: OpenAI list');
is($j->{model}, 'google/gemini-embedding-001', 'gemini: model');
is_deeply([map { [$_->{object}, $_->{index}, $_->{embedding}] } @{ $j->{data} }],
          [['embedding', 0, vec_of(3, 2)], ['embedding', 1, vec_of(5, 2)]],
          'gemini: vectors translated');
my $est = int(length('onethree') / 4);
is_deeply($j->{usage}, { prompt_tokens => $est, total_tokens => $est },
          'gemini: usage is the estimate');

$rec = last_record();
is($rec->{path}, '/v1beta/models/gemini-embedding-001:batchEmbedContents',
   'gemini upstream: :batchEmbedContents');
is($rec->{headers}{'x-goog-api-key'}, 'gm-key', 'gemini upstream: key');
is_deeply($rec->{body_json}, { requests => [
    { model => 'models/gemini-embedding-001', content => { parts => [{ text => 'one' }] },
      outputDimensionality => 2 },
    { model => 'models/gemini-embedding-001', content => { parts => [{ text => 'three' }] },
      outputDimensionality => 2 } ] }, 'gemini upstream: one request per input');

$e = ledger_of('/v1/', 'google/gemini-embedding-001');
is_deeply([@$e{qw(requests errors input_tokens estimated_input_tokens
                  estimated_cost_nano_usd)}],
          [1, 0, 0, $est, $est * 150], 'gemini ledger: the estimate, marked as one');

# base64 made by the gateway
$r = $t->post_json($emb, { model => 'google/gemini-embedding-001',
                           input => 'abcdefg', encoding_format => 'base64' });
is($r->{status}, 200, 'gemini base64: 200');
my $b64 = $r->{json}{data}[0]{embedding};
ok(!ref $b64, 'gemini base64: a string');
is_deeply([unpack 'f<*', decode_base64($b64)], vec_of(7),
          'gemini base64: float32 little-endian, as OpenAI');

$r = $t->post_json($emb, { model => 'google/gemini-embedding-001', input => [1, 2] });
is($r->{status}, 400, 'gemini tokens: 400');
is($r->{json}{error}{code}, 'unsupported_input', 'gemini tokens: code');

# a gemini answer without a vector for every input
$r = $t->post_json($emb, { model => 'google/gemini-embedding-001-empty', input => 'x' });
is($r->{status}, 502, 'gemini empty answer: 502');
is($r->{json}{error}{code}, 'invalid_response', 'gemini empty answer: invalid_response');

# --- anthropic type: no embeddings -------------------------------------------------

my $before = scalar @{ $t->mock_records('m1') };
$r = $t->post_json($emb, { model => 'anthropic/claude-x', input => 'hi' });
is($r->{status}, 400, 'anthropic: 400');
is($r->{json}{error}{type}, 'invalid_request_error', 'anthropic: type');
is($r->{json}{error}{code}, 'unsupported_endpoint', 'anthropic: code');
like($r->{json}{error}{message}, qr/anthropic-type providers have no embeddings/,
     'anthropic: says why');
is(scalar @{ $t->mock_records('m1') }, $before, 'anthropic: no provider called');

# --- fallback: an unsupported provider is skipped, a failing one falls back ------------

$r = $t->post_json('/fb/v1/embeddings', { model => 'anthropic/claude-x', input => 'hello' });
is($r->{status}, 200, 'fallback chain: the anthropic model is skipped');
is($r->{headers}{'x-ai-model'}, 'google/gemini-embedding-001', 'fallback chain: gemini answered');
is($r->{headers}{'x-ai-attempts'}, 1, 'fallback chain: one call');

$r = $t->post_json('/v1/embeddings', { model => 'openai/emb-status500',
                                       models => ['google/gemini-embedding-001'],
                                       input => 'hello' });
is($r->{status}, 200, 'fallback: 200 after a 500');
is($r->{headers}{'x-ai-attempts'}, 2, 'fallback: two calls');
is($r->{headers}{'x-ai-model'}, 'google/gemini-embedding-001', 'fallback: the second answered');
is_deeply($r->{json}{data}[0]{embedding}, vec_of(5), 'fallback: its vector');
$e = ledger_of('/v1/', 'openai/*');
is_deeply([@$e{qw(requests errors input_tokens)}], [1, 1, 0],
          'fallback: the failed call in the ledger (unpriced: openai/*)');

# --- tpm counts the input ------------------------------------------------------

$r = $t->post_json('/tpm/v1/embeddings', { model => 'openai/text-embedding-3-small',
                                           input => 'x' x 400 });
is($r->{status}, 200, 'tpm: 100 input tokens fit in tpm=100');
is($r->{headers}{'x-ratelimit-remaining-tokens'}, 0,
   'tpm: the estimate reserved (400 bytes / 4), no output tokens');
$r = $t->post_json('/tpm/v1/embeddings', { model => 'openai/text-embedding-3-small',
                                           input => 'x' x 40 });
is($r->{status}, 429, 'tpm: the next one is refused');
my ($rate) = grep { $_->{route} eq '/tpm/v1/' } @{ status()->{rate} };
ok($rate->{tpm_remaining} < 10, "tpm: settled with the 100 input tokens "
   . "($rate->{tpm_remaining} left)");

# --- validation --------------------------------------------------------------------

my @bad = (
    [{ input => 'x' }, 'missing_required_parameter', 'model'],
    [{ model => 'openai/text-embedding-3-small' }, 'missing_required_parameter', 'input'],
    [{ model => 'openai/text-embedding-3-small', input => '' }, 'invalid_value', 'input'],
    [{ model => 'openai/text-embedding-3-small', input => [] }, 'invalid_type', 'input'],
    [{ model => 'openai/text-embedding-3-small', input => ['a', [1]] }, 'invalid_type', 'input'],
    [{ model => 'openai/text-embedding-3-small', input => [1.5] }, 'invalid_type', 'input'],
    [{ model => 'openai/text-embedding-3-small', input => [-1] }, 'invalid_type', 'input'],
    [{ model => 'openai/text-embedding-3-small', input => [('a') x 2049] }, 'invalid_value', 'input'],
    [{ model => 'openai/text-embedding-3-small', input => 'a', dimensions => 0 }, 'invalid_value', 'dimensions'],
    [{ model => 'openai/text-embedding-3-small', input => 'a', encoding_format => 'hex' },
     'invalid_value', 'encoding_format'],
    [{ model => 'openai/text-embedding-3-small', input => { a => 1 } }, 'invalid_type', 'input'],
);
for my $b (@bad) {
    my ($body, $code, $param) = @$b;
    $r = $t->post_json($emb, $body);
    is($r->{status}, 400, "invalid ($code $param): 400");
    is($r->{json}{error}{code}, $code, "invalid ($code $param): code");
    is($r->{json}{error}{param}, $param, "invalid ($code $param): param");
}
$r = $t->request('POST', $emb, body => '{"model":"openai/a","model":"openai/b","input":"x"}',
                 headers => { 'Content-Type' => 'application/json' });
is($r->{json}{error}{code}, 'duplicate_parameter', 'a member twice: refused');
$r = $t->request('GET', $emb);
is($r->{status}, 405, 'GET embeddings: 405');
is($r->{headers}{allow}, 'POST', 'GET embeddings: Allow');

$r = $t->post_json('/pool/v1/embeddings', { model => 'openai/alpha', input => 'x' });
is($r->{status}, 400, 'ai_pool location: 400');
is($r->{json}{error}{code}, 'unsupported_endpoint', 'ai_pool location: code');

# --- ai_guard: the input strings are checked --------------------------------------

$before = scalar @{ $t->mock_records('m1') };
$r = $t->post_json('/guard/v1/embeddings', { model => 'openai/text-embedding-3-small',
                                             input => ['fine', 'a TOPSECRET plan'] });
is($r->{status}, 400, 'guard deny: 400');
is($r->{json}{error}{code}, 'guard_denied', 'guard deny: code');
is(scalar @{ $t->mock_records('m1') }, $before, 'guard deny: no provider called');
for my $m ('openai/text-embedding-3-small', 'google/gemini-embedding-001') {
    $r = $t->post_json('/guard/v1/embeddings', { model => $m, input => 'Bluebird flies' });
    is($r->{status}, 200, "guard redact $m: 200");
    unlike(last_record()->{body}, qr/Bluebird/, "guard redact $m: the provider never saw it");
}

# --- models/{id} ------------------------------------------------------------------

$r = $t->get('/v1/models/openai/text-embedding-3-small');
is($r->{status}, 200, 'models/{id}: 200');
is_deeply($r->{json}, { id => 'openai/text-embedding-3-small', object => 'model',
                        created => 0, owned_by => 'openai',
                        pricing => { input_usd_per_1m => '0.02',
                                     output_usd_per_1m => '0' } },
          'models/{id}: the entry');
my ($listed) = grep { $_->{id} eq 'openai/text-embedding-3-small' }
               @{ $t->get('/v1/models')->{json}{data} };
is_deeply($r->{json}, $listed, 'models/{id}: as in the list');
$r = $t->get('/v1/models/google%2Fgemini-embedding-001');
is($r->{json}{id}, 'google/gemini-embedding-001', 'models/{id}: percent-encoded id');
$r = $t->get('/v1/models/openai/nope');
is($r->{status}, 404, 'models/{id} unknown: 404');
is($r->{json}{error}{code}, 'model_not_found', 'models/{id} unknown: code');
like($r->{json}{error}{message}, qr{'openai/nope'}, 'models/{id} unknown: names it');
$r = $t->request('POST', '/v1/models/openai/text-embedding-3-small', body => '{}');
is($r->{status}, 405, 'models/{id}: POST 405');

$t->done_testing_checks;
done_testing();
