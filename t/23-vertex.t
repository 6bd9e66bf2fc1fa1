#!/usr/bin/perl
# type=vertex through the gateway: a service account's RS256 JWT (made
# and signed by the gateway with OpenSSL) bought an access token at the
# token endpoint through token_pass=, checked by the mock as Google does
# (the signature against the account's public key, iss, aud, scope, iat
# and exp with a skewed clock); that token on every Vertex call, bought
# once for both workers and refreshed before it expires; Gemini on
# Vertex (:generateContent, :streamGenerateContent?alt=sse, embeddings by
# :predict) and Anthropic on Vertex (:rawPredict, :streamRawPredict, anthropic_version in the
# body, no model), usage, the ledger, fallback past a refused token, and
# the configuration's checks.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use JSON::PP;
use GatewayTest;

my $t = GatewayTest->new(name => 'vertex');
plan skip_all => 'module not built' unless $t->has_module;
plan skip_all => 'no openssl' if system('openssl version >/dev/null 2>&1');

my $P = $t->prefix;
my $JSON = JSON::PP->new->canonical;

# throwaway keys: the account's, and another one for a forged signature
for my $k (qw(sa other)) {
    system("openssl genrsa -out $P/$k.key 2048 2>/dev/null") == 0 or die;
}
system("openssl rsa -in $P/sa.key -pubout -out $P/sa.pub 2>/dev/null") == 0 or die;

sub sa_file {
    my ($name, $key, $kid) = @_;
    my $pem = $t->read_file("$key.key");
    $t->write_file($name, $JSON->encode({
        type => 'service_account', project_id => 'proj-1',
        private_key_id => $kid, private_key => $pem,
        client_email => 'gw@proj-1.iam.gserviceaccount.com',
        client_id => '1', token_uri => 'https://oauth2.googleapis.com/token' }));
}
sa_file('sa.json', 'sa', 'kid-main');
sa_file('forged.json', 'other', 'kid-forged');   # same account, wrong key
sa_file('short.json', 'sa', 'kid-short');        # its own token slot

$ENV{MOCK_VERTEX_SA} = "$P/sa.json";
$ENV{MOCK_VERTEX_PUB} = "$P/sa.pub";
$t->start_mock(name => 'm1');

$t->write_config($t->config_preamble . "http {\n" . $t->http_preamble . <<'EOF');
    log_format w '$pid $status $request_uri';
    access_log logs/workers.log w;

    ai_provider v type=vertex project=proj-1 region=us-central1
                credentials=file:%%PREFIX%%/sa.json
                pass=/_ai/vertex token_pass=/_ai/gtoken;
    ai_provider va type=vertex publisher=anthropic project=proj-1
                region=us-east5 credentials=file:%%PREFIX%%/sa.json
                pass=/_ai/vertex token_pass=/_ai/gtoken;
    ai_provider vforged type=vertex project=proj-1 region=us-central1
                credentials=file:%%PREFIX%%/forged.json
                pass=/_ai/vertex token_pass=/_ai/gtoken;
    ai_provider vskew type=vertex project=proj-1 region=us-central1
                credentials=file:%%PREFIX%%/forged.json
                pass=/_ai/vertex token_pass=/_ai/gtoken-skew;
    ai_provider vshort type=vertex project=proj-1 region=us-central1
                credentials=file:%%PREFIX%%/short.json
                pass=/_ai/vertex token_pass=/_ai/gtoken-short;

    ai_price v/gemini-2.5-flash 1 2;
    ai_price v/text-embedding-005 0.5 0;
    ai_cost_zone cost:1m;

    server {
        listen 127.0.0.1:%%PORT%%;

        location /v1/ {
            ai_gateway;
            ai_cost zone=cost key=$http_authorization;
        }

        location /fb/v1/ {
            ai_gateway;
            ai_fallback vforged/gemini-2.5-flash v/gemini-2.5-flash;
            ai_cost zone=cost key=$http_authorization;
        }

        location = /status { ai_status; }

        location /_ai/vertex/ {
            internal;
            proxy_pass http://127.0.0.1:%%MOCK_PORT_m1%%/;
            proxy_buffering off;
        }
        location = /_ai/gtoken {
            internal;
            proxy_pass http://127.0.0.1:%%MOCK_PORT_m1%%/token;
        }
        location = /_ai/gtoken-skew {
            internal;
            proxy_pass http://127.0.0.1:%%MOCK_PORT_m1%%/skew4000/token;
        }
        location = /_ai/gtoken-short {
            internal;
            proxy_pass http://127.0.0.1:%%MOCK_PORT_m1%%/short4/token;
        }
    }
}
EOF
$t->start_nginx;

