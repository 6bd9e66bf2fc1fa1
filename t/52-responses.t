#!/usr/bin/perl
# The OpenAI Responses API inbound (POST {location}responses): requests
# translated to chat for openai-type, anthropic and gemini providers
# (input as a string or items, instructions, content parts, images,
# function tools and their round trip, text.format, max_output_tokens,
# reasoning), answers as response objects with the usage the provider
# reported, streams as the documented event sequence relayed as the
# provider streams, a failure in the middle of a stream ending with
# response.failed and an error event, what needs stored state refused with
# a 400 naming its param, errors as OpenAI error objects, fallback,
# fusion, rate limits and the cost ledger.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use JSON::PP;
use Digest::SHA qw(sha256_hex);
use GatewayTest;

my $t = GatewayTest->new(name => 'responses');
plan skip_all => 'module not built' unless $t->has_module;

$t->start_mock(name => 'm1');
$t->write_config($t->config_preamble . "http {\n" . $t->http_preamble . <<'EOF');
    ai_provider openai type=openai pass=/_ai/openai key=sk-openai-provider;
    ai_provider claude type=anthropic pass=/_ai/claude key=sk-ant-provider;
    ai_provider google type=gemini pass=/_ai/google key=gm-provider;

    ai_price openai/gpt-4o 2.50 10.00;

    ai_rate_zone rate:1m;
    ai_cost_zone cost:1m;

    server {
        listen 127.0.0.1:%%PORT%%;

        location /v1/ {
            ai_gateway;
            ai_cost zone=cost key=$http_authorization;
        }

        location /fb/v1/ {
            ai_gateway;
            ai_fallback openai/x-status500 claude/sonnet google/gemini
                        breaker=off;
        }

        location /fusion/v1/ {
            ai_gateway;
            ai_pool openai/gpt-4o claude/sonnet google/gemini
                    judge=openai/gpt-4o mode=vote;
        }

        location /rate/v1/ {
            ai_gateway;
            ai_rate zone=rate key=$http_authorization rpm=1;
        }

        location = /status { ai_status; }

        location /_ai/openai/ {
            internal;
            proxy_pass http://127.0.0.1:%%MOCK_PORT_m1%%/;
            proxy_buffering off;
        }

        location /_ai/claude/ {
            internal;
            proxy_pass http://127.0.0.1:%%MOCK_PORT_m1%%/;
            proxy_buffering off;
        }

        location /_ai/google/ {
            internal;
            proxy_pass http://127.0.0.1:%%MOCK_PORT_m1%%/;
            proxy_buffering off;
        }
    }
}
EOF
$t->start_nginx;

my $url = '/v1/responses';

# The mock's usage rule: prompt = ceil(characters of all text / 4), min 1;
# completion = words of the answer.
sub ptok { my $n = 0; $n += length for @_; return $n ? int(($n + 3) / 4) : 1 }
sub words { scalar(split ' ', $_[0]) }

sub last_record { $t->mock_records('m1')->[-1] }

sub req { my ($model, $input, %o) = @_; return { model => $model, input => $input, %o } }

# [name, json] of every event of a Responses stream
sub events {
    my ($s) = @_;
    return map { [$s->{event_names}[$_], $s->{json_events}[$_]] }
           0 .. $#{ $s->{events} };
}

