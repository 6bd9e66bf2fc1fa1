#!/usr/bin/perl
# type=azure through the gateway: Azure OpenAI's paths
# (/openai/deployments/D/chat/completions?api-version=V, the v1 API's
# /openai/v1/...), its api-key header or an Entra token as a Bearer (from
# a file), deployments from the model name or deployments=, the OpenAI
# translator's answers, streams, tools, embeddings, usage and the ledger,
# Azure's errors (a key sent back is scrubbed), fallback, and the
# configuration's checks.  The mock (t/lib/mock_cloud.pl) refuses what
# Azure refuses: no api-version, a bad version, no key, a bad key, an
# expired token, an unknown deployment.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use JSON::PP;
use GatewayTest;

my $t = GatewayTest->new(name => 'azure');
plan skip_all => 'module not built' unless $t->has_module;

$t->write_file('entra.token', "eyJentra-token-from-file\n");

$t->start_mock(name => 'm1');
$t->write_config($t->config_preamble . "http {\n" . $t->http_preamble . <<'EOF');
    ai_provider az type=azure pass=/_ai/az api_version=2024-10-21
                key=az-provider-secret
                deployments=gpt-4o:prod-4o,text-embedding-3-small:emb-small;
    ai_provider azv1 type=azure pass=/_ai/az api_version=v1
                token=eyJv1-entra-token deployments=gpt-4o:prod-4o;
    ai_provider aztok type=azure pass=/_ai/az api_version=2025-01-01-preview
                token=file:%%PREFIX%%/entra.token;
    ai_provider azold type=azure pass=/_ai/az api_version=2024-10-21
                token=eyJexpired-token;
    ai_provider azvar type=azure pass=/_ai/az api_version=2024-10-21
                token=$http_x_test_entra;
    ai_provider azbad type=azure pass=/_ai/az api_version=2024-10-21
                key=wrong-key-1234567;
    ai_provider azver type=azure pass=/_ai/az api_version=2024.10.21
                key=az-provider-secret;

    ai_price az/gpt-4o 2.5 10;
    ai_cost_zone cost:1m;

    server {
        listen 127.0.0.1:%%PORT%%;

        location /v1/ {
            ai_gateway;
            ai_cost zone=cost key=$http_authorization;
        }

        location /fb/v1/ {
            ai_gateway;
            ai_fallback az/x-status429 az/gpt-4o;
            ai_cost zone=cost key=$http_authorization;
        }

        location = /status { ai_status; }

        location /_ai/az/ {
            internal;
            proxy_pass http://127.0.0.1:%%MOCK_PORT_m1%%/;
            proxy_buffering off;
        }
    }
}
EOF
$t->start_nginx;

my $chat = '/v1/chat/completions';
my $msgs = [{ role => 'user', content => 'Hello gateway' }];   # 4 tokens in
my $V = 'api-version=2024-10-21';

sub last_record { $t->mock_records('m1')->[-1] }
sub chunks { grep { ref && $_->{object} } @{ $_[0]{json_events} } }

# --- a chat: deployment from the map, api-version, api-key --------------------

my $r = $t->post_json($chat, { model => 'az/gpt-4o', messages => $msgs },
                      headers => { Authorization => 'Bearer sk-client-own' });
is($r->{status}, 200, 'chat: 200');
is($r->{json}{object}, 'chat.completion', 'chat: chat.completion');
is($r->{json}{model}, 'gpt-4o',
   'chat: the model as Azure names it (OpenAI-type answers go as they come)');
is($r->{json}{choices}[0]{message}{content}, 'Mock answer to: Hello gateway',
   'chat: the answer');
is(delete $r->{json}{usage}{cost}, 0.00006, 'chat: usage.cost from ai_price');
is_deeply($r->{json}{usage},
          { prompt_tokens => 4, completion_tokens => 5, total_tokens => 9 },
          'chat: usage');
is($r->{headers}{'x-ai-cost'}, '0.000060', 'chat: X-AI-Cost from ai_price');

my $rec = last_record();
is($rec->{path}, "/openai/deployments/prod-4o/chat/completions?$V",
   'upstream: the mapped deployment and api-version');
is($rec->{headers}{'api-key'}, 'az-provider-secret', 'upstream: api-key');
ok(!exists $rec->{headers}{authorization},
   'upstream: no Authorization (the client\'s stays behind)');
is($rec->{body_json}{model}, 'gpt-4o', 'upstream: body model (Azure ignores it)');
is_deeply($rec->{body_json}{messages}, $msgs, 'upstream: the messages');

# a model not in the map: its own name is the deployment, escaped
$r = $t->post_json($chat, { model => 'az/gpt-4o-mini', messages => $msgs });
is($r->{status}, 200, 'unmapped model: 200');
is(last_record()->{path}, "/openai/deployments/gpt-4o-mini/chat/completions?$V",
   'unmapped model: deployment = model name');