my $chat = '/v1/chat/completions';
my $msgs = [{ role => 'user', content => 'Hello gateway' }];   # 4 tokens in
my $G = '/v1/projects/proj-1/locations/us-central1/publishers/google/models';
my $A = '/v1/projects/proj-1/locations/us-east5/publishers/anthropic/models';

sub recs { @{ $t->mock_records('m1') } }
sub token_calls { grep { $_->{path} =~ m{token$} } recs() }
sub model_calls { grep { $_->{path} !~ m{token$} } recs() }

# --- a refused JWT: a forged signature, a clock 4000 s apart ---------------

my $r = $t->post_json($chat, { model => 'vforged/gemini-2.5-flash', messages => $msgs });
is($r->{status}, 502, 'forged signature: 502');
like($r->{json}{error}{message} // '', qr/no Vertex AI access token/,
     'forged signature: no token, said') or diag($r->{content});
my @tc = token_calls();
is(scalar @tc, 1, 'forged signature: one token call');
is(scalar model_calls(), 0, 'forged signature: no model call');
like($tc[0]{headers}{'content-type'}, qr{^application/x-www-form-urlencoded},
     'token call: a form');
like($tc[0]{body}, qr{^grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=[\w-]+\.[\w-]+\.[\w-]+$},
     'token call: the JWT bearer grant');
ok($t->error_log_contains(qr/the token endpoint refused the service account|HTTP 400/),
   'forged signature: logged');

$r = $t->post_json($chat, { model => 'vskew/gemini-2.5-flash', messages => $msgs });
is($r->{status}, 502, 'skewed clock: 502');
is(scalar token_calls(), 2, 'skewed clock: its token call');
is((token_calls())[-1]{path}, '/skew4000/token', 'skewed clock: at the skewed endpoint');

# the JWT the gateway made, as the mock saw it
sub b64url { my $s = shift; $s =~ tr{-_}{+/}; $s .= '=' x ((4 - length($s) % 4) % 4);
             require MIME::Base64; MIME::Base64::decode_base64($s) }
my ($jwt) = (token_calls())[0]{body} =~ /assertion=(.*)$/;
my ($h, $c) = map { $JSON->decode(b64url($_)) } (split /\./, $jwt)[0, 1];
is_deeply($h, { alg => 'RS256', typ => 'JWT', kid => 'kid-forged' }, 'JWT header');
is($c->{iss}, 'gw@proj-1.iam.gserviceaccount.com', 'JWT iss: the account');
is($c->{aud}, 'https://oauth2.googleapis.com/token', 'JWT aud: its token_uri');
is($c->{scope}, 'https://www.googleapis.com/auth/cloud-platform', 'JWT scope');
is($c->{exp} - $c->{iat}, 3600, 'JWT: an hour');
ok(abs($c->{iat} - time) < 30, 'JWT iat: now');

# --- Gemini on Vertex: one token for every worker and call ---------------------