# the event names, runs of one delta type written once with a "+"
sub names {
    my @n = map { $_->[0] // '(none)' } @_;
    my @out;
    for my $n (@n) {
        if (@out && $n =~ /\.delta$/ && ($out[-1] eq $n || $out[-1] eq "$n+")) {
            $out[-1] = "$n+";
            next;
        }
        push @out, $n;
    }
    return join ' ', @out;
}

sub text_of { join '', map { $_->[1]{delta} // '' }
                       grep { $_->[0] eq 'response.output_text.delta' } @_ }

sub args_of { join '', map { $_->[1]{delta} // '' }
                       grep { $_->[0] eq 'response.function_call_arguments.delta' } @_ }

sub usage_ok {
    my ($u, $in, $out, $name) = @_;
    is_deeply($u, { input_tokens => $in, output_tokens => $out,
                    total_tokens => $in + $out,
                    input_tokens_details => { cached_tokens => 0 },
                    output_tokens_details => { reasoning_tokens => 0 } },
              "$name: usage as the provider reported it")
        or diag(explain($u));
}

sub error_ok {
    my ($r, $status, $param, $name, $re) = @_;
    is($r->{status}, $status, "$name: $status");
    like($r->{headers}{'content-type'} // '', qr{^application/json}, "$name: JSON");
    my $j = $r->{json} // eval { decode_json($r->{raw_body}) };
    ok($j && ref $j->{error} eq 'HASH', "$name: an OpenAI error object")
        or diag($r->{content} // $r->{raw_body});
    is($j && $j->{error}{param}, $param, "$name: param " . ($param // 'null'));
    like($j && $j->{error}{message} // '', $re // qr/\S/, "$name: message")
        if $j;
}

# the events of a stream are well formed: named as their type, sequence
# numbers 0, 1, 2 ... and every item event naming an added item
sub well_formed {
    my ($name, @e) = @_;
    is(scalar(grep { !defined $_->[1] || ($_->[1]{type} // '') ne ($_->[0] // '') } @e), 0,
       "$name: every event is named and its data has that type");
    is_deeply([map { $_->[1]{sequence_number} } @e], [0 .. $#e],
              "$name: sequence numbers 0 .. " . $#e);
    my %ids;
    for my $e (grep { $_->[0] eq 'response.output_item.added' } @e) {
        $ids{ $e->[1]{item}{id} } = $e->[1]{output_index};
    }
    is(scalar(grep { exists $_->[1]{item_id}
                     && (!exists $ids{ $_->[1]{item_id} }
                         || $ids{ $_->[1]{item_id} } != $_->[1]{output_index}) } @e), 0,
       "$name: item events name an added item and its output index");
}

# --- whole answers from each provider type ------------------------------------

for my $case (['openai', 'openai/gpt-4o', '/v1/chat/completions'],
              ['anthropic', 'claude/sonnet', '/v1/messages'],
              ['gemini', 'google/gemini-pro',
               '/v1beta/models/gemini-pro:generateContent']) {
    my ($type, $model, $path) = @$case;

    my $r = $t->post_json($url, req($model, 'Hello there', instructions => 'be brief',
                                    temperature => 0.5, max_output_tokens => 256,
                                    store => \1, metadata => { tag => 'x' }),
                          headers => { Authorization => 'Bearer sk-client' });
    is($r->{status}, 200, "$type: 200");
    like($r->{headers}{'content-type'}, qr{^application/json}, "$type: JSON");
    is($r->{headers}{'x-ai-model'}, $model, "$type: X-AI-Model");
    my $j = $r->{json};
    like($j->{id}, qr/^resp_[A-Za-z0-9_-]+$/, "$type: id resp_...");
    is($j->{object}, 'response', "$type: object response");
    is($j->{status}, 'completed', "$type: status completed");
    ok(exists $j->{error} && !defined $j->{error}, "$type: error null");
    ok(exists $j->{incomplete_details} && !defined $j->{incomplete_details},
       "$type: incomplete_details null");
    ok($j->{created_at} > 1e9, "$type: created_at");
    is(scalar @{ $j->{output} }, 1, "$type: one output item");
    my $item = $j->{output}[0];
    like($item->{id}, qr/^msg_/, "$type: message id msg_...");
    is_deeply([@$item{qw(type role status)}], ['message', 'assistant', 'completed'],
              "$type: an assistant message, completed");
    is_deeply($item->{content}, [{ type => 'output_text', text => 'Mock answer to: Hello there',
                                   annotations => [], logprobs => [] }],
              "$type: one output_text part");
    usage_ok($j->{usage}, ptok('be brief', 'Hello there'), 5, $type);
    ok(!exists $j->{choices}, "$type: nothing of chat's");

    my $rec = last_record();
    is($rec->{path}, $path, "$type upstream: the chat translation's native path");
    ok(!grep({ /sk-client/ } values %{ $rec->{headers} }),
       "$type upstream: the client's key is not sent");
    my $up = $rec->{body_json};
    if ($type eq 'openai') {
        is($up->{model}, 'gpt-4o', 'openai upstream: model without prefix');
        is_deeply($up->{messages}, [{ role => 'system', content => 'be brief' },
                                    { role => 'user', content => 'Hello there' }],
                  'openai upstream: instructions first, as a system message');
        is($up->{max_completion_tokens}, 256,
           'openai upstream: max_output_tokens -> max_completion_tokens');
        is($up->{temperature}, 0.5, 'openai upstream: temperature');
        is_deeply($up->{metadata}, { tag => 'x' }, 'openai upstream: metadata');
        ok(!exists $up->{$_}, "openai upstream: no $_")
            for qw(input instructions max_output_tokens store stream);
    } elsif ($type eq 'anthropic') {
        is($up->{system}, 'be brief', 'anthropic upstream: system');
        is($up->{max_tokens}, 256, 'anthropic upstream: max_tokens');
        is($up->{temperature}, 0.5, 'anthropic upstream: temperature');
    } else {
        is_deeply($up->{systemInstruction}, { parts => [{ text => 'be brief' }] },
                  'gemini upstream: systemInstruction');
        is($up->{generationConfig}{maxOutputTokens}, 256, 'gemini upstream: maxOutputTokens');
    }
}

# the ledger counted the three calls under the client's key, exactly
{
    my $key = substr(sha256_hex('Bearer sk-client'), 0, 8);
    my $st = $t->get('/status')->{json};
    my ($e) = grep { $_->{zone} eq 'cost' && ($_->{key} // '') eq $key
                     && $_->{model} eq 'openai/gpt-4o' } @{ $st->{ledger} };
    ok($e, 'ledger: an entry for the key and model') or diag(explain($st->{ledger}));
    my $in = ptok('be brief', 'Hello there');
    is_deeply([$e ? @$e{qw(requests errors input_tokens output_tokens)} : ()],
              [1, 0, $in, 5], 'ledger: the call with its usage');
    is($e && $e->{cost_nano_usd}, $in * 2500 + 5 * 10000, 'ledger: its cost');
    my $n = grep { $_->{zone} eq 'cost' && ($_->{key} // '') eq $key } @{ $st->{ledger} };
    is($n, 3, 'ledger: one entry per model of the three');
}

# input items: messages with content parts, images, files, roles
my $png = 'iVBORw0KGgoAAAANSUhEUg==';
my $r = $t->post_json($url, req('openai/gpt-4o', [
    { role => 'developer', content => 'dev rules' },
    { type => 'message', role => 'user', content => [{ type => 'input_text', text => 'first' }] },
    { type => 'message', role => 'assistant', id => 'msg_old',
      content => [{ type => 'output_text', text => 'ok', annotations => [] }] },
    { role => 'user', content => [
        { type => 'input_text', text => 'look at' },
        { type => 'input_image', image_url => "data:image/png;base64,$png", detail => 'low' },
        { type => 'input_image', image_url => 'https://example.com/cat.jpg' },
        { type => 'input_file', filename => 'a.pdf', file_data => 'data:application/pdf;base64,JVBERi0=' },
        { type => 'input_text', text => 'this' }] },
    { type => 'reasoning', id => 'rs_1', summary => [] },
]));
is($r->{status}, 200, 'items: 200');
is($r->{json}{output}[0]{content}[0]{text}, 'Mock answer to: look at this', 'items: answered');
is_deeply(last_record()->{body_json}{messages}, [
    { role => 'developer', content => 'dev rules' },
    { role => 'user', content => [{ type => 'text', text => 'first' }] },
    { role => 'assistant', content => 'ok' },
    { role => 'user', content => [
        { type => 'text', text => 'look at' },
        { type => 'image_url', image_url => { url => "data:image/png;base64,$png", detail => 'low' } },
        { type => 'image_url', image_url => { url => 'https://example.com/cat.jpg' } },
        { type => 'file', file => { filename => 'a.pdf', file_data => 'data:application/pdf;base64,JVBERi0=' } },
        { type => 'text', text => 'this' }] },
], 'items: messages, parts, images and a file as chat messages; reasoning dropped')
    or diag(explain(last_record()->{body_json}{messages}));

$r = $t->post_json($url, req('claude/sonnet', [
    { role => 'user', content => [
        { type => 'input_text', text => 'look' },
        { type => 'input_image', image_url => "data:image/png;base64,$png" }] }]));
is($r->{status}, 200, 'image to anthropic: 200');
is_deeply(last_record()->{body_json}{messages}, [{ role => 'user', content => [
    { type => 'text', text => 'look' },
    { type => 'image', source => { type => 'base64', media_type => 'image/png', data => $png } }] }],
    'image to anthropic: a base64 image block')
    or diag(explain(last_record()->{body_json}{messages}));

# text.format, reasoning, tool_choice, parallel_tool_calls
my $schema = { type => 'object', properties => { city => { type => 'string' } },
               required => ['city'], additionalProperties => JSON::PP::false };
$r = $t->post_json($url, req('openai/gpt-4o', 'json please',
    text => { format => { type => 'json_schema', name => 'city', schema => $schema,
                          strict => \1 } },
    reasoning => { effort => 'low', summary => 'auto' }));
is($r->{status}, 200, 'format: 200');
my $up = last_record()->{body_json};
is_deeply($up->{response_format}, { type => 'json_schema', json_schema => {
    name => 'city', schema => $schema, strict => JSON::PP::true } },
    'format: text.format json_schema -> response_format');
is($up->{reasoning_effort}, 'low', 'format: reasoning.effort -> reasoning_effort');
ok(!exists $up->{reasoning} && !exists $up->{text}, 'format: no Responses fields upstream');

$r = $t->post_json($url, req('openai/gpt-4o', 'json', text => { format => { type => 'json_object' } }));
is_deeply(last_record()->{body_json}{response_format}, { type => 'json_object' },
          'format: json_object');

# max_output_tokens reached: incomplete
$r = $t->post_json($url, req('openai/gpt-4o', 'cut me', max_output_tokens => 2));
is($r->{json}{status}, 'incomplete', 'max_output_tokens: status incomplete');
is_deeply($r->{json}{incomplete_details}, { reason => 'max_output_tokens' },
          'max_output_tokens: incomplete_details');
is($r->{json}{output}[0]{content}[0]{text}, 'Mock answer', 'max_output_tokens: cut answer');

# --- streams from each provider type ------------------------------------------

for my $case (['openai', 'openai/gpt-4o-slow50'], ['anthropic', 'claude/sonnet-slow50'],
              ['gemini', 'google/gemini-slow50']) {
    my ($type, $model) = @$case;
    my $s = $t->stream($url, req($model, 'one two three', instructions => 'sys',
                                 stream => \1));
    is($s->{status}, 200, "$type stream: 200");
    like($s->{headers}{'content-type'}, qr{^text/event-stream}, "$type stream: event-stream");
    ok($s->{complete}, "$type stream: the body ended properly");
    my @e = events($s);
    well_formed("$type stream", @e);
    ok(!grep({ $_ eq '[DONE]' } @{ $s->{events} }), "$type stream: no [DONE]");
    is(names(@e), 'response.created response.in_progress response.output_item.added '
                . 'response.content_part.added response.output_text.delta+ '
                . 'response.output_text.done response.content_part.done '
                . 'response.output_item.done response.completed',
       "$type stream: the documented event sequence");
    is(text_of(@e), 'Mock answer to: one two three', "$type stream: deltas join to the answer");
    is(scalar(grep { $_->[0] eq 'response.output_text.delta' } @e), 6,
       "$type stream: one delta per provider delta");
    my $created = $e[0][1]{response};
    like($created->{id}, qr/^resp_/, "$type stream: response id");
    is($created->{status}, 'in_progress', "$type stream: created in progress");
    is_deeply($created->{output}, [], "$type stream: created with no output");
    my %by = map { $_->[0] => $_->[1] } @e;
    is($by{'response.output_item.added'}{item}{status}, 'in_progress',
       "$type stream: the item added in progress");
    is($by{'response.output_text.done'}{text}, 'Mock answer to: one two three',
       "$type stream: output_text.done has the whole text");
    is($by{'response.output_item.done'}{item}{content}[0]{text}, 'Mock answer to: one two three',
       "$type stream: output_item.done has the whole item");
    my $done = $by{'response.completed'}{response};
    is($done->{id}, $created->{id}, "$type stream: one response id");
    is($done->{status}, 'completed', "$type stream: completed");
    is_deeply($done->{output}, [$by{'response.output_item.done'}{item}],
              "$type stream: completed with the output");
    usage_ok($done->{usage}, ptok('sys', 'one two three'), 6, "$type stream");
    my @times = @{ $s->{event_times} };
    ok($times[-1] - $times[4] >= 0.05 * 4,
       "$type stream: deltas relayed as the provider sent them");
    if ($type eq 'openai') {
        my $rec = last_record()->{body_json};
        is($rec->{stream}, JSON::PP::true, 'openai stream upstream: stream');
        is_deeply($rec->{stream_options}, { include_usage => JSON::PP::true },
                  'openai stream upstream: usage asked');
    }
}

my $s = $t->stream($url, req('claude/sonnet', 'cut me', max_output_tokens => 2, stream => \1));
my @e = events($s);
is($e[-1][0], 'response.incomplete', 'stream max_output_tokens: ends response.incomplete');
is_deeply($e[-1][1]{response}{incomplete_details}, { reason => 'max_output_tokens' },
          'stream max_output_tokens: the reason');
is(text_of(@e), 'Mock answer', 'stream max_output_tokens: cut answer');

# --- tools, a round trip ------------------------------------------------------

my $tools = [{ type => 'function', name => 'get_weather', description => 'Weather for a city',
               parameters => $schema, strict => \1 }];

for my $case (['openai', 'openai/x-toolcall'], ['anthropic', 'claude/x-toolcall'],
              ['gemini', 'google/x-toolcall']) {
    my ($type, $model) = @$case;
    $r = $t->post_json($url, req($model, 'weather in Paris', tools => $tools,
                                 tool_choice => 'required', parallel_tool_calls => \0));
    is($r->{status}, 200, "$type tool answer: 200");
    my $j = $r->{json};
    my @fc = grep { $_->{type} eq 'function_call' } @{ $j->{output} };
    is(scalar @fc, 1, "$type tool answer: one function_call item");
    like($fc[0]{id}, qr/^fc_/, "$type tool answer: id fc_...");
    ok(length($fc[0]{call_id} // ''), "$type tool answer: a call_id");
    is($fc[0]{name}, 'get_weather', "$type tool answer: name");
    is($fc[0]{status}, 'completed', "$type tool answer: completed");
    is_deeply(eval { decode_json($fc[0]{arguments}) }, { text => 'weather in Paris' },
              "$type tool answer: arguments as JSON text");
    my $up = last_record()->{body_json};
    if ($type eq 'openai') {
        is_deeply($up->{tools}, [{ type => 'function', function => {
            name => 'get_weather', description => 'Weather for a city',
            parameters => $schema, strict => JSON::PP::true } }],
            'openai tool upstream: flat function tools -> chat tools');
        is($up->{tool_choice}, 'required', 'openai tool upstream: tool_choice');
        is($up->{parallel_tool_calls}, JSON::PP::false, 'openai tool upstream: parallel_tool_calls');
    } elsif ($type eq 'anthropic') {
        is_deeply($up->{tools}, [{ name => 'get_weather', description => 'Weather for a city',
                                   input_schema => $schema }],
                  'anthropic tool upstream: tools');
    }

    # the result going back: function_call and function_call_output items
    $r = $t->post_json($url, req($model =~ s/x-toolcall/plain/r, [
        { role => 'user', content => 'weather in Paris' },
        { type => 'function_call', id => $fc[0]{id}, call_id => $fc[0]{call_id},
          name => 'get_weather', arguments => $fc[0]{arguments} },
        { type => 'function_call_output', call_id => $fc[0]{call_id}, output => '21 degrees' },
        { role => 'user', content => 'and tomorrow?' },
    ], tools => $tools));
    is($r->{status}, 200, "$type tool result: 200");
    is($r->{json}{output}[0]{content}[0]{text}, 'Mock answer to: and tomorrow?',
       "$type tool result: answered");
    $up = last_record()->{body_json};
    if ($type eq 'openai') {
        is_deeply($up->{messages}, [
            { role => 'user', content => 'weather in Paris' },
            { role => 'assistant', content => undef, tool_calls => [
                { id => $fc[0]{call_id}, type => 'function',
                  function => { name => 'get_weather', arguments => $fc[0]{arguments} } }] },
            { role => 'tool', tool_call_id => $fc[0]{call_id}, content => '21 degrees' },
            { role => 'user', content => 'and tomorrow?' },
        ], 'openai tool result upstream: function_call -> tool_calls, output -> a tool message')
            or diag(explain($up->{messages}));
    } elsif ($type eq 'anthropic') {
        is_deeply($up->{messages}[1]{content}, [{ type => 'tool_use', id => $fc[0]{call_id},
            name => 'get_weather', input => { text => 'weather in Paris' } }],
            'anthropic tool result upstream: a tool_use block');
        is($up->{messages}[2]{content}[0]{type}, 'tool_result',
           'anthropic tool result upstream: a tool_result block');
    } else {
        is_deeply($up->{contents}[1]{parts}[0]{functionCall},
                  { name => 'get_weather', args => { text => 'weather in Paris' } },
                  'gemini tool result upstream: a functionCall part');
    }

    $s = $t->stream($url, req($model, 'weather in Paris', tools => $tools, stream => \1));
    @e = events($s);
    well_formed("$type tool stream", @e);
    like(names(@e), qr/^response\.created response\.in_progress response\.output_item\.added (?:response\.function_call_arguments\.delta\+? )?response\.function_call_arguments\.done response\.output_item\.done response\.completed$/,
         "$type tool stream: the event sequence") or diag(names(@e));
    my %by = map { $_->[0] => $_->[1] } @e;
    is($by{'response.output_item.added'}{item}{type}, 'function_call',
       "$type tool stream: a function_call item");
    is($by{'response.output_item.added'}{item}{name}, 'get_weather', "$type tool stream: name");
    is($by{'response.output_item.added'}{item}{arguments}, '', "$type tool stream: no arguments yet");
    is_deeply(eval { decode_json(args_of(@e)) }, { text => 'weather in Paris' },
              "$type tool stream: argument deltas join to the arguments");
    is($by{'response.function_call_arguments.done'}{arguments},
       $by{'response.output_item.done'}{item}{arguments},
       "$type tool stream: done events carry the arguments");
    is_deeply($by{'response.completed'}{response}{output}, [$by{'response.output_item.done'}{item}],
              "$type tool stream: completed with the call");
}

# parallel calls in one assistant message, after its text
$r = $t->post_json($url, req('openai/gpt-4o', [
    { role => 'user', content => 'two cities' },
    { role => 'assistant', content => 'Checking.' },
    { type => 'function_call', call_id => 'c1', name => 'get_weather', arguments => '{"city":"A"}' },
    { type => 'function_call', call_id => 'c2', name => 'get_weather', arguments => '{"city":"B"}' },
    { type => 'function_call_output', call_id => 'c1', output => 'sunny' },
    { type => 'function_call_output', call_id => 'c2',
      output => [{ type => 'input_text', text => 'rain' }] },
], tools => $tools));
is($r->{status}, 200, 'parallel calls: 200');
is_deeply(last_record()->{body_json}{messages}, [
    { role => 'user', content => 'two cities' },
    { role => 'assistant', content => 'Checking.', tool_calls => [
        { id => 'c1', type => 'function', function => { name => 'get_weather', arguments => '{"city":"A"}' } },
        { id => 'c2', type => 'function', function => { name => 'get_weather', arguments => '{"city":"B"}' } }] },
    { role => 'tool', tool_call_id => 'c1', content => 'sunny' },
    { role => 'tool', tool_call_id => 'c2', content => 'rain' },
], 'parallel calls: one assistant message with both calls, then their outputs')
    or diag(explain(last_record()->{body_json}{messages}));

# --- what needs stored state, what is not served: 400 naming the param -----------

error_ok($t->post_json($url, req('openai/gpt-4o', 'x', previous_response_id => 'resp_1')),
         400, 'previous_response_id', 'previous_response_id', qr/stores no responses/);
error_ok($t->post_json($url, req('openai/gpt-4o', 'x', conversation => 'conv_1')),
         400, 'conversation', 'conversation', qr/stores no conversations/);
error_ok($t->post_json($url, req('openai/gpt-4o', 'x', background => \1)),
         400, 'background', 'background');
error_ok($t->post_json($url, req('openai/gpt-4o', [{ role => 'user', content => 'x' },
                                                   { type => 'item_reference', id => 'msg_1' }],
                                 store => \1)),
         400, 'input[1]', 'item_reference', qr/stores no responses/);
error_ok($t->post_json($url, req('openai/gpt-4o', 'x', tools => [{ type => 'web_search' }])),
         400, 'tools[0].type', 'built-in tool', qr/function tools only/);
error_ok($t->post_json($url, req('openai/gpt-4o', [{ type => 'web_search_call', id => 'ws_1' }])),
         400, 'input[0].type', 'unsupported item');
error_ok($t->post_json($url, req('openai/gpt-4o', [{ role => 'user', content => [
                                     { type => 'input_image', file_id => 'file_1' }] }])),
         400, 'input[0].content[0]', 'image by file_id', qr/file_id/);
error_ok($t->post_json($url, req('openai/gpt-4o', [{ role => 'tool', content => 'x' }])),
         400, 'input[0].role', 'bad role');
error_ok($t->post_json($url, { model => 'openai/gpt-4o' }), 400, 'input', 'no input');
error_ok($t->post_json($url, req('openai/gpt-4o', 'x', max_output_tokens => 0)),
         400, 'max_output_tokens', 'max_output_tokens 0');
error_ok($t->post_json($url, req('openai/gpt-4o', 'x', text => { format => { type => 'yaml' } })),
         400, 'text.format.type', 'unknown format');
error_ok($t->post_json($url, '{"model":'), 400, undef, 'not JSON', qr/not valid JSON/);
error_ok($t->post_json($url, req('openai/gpt-4o', 'x', temperature => 9)),
         400, 'temperature', 'temperature out of range (the chat check)');

# store alone is accepted
$r = $t->post_json($url, req('openai/gpt-4o', 'stored?', store => \1));
is($r->{status}, 200, 'store: true alone is accepted');
is($r->{json}{store}, JSON::PP::false, 'store: the response says it was not stored');

$r = $t->get($url);
error_ok($r, 405, undef, 'GET', qr/responses takes POST/);
is($r->{headers}{allow}, 'POST', 'GET: Allow: POST');

# nothing is stored: responses/{id} and what hangs off it say so
for my $case (['GET', "$url/resp_0123"], ['POST', "$url/resp_0123/cancel"],
              ['GET', "$url/resp_0123/input_items"], ['DELETE', "$url/resp_0123"]) {
    my ($m, $path) = @$case;
    error_ok($t->request($m, $path), 404, undef, "$m $path",
             qr/stores no responses/);
}

# provider errors as OpenAI error objects, with the provider's status
for my $case (['openai/x-status429-retryafter3', 429], ['claude/x-status529', 503],
              ['google/x-status403', 403]) {
    my ($model, $status) = @$case;
    $r = $t->post_json($url, req($model, 'x'));
    error_ok($r, $status, undef, "provider $model");
}

# --- a failure in the middle of a stream: response.failed, never completed -------

for my $model ('openai/x-streamerror', 'claude/x-streamerror', 'openai/x-cut',
               'claude/x-cut', 'google/x-cut') {
    $s = $t->stream($url, req($model, 'x', stream => \1));
    is($s->{status}, 200, "$model stream: began 200");
    @e = events($s);
    well_formed("$model stream", @e);
    is(text_of(@e), 'Mock answer', "$model stream: the deltas before the failure arrived");
    is($e[-2][0], 'response.failed', "$model stream: response.failed");
    is($e[-2][1]{response}{status}, 'failed', "$model stream: status failed");
    ok(length($e[-2][1]{response}{error}{message} // ''), "$model stream: its error");
    is($e[-1][0], 'error', "$model stream: then an error event");
    ok(length($e[-1][1]{message} // ''), "$model stream: error message");
    ok(!grep({ $_->[0] =~ /^response\.(?:completed|incomplete)$/ } @e),
       "$model stream: no response.completed");
}

$s = $t->stream($url, req('claude/x-status529', 'x', stream => \1));
error_ok($s, 503, undef, 'stream failing before any event: a plain error answer');

# --- fallback and fusion locations ---------------------------------------------

$r = $t->post_json('/fb/v1/responses', req('openai/x-status500', 'fall back'));
is($r->{status}, 200, 'fallback: 200');
is($r->{headers}{'x-ai-model'}, 'claude/sonnet', 'fallback: answered by the anthropic provider');
is($r->{headers}{'x-ai-attempts'}, 2, 'fallback: two attempts');
is($r->{json}{output}[0]{content}[0]{text}, 'Mock answer to: fall back', 'fallback: the answer');
usage_ok($r->{json}{usage}, ptok('fall back'), 5, 'fallback');

$s = $t->stream('/fb/v1/responses', req('openai/x-status500', 'fall back', stream => \1));
is($s->{headers}{'x-ai-model'}, 'claude/sonnet', 'stream fallback: the next model answered');
@e = events($s);
well_formed('stream fallback', @e);
is(text_of(@e), 'Mock answer to: fall back', 'stream fallback: the answer');
is($e[-1][0], 'response.completed', 'stream fallback: completed');

$r = $t->post_json('/fusion/v1/responses', req('fusion', 'two plus two'));
is($r->{status}, 200, 'fusion: 200');
is($r->{json}{object}, 'response', 'fusion: a response object');
is($r->{json}{output}[0]{content}[0]{text}, 'Mock answer to: two plus two', 'fusion: the voted answer');
is($r->{json}{fusion}{mode}, 'vote', 'fusion: the fusion report kept');
is(scalar @{ $r->{json}{fusion}{members} }, 3, 'fusion: three members');
is($r->{json}{usage}{output_tokens}, 3 * words('Mock answer to: two plus two'),
   'fusion: usage summed over the members');

$s = $t->stream('/fusion/v1/responses', req('fusion', 'two plus two', stream => \1));
@e = events($s);
well_formed('fusion stream', @e);
is(text_of(@e), 'Mock answer to: two plus two', 'fusion stream: the answer');
is($e[-1][0], 'response.completed', 'fusion stream: completed');

# --- rate limits count the Responses API as any other call -----------------------

$r = $t->post_json('/rate/v1/responses', req('openai/gpt-4o', 'x'),
                   headers => { Authorization => 'Bearer rate-key' });
is($r->{status}, 200, 'rate: the first request passes');
$r = $t->post_json('/rate/v1/chat/completions',
                   { model => 'openai/gpt-4o', messages => [{ role => 'user', content => 'x' }] },
                   headers => { Authorization => 'Bearer rate-key' });
error_ok($r, 429, undef, 'rate: a chat request after it is refused');
$r = $t->post_json('/rate/v1/responses', req('openai/gpt-4o', 'x'),
                   headers => { Authorization => 'Bearer rate-key' });
error_ok($r, 429, undef, 'rate: and so is the next responses request');
ok($r->{headers}{'retry-after'}, 'rate: Retry-After');

$t->done_testing_checks;
done_testing;
