#!/usr/bin/perl
# The three clouds together, as an enterprise that buys models through
# all of them runs them: fusion whose members are Azure OpenAI, Gemini on
# Vertex AI and Claude on Bedrock, judged by a Bedrock model (each call
# on its cloud's own path, authorised its cloud's way: api-key, an OAuth2
# token bought with the service account's JWT, a SigV4 signature the mock
# recomputes); a fallback chain across the three clouds, whole and
# streamed, moving on from Azure's 429 and Vertex's 503 before the first
# byte; embeddings from each cloud through one chain; the ledger per
# cloud model.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use JSON::PP;
use GatewayTest;

my $t = GatewayTest->new(name => 'cloudmix');
plan skip_all => 'module not built' unless $t->has_module;
plan skip_all => 'no openssl' if system('openssl version >/dev/null 2>&1');

my $P = $t->prefix;
system("openssl genrsa -out $P/sa.key 2048 2>/dev/null") == 0 or die;
system("openssl rsa -in $P/sa.key -pubout -out $P/sa.pub 2>/dev/null") == 0
    or die;
$t->write_file('sa.json', JSON::PP->new->canonical->encode({
    type => 'service_account', project_id => 'proj-1',
    private_key_id => 'kid-1', private_key => $t->read_file('sa.key'),
    client_email => 'gw@proj-1.iam.gserviceaccount.com',
    token_uri => 'https://oauth2.googleapis.com/token' }));
$t->write_file('aws.key',
               "AKIDMOCKBEDROCK:mock/Secret+Key/EXAMPLE0123456789abcdef\n");

$ENV{MOCK_VERTEX_SA} = "$P/sa.json";
$ENV{MOCK_VERTEX_PUB} = "$P/sa.pub";
$t->start_mock(name => 'm1');

my $claude = 'anthropic.claude-3-7-sonnet-20250219-v1:0';

$t->write_config($t->config_preamble . "http {\n" . $t->http_preamble
                 . <<'EOF');
    ai_provider az type=azure pass=/_ai/az api_version=2024-10-21
                key=az-provider-secret;
    ai_provider v type=vertex project=proj-1 region=us-central1
                credentials=file:%%PREFIX%%/sa.json
                pass=/_ai/vertex token_pass=/_ai/gtoken;
    ai_provider br type=bedrock region=us-east-1 pass=/_ai/br
                key=file:%%PREFIX%%/aws.key;

    ai_price az/alpha 2 8;
    ai_price v/beta 1 4;
    ai_price br/gamma 3 15;
    ai_price br/writer 3 15;
    ai_price br/anthropic.claude-3-7-sonnet-20250219-v1:0 3 15;
    ai_price az/text-embedding-3-small 0.02 0;
    ai_price v/text-embedding-005 0.025 0;
    ai_price br/amazon.titan-embed-text-v2:0 0.02 0;
    ai_cost_zone cost:1m;

    server {
        listen 127.0.0.1:%%PORT%%;

        location /fuse/v1/ {
            ai_gateway;
            ai_pool az/alpha v/beta br/gamma judge=br/writer mode=merge;
            ai_cost zone=cost key=$http_authorization;
        }

        location /fb/v1/ {
            ai_gateway;
            ai_fallback az/x-status429 v/x-status503
                        br/anthropic.claude-3-7-sonnet-20250219-v1:0;
            ai_cost zone=cost key=$http_authorization;
        }

        location /emb/v1/ {
            ai_gateway;
            ai_fallback az/x-status503 v/x-status500
                        br/amazon.titan-embed-text-v2:0;
            ai_cost zone=cost key=$http_authorization;
        }

        location = /status { ai_status; }

        location /_ai/az/ {
            internal;
            proxy_pass http://127.0.0.1:%%MOCK_PORT_m1%%/;
            proxy_buffering off;
        }
        location /_ai/vertex/ {
            internal;
            proxy_pass http://127.0.0.1:%%MOCK_PORT_m1%%/;
            proxy_buffering off;
        }
        location = /_ai/gtoken {
            internal;
            proxy_pass http://127.0.0.1:%%MOCK_PORT_m1%%/token;
        }
        location ~ ^/_ai/br(/.*)$ {
            internal;
            proxy_pass http://127.0.0.1:%%MOCK_PORT_m1%%$1;
            proxy_set_header Host bedrock-runtime.us-east-1.amazonaws.com;
            proxy_buffering off;
        }
    }
}
EOF
$t->start_nginx;