my $n = @{ $t->mock_records('m1') };
for my $bad ('my:model', 'org/m', '...', 'x' x 65) {
    $r = $t->post_json($chat, { model => "az/$bad", messages => $msgs });
    is($r->{status}, 400, "model \"$bad\": 400 (no Azure deployment)");
    like($r->{json}{error}{message} // '', qr/no valid Azure deployment/,
         "model \"$bad\": said");
}
for my $bad ('..', 'a%2Fb', 'a b') {       # the request's own check
    $r = $t->post_json($chat, { model => "az/$bad", messages => $msgs });
    is($r->{status}, 400, "model \"$bad\": 400");
}
is(scalar @{ $t->mock_records('m1') }, $n, 'those models: no call made');

# --- a stream with usage -------------------------------------------------------

my $s = $t->stream($chat, { model => 'az/gpt-4o', stream => \1,
                            stream_options => { include_usage => \1 },
                            messages => $msgs });
is($s->{status}, 200, 'stream: 200');
like($s->{headers}{'content-type'}, qr{^text/event-stream}, 'stream: SSE');
ok($s->{complete}, 'stream: ended properly');
is($s->{events}[-1], '[DONE]', 'stream: [DONE]');
my @c = chunks($s);
is(join('', map { $_->{choices}[0]{delta}{content} // '' }
            grep { @{ $_->{choices} } } @c),
   'Mock answer to: Hello gateway', 'stream: deltas join to the answer');
is(delete $c[-1]{usage}{cost}, 0.00006, 'stream: usage.cost');
is_deeply($c[-1]{usage},
          { prompt_tokens => 4, completion_tokens => 5, total_tokens => 9 },
          'stream: usage chunk');
$rec = last_record();
is($rec->{path}, "/openai/deployments/prod-4o/chat/completions?$V",
   'stream upstream: the deployment path');
ok($rec->{body_json}{stream}, 'stream upstream: stream true');
is($rec->{headers}{accept}, 'text/event-stream', 'stream upstream: Accept');

# --- tools ---------------------------------------------------------------------

my $tools = [{ type => 'function', function => { name => 'lookup',
    parameters => { type => 'object', properties => {} } } }];
$r = $t->post_json($chat, { model => 'az/gpt-4o-toolcall', messages => $msgs,
                            tools => $tools });
is($r->{status}, 200, 'tools: 200');
is($r->{json}{choices}[0]{finish_reason}, 'tool_calls', 'tools: finish_reason');
is($r->{json}{choices}[0]{message}{tool_calls}[0]{function}{name}, 'lookup',
   'tools: the call');
is_deeply(last_record()->{body_json}{tools}, $tools, 'tools: sent as they came');

# --- embeddings -----------------------------------------------------------------

$r = $t->post_json('/v1/embeddings',
    { model => 'az/text-embedding-3-small', input => ['abcd', 'efghijkl'] });
is($r->{status}, 200, 'embeddings: 200');
is(scalar @{ $r->{json}{data} // [] }, 2, 'embeddings: two vectors');
is_deeply($r->{json}{data}[1]{embedding}, [8 / 1024, 9 / 1024, 10 / 1024],
          'embeddings: the vector');
is($r->{json}{usage}{prompt_tokens}, 3, 'embeddings: usage');
$rec = last_record();
is($rec->{path}, "/openai/deployments/emb-small/embeddings?$V",
   'embeddings upstream: /openai/deployments/D/embeddings');
is($rec->{headers}{'api-key'}, 'az-provider-secret', 'embeddings upstream: api-key');

# --- the v1 API: /openai/v1/, the deployment as the model, a Bearer token ----

$r = $t->post_json($chat, { model => 'azv1/gpt-4o', messages => $msgs });
is($r->{status}, 200, 'v1: 200');
is($r->{json}{model}, 'prod-4o', 'v1: the model as Azure names it');
$rec = last_record();
is($rec->{path}, '/openai/v1/chat/completions', 'v1: /openai/v1/chat/completions');
is($rec->{body_json}{model}, 'prod-4o', 'v1: the body\'s model is the deployment');
is($rec->{headers}{authorization}, 'Bearer eyJv1-entra-token', 'v1: the Entra token');
ok(!exists $rec->{headers}{'api-key'}, 'v1: no api-key');
$r = $t->post_json($chat, { model => 'azv1/gpt-4.1', messages => $msgs });
is(last_record()->{body_json}{model}, 'gpt-4.1', 'v1 unmapped: the model name');

# a token from a file (its newline gone)
$r = $t->post_json($chat, { model => 'aztok/gpt-4o', messages => $msgs });
is($r->{status}, 200, 'token file: 200');
$rec = last_record();
is($rec->{headers}{authorization}, 'Bearer eyJentra-token-from-file',
   'token file: the file\'s token');
is($rec->{path},
   '/openai/deployments/gpt-4o/chat/completions?api-version=2025-01-01-preview',
   'token file: its api-version');

# a token from a variable, per request (here a header, for the test)
$r = $t->post_json($chat, { model => 'azvar/gpt-4o', messages => $msgs },
                   headers => { 'X-Test-Entra' => 'eyJper-request-token' });
is($r->{status}, 200, 'token variable: 200');
is(last_record()->{headers}{authorization}, 'Bearer eyJper-request-token',
   'token variable: its value as the Bearer');
$r = $t->post_json($chat, { model => 'azvar/x-status401-echoheaders', messages => $msgs },
                   headers => { 'X-Test-Entra' => 'eyJper-request-token' });
unlike($r->{content}, qr/per-request-token/, 'token variable: scrubbed when echoed');

# the Messages API inbound, to Azure
$r = $t->post_json('/v1/messages', { model => 'az/gpt-4o', max_tokens => 50,
                                     messages => $msgs });
is($r->{status}, 200, 'messages API: 200') or diag($r->{content});
is($r->{json}{content}[0]{text}, 'Mock answer to: Hello gateway', 'messages API: the text');
is(last_record()->{path}, "/openai/deployments/prod-4o/chat/completions?$V",
   'messages API: the deployment path');

# --- Azure's refusals ---------------------------------------------------------------

$r = $t->post_json($chat, { model => 'azbad/gpt-4o', messages => $msgs });
is($r->{status}, 401, 'bad key: 401');
like($r->{json}{error}{message}, qr/Access denied due to invalid subscription key/,
     'bad key: Azure\'s message');
$r = $t->post_json($chat, { model => 'azold/gpt-4o', messages => $msgs });
is($r->{status}, 401, 'expired token: 401');
like($r->{json}{error}{message}, qr/expired/, 'expired token: said');
$r = $t->post_json($chat, { model => 'azver/gpt-4o', messages => $msgs });
is($r->{status}, 400, 'bad api-version: 400');
like($r->{json}{error}{message}, qr/API version not supported/, 'bad api-version: said');
$r = $t->post_json($chat, { model => 'az/nodeploy', messages => $msgs });
is($r->{status}, 404, 'unknown deployment: 404');
like($r->{json}{error}{message}, qr/deployment for this resource does not exist/,
     'unknown deployment: said');

# a provider echoing the request's headers: the key never reaches the client
$r = $t->post_json($chat, { model => 'az/x-status401-echoheaders', messages => $msgs });
is($r->{status}, 401, 'echoed key: 401');
like($r->{content}, qr/api-key/, 'echoed key: the headers were echoed');
unlike($r->{content}, qr/az-provider-secret/, 'echoed key: the api-key scrubbed');
$r = $t->post_json($chat, { model => 'azv1/x-status401-echoheaders', messages => $msgs });
like($r->{content}, qr/authorization/, 'echoed token: the headers were echoed');
unlike($r->{content}, qr/v1-entra-token/, 'echoed token: the Bearer token scrubbed');

# --- fallback and the ledger -------------------------------------------------------

$r = $t->post_json('/fb/v1/chat/completions',
    { model => 'az/x-status429', messages => $msgs },
    headers => { Authorization => 'Bearer sk-fb' });
is($r->{status}, 200, 'fallback: 200');
is($r->{headers}{'x-ai-model'}, 'az/gpt-4o', 'fallback: the second model answered');
is($r->{headers}{'x-ai-attempts'}, 2, 'fallback: two calls');
my @paths = map { $_->{path} } @{ $t->mock_records('m1') }[-2, -1];
is_deeply(\@paths, ["/openai/deployments/x-status429/chat/completions?$V",
                    "/openai/deployments/prod-4o/chat/completions?$V"],
          'fallback: both deployments called');

my $st = $t->get('/status')->{json};
my ($e) = grep { $_->{route} eq '/fb/v1/' && $_->{model} eq 'az/gpt-4o' }
          @{ $st->{ledger} };
is_deeply([@$e{qw(requests errors input_tokens output_tokens cost_nano_usd)}],
          [1, 0, 4, 5, 4 * 2500 + 5 * 10000], 'ledger: the answer charged')
    or diag(explain($st->{ledger}));
($e) = grep { $_->{route} eq '/fb/v1/' && $_->{model} eq 'az/x-status429' }
       @{ $st->{ledger} };
is_deeply([@$e{qw(requests errors)}], [1, 1], 'ledger: the 429 counted');

# no key or token in the error log, whatever the level (debug here)
my $log = $t->read_file('logs/error.log') // '';
unlike($log, qr/az-provider-secret|eyJv1-entra-token|entra-token-from-file/,
       'error log: no key, no token');

# --- the configuration's checks ------------------------------------------------------

$t->stop_nginx;

for my $case (
    [ 'type=azure pass=/_ai/az key=az-k',
      qr/type=azure needs api_version=/ ],
    [ 'type=openai pass=/_ai/az api_version=2024-10-21',
      qr/api_version=, deployments= and token= are for type=azure/ ],
    [ 'type=azure pass=/_ai/az api_version=2024/10',
      qr/invalid "api_version=2024\/10"/ ],
    [ 'type=azure pass=/_ai/az api_version=v1 deployments=gpt-4o',
      qr/invalid deployments= entry "gpt-4o"/ ],
    [ 'type=azure pass=/_ai/az api_version=v1 deployments=a:b,c:d/e',
      qr/invalid deployments= entry "c:d\/e"/ ],
    [ 'type=azure pass=/_ai/az api_version=v1 key=az-k token=eyJx',
      qr/takes one key= or token=/ ],
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
