#!/usr/bin/perl
# The edge response cache (ai_cache_path, ai_cache, ai_cache_bypass): a
# second identical request is a HIT with no provider call (the mock's
# record), the same content, its usage at cost 0, nothing added to the
# ledger; a streamed hit is valid SSE (and the openai SDK reads it); the
# Messages and Responses dialects get hits in their own form; tenants
# miss each other's entries; a cut stream, a 500, a fallback to an error,
# a sampled request are never stored; bypass and no-store honoured; the
# files survive reload and restart; max_size evicts; concurrent identical
# misses collapse into one provider call (lock=on); $ai_cache_status,
# X-AI-Cache, Age, the status document and Prometheus.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(time sleep);
use IO::Socket::INET;
use POSIX ();
use GatewayTest;

my $t = GatewayTest->new(name => 'cache');
plan skip_all => 'module not built' unless $t->has_module;

$t->start_mock(name => 'm1');

(my $preamble = $t->config_preamble)
    =~ s/worker_connections \d+;/worker_connections 4096;/;

my $conf = $preamble . "http {\n" . $t->http_preamble . <<'EOF';
    log_format cache '$request_uri $status $ai_cache_status';
    access_log logs/cache.log cache;

    ai_provider openai type=openai pass=/_ai/openai key=sk-provider;
    ai_price openai/gpt-4o 2.50 10.00;
    ai_price openai/gpt-4o-mini 0.15 0.60;

    ai_cost_zone cost:1m;

    ai_cache_path %%PREFIX%%/cache_main levels=1:2 keys_zone=aic:1m
                  inactive=1h;
    ai_cache_path %%PREFIX%%/cache_small keys_zone=small:1m max_size=64k
                  inactive=1h;

    server {
        listen 127.0.0.1:%%PORT%% reuseport;

        location /v1/ {
            ai_gateway;
            ai_cost zone=cost key=$http_authorization;
            ai_cache aic scope=global;
            ai_cache_bypass $arg_nocache;
        }

        location /tenant/v1/ {
            ai_gateway;
            ai_cache aic tenant=$http_x_tenant;
        }

        location /key/v1/ {
            ai_gateway;
            ai_cache aic;
        }

        location /sampling/v1/ {
            ai_gateway;
            ai_cache aic scope=global sampling=on;
        }

        location /short/v1/ {
            ai_gateway;
            ai_cache aic scope=global ttl=1s;
        }

        location /fb/v1/ {
            ai_gateway;
            ai_fallback openai/gpt-4o-status503;
            ai_cache aic scope=global;
        }

        location /small/v1/ {
            ai_gateway;
            ai_cache small scope=global;
        }

        location /guard/v1/ {
            ai_gateway;
            ai_guard sec "regex=secret-[0-9]+" action=redact scope=response;
            ai_cache aic scope=global;
        }

        location /budget/v1/ {
            ai_gateway;
            ai_cost zone=cost key=$http_authorization budget=1/day;
            ai_cache aic scope=global;
        }

        location /fusion/v1/ {
            ai_gateway;
            ai_pool openai/alpha openai/beta judge=openai/verdict mode=merge;
            ai_cache aic scope=global;
        }

        location /off/v1/ {
            ai_gateway;
            ai_cache off;
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

my $n = 0;

# a request of its own: every test uses different text, so that its
# entries are its own
sub body {
    my (%o) = @_;
    my $b = { model => $o{model} // 'openai/gpt-4o',
              messages => [{ role => 'user', content => $o{text} }] };
    $b->{temperature} = $o{temperature} // 0;
    delete $b->{temperature} if $o{no_temperature};
    $b->{stream} = JSON::PP::true() if $o{stream};
    $b->{stream_options} = { include_usage => JSON::PP::true() }
        if $o{usage};
    return $b;
}

sub chat {
    my ($loc, %o) = @_;
    return $t->post_json("$loc/chat/completions", body(%o),
                         headers => $o{headers} || {});
}

sub calls_for {
    my ($text) = @_;
    my $r = $t->mock_records('m1');
    return scalar grep {
        ($_->{body} // '') =~ /\Q$text\E/
    } @$r;
}

sub status { $t->get('/status')->{json} }

# the text of a chunk stream's content deltas
sub streamed {
    my ($s) = @_;
    my $text = '';
    for my $e (@{ $s->{json_events} }) {
        next unless $e && $e->{choices} && @{ $e->{choices} };
        $text .= $e->{choices}[0]{delta}{content} // '';
    }
    return $text;
}

sub cache_of {
    my ($st, $name) = @_;
    my ($c) = grep { $_->{name} eq $name } @{ $st->{cache} || [] };
    return $c || {};
}

# ---------------------------------------------------------------------
# miss, then hit: no second call, same content, usage, cost 0

{
    my $text = 'cache one ' . $n++;
    my $st0 = status();
    my $r1 = chat('/v1', text => $text,
                  headers => { Authorization => 'Bearer k1' });
    is $r1->{status}, 200, 'miss: 200';
    is $r1->{headers}{'x-ai-cache'}, 'MISS', 'miss: X-AI-Cache: MISS';
    my $st1 = status();

    my $r2 = chat('/v1', text => $text,
                  headers => { Authorization => 'Bearer k1' });
    is $r2->{status}, 200, 'hit: 200';
    is $r2->{headers}{'x-ai-cache'}, 'HIT', 'hit: X-AI-Cache: HIT';
    like $r2->{headers}{age} // '', qr/^\d+$/, 'hit: Age';
    is calls_for($text), 1, 'the mock was called once for both';

    my ($c1, $c2) = ($r1->{json}{choices}[0]{message}{content},
                     $r2->{json}{choices}[0]{message}{content});
    is $c2, $c1, 'hit: the same content';
    is $c1, "Mock answer to: $text", 'the content is the answer';
    is $r2->{json}{id}, $r1->{json}{id}, 'hit: the same id';
    is $r2->{headers}{'x-ai-model'}, 'openai/gpt-4o',
        'hit: X-AI-Model, the model that answered';
    ok !defined $r2->{headers}{'x-ai-attempts'}, 'hit: no X-AI-Attempts';
    is $r2->{json}{usage}{prompt_tokens}, $r1->{json}{usage}{prompt_tokens},
        'hit: the stored usage';
    is $r2->{json}{usage}{completion_tokens},
        $r1->{json}{usage}{completion_tokens}, 'hit: completion tokens';
    ok $r1->{json}{usage}{cost} > 0, 'miss: a cost';
    is $r2->{json}{usage}{cost}, 0, 'hit: usage.cost 0';

    my $st2 = status();
    is $st2->{totals}{cost_usd}, $st1->{totals}{cost_usd},
        'ledger: the hit cost nothing';
    is $st2->{totals}{input_tokens}, $st1->{totals}{input_tokens},
        'ledger: no input tokens for the hit';
    is $st2->{totals}{requests}, $st1->{totals}{requests} + 1,
        'ledger: the hit is one more request';
    my ($l1) = grep { ($_->{model} // '') eq 'openai/gpt-4o'
                      && ($_->{route} // '') eq '/v1/'
                      && defined $_->{key} } @{ $st1->{ledger} };
    my ($l2) = grep { ($_->{model} // '') eq 'openai/gpt-4o'
                      && ($_->{route} // '') eq '/v1/'
                      && defined $_->{key} && $_->{key} eq $l1->{key} }
               @{ $st2->{ledger} };
    is $l2->{requests} - $l1->{requests}, 1,
        "ledger: the key's entry counts the hit";
    is $l2->{cost_nano_usd}, $l1->{cost_nano_usd},
        "ledger: the key's entry, cost unchanged";
    my ($a, $b) = (cache_of($st1, 'aic'), cache_of($st2, 'aic'));
    is $b->{hits} - ($a->{hits} // 0), 1, 'status: one more hit';
    is $b->{saved_input_tokens} - $a->{saved_input_tokens},
        $r1->{json}{usage}{prompt_tokens}, 'status: saved input tokens';
    is $b->{saved_output_tokens} - $a->{saved_output_tokens},
        $r1->{json}{usage}{completion_tokens}, 'status: saved output tokens';
    ok $b->{saved_usd} > $a->{saved_usd}, 'status: saved USD';
    is $b->{stored} - (cache_of($st0, 'aic')->{stored} // 0), 1,
        'status: one answer stored';

    # whitespace and key order do not matter; stream/user/metadata neither
    my $raw = '{ "temperature":0, "messages":[{"content":"' . $text
            . '","role":"user"}], "user":"someone", "model":"openai/gpt-4o"}';
    my $r3 = $t->post_json('/v1/chat/completions', $raw,
                           headers => { Authorization => 'Bearer k1' });
    is $r3->{headers}{'x-ai-cache'}, 'HIT', 'canonical form: a HIT';
    is calls_for($text), 1, 'still one call';

    # a different parameter is a different answer
    my $r4 = $t->post_json('/v1/chat/completions',
        { %{ body(text => $text) }, max_tokens => 3 },
        headers => { Authorization => 'Bearer k1' });
    is $r4->{headers}{'x-ai-cache'}, 'MISS', 'max_tokens differs: a MISS';
    is calls_for($text), 2, 'a second call';
}

# ---------------------------------------------------------------------
# streams: stored whole, replayed as valid SSE

{
    my $text = 'cache stream ' . $n++;
    my $s1 = $t->stream('/v1/chat/completions',
                        body(text => $text, stream => 1, usage => 1));
    is $s1->{status}, 200, 'stream miss: 200';
    is $s1->{headers}{'x-ai-cache'}, 'MISS', 'stream miss: MISS';
    ok $s1->{done}, 'stream miss: [DONE]';

    my $s2 = $t->stream('/v1/chat/completions',
                        body(text => $text, stream => 1, usage => 1));
    is $s2->{status}, 200, 'stream hit: 200';
    is $s2->{headers}{'x-ai-cache'}, 'HIT', 'stream hit: HIT';
    like $s2->{headers}{'content-type'}, qr{^text/event-stream},
        'stream hit: SSE';
    ok $s2->{done}, 'stream hit: [DONE] at the end';
    is $s2->{events}[-1], '[DONE]', 'stream hit: [DONE] is last';
    is streamed($s2), "Mock answer to: $text", 'stream hit: the content';
    my ($usage) = map { $_->{usage} } grep { $_ && $_->{usage} }
                  @{ $s2->{json_events} };
    is $usage->{completion_tokens}, 3 + scalar(split ' ', $text),
        'stream hit: the usage chunk';
    is $usage->{cost}, 0, 'stream hit: usage cost 0';
    my ($fin) = grep { $_ && $_->{choices} && @{ $_->{choices} }
                       && $_->{choices}[0]{finish_reason} }
                @{ $s2->{json_events} };
    is $fin->{choices}[0]{finish_reason}, 'stop', 'stream hit: finish';
    is calls_for($text), 1, 'stream: one provider call';

    # the stored stream answers a client that asks for no stream
    my $r = chat('/v1', text => $text);
    is $r->{headers}{'x-ai-cache'}, 'HIT', 'stored stream: a whole HIT';
    is $r->{json}{choices}[0]{message}{content}, "Mock answer to: $text",
        'stored stream: the content, whole';
    is $r->{json}{object}, 'chat.completion', 'stored stream: an object';

    # and a whole answer replays as a stream
    my $text2 = 'cache whole then stream ' . $n++;
    chat('/v1', text => $text2);
    my $s3 = $t->stream('/v1/chat/completions',
                        body(text => $text2, stream => 1));
    is $s3->{headers}{'x-ai-cache'}, 'HIT', 'whole answer: a streamed HIT';
    is streamed($s3), "Mock answer to: $text2", 'whole answer: streamed content';
    ok !(grep { $_ && $_->{usage} } @{ $s3->{json_events} }),
        'no usage chunk unless asked for';
}

# ---------------------------------------------------------------------
# tool calls, streamed and not

{
    my $text = 'cache tools ' . $n++;
    my $tools = [{ type => 'function',
                   function => { name => 'lookup', parameters => {} } }];
    my $b = { %{ body(text => $text, model => 'openai/gpt-4o-toolcall') },
              tools => $tools, stream => JSON::PP::true() };
    my $s1 = $t->stream('/v1/chat/completions', $b);
    ok $s1->{done}, 'tool stream miss';
    my $s2 = $t->stream('/v1/chat/completions', $b);
    is $s2->{headers}{'x-ai-cache'}, 'HIT', 'tool stream: HIT';
    my @tc = map { @{ $_->{choices}[0]{delta}{tool_calls} || [] } }
             grep { $_ && $_->{choices} && @{ $_->{choices} } }
             @{ $s2->{json_events} };
    is $tc[0]{function}{name}, 'lookup', 'tool stream hit: the call';
    my $args = join '', map { $_->{function}{arguments} // '' } @tc;
    is $args, qq({"text":"$text"}), 'tool stream hit: its arguments';
    delete $b->{stream};
    my $r = $t->post_json('/v1/chat/completions', $b);
    is $r->{json}{choices}[0]{message}{tool_calls}[0]{function}{arguments},
        qq({"text":"$text"}), 'tool call from the stored stream, whole';
    is $r->{json}{choices}[0]{finish_reason}, 'tool_calls',
        'finish tool_calls';
    is calls_for($text), 1, 'tools: one provider call';
}

# ---------------------------------------------------------------------
# the client's dialects: one stored answer, each in its own form

{
    my $text = 'cache dialect ' . $n++;
    my $m = { model => 'openai/gpt-4o', max_tokens => 100, temperature => 0,
              messages => [{ role => 'user', content => $text }] };
    my $r1 = $t->post_json('/v1/messages', $m);
    is $r1->{status}, 200, 'messages miss';
    my $r2 = $t->post_json('/v1/messages', $m);
    is $r2->{headers}{'x-ai-cache'}, 'HIT', 'messages: HIT';
    is $r2->{json}{type}, 'message', 'messages hit: a Message';
    is $r2->{json}{content}[0]{text}, "Mock answer to: $text",
        'messages hit: the text';
    is $r2->{json}{usage}{output_tokens}, $r1->{json}{usage}{output_tokens},
        'messages hit: usage';
    my $s = $t->stream('/v1/messages', { %$m, stream => JSON::PP::true() });
    is $s->{headers}{'x-ai-cache'}, 'HIT', 'messages stream: HIT';
    my @names = grep { defined } @{ $s->{event_names} };
    is $names[0], 'message_start', 'messages stream hit: message_start';
    is $names[-1], 'message_stop', 'messages stream hit: message_stop';
    my $txt = join '', map { $_->{delta}{text} // '' }
              grep { $_ && ($_->{type} // '') eq 'content_block_delta' }
              @{ $s->{json_events} };
    is $txt, "Mock answer to: $text", 'messages stream hit: the text';
    is calls_for($text), 1, 'messages: one provider call';

    my $resp = { model => 'openai/gpt-4o', input => $text . ' r',
                 temperature => 0 };
    $t->post_json('/v1/responses', $resp);
    my $r3 = $t->post_json('/v1/responses', $resp);
    is $r3->{headers}{'x-ai-cache'}, 'HIT', 'responses: HIT';
    is $r3->{json}{object}, 'response', 'responses hit: a response';
    is $r3->{json}{output}[0]{content}[0]{text}, "Mock answer to: $text r",
        'responses hit: the text';
    my $rs = $t->stream('/v1/responses',
                        { %$resp, stream => JSON::PP::true() });
    is $rs->{headers}{'x-ai-cache'}, 'HIT', 'responses stream: HIT';
    my @types = map { $_ && $_->{type} } @{ $rs->{json_events} };
    is $types[0], 'response.created', 'responses stream hit: created';
    is $types[-1], 'response.completed', 'responses stream hit: completed';
    my $rt = join '', map { $_->{delta} // '' }
             grep { $_ && ($_->{type} // '') eq 'response.output_text.delta' }
             @{ $rs->{json_events} };
    is $rt, "Mock answer to: $text r", 'responses stream hit: the text';
}

# ---------------------------------------------------------------------
# fusion: the fused answer is one entry, keyed with the pool

{
    my $text = 'cache fusion ' . $n++;
    my $r1 = chat('/fusion/v1', text => $text, model => 'fusion');
    is $r1->{status}, 200, 'fusion miss: 200';
    my $calls = calls_for($text);
    ok $calls >= 3, "fusion miss: members and judge called ($calls)";
    my $r2 = chat('/fusion/v1', text => $text, model => 'fusion');
    is $r2->{headers}{'x-ai-cache'}, 'HIT', 'fusion: HIT';
    is $r2->{json}{choices}[0]{message}{content},
        $r1->{json}{choices}[0]{message}{content}, 'fusion hit: the answer';
    is calls_for($text), $calls, 'fusion hit: no call';
}

# ---------------------------------------------------------------------
# embeddings: whole-request entries

{
    my $e = { model => 'openai/text-embedding-3-small',
              input => ['cache emb ' . $n++, 'two'] };
    my $r1 = $t->post_json('/v1/embeddings', $e);
    is $r1->{status}, 200, 'embeddings miss';
    my $r2 = $t->post_json('/v1/embeddings', $e);
    is $r2->{headers}{'x-ai-cache'}, 'HIT', 'embeddings: HIT';
    is_deeply $r2->{json}{data}, $r1->{json}{data},
        'embeddings hit: the same vectors';
    is calls_for($e->{input}[0]), 1, 'embeddings: one call';
}

# ---------------------------------------------------------------------
# tenants, sampling

{
    my $text = 'cache tenant ' . $n++;
    my $a1 = chat('/tenant/v1', text => $text,
                  headers => { 'X-Tenant' => 'a' });
    my $b1 = chat('/tenant/v1', text => $text,
                  headers => { 'X-Tenant' => 'b' });
    is $b1->{headers}{'x-ai-cache'}, 'MISS', 'another tenant: MISS';
    my $a2 = chat('/tenant/v1', text => $text,
                  headers => { 'X-Tenant' => 'a' });
    is $a2->{headers}{'x-ai-cache'}, 'HIT', 'the same tenant: HIT';
    is calls_for($text), 2, 'tenants: one call each';

    # scope=key without ai_auth: the client's own credential
    my $k = 'cache credential ' . $n++;
    my $x1 = chat('/key/v1', text => $k,
                  headers => { Authorization => 'Bearer one' });
    my $x2 = chat('/key/v1', text => $k,
                  headers => { Authorization => 'Bearer two' });
    is $x2->{headers}{'x-ai-cache'}, 'MISS', 'another credential: MISS';
    my $x3 = chat('/key/v1', text => $k, headers => { 'x-api-key' => 'one' });
    is $x3->{headers}{'x-ai-cache'}, 'MISS', 'x-api-key: its own entries';
    my $x4 = chat('/key/v1', text => $k,
                  headers => { Authorization => 'Bearer one' });
    is $x4->{headers}{'x-ai-cache'}, 'HIT', 'the same credential: HIT';
    my $x5 = chat('/key/v1', text => $k, headers => { 'x-api-key' => 'one' });
    is $x5->{headers}{'x-ai-cache'}, 'HIT', 'the same x-api-key: HIT';
    is calls_for($k), 3, 'credentials: one call each';

    my $s = 'cache sampled ' . $n++;
    chat('/v1', text => $s, temperature => 0.7);
    my $r = chat('/v1', text => $s, temperature => 0.7);
    is $r->{headers}{'x-ai-cache'}, 'BYPASS',
        'temperature > 0: not cached (BYPASS)';
    chat('/v1', text => $s, no_temperature => 1);
    $r = chat('/v1', text => $s, no_temperature => 1);
    is $r->{headers}{'x-ai-cache'}, 'BYPASS',
        'no temperature (the default, 1): not cached';
    is calls_for($s), 4, 'sampled: every request called';
    chat('/sampling/v1', text => $s, temperature => 0.7);
    $r = chat('/sampling/v1', text => $s, temperature => 0.7);
    is $r->{headers}{'x-ai-cache'}, 'HIT', 'sampling=on: a HIT';
}

# ---------------------------------------------------------------------
# never stored: a cut stream, a stream error, a 500, a fallback's error

{
    for my $model (qw(openai/gpt-4o-cut openai/gpt-4o-streamerror)) {
        my $text = "cache broken $model " . $n++;
        $t->stream('/v1/chat/completions',
                   body(text => $text, model => $model, stream => 1));
        my $s = $t->stream('/v1/chat/completions',
                           body(text => $text, model => $model, stream => 1));
        is $s->{headers}{'x-ai-cache'}, 'MISS', "$model: not stored";
        is calls_for($text), 2, "$model: called twice";
    }

    my $text = 'cache 500 ' . $n++;
    my $r1 = chat('/v1', text => $text, model => 'openai/gpt-4o-status500');
    is $r1->{status}, 500, 'a 500 is passed on';
    my $r2 = chat('/v1', text => $text, model => 'openai/gpt-4o-status500');
    is $r2->{headers}{'x-ai-cache'}, 'MISS', 'a 500: not stored';
    is calls_for($text), 2, 'a 500: called twice';

    $text = 'cache fallback ' . $n++;
    chat('/fb/v1', text => $text, model => 'openai/gpt-4o-status500');
    my $r3 = chat('/fb/v1', text => $text, model => 'openai/gpt-4o-status500');
    is $r3->{status}, 502, 'fallback to errors: 502';
    is $r3->{headers}{'x-ai-cache'}, 'MISS', 'fallback error: not stored';
    is calls_for($text), 4, 'fallback error: every call made again';

    $text = 'cache cut whole ' . $n++;
    chat('/v1', text => $text, model => 'openai/gpt-4o-cut');
    my $r4 = chat('/v1', text => $text, model => 'openai/gpt-4o-cut');
    is $r4->{headers}{'x-ai-cache'}, 'MISS', 'a cut answer: not stored';
}

# ---------------------------------------------------------------------
# bypass and no-store

{
    my $text = 'cache bypass ' . $n++;
    chat('/v1', text => $text);
    my $r = chat('/v1', text => $text,
                 headers => { 'Cache-Control' => 'no-cache' });
    is $r->{headers}{'x-ai-cache'}, 'BYPASS', 'Cache-Control: no-cache';
    $r = chat('/v1', text => $text, headers => { 'x-ai-cache' => 'bypass' });
    is $r->{headers}{'x-ai-cache'}, 'BYPASS', 'x-ai-cache: bypass';
    $r = $t->post_json('/v1/chat/completions?nocache=1', body(text => $text));
    is $r->{headers}{'x-ai-cache'}, 'BYPASS', 'ai_cache_bypass $arg_nocache';
    is calls_for($text), 4, 'bypass: the providers answered';
    $r = chat('/v1', text => $text);
    is $r->{headers}{'x-ai-cache'}, 'HIT', 'and the entry is there';

    my $ns = 'cache no-store ' . $n++;
    $r = chat('/v1', text => $ns, headers => { 'Cache-Control' => 'no-store' });
    is $r->{headers}{'x-ai-cache'}, 'MISS', 'no-store: a MISS';
    $r = chat('/v1', text => $ns);
    is $r->{headers}{'x-ai-cache'}, 'MISS', 'no-store: nothing was written';
    $r = chat('/v1', text => $ns);
    is $r->{headers}{'x-ai-cache'}, 'HIT', 'then stored by the next';

    $r = chat('/off/v1', text => $ns);
    ok !defined $r->{headers}{'x-ai-cache'}, 'ai_cache off: no header';
}

# ---------------------------------------------------------------------
# ai_guard's response rules apply to a hit as to a fresh answer; a hit
# under a budget gives its reservation back

{
    my $text = 'cache guard secret-' . (1000 + $n++);
    my $r1 = chat('/guard/v1', text => $text);
    is $r1->{json}{choices}[0]{message}{content},
        'Mock answer to: cache guard [REDACTED:sec]', 'guard: redacted';
    my $r2 = chat('/guard/v1', text => $text);
    is $r2->{headers}{'x-ai-cache'}, 'HIT', 'guard: a HIT';
    is $r2->{json}{choices}[0]{message}{content},
        'Mock answer to: cache guard [REDACTED:sec]', 'guard: the hit redacted';
    my $s = $t->stream('/guard/v1/chat/completions',
                       body(text => $text, stream => 1));
    is streamed($s), 'Mock answer to: cache guard [REDACTED:sec]',
        'guard: the streamed hit redacted';
    # the same answer where no rule applies: the stored one is whole
    my $r3 = chat('/v1', text => $text);
    is $r3->{headers}{'x-ai-cache'}, 'HIT', 'the entry is shared by plan';
    like $r3->{json}{choices}[0]{message}{content}, qr/secret-\d+$/,
        'stored before the guard: no redaction where no rule applies';

    my $b = 'cache budget ' . $n++;
    my $h = { Authorization => 'Bearer kb' };
    chat('/budget/v1', text => $b, headers => $h);
    my @hits = map { chat('/budget/v1', text => $b, headers => $h) } 1 .. 3;
    is scalar(grep { $_->{status} == 200
                     && $_->{headers}{'x-ai-cache'} eq 'HIT' } @hits), 3,
        'budget: hits answered';
    sleep 0.3;
    my @held = grep { ($_->{in_flight_nano_usd} // 0) > 0 }
               @{ status()->{spend} || [] };
    is scalar(@held), 0, 'budget: no reservation left held by the hits';
}

# ---------------------------------------------------------------------
# a client that hangs up while it waits for an identical miss

{
    my $text = 'cache hangup ' . $n++;
    my $model = 'openai/gpt-4o-delay1500';
    my $pid = fork;
    if ($pid == 0) {
        my $r = chat('/v1', text => $text, model => $model);
        POSIX::_exit(($r->{status} == 200
                      && ($r->{headers}{'x-ai-cache'} // '') eq 'MISS')
                     ? 0 : 1);
    }
    sleep 0.3;
    my $body = JSON::PP->new->encode(body(text => $text, model => $model));
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                     PeerPort => $t->port, Proto => 'tcp');
    print $sock "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
              . "Content-Type: application/json\r\nContent-Length: "
              . length($body) . "\r\n\r\n$body";
    sleep 0.3;
    close $sock;
    waitpid $pid, 0;
    is $? >> 8, 0, 'the first request: its answer, a MISS';
    my $r = chat('/v1', text => $text, model => $model);
    is $r->{headers}{'x-ai-cache'}, 'HIT', 'then stored';
    is calls_for($text), 1, 'the one who hung up made no call';
    ok $t->wait_for_log(qr/client prematurely closed connection/, 5),
        'the hang-up was seen while waiting';
}

# ---------------------------------------------------------------------
# ttl: EXPIRED, then stored again

{
    my $text = 'cache ttl ' . $n++;
    chat('/short/v1', text => $text);
    my $r = chat('/short/v1', text => $text);
    is $r->{headers}{'x-ai-cache'}, 'HIT', 'ttl=1s: a HIT at once';
    sleep 2.1;
    $r = chat('/short/v1', text => $text);
    is $r->{headers}{'x-ai-cache'}, 'EXPIRED', 'after the ttl: EXPIRED';
    sleep 0.3;                  # its log phase writes the entry again
    $r = chat('/short/v1', text => $text);
    is $r->{headers}{'x-ai-cache'}, 'HIT', 'stored again';
}

# ---------------------------------------------------------------------
# reload and restart: the files on disk are read back

my $persist = 'cache persist ' . $n++;
{
    my $r1 = chat('/v1', text => $persist);
    is $r1->{headers}{'x-ai-cache'}, 'MISS', 'before reload: MISS';
    $t->reload;
    my $r2 = chat('/v1', text => $persist);
    is $r2->{headers}{'x-ai-cache'}, 'HIT', 'after reload: HIT';
    $t->stop_nginx;
    $t->start_nginx;
    sleep 1.5;                              # the cache loader's first pass
    my $r3 = chat('/v1', text => $persist);
    is $r3->{headers}{'x-ai-cache'}, 'HIT', 'after restart: HIT';
    is $r3->{json}{choices}[0]{message}{content},
        $r1->{json}{choices}[0]{message}{content},
        'after restart: byte-equal content';
    is $r3->{json}{id}, $r1->{json}{id}, 'after restart: the same answer';
    is calls_for($persist), 1, 'restart: still one provider call';
}

# ---------------------------------------------------------------------
# max_size: the manager evicts, nothing fails

{
    my $big = 'x' x 4000;
    my $ok = 0;
    for my $i (1 .. 40) {
        my $r = chat('/small/v1', text => "cache evict $i $big");
        $ok++ if $r->{status} == 200;
    }
    is $ok, 40, 'a full max_size: every request answered';
    sleep 12;                               # the manager's next pass
    my $size = cache_of(status(), 'small')->{size_bytes};
    ok $size <= 64 * 1024 + 16 * 1024, "max_size: evicted ($size bytes)";
    my $r = chat('/small/v1', text => "cache evict 40 $big");
    is $r->{status}, 200, 'after eviction: answered';
}

# ---------------------------------------------------------------------
# concurrent identical misses: one provider call (lock=on)

{
    my $text = 'cache collapse ' . $n++;
    my $model = 'openai/gpt-4o-delay500';
    my @res = $t->parallel(map {
        sub {
            my $r = chat('/v1', text => $text, model => $model);
            return { status => $r->{status},
                     cache => $r->{headers}{'x-ai-cache'},
                     content => $r->{json}{choices}[0]{message}{content} };
        }
    } 1 .. 50);
    is scalar(grep { $_->{status} == 200 } @res), 50,
        '50 concurrent identical requests: all answered';
    is calls_for($text), 1, '50 concurrent identical misses: one call';
    is scalar(grep { ($_->{cache} // '') eq 'HIT' } @res), 49,
        '49 of them HITs';
    is scalar(grep { ($_->{content} // '') eq "Mock answer to: $text" }
              @res), 50, 'each got the answer';
}

# a thousand at once on a cold key (node's fetch, one connection each)

SKIP: {
    skip 'no node', 4 unless $t->has_node_sdk('openai');
    my $text = 'cache burst ' . $n++;
    my $b = JSON::PP->new->canonical->encode(
        body(text => $text, model => 'openai/gpt-4o-delay300'));
    my $start = time;
    my $r = $t->node_sdk('../load/burst.mjs', $t->base_url
                         . '/v1/chat/completions', $b, 1000);
    my $took = time - $start;
    my $j = $r->{json} || {};
    is $j->{status}{200}, 1000, '1,000 concurrent: all 200'
        or diag explain $j;
    is calls_for($text), 1, '1,000 concurrent on a cold key: one call';
    is $j->{cache}{HIT}, 999, '999 HITs, one MISS';
    is $j->{contents}, 1, 'one answer for all';
    note sprintf '1,000 concurrent identical requests: %.2f s', $took;
}

# ---------------------------------------------------------------------
# observability

{
    my $st = status();
    my $c = cache_of($st, 'aic');
    ok $c->{hits} > 0 && $c->{misses} > 0, 'status: hits and misses';
    ok defined $c->{hit_ratio_permille}, 'status: hit ratio';
    ok $c->{collapsed} >= 49, 'status: collapsed requests';
    my $m = $t->get('/status?format=prometheus');
    like $m->{content}, qr/^ai_gateway_cache_hits_total\{cache="aic"\} \d+$/m,
        'prometheus: hits';
    like $m->{content},
        qr/^ai_gateway_cache_saved_usd_total\{cache="aic"\} \d+\.\d{9}$/m,
        'prometheus: saved USD';
    like $m->{content},
        qr/^ai_gateway_cache_hit_ratio\{cache="aic"\} 0\.\d{3}$/m,
        'prometheus: the hit ratio';
    SKIP: {
        skip 'no promtool', 1 unless -x '/usr/bin/promtool';
        my $f = $t->prefix . '/logs/metrics.prom';
        $t->write_file($f, $m->{content}, raw => 1);
        my $out = `/usr/bin/promtool check metrics < $f 2>&1`;
        is $?, 0, 'promtool check metrics passes' or diag $out;
    }
    my $log = $t->read_file($t->prefix . '/logs/cache.log') // '';
    like $log, qr{ 200 HIT$}m, '$ai_cache_status: HIT';
    like $log, qr{ 200 MISS$}m, '$ai_cache_status: MISS';
    like $log, qr{ 200 BYPASS$}m, '$ai_cache_status: BYPASS';
}

# ---------------------------------------------------------------------
# the openai SDK reads a streamed hit

SKIP: {
    skip 'no node or openai SDK', 3 unless $t->has_node_sdk('openai');
    my $text = 'cache sdk ' . $n++;
    my @r = map {
        $t->node_sdk('cache_stream.mjs', $t->base_url . '/v1', $text)
    } 1 .. 2;
    is $r[0]{exit}, 0, 'sdk: the miss streamed' or diag $r[0]{stderr};
    is $r[1]{exit}, 0, 'sdk: the hit streamed' or diag $r[1]{stderr};
    is_deeply $r[1]{json}, { %{ $r[0]{json} }, cache => 'HIT' },
        'sdk: the same text and usage from the hit';
}

$t->done_testing_checks;
done_testing;
