#!/usr/bin/perl
# What real providers take, the gateway takes (issue #16, items 6 and 8),
# checked on what the mock provider was sent: the legacy function calling
# form (assistant "content": null with "function_call", the "function"
# role, "functions" and "function_call") on openai-, anthropic- and
# gemini-type providers; any number of stop sequences; error param paths;
# n > 1 on providers without "n" as n calls (choices, summed usage, the
# ledger, the rate limits); logprobs per provider; OpenAI reasoning models
# getting max_completion_tokens and the developer role.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(sleep);
use GatewayTest;

my $t = GatewayTest->new(name => 'compat');
plan skip_all => 'module not built' unless $t->has_module;

$t->start_mock(name => 'm1');
$t->write_config($t->config_preamble . "http {\n" . $t->http_preamble . <<'EOF');
    ai_provider openai type=openai pass=/_ai/openai key=sk-openai;
    ai_provider claude type=anthropic pass=/_ai/claude key=sk-ant;
    ai_provider google type=gemini pass=/_ai/google key=gm-key;

    ai_price claude/claude-x 3 15;
    ai_price google/gemini-x 1 2;

    ai_rate_zone rate:1m;
    ai_cost_zone cost:1m;

    server {
        listen 127.0.0.1:%%PORT%%;

        location /v1/ {
            ai_gateway;
        }

        location /counted/v1/ {
            ai_gateway;
            ai_rate zone=rate rpm=10;
            ai_cost zone=cost;
        }

        location /tight/v1/ {
            ai_gateway;
            ai_rate zone=rate rpm=2;
        }

        location /few/v1/ {
            ai_gateway;
            ai_max_attempts 2;
        }

        location /chain/v1/ {
            ai_gateway;
            ai_fallback claude/claude-x openai/gpt-4o;
        }

        location = /status { ai_status; }

        location /_ai/openai/ {
            internal;
            proxy_pass http://127.0.0.1:%%MOCK_PORT_m1%%/;
        }

        location /_ai/claude/ {
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

my $chat = '/v1/chat/completions';
my $user = [{ role => 'user', content => 'Hello there' }];

sub ptok { my $n = 0; $n += length for @_; return $n ? int(($n + 3) / 4) : 1 }

# the requests the mock got since the last call
my $seen = 0;
sub fresh {
    my $recs = $t->mock_records('m1');
    my @new = @$recs[$seen .. $#$recs];
    $seen = @$recs;
    return @new;
}

sub last_sent { my @r = fresh(); return $r[-1] && $r[-1]{body_json} }

# --- the legacy function calling form ----------------------------------------

my $legacy = [
    { role => 'system', content => 'be brief' },
    { role => 'user', content => 'weather in Paris?' },
    { role => 'assistant', content => undef,
      function_call => { name => 'get_weather', arguments => '{"city":"Paris"}' } },
    { role => 'function', name => 'get_weather', content => '{"temp":21}' },
];
my $functions = [{ name => 'get_weather', description => 'the weather',
                   parameters => { type => 'object',
                                   properties => { city => { type => 'string' } } } }];

fresh();

my $r = $t->post_json($chat, { model => 'openai/gpt-4o', messages => $legacy,
                               functions => $functions, function_call => 'auto' });
is($r->{status}, 200, 'legacy on openai: 200') or diag $r->{content};
my $b = last_sent();
is_deeply($b->{messages}[2], $legacy->[2], 'legacy on openai: the function_call message as sent');
is_deeply($b->{messages}[3], $legacy->[3], 'legacy on openai: the function message as sent');
is_deeply([$b->{functions}, $b->{function_call}], [$functions, 'auto'],
          'legacy on openai: functions and function_call as sent');

$r = $t->post_json($chat, { model => 'claude/claude-x', messages => $legacy,
                            functions => $functions,
                            function_call => { name => 'get_weather' } });
is($r->{status}, 200, 'legacy on anthropic: 200') or diag $r->{content};
$b = last_sent();
is($b->{system}, 'be brief', 'legacy on anthropic: system apart');
is_deeply([map { $_->{role} } @{ $b->{messages} }], [qw(user assistant user)],
          'legacy on anthropic: user, assistant, user turns');
is_deeply($b->{messages}[1]{content},
          [{ type => 'tool_use', id => 'call_fn_2', name => 'get_weather',
             input => { city => 'Paris' } }],
          'legacy on anthropic: function_call -> tool_use');
is_deeply($b->{messages}[2]{content},
          [{ type => 'tool_result', tool_use_id => 'call_fn_2', content => '{"temp":21}' }],
          'legacy on anthropic: function message -> its tool_result');
is_deeply($b->{tools}, [{ name => 'get_weather', description => 'the weather',
                          input_schema => $functions->[0]{parameters} }],
          'legacy on anthropic: functions -> tools');
is_deeply($b->{tool_choice}, { type => 'tool', name => 'get_weather' },
          'legacy on anthropic: function_call {name} -> tool_choice');

$r = $t->post_json($chat, { model => 'google/gemini-x', messages => $legacy,
                            functions => $functions, function_call => 'none' });
is($r->{status}, 200, 'legacy on gemini: 200') or diag $r->{content};
$b = last_sent();
is_deeply([map { $_->{role} } @{ $b->{contents} }], [qw(user model user)],
          'legacy on gemini: user, model, user turns');
is_deeply($b->{contents}[1]{parts}[0]{functionCall},
          { name => 'get_weather', args => { city => 'Paris' } },
          'legacy on gemini: function_call -> functionCall');
is_deeply($b->{contents}[2]{parts}[0]{functionResponse},
          { name => 'get_weather', response => { content => { temp => 21 } } },
          'legacy on gemini: function message -> functionResponse');
is($b->{tools}[0]{functionDeclarations}[0]{name}, 'get_weather',
   'legacy on gemini: functions -> functionDeclarations');
is($b->{toolConfig}{functionCallingConfig}{mode}, 'NONE',
   'legacy on gemini: function_call "none" -> mode NONE');

# a tool call answered with the legacy form's tools
$r = $t->post_json($chat, { model => 'claude/claude-x-toolcall', messages => $user,
                            functions => $functions });
is($r->{json}{choices}[0]{message}{tool_calls}[0]{function}{name}, 'get_weather',
   'legacy functions on anthropic: the provider calls the declared function');
fresh();

# --- stop sequences: as many as the provider takes -----------------------------

my @stops = map { "STOP$_" } 1 .. 7;
$r = $t->post_json($chat, { model => 'claude/claude-x', messages => $user, stop => \@stops });
is($r->{status}, 200, '7 stop sequences to anthropic: 200') or diag $r->{content};
is_deeply(last_sent()->{stop_sequences}, \@stops, '7 stop sequences: all passed on');

$r = $t->post_json($chat, { model => 'google/gemini-x', messages => $user, stop => \@stops });
is_deeply(last_sent()->{generationConfig}{stopSequences}, \@stops,
          '7 stop sequences to gemini: all passed on (its own limit decides)');

$r = $t->post_json('/v1/messages', { model => 'claude/claude-x', max_tokens => 20,
                                     messages => $user, stop_sequences => \@stops });
is($r->{status}, 200, 'Messages API, 7 stop_sequences: 200') or diag $r->{content};
is_deeply(last_sent()->{stop_sequences}, \@stops, 'Messages API: all 7 passed on');

$r = $t->post_json($chat, { model => 'claude/claude-x', messages => $user,
                            stop => [('s') x 1025] });
is($r->{status}, 400, '1025 stop sequences: 400 (the memory bound)');

# --- error param paths ---------------------------------------------------------

for my $case (
    [ 'content missing', { messages => [ @$user, { role => 'assistant', content => 'x' },
                                         { role => 'user' } ] }, 'messages[2].content' ],
    [ 'bad role', { messages => [{ role => 'robot', content => 'x' }] }, 'messages[0].role' ],
    [ 'bad text part', { messages => [{ role => 'user', content => [
          { type => 'text', text => 'a' }, { type => 'text', text => 7 }] }] },
      'messages[0].content[1].text' ],
    [ 'tool without name', { messages => $user, tools => [
          { type => 'function', function => { name => 'ok' } },
          { type => 'function', function => { description => 'x' } }] },
      'tools[1].function.name' ],
    [ 'function message without name', { messages => [ @$user,
          { role => 'function', content => 'x' }] }, 'messages[1].name' ],
    [ 'stop holds a number', { messages => $user, stop => ['a', 3] }, 'stop[1]' ],
) {
    my ($what, $body, $param) = @$case;
    $r = $t->post_json($chat, { model => 'openai/gpt-4o', %$body });
    is($r->{status}, 400, "$what: 400");
    is($r->{json} && $r->{json}{error}{param}, $param, "$what: param $param");
}
is(scalar fresh(), 0, 'refused requests: the provider was not called');

# --- n > 1 on a provider without n: n calls -------------------------------------

my $text = 'count me three times';
my $before = $t->get('/status')->{json};
$r = $t->post_json('/counted/v1/chat/completions',
                   { model => 'claude/claude-x', n => 3,
                     messages => [{ role => 'user', content => $text }] });
is($r->{status}, 200, 'n=3 on anthropic: 200') or diag $r->{content};
my $j = $r->{json};
is_deeply([map { $_->{index} } @{ $j->{choices} }], [0, 1, 2], 'n=3: choices 0, 1, 2');
is_deeply([map { $_->{message}{content} } @{ $j->{choices} }],
          [("Mock answer to: $text") x 3], 'n=3: each choice an answer');
my @calls = fresh();
is(scalar @calls, 3, 'n=3: three calls in the mock\'s record');
ok(!grep({ exists $_->{body_json}{n} } @calls), 'n=3: no call carries "n"');
my ($in, $out) = (ptok($text), 7);
is_deeply([@{ $j->{usage} }{qw(prompt_tokens completion_tokens total_tokens)}],
          [3 * $in, 3 * $out, 3 * ($in + $out)], 'n=3: usage summed over the calls');
my $cost = 3 * ($in * 3000 + $out * 15000);
is($r->{headers}{'x-ai-cost'}, sprintf('%d.%06d', int($cost / 1e9), int(($cost % 1e9) / 1000)),
   'n=3: X-AI-Cost is the three calls\' cost');
my ($e) = grep { $_->{model} eq 'claude/claude-x' && $_->{route} eq '/counted/v1/' }
          @{ $t->get('/status')->{json}{ledger} };
is_deeply($e && [@$e{qw(requests errors input_tokens output_tokens cost_nano_usd)}],
          [3, 0, $j->{usage}{prompt_tokens}, $j->{usage}{completion_tokens}, $cost],
          'n=3: the ledger counts three calls, with the usage the client got')
    or diag explain $e;
is($r->{headers}{'x-ratelimit-remaining-requests'}, 7,
   'n=3: three requests of the rpm=10 bucket taken');

# a limit with room for fewer than n calls: none of them answers
$r = $t->post_json('/tight/v1/chat/completions',
                   { model => 'claude/claude-x', n => 3, messages => $user });
is($r->{status}, 429, 'n=3 under rpm=2: 429');
like($r->{json}{error}{message}, qr/requests per minute/, 'n=3 under rpm=2: the limit says why');
sleep 0.3;
fresh();

# one of the n calls fails: the others are stopped, the plan goes on
$r = $t->post_json('/chain/v1/chat/completions',
                   { model => 'claude/claude-x-status500', n => 2, messages => $user });
is($r->{status}, 200, 'n=2, the first model fails: 200 from the next');
is_deeply([map { $_->{index} } @{ $r->{json}{choices} }], [0, 1],
          'n=2, the first model fails: two choices of the next');
is($r->{headers}{'x-ai-model'}, 'claude/claude-x', 'n=2, the first model fails: X-AI-Model');
@calls = fresh();
is_deeply([sort map { $_->{body_json}{model} } @calls],
          [('claude-x') x 2, ('claude-x-status500') x 2],
          'n=2, the first model fails: two calls to each');

$r = $t->post_json($chat, { model => 'google/gemini-x', n => 2, messages => $user });
is($r->{status}, 200, 'n=2 on gemini: 200');
is(scalar @{ $r->{json}{choices} }, 2, 'n=2 on gemini: two choices');
is(scalar fresh(), 2, 'n=2 on gemini: two calls');

$r = $t->post_json($chat, { model => 'openai/gpt-4o', n => 2, messages => $user });
is(last_sent()->{n}, 2, 'n=2 on openai: passed on in one call');

$r = $t->post_json('/few/v1/chat/completions',
                   { model => 'claude/claude-x', n => 3, messages => $user });
is($r->{status}, 400, 'n=3 with ai_max_attempts 2: 400');
is_deeply($r->{json} && [@{ $r->{json}{error} }{qw(param code)}], ['n', 'invalid_value'],
          'n=3 with ai_max_attempts 2: param n');
like($r->{json}{error}{message}, qr/3 calls, and this route allows 2/,
     'n=3 with ai_max_attempts 2: the message says why');
is(scalar fresh(), 0, 'n=3 with ai_max_attempts 2: no call made');

my $s = $t->stream($chat, { model => 'claude/claude-x', n => 2, stream => JSON::PP::true(),
                            messages => $user });
is($s->{status}, 400, 'streamed n=2 on anthropic: 400');
is($s->{json} && $s->{json}{error}{param}, 'n', 'streamed n=2 on anthropic: param n');
is(scalar fresh(), 0, 'streamed n=2 on anthropic: no call made');

# --- logprobs --------------------------------------------------------------------

$r = $t->post_json($chat, { model => 'openai/gpt-4o', messages => $user,
                            logprobs => JSON::PP::true(), top_logprobs => 2 });
$b = last_sent();
ok($r->{status} == 200 && $b->{logprobs} && $b->{top_logprobs} == 2,
   'logprobs on openai: passed on');

for my $model ('claude/claude-x', 'google/gemini-x') {
    $r = $t->post_json($chat, { model => $model, messages => $user,
                                logprobs => JSON::PP::true() });
    is($r->{status}, 400, "logprobs on $model: 400");
    is_deeply($r->{json} && [@{ $r->{json}{error} }{qw(param code)}],
              ['logprobs', 'unsupported_parameter'],
              "logprobs on $model: unsupported_parameter, param logprobs");
}
is(scalar fresh(), 0, 'logprobs refused: no call made');

$r = $t->post_json($chat, { model => 'openai/gpt-4o', messages => $user,
                            logprobs => JSON::PP::false() });
$r = $t->post_json($chat, { model => 'claude/claude-x', messages => $user,
                            logprobs => JSON::PP::false() });
is($r->{status}, 200, 'logprobs false on anthropic: 200');
fresh();

# a fallback model that cannot carry it is left out of the plan
$r = $t->post_json('/chain/v1/chat/completions',
                   { model => 'openai/gpt-4o-status500', messages => $user,
                     logprobs => JSON::PP::true() });
@calls = fresh();
is_deeply([map { $_->{path} } @calls], ['/v1/chat/completions', '/v1/chat/completions'],
          'logprobs, fallback chain: the anthropic model is skipped, openai tried')
    or diag explain [map { $_->{path} } @calls];

# --- reasoning models on openai-type providers -----------------------------------

my $sys = [{ role => 'system', content => 'be brief' }, @$user];
for my $model (qw(o3-mini o1 o4-mini gpt-5 gpt-5-mini gpt-5.1)) {
    $r = $t->post_json($chat, { model => "openai/$model", messages => $sys,
                                max_tokens => 50, temperature => 1 });
    is($r->{status}, 200, "$model: 200");
    $b = last_sent();
    is_deeply([$b->{max_completion_tokens}, exists $b->{max_tokens} ? 1 : 0,
               $b->{messages}[0]{role}, $b->{messages}[1]{role}, $b->{temperature}],
              [50, 0, 'developer', 'user', 1],
              "$model: max_completion_tokens and the developer role");
}

$r = $t->post_json($chat, { model => 'openai/gpt-4o', messages => $sys, max_tokens => 50 });
$b = last_sent();
is_deeply([$b->{max_tokens}, exists $b->{max_completion_tokens} ? 1 : 0,
           $b->{messages}[0]{role}], [50, 0, 'system'], 'gpt-4o: max_tokens and system as sent');

# a fallback from a reasoning model to another: each call as its model needs
$r = $t->post_json($chat, { model => 'openai/o3-mini-status500', messages => $sys,
                            models => ['openai/gpt-4o'], max_tokens => 9 });
@calls = map { $_->{body_json} } fresh();
is_deeply([map { [$_->{model}, $_->{max_tokens} // '-', $_->{max_completion_tokens} // '-',
                  $_->{messages}[0]{role}] } @calls],
          [['o3-mini-status500', '-', 9, 'developer'], ['gpt-4o', 9, '-', 'system']],
          'fallback o3-mini -> gpt-4o: each call renamed or not');

$t->done_testing_checks;
done_testing;
