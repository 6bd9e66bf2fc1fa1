#!/usr/bin/perl
# Real clients of the endpoints beyond chat: the openai SDK's
# embeddings.create (its default asks for base64 and decodes it; for a
# gemini-type provider the gateway writes that base64) and models.retrieve
# (an id with '/', and an unknown one: 404), the Vercel AI SDK's embed and
# embedMany through createOpenAI with its defaults, and the Anthropic SDK's
# messages.countTokens (anthropic and gemini providers count; an
# openai-type one is an error the SDK throws, never a count of 0).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use GatewayTest;

my $t = GatewayTest->new(name => 'endpoints-sdk');
plan skip_all => 'module not built' unless $t->has_module;
plan skip_all => 'npm packages not installed (./build.sh test installs them)'
    unless $t->has_node_sdk('openai') && $t->has_node_sdk('ai')
        && $t->has_node_sdk('@anthropic-ai/sdk');

$t->start_mock(name => 'm1');
$t->write_config($t->config_preamble . "http {\n" . $t->http_preamble . <<'EOF');
    ai_provider openai type=openai pass=/_ai/openai key=sk-provider;
    ai_provider anthropic type=anthropic pass=/_ai/anthropic key=sk-ant;
    ai_provider google type=gemini pass=/_ai/google key=gm-key;
    ai_price openai/text-embedding-3-small 0.02 0;
    ai_price google/gemini-embedding-001 0.15 0;

    server {
        listen 127.0.0.1:%%PORT%%;
        location /v1/ { ai_gateway; }
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

my $base = $t->base_url . '/v1';

sub ptok { my $n = 0; $n += length for @_; return $n ? int(($n + 3) / 4) : 1 }
sub vec_of { my ($n, $d) = @_; [map { ($n + $_) / 1024 } 0 .. ($d // 3) - 1] }

# --- openai SDK -------------------------------------------------------------------

for my $model ('openai/text-embedding-3-small', 'google/gemini-embedding-001') {
    $t->clear_records('m1');
    my $r = $t->node_sdk('openai_endpoints.mjs', $base, $model);
    is($r->{exit}, 0, "openai sdk $model: exit 0") or diag($r->{stderr}, $r->{stdout});
    my $j = $r->{json};
    is($j->{default}{object}, 'list', "openai sdk $model: a list");
    is($j->{default}{model}, $model, "openai sdk $model: model");
    is_deeply($j->{default}{vectors}, [vec_of(5), vec_of(15)],
              "openai sdk $model: the vectors, decoded from base64 by the SDK");
    is_deeply($j->{float}{vectors}, [vec_of(3, 2)], "openai sdk $model: float, dimensions 2");
    is_deeply($j->{model}, { id => $model, object => 'model',
                             owned_by => (split m{/}, $model)[0] },
              "openai sdk $model: models.retrieve");
    is($j->{missing}{status}, 404, "openai sdk $model: an unknown model is a 404");
    is($j->{missing}{name}, 'NotFoundError', "openai sdk $model: NotFoundError");

    my ($first) = grep { $_->{method} eq 'POST' } @{ $t->mock_records('m1') };
    if ($model =~ /^openai/) {
        is($first->{body_json}{encoding_format}, 'base64',
           'openai sdk: asked the provider for base64, as the client did');
        my $in = ptok('hello', 'embedding world');
        my $cost = delete $j->{default}{usage}{cost};
        is_deeply($j->{default}{usage}, { prompt_tokens => $in, total_tokens => $in },
                  'openai sdk: usage');
        ok(abs(($cost // -1) - $in * 0.02 / 1e6) < 1e-12, 'openai sdk: usage.cost');
    } else {
        like($first->{path}, qr/:batchEmbedContents$/, 'openai sdk: gemini batchEmbedContents');
    }
}

# --- Vercel AI SDK -------------------------------------------------------------------

for my $model ('openai/text-embedding-3-small', 'google/gemini-embedding-001') {
    my $r = $t->node_sdk('vercel_embed.mjs', $base, $model);
    is($r->{exit}, 0, "vercel $model: exit 0") or diag($r->{stderr}, $r->{stdout});
    my $j = $r->{json};
    is_deeply($j->{embed}{embedding}, vec_of(5), "vercel $model: embed");
    is_deeply($j->{many}{embeddings}, [vec_of(3), vec_of(5)], "vercel $model: embedMany");
    my $want = $model =~ /^openai/ ? ptok('one', 'three') : int(length('onethree') / 4);
    is($j->{many}{tokens}, $want, "vercel $model: usage tokens");
}

# --- Anthropic SDK countTokens ------------------------------------------------------------

my $r = $t->node_sdk('anthropic_count.mjs', $t->base_url, 'anthropic/claude-sonnet-4',
                     'google/gemini-2.5-pro', 'openai/gpt-4o');
is($r->{exit}, 0, 'countTokens: exit 0') or diag($r->{stderr}, $r->{stdout});
my $c = $r->{json}{counts};
my $want = ptok('You are terse.', 'What is the weather in Paris?');
is_deeply($c->{'anthropic/claude-sonnet-4'}, { input_tokens => $want },
          'countTokens anthropic: the count');
is_deeply($c->{'google/gemini-2.5-pro'}, { input_tokens => $want },
          'countTokens gemini: the count');
is($c->{'openai/gpt-4o'}{status}, 400, 'countTokens openai: the SDK throws a 400');
is($c->{'openai/gpt-4o'}{type}, 'invalid_request_error', 'countTokens openai: its type');
ok(!exists $c->{'openai/gpt-4o'}{input_tokens}, 'countTokens openai: no made-up count');

$t->done_testing_checks;
done_testing;