my (%pids, @res);
for my $batch (1 .. 6) {
    push @res, $t->parallel(map { my $i = $_; sub {
        $t->post_json($chat, { model => 'v/gemini-2.5-flash', messages => $msgs })
    } } 1 .. 6);
    %pids = map { (split / /)[0] => 1 } grep { m{ /v1/chat} }
            split /\n/, ($t->read_file('logs/workers.log') // '');
    last if keys %pids > 1 && $batch >= 2;
}
is(scalar(grep { $_->{status} == 200 } @res), scalar @res,
   scalar(@res) . ' calls in parallel: all 200');
cmp_ok(scalar(keys %pids), '>', 1, 'they were served by both workers');
is(scalar token_calls(), 3, 'one token call for all of them (one more than before)');
my @mc = model_calls();
is(scalar @mc, scalar @res, 'every call reached Vertex');
is($mc[0]{path}, "$G/gemini-2.5-flash:generateContent", 'the Gemini path on Vertex');
my %tokens = map { $_->{headers}{authorization} => 1 } @mc;
is(scalar keys %tokens, 1, 'one token on every call');
like((keys %tokens)[0], qr/^Bearer ya29\.mock-\d+-/, 'the token bought, as a Bearer');
ok(!exists $mc[0]{headers}{'x-goog-api-key'}, 'no x-goog-api-key');
is($res[0]{json}{choices}[0]{message}{content}, 'Mock answer to: Hello gateway',
   'the answer');
is(delete $res[0]{json}{usage}{cost}, 0.000014, 'usage.cost from ai_price');
is_deeply($res[0]{json}{usage},
          { prompt_tokens => 4, completion_tokens => 5, total_tokens => 9 },
          'usage') or diag(explain($res[0]{json}{usage}));
my ($tok) = (keys %tokens)[0] =~ /^Bearer (.*)/;

# a stream
my $s = $t->stream($chat, { model => 'v/gemini-2.5-flash', stream => \1,
                            stream_options => { include_usage => \1 }, messages => $msgs });
is($s->{status}, 200, 'stream: 200');
is($s->{events}[-1], '[DONE]', 'stream: [DONE]');
my @c = grep { ref && $_->{object} } @{ $s->{json_events} };
is(join('', map { $_->{choices}[0]{delta}{content} // '' } grep { @{ $_->{choices} } } @c),
   'Mock answer to: Hello gateway', 'stream: the answer');
is($c[-1]{usage}{completion_tokens}, 5, 'stream: usage');
my $rec = (model_calls())[-1];
is($rec->{path}, "$G/gemini-2.5-flash:streamGenerateContent?alt=sse",
   'stream: :streamGenerateContent?alt=sse on Vertex');
is($rec->{headers}{authorization}, "Bearer $tok", 'stream: the same token');

# --- Anthropic on Vertex ------------------------------------------------------------

$r = $t->post_json($chat, { model => 'va/claude-sonnet-4@20250514', messages => $msgs,
                            max_tokens => 100 });
is($r->{status}, 200, 'anthropic: 200') or diag($r->{content});
is($r->{json}{choices}[0]{message}{content}, 'Mock answer to: Hello gateway',
   'anthropic: the answer');
is($r->{json}{usage}{prompt_tokens}, 4, 'anthropic: usage');
$rec = (model_calls())[-1];
is($rec->{path}, "$A/claude-sonnet-4\@20250514:rawPredict", 'anthropic: :rawPredict');
is($rec->{body_json}{anthropic_version}, 'vertex-2023-10-16',
   'anthropic: anthropic_version in the body');
ok(!exists $rec->{body_json}{model}, 'anthropic: no model in the body');
is($rec->{body_json}{max_tokens}, 100, 'anthropic: max_tokens');
is($rec->{headers}{authorization}, "Bearer $tok", 'anthropic: the same account\'s token');
ok(!exists $rec->{headers}{'x-api-key'}, 'anthropic: no x-api-key');

$s = $t->stream($chat, { model => 'va/claude-sonnet-4@20250514', stream => \1,
                         messages => $msgs, max_tokens => 100 });
is($s->{status}, 200, 'anthropic stream: 200');
@c = grep { ref && $_->{object} } @{ $s->{json_events} };
is(join('', map { $_->{choices}[0]{delta}{content} // '' } grep { @{ $_->{choices} } } @c),
   'Mock answer to: Hello gateway', 'anthropic stream: the answer');
is((model_calls())[-1]{path}, "$A/claude-sonnet-4\@20250514:streamRawPredict",
   'anthropic stream: :streamRawPredict');
is(scalar token_calls(), 3, 'still one token for the account');

# the Messages API inbound, to Claude on Vertex
$r = $t->post_json('/v1/messages', { model => 'va/claude-sonnet-4@20250514',
                                     max_tokens => 50, messages => $msgs });
is($r->{status}, 200, 'messages API: 200') or diag($r->{content});
is($r->{json}{type}, 'message', 'messages API: a message');
is($r->{json}{content}[0]{text}, 'Mock answer to: Hello gateway', 'messages API: the text');
is((model_calls())[-1]{path}, "$A/claude-sonnet-4\@20250514:rawPredict",
   'messages API: :rawPredict');

# a provider echoing the request's headers: the token never reaches the client
$r = $t->post_json($chat, { model => 'v/x-status401-echoheaders', messages => $msgs });
is($r->{status}, 401, 'echoed token: 401');
like($r->{content}, qr/authorization/i, 'echoed token: the headers were echoed');
unlike($r->{content}, qr/\Q$tok\E|ya29\.mock/, 'echoed token: scrubbed');

# --- embeddings: the publisher model's :predict -------------------------------------

$r = $t->post_json('/v1/embeddings',
    { model => 'v/text-embedding-005', input => ['hello', 'world!'],
      dimensions => 2 }, headers => { Authorization => 'Bearer sk-emb' });
is($r->{status}, 200, 'embeddings: 200') or diag($r->{content});
my $em = (model_calls())[-1];
is($em->{path}, "$G/text-embedding-005:predict", 'embeddings: :predict');
like($em->{headers}{authorization} // '', qr/^Bearer ya29\.mock-/,
     'embeddings: the access token');
is_deeply($em->{body_json},
          { instances => [{ content => 'hello' }, { content => 'world!' }],
            parameters => { autoTruncate => JSON::PP::false,
                            outputDimensionality => 2 } },
          'embeddings: the instances and parameters Vertex takes');
is($r->{json}{object}, 'list', 'embeddings: a list');
is_deeply([map { $_->{embedding} } @{ $r->{json}{data} }],
          [[5 / 1024, 6 / 1024], [6 / 1024, 7 / 1024]],
          'embeddings: the vectors, in order');
is(delete $r->{json}{usage}{cost}, 0.000002, 'embeddings: usage.cost from ai_price');
is_deeply($r->{json}{usage}, { prompt_tokens => 4, total_tokens => 4 },
          'embeddings: exact usage, the token counts summed (2 + 2)');
is($r->{json}{model}, 'v/text-embedding-005', 'embeddings: the model asked');

$r = $t->post_json('/v1/embeddings',
    { model => 'v/text-embedding-005', input => 'abcdefghij',
      encoding_format => 'base64' });
is($r->{status}, 200, 'embeddings, base64: 200');
require MIME::Base64;
is_deeply([unpack 'f<*', MIME::Base64::decode_base64($r->{json}{data}[0]{embedding})],
          [map { (10 + $_) / 1024 } 0 .. 2], 'embeddings, base64: float32 values');

$r = $t->post_json('/v1/embeddings',
    { model => 'v/text-embedding-005', input => 'x' x 9000 });
is($r->{status}, 400, 'embeddings past the window: 400, not cut short');
like($r->{json}{error}{message} // '', qr/supports up to 2048/,
     "embeddings past the window: Vertex's message");

$r = $t->post_json('/v1/embeddings', { model => 'v/text-embedding-005', input => [1, 2] });
is($r->{status}, 400, 'token arrays on Vertex: 400');
like($r->{json}{error}{message} // '', qr/embeds text only/, 'token arrays: why');

$r = $t->post_json('/v1/embeddings', { model => 'va/claude-sonnet-4@20250514', input => 'x' });
is($r->{status}, 400, 'embeddings on an Anthropic-on-Vertex provider: 400');

my ($el) = grep { $_->{model} eq 'v/text-embedding-005' && defined $_->{key} }
           @{ $t->get('/status')->{json}{ledger} };
is_deeply($el && [@$el{qw(requests errors input_tokens estimated_input_tokens
                         cost_nano_usd)}],
          [1, 0, 4, 0, 4 * 500], 'embeddings: the ledger charged the exact tokens')
    or diag(explain($t->get('/status')->{json}{ledger}));

# --- refreshed before it expires (tokens of 4 s: refreshed after 3) -------------

$r = $t->post_json($chat, { model => 'vshort/gemini-2.5-flash', messages => $msgs });
is($r->{status}, 200, 'short token: 200');
my $n = scalar token_calls();
is($n, 4, 'short token: bought');
$r = $t->post_json($chat, { model => 'vshort/gemini-2.5-flash', messages => $msgs });
is(scalar token_calls(), $n, 'short token: kept while fresh');
sleep 4;
$r = $t->post_json($chat, { model => 'vshort/gemini-2.5-flash', messages => $msgs });
is($r->{status}, 200, 'after its expiry: 200 (the mock refuses expired ones)');
is(scalar token_calls(), $n + 1, 'after its expiry: a new one bought');

# --- fallback past a refused token, and the ledger ---------------------------------

$r = $t->post_json('/fb/v1/chat/completions',
    { model => 'vforged/gemini-2.5-flash', messages => $msgs },
    headers => { Authorization => 'Bearer sk-fb' });
is($r->{status}, 200, 'fallback: 200');
is($r->{headers}{'x-ai-model'}, 'v/gemini-2.5-flash', 'fallback: the next model answered');
is($r->{headers}{'x-ai-attempts'}, 2, 'fallback: two calls');
my $st = $t->get('/status')->{json};
my ($e) = grep { $_->{route} eq '/fb/v1/' && $_->{model} eq 'v/gemini-2.5-flash' }
          @{ $st->{ledger} };
is_deeply([@$e{qw(requests errors input_tokens output_tokens cost_nano_usd)}],
          [1, 0, 4, 5, 4 * 1000 + 5 * 2000], 'ledger: charged') or diag(explain($st->{ledger}));
($e) = grep { $_->{route} eq '/fb/v1/' && $_->{model} eq 'vforged/gemini-2.5-flash' }
       @{ $st->{ledger} };
is_deeply([@$e{qw(requests errors)}], [1, 1], 'ledger: the refused one an error');

my $log = $t->read_file('logs/error.log') // '';
unlike($log, qr/ya29\.mock|assertion=|PRIVATE KEY/, 'error log (debug): no token, JWT or key');

# --- the configuration's checks ----------------------------------------------------------

$t->stop_nginx;
$t->write_file('notsa.json', '{"type":"authorized_user"}');
for my $case (
    [ "type=vertex pass=/_ai/x region=r credentials=file:$P/sa.json token_pass=/t",
      qr/type=vertex needs project=, region=, credentials=file:\.\.\. and token_pass=/ ],
    [ "type=vertex pass=/_ai/x project=p/q region=r",
      qr/invalid "project=p\/q"/ ],
    [ "type=vertex pass=/_ai/x credentials=file:$P/notsa.json",
      qr/is no service account key/ ],
    [ "type=vertex pass=/_ai/x publisher=meta",
      qr/publisher= takes google or anthropic/ ],
    [ "type=gemini pass=/_ai/x project=p",
      qr/are for type=vertex/ ],
    [ "type=vertex pass=/_ai/x project=p region=r credentials=file:$P/sa.json token_pass=/t key=k",
      qr/type=vertex takes credentials=, not key=/ ],
) {
    my ($args, $re) = @$case;
    $t->write_config($t->config_preamble . "http {\n" . $t->http_preamble
        . "    ai_provider x $args;\n"
        . "    server { listen 127.0.0.1:%%PORT%%; location /v1/ { ai_gateway; } }\n}\n");
    my ($rc, $out) = $t->nginx_test_config;
    isnt($rc, 0, "nginx -t fails: $args");
    like($out, qr/\[emerg\].*$re/, "message: $args") or diag($out);
}

done_testing;