my %answers = (
    alpha => 'Alpha says the sky is blue.',
    beta => 'Beta says the sky is azure.',
    gamma => 'Gamma says the sky is grey.',
    writer => 'The sky is blue, merged from three clouds.',
);
$t->mock_answer('m1', $_, $answers{$_}) for keys %answers;

my $G = '/v1/projects/proj-1/locations/us-central1/publishers/google/models';
my $q = [{ role => 'user', content => 'What colour is the sky?' }];
my $auth = { Authorization => 'Bearer sk-mix' };

sub recs { @{ $t->mock_records('m1') } }
sub model_recs { grep { $_->{path} !~ m{/token$} } recs() }
my $V = '?api-version=2024-10-21';
sub since { my ($n) = @_; my @r = model_recs(); [ @r[$n .. $#r] ] }
sub ledger_of {
    my ($route, $model) = @_;
    my ($e) = grep { $_->{route} eq $route && $_->{model} eq $model }
              @{ $t->get('/status')->{json}{ledger} };
    return $e;
}

# --- fusion over three clouds -----------------------------------------------

my $n = model_recs();
my $r = $t->post_json('/fuse/v1/chat/completions',
                      { model => 'fusion', messages => $q }, headers => $auth);
is($r->{status}, 200, 'fusion: 200') or diag($r->{content});
is($r->{headers}{'x-ai-fusion'}, 'merge; answered=3/3',
   'fusion: every cloud answered');
is($r->{json}{choices}[0]{message}{content}, $answers{writer},
   'fusion: the Bedrock judge wrote the answer');

my $calls = since($n);
my %by = map { $_->{path} => $_ } @$calls;
ok($by{"/openai/deployments/alpha/chat/completions$V"},
   'fusion: Azure called at its deployment') or diag(explain([keys %by]));
is($by{"/openai/deployments/alpha/chat/completions$V"}{headers}{'api-key'},
   'az-provider-secret', "fusion: Azure's api-key");
ok($by{"$G/beta:generateContent"}, 'fusion: Vertex called at :generateContent');
like($by{"$G/beta:generateContent"}{headers}{authorization} // '',
     qr/^Bearer ya29\.mock-/, 'fusion: Vertex with the bought token');
ok($by{'/model/gamma/converse'}, 'fusion: Bedrock called at /converse');
like($by{'/model/gamma/converse'}{headers}{authorization} // '',
     qr/^AWS4-HMAC-SHA256 /, 'fusion: Bedrock signed (the mock checked it)');
my $judge = $by{'/model/writer/converse'};
ok($judge, 'fusion: the judge on Bedrock');
like($judge && $judge->{body_json}{messages}[0]{content}[0]{text} // '',
     qr/### Source 3/, 'fusion: the judge saw the three sources');
is(scalar @$calls, 4, 'fusion: four model calls (three members, one judge)');

my $f = $r->{json}{fusion};
is_deeply([sort map { $_->{model} } @{ $f->{members} }],
          [qw(az/alpha br/gamma v/beta)], 'fusion object: the members');
my %sum = (prompt_tokens => 0, completion_tokens => 0);
for my $c (@{ $f->{members} }, @{ $f->{judges} }) {
    $sum{$_} += $c->{usage}{$_} for keys %sum;
}
is($r->{json}{usage}{prompt_tokens}, $sum{prompt_tokens},
   'fusion: prompt tokens summed over the clouds');
is($r->{json}{usage}{completion_tokens}, $sum{completion_tokens},
   'fusion: completion tokens summed over the clouds');

for my $m (qw(az/alpha v/beta br/gamma br/writer)) {
    my $e = ledger_of('/fuse/v1/', $m);
    is($e && $e->{requests}, 1, "ledger: one call of $m");
    ok($e && $e->{cost_nano_usd} > 0, "ledger: $m priced");
}

# --- a fallback chain across the clouds, whole and streamed ------------------

$n = model_recs();
$r = $t->post_json('/fb/v1/chat/completions',
                   { model => 'az/x-status429', messages => $q },
                   headers => $auth);
is($r->{status}, 200, 'fallback: 200');
is($r->{headers}{'x-ai-model'}, "br/$claude", 'fallback: Bedrock answered');
is($r->{headers}{'x-ai-attempts'}, 3, 'fallback: Azure, Vertex, Bedrock');
is_deeply([map { $_->{path} } @{ since($n) }],
          ["/openai/deployments/x-status429/chat/completions$V",
           "$G/x-status503:generateContent",
           '/model/anthropic.claude-3-7-sonnet-20250219-v1%3A0/converse'],
          'fallback: each cloud on its own path');

$n = model_recs();
my $s = $t->stream('/fb/v1/chat/completions',
                   { model => 'az/x-status429', stream => \1,
                     stream_options => { include_usage => \1 },
                     messages => $q }, headers => $auth);
is($s->{status}, 200, 'stream fallback: 200');
is($s->{headers}{'x-ai-model'}, "br/$claude",
   'stream fallback: Bedrock streamed');
my @chunks = grep { ref && $_->{object} } @{ $s->{json_events} };
is(join('', map { $_->{choices}[0]{delta}{content} // '' }
            grep { @{ $_->{choices} } } @chunks),
   'Mock answer to: What colour is the sky?',
   'stream fallback: the text, from the event stream');
ok((grep { $_->{usage} } @chunks), 'stream fallback: a usage chunk');
is($s->{events}[-1], '[DONE]', 'stream fallback: [DONE]');
is_deeply([map { $_->{path} } @{ since($n) }],
          ["/openai/deployments/x-status429/chat/completions$V",
           "$G/x-status503:streamGenerateContent?alt=sse",
           '/model/anthropic.claude-3-7-sonnet-20250219-v1%3A0/converse-stream'],
          'stream fallback: the stream endpoints of each cloud');

my $e = ledger_of('/fb/v1/', 'az/*') // ledger_of('/fb/v1/', 'az/x-status429');
ok($e && $e->{errors} >= 2, "ledger: Azure's 429s counted as errors")
    or diag(explain($t->get('/status')->{json}{ledger}));
$e = ledger_of('/fb/v1/', "br/$claude");
is($e && $e->{requests}, 2, 'ledger: both Bedrock answers');
is($e && $e->{errors}, 0, 'ledger: no Bedrock error');

# --- embeddings: one chain over the three clouds -----------------------------

$n = model_recs();
$r = $t->post_json('/emb/v1/embeddings',
                   { model => 'az/x-status503', input => 'abcdefgh' },
                   headers => $auth);
is($r->{status}, 200, 'embeddings chain: 200') or diag($r->{content});
is($r->{headers}{'x-ai-model'}, 'br/amazon.titan-embed-text-v2:0',
   'embeddings chain: Titan answered after Azure and Vertex failed');
is_deeply([map { $_->{path} } @{ since($n) }],
          ["/openai/deployments/x-status503/embeddings$V",
           "$G/x-status500:predict",
           '/model/amazon.titan-embed-text-v2%3A0/invoke'],
          "embeddings chain: each cloud's embeddings endpoint");
is_deeply($r->{json}{usage}, { prompt_tokens => 2, total_tokens => 2,
                               cost => 0.00000004 },
          "embeddings chain: Titan's exact usage and its cost");
is(scalar @{ $r->{json}{data}[0]{embedding} }, 1024,
   "embeddings chain: Titan's vector");

for my $m ('az/text-embedding-3-small', 'v/text-embedding-005') {
    $r = $t->post_json('/emb/v1/embeddings', { model => $m, input => 'abcd' },
                       headers => $auth);
    is($r->{status}, 200, "embeddings: $m first: 200");
    is($r->{headers}{'x-ai-model'}, $m, "embeddings: $m answered");
    is($r->{json}{usage}{prompt_tokens}, 1, "embeddings: $m: its usage");
}
$e = ledger_of('/emb/v1/', 'v/text-embedding-005');
is_deeply($e && [@$e{qw(requests input_tokens estimated_input_tokens)}],
          [1, 1, 0], 'ledger: Vertex embeddings exact');

$t->done_testing_checks;
done_testing();
