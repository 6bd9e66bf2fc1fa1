#!/usr/bin/perl
# ai_guard: deny rules refuse a request with 400 naming the rule before any
# provider is called (OpenAI and Anthropic error forms); redact rules
# replace matches before the provider sees the prompt (the mock's record
# proves it) and, with scope=response/both, in answers, whole and streamed
# (a match split across stream deltas included); the Luhn check; rules
# inherited as a whole, "off"; nginx -t errors; $ai_guard in an access
# log; the counters; the shipped examples/guards.conf.  Every string the
# provider receives is checked (tool call arguments, names, tools, schemas,
# prediction, user, metadata, stop, data: URL text, Messages tool_use
# input ...), and error messages, plain, streamed, after fallback.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use JSON::PP;
use MIME::Base64 qw(encode_base64 decode_base64);
use GatewayTest;

my $t = GatewayTest->new(name => 'guards');
plan skip_all => 'module not built' unless $t->has_module;

my $examples = "$GatewayTest::ROOT/examples/guards.conf";

$t->start_mock(name => 'm1');
$t->write_config($t->config_preamble . "http {\n" . $t->http_preamble . <<"EOF");
    log_format guard '\$request_uri \$status guard=\$ai_guard';

    ai_provider openai type=openai pass=/_ai/openai key=sk-provider;
    ai_provider claude type=anthropic pass=/_ai/claude key=sk-ant-provider;

    ai_guard forbidden regex=FORBIDDEN action=deny;

    server {
        listen 127.0.0.1:%%PORT%%;
        access_log logs/guard.log guard;

        location /v1/ {
            ai_gateway;
            ai_guard secret "regex=TOP[ -]?SECRET" action=deny;
            ai_guard email "regex=(?i)\\b[a-z0-9._%+-]+\@[a-z0-9.-]+\\.[a-z]{2,}\\b"
                     action=redact;
            ai_guard card "regex=\\b(?:\\d[ -]?){11,18}\\d\\b" action=redact
                     scope=both check=luhn;
            ai_guard codename regex=Bluebird action=redact scope=response;
        }

        location /inherit/v1/ {
            ai_gateway;
        }

        location /off/v1/ {
            ai_gateway;
            ai_guard off;
        }

        location /ex/v1/ {
            ai_gateway;
            include $examples;
        }

        # every string the provider receives (docs/guards.md)
        location /f/v1/ {
            ai_gateway;
            client_max_body_size 4m;
            client_body_buffer_size 4m;
            include $examples;
            ai_guard word regex=forbidden-word action=deny;
        }

        location /fb/v1/ {
            ai_gateway;
            include $examples;
            ai_fallback openai/k1-status401 claude/k2-status401 on=4xx
                        breaker=off;
        }

        # deny rules alone: an error that echoes a key is withheld
        location /d/v1/ {
            ai_gateway;
            ai_guard key "regex=sk-proj-[A-Za-z0-9]{20,}" action=deny;
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
    }
}
EOF
$t->start_nginx;

my $chat = '/v1/chat/completions';

sub records { scalar @{ $t->mock_records('m1') } }
sub last_body { $t->mock_records('m1')->[-1]{body} }

sub chat { my ($text, %o) = @_;
           return { model => 'openai/gpt-4o',
                    messages => [{ role => 'user', content => $text }], %o } }

sub content_of { join '', map { $_->{choices}[0]{delta}{content} // '' }
                          grep { ref && $_->{choices} && @{ $_->{choices} } }
                          @{ $_[0]{json_events} } }

# --- deny ---------------------------------------------------------------------

my $before = records();

my $r = $t->post_json($chat, chat('please keep this TOP SECRET'));
is($r->{status}, 400, 'deny: 400');
is($r->{json}{error}{code}, 'guard_denied', 'deny: code guard_denied');
is($r->{json}{error}{type}, 'invalid_request_error', 'deny: invalid_request_error');
like($r->{json}{error}{message}, qr/guard "secret"/, 'deny: the message names the rule');

$r = $t->post_json($chat, { model => 'openai/gpt-4o', messages => [
    { role => 'system', content => 'TOP-SECRET instructions' },
    { role => 'user', content => 'hi' }] });
is($r->{status}, 400, 'deny: in a system message');

$r = $t->post_json($chat, { model => 'openai/gpt-4o', messages => [
    { role => 'user', content => [{ type => 'text', text => 'fine' },
                                  { type => 'text', text => 'TOPSECRET' }] }] });
is($r->{status}, 400, 'deny: in a content part');

# the same key twice: cJSON reads the first, a provider may read the last
$r = $t->post_json($chat, '{"model":"openai/gpt-4o","messages":[{"role":"user",'
                          . '"content":"harmless","content":"TOPSECRET"}]}');
is($r->{status}, 400, 'deny: a "content" sent twice is checked twice');

$r = $t->post_json($chat, { model => 'openai/gpt-4o', messages => [
    { role => 'user', content => 'weather?' },
    { role => 'assistant', content => undef, tool_calls => [{ id => 'c1', type => 'function',
        function => { name => 'w', arguments => '{}' } }] },
    { role => 'tool', tool_call_id => 'c1', content => 'TOP SECRET data' }] });
is($r->{status}, 400, 'deny: in a tool result');

$r = $t->post_json('/v1/messages', { model => 'claude/sonnet', max_tokens => 100,
                                     system => 'this is TOP SECRET',
                                     messages => [{ role => 'user', content => 'hi' }] });
is($r->{status}, 400, 'deny on /messages: 400');
is($r->{json}{type}, 'error', 'deny on /messages: an Anthropic error');
is($r->{json}{error}{type}, 'invalid_request_error', 'deny on /messages: its type');
like($r->{json}{error}{message}, qr/guard "secret"/, 'deny on /messages: names the rule');

my $s = $t->stream($chat, chat('TOP SECRET', stream => \1));
is($s->{status}, 400, 'deny, streamed request: 400 before any event');

is(records(), $before, 'deny: no provider was called, ever');

# --- redact in requests -------------------------------------------------------

$r = $t->post_json($chat, chat('Mail alice.smith@example.com or BOB@Example.ORG today'));
is($r->{status}, 200, 'redact: 200');
my $body = last_body();
unlike($body, qr/alice|example\.com|BOB\@/i, 'redact: the provider never saw the addresses');
like($body, qr/Mail \[REDACTED:email\] or \[REDACTED:email\] today/,
     'redact: the provider saw the placeholders');
is($r->{json}{choices}[0]{message}{content},
   'Mock answer to: Mail [REDACTED:email] or [REDACTED:email] today',
   'redact: the answer is built on the redacted prompt');

$r = $t->post_json('/v1/messages', { model => 'claude/sonnet', max_tokens => 100,
    system => 'reply to carol@example.net',
    messages => [{ role => 'user', content => [{ type => 'text', text => 'from dave@example.net' }] }] });
is($r->{status}, 200, 'redact on /messages to anthropic: 200');
my $up = $t->mock_records('m1')->[-1]{body_json};
is($up->{system}, 'reply to [REDACTED:email]', 'redact on /messages: the system prompt');
is($up->{messages}[0]{content}[0]{text}, 'from [REDACTED:email]',
   'redact on /messages: a text block');

# the Luhn check: a valid card number is redacted, an invalid one is not
$r = $t->post_json($chat, chat('pay with 4111 1111 1111 1111 or 4111-1111-1111-1112, '
                               . 'order 1234567890123'));
$body = last_body();
like($body, qr/pay with \[REDACTED:card\] or 4111-1111-1111-1112, order 1234567890123/,
     'luhn: the valid number redacted, the invalid one and an order number kept');
$r = $t->post_json($chat, chat('amex 378282246310005 visa4111111111111111'));
like(last_body(), qr/amex \[REDACTED:card\] visa4111111111111111/,
     'luhn: 15 digits redacted; digits glued to a word are not a number');

# unicode around matches, and many matches
$r = $t->post_json($chat, chat("caf\x{e9} \x{2192} x\@y.io \x{1f600} " . join(' ', map { "u$_\@ex.com" } 1 .. 50)));
is($r->{status}, 200, 'many matches: 200');
my $sent = $t->mock_records('m1')->[-1]{body_json}{messages}[0]{content};
my $count = () = $sent =~ /\[REDACTED:email\]/g;
is($count, 51, 'many matches: all 51 redacted');
like($sent, qr/^caf\x{e9} \x{2192} \[REDACTED:email\] \x{1f600} /,
     'many matches: the text around them intact');
unlike($sent, qr/\@/, 'many matches: no address left');

# --- inheritance, off ---------------------------------------------------------

$before = records();
$r = $t->post_json('/inherit/v1/chat/completions', chat('this is FORBIDDEN'));
is($r->{status}, 400, 'inherited: the http-level rule applies');
like($r->{json}{error}{message}, qr/guard "forbidden"/, 'inherited: named');
is(records(), $before, 'inherited: no provider call');

$r = $t->post_json($chat, chat('FORBIDDEN here is fine'));
is($r->{status}, 200, 'a level with its own rules does not inherit');

$r = $t->post_json('/off/v1/chat/completions', chat('TOP SECRET FORBIDDEN a@b.io'));
is($r->{status}, 200, 'off: no rules');
like(last_body(), qr/a\@b\.io/, 'off: nothing redacted');

# --- redact in responses ------------------------------------------------------

my $leak = 'Call Bluebird at eve@example.com, card 4111 1111 1111 1111, thanks';
$t->mock_answer('m1', 'leaky', $leak);
$t->mock_answer('m1', 'leaky-slow30', $leak);
$t->mock_answer('m1', 'leaky-cut', $leak);

$r = $t->post_json($chat, chat('hello', model => 'openai/leaky'));
is($r->{json}{choices}[0]{message}{content},
   'Call [REDACTED:codename] at eve@example.com, card [REDACTED:card], thanks',
   'response: response-scope rules applied, the request-only one not');
is($r->{json}{object}, 'chat.completion', 'response: still a chat.completion');
ok($r->{json}{usage}, 'response: usage kept');

$r = $t->post_json($chat, chat('hello', model => 'claude/leaky'));
is($r->{json}{choices}[0]{message}{content},
   'Call [REDACTED:codename] at eve@example.com, card [REDACTED:card], thanks',
   'response from anthropic: redacted');

$r = $t->post_json('/v1/messages', { model => 'openai/leaky', max_tokens => 100,
                                     messages => [{ role => 'user', content => 'hi' }] });
is($r->{json}{content}[0]{text},
   'Call [REDACTED:codename] at eve@example.com, card [REDACTED:card], thanks',
   'response on /messages: redacted');

# streamed: the card number comes as four deltas ("4111", " 1111", ...)
for my $model ('openai/leaky-slow30', 'claude/leaky-slow30') {
    $s = $t->stream($chat, chat('hello', model => $model, stream => \1,
                                stream_options => { include_usage => \1 }));
    is($s->{status}, 200, "stream $model: 200");
    is($s->{events}[-1], '[DONE]', "stream $model: [DONE] last");
    is(content_of($s),
       'Call [REDACTED:codename] at eve@example.com, card [REDACTED:card], thanks',
       "stream $model: a match split across deltas is redacted");
    unlike($s->{raw_body}, qr/4111|Bluebird/, "stream $model: nothing of it leaked");
    my @c = grep { ref && $_->{object} } @{ $s->{json_events} };
    is(scalar(grep { $_->{choices}[0] && $_->{choices}[0]{finish_reason} } @c), 1,
       "stream $model: one finish chunk");
    ok($c[-1]{usage}, "stream $model: the usage chunk");
    is(scalar(keys %{{ map { $_->{id} => 1 } @c }}), 1, "stream $model: one id");
}

# a long answer still streams: held back by a window, not whole
my $long = join ' ', map { "word$_" } 1 .. 40;
$t->mock_answer('m1', 'long-slow30', "$long 4111 1111 1111 1111");
$s = $t->stream($chat, chat('hello', model => 'openai/long-slow30', stream => \1));
is(content_of($s), "$long [REDACTED:card]", 'long stream: redacted at the end');
my @times = @{ $s->{event_times} };
ok($times[-1] - $times[1] > 0.5, 'long stream: content arrives over time, not at the end')
    or diag(explain([map { $_ - $s->{start_time} } @times]));
ok(scalar(@times) > 20, 'long stream: many events');

$s = $t->stream('/v1/messages', { model => 'openai/leaky-slow30', max_tokens => 100,
                                  stream => \1,
                                  messages => [{ role => 'user', content => 'hi' }] });
my $text = join '', map { $_->{delta}{text} // '' }
                    grep { ref && ($_->{type} // '') eq 'content_block_delta' }
                    @{ $s->{json_events} };
is($text, 'Call [REDACTED:codename] at eve@example.com, card [REDACTED:card], thanks',
   'stream on /messages: redacted');
is($s->{event_names}[-1], 'message_stop', 'stream on /messages: whole');

# a stream cut after the card (the mock sends two words, then cuts): what
# was held back goes out, redacted, before the error event
$t->mock_answer('m1', 'leaky-cut', 'card 4111-1111-1111-1111 and more words here');
$s = $t->stream($chat, chat('hello', model => 'openai/leaky-cut', stream => \1));
is(content_of($s), 'card [REDACTED:card]', 'cut stream: the text before the cut');
unlike($s->{raw_body}, qr/4111/, 'cut stream: nothing leaked');
ok(!grep({ $_ eq '[DONE]' } @{ $s->{events} }), 'cut stream: no [DONE]');
is(ref $s->{json_events}[-1] && $s->{json_events}[-1]{error}{code}, 'stream_incomplete',
   'cut stream: the error event last');

# --- the shipped examples -----------------------------------------------------

my %secrets = (
    'sk-proj-AbCdEf0123456789ghIJklMNop' => 'api_key',
    'sk-ant-api03-abcdefghij0123456789XYZ' => 'api_key',
    'AKIAIOSFODNN7EXAMPLE' => 'api_key',
    'ghp_' . ('a1B2' x 9) => 'api_key',
    'AIza' . ('Sy0_' x 8) . 'abc' => 'api_key',
    'frank@example.co.uk' => 'email',
    '5555-5555-5555-4444' => 'card',
);
for my $secret (sort keys %secrets) {
    $r = $t->post_json('/ex/v1/chat/completions', chat("key: $secret end"));
    is($r->{status}, 200, "examples: $secrets{$secret} 200");
    my $b = last_body();
    unlike($b, qr/\Q$secret\E/, "examples: $secret not sent");
    like($b, qr/key: \[REDACTED:$secrets{$secret}\] end/, "examples: $secret redacted");
}
$r = $t->post_json('/ex/v1/chat/completions',
                   chat('not secrets: 5555-5555-5555-4445, sk-short, AKIA123, user at host'));
like(last_body(), qr/not secrets: 5555-5555-5555-4445, sk-short, AKIA123, user at host/,
     'examples: look-alikes are left alone');
$r = $t->post_json('/ex/v1/chat/completions', chat('hi', model => 'openai/leaky'));
is($r->{json}{choices}[0]{message}{content},
   'Call Bluebird at [REDACTED:email], card [REDACTED:card], thanks',
   'examples: answers redacted too (scope=both)');

# --- $ai_guard ----------------------------------------------------------------

$t->post_json($chat, chat('plain'));
$t->post_json($chat, chat('TOPSECRET'));
$t->post_json($chat, chat('x@y.io and 4111111111111111'));
$t->post_json($chat, chat('hello', model => 'openai/leaky'));

# each worker writes its access log line after its answer went out, so
# two requests in a row may be logged in either order: wait for all four
my @want = ("$chat 200 guard=-", "$chat 400 guard=deny:secret",
            "$chat 200 guard=redact:email,card",
            "$chat 200 guard=redact:codename,card");
my @log;
for (1 .. 100) {
    @log = grep { m{^/v1/chat} } split /\n/, $t->read_file('logs/guard.log') // '';
    last if @log >= 4 && (grep { /codename/ } @log[-4 .. -1])
            && (grep { /deny:secret/ } @log[-4 .. -1]);
    select(undef, undef, undef, 0.05);
}
my %last = map { $_ => 1 } @log >= 4 ? @log[-4 .. -1] : @log;
ok($last{$want[0]}, '$ai_guard: "-" without a match');
ok($last{$want[1]}, '$ai_guard: deny:NAME');
ok($last{$want[2]}, '$ai_guard: redact:NAME,NAME');
ok($last{$want[3]}, '$ai_guard: response redactions')
    or diag(join "\n", @log[-4 .. -1]);

# --- counters -----------------------------------------------------------------

SKIP: {
    $r = $t->get('/status');
    skip 'ai_status does not list guards yet', 6
        unless $r->{json} && ref $r->{json}{guards} eq 'ARRAY';

    my %g = map { ("$_->{name}/$_->{action}" => $_) } @{ $r->{json}{guards} };
    ok($g{'secret/deny'}, 'status: the deny rule listed');
    is($g{'secret/deny'}{requests}, 8, 'status: requests denied by "secret"');
    is($g{'forbidden/deny'}{requests}, 1, 'status: requests denied by "forbidden"');
    is($g{'email/redact'}{matches}, 56 + 2, 'status: email matches counted '
       . '(examples/guards.conf\'s "email" counts with it)');
    ok($g{'card/redact'}{matches} >= 10, 'status: card matches counted');
    is($g{'api_key/redact'}{matches}, 5, 'status: the examples counted too');
}

# --- every string the provider receives -----------------------------------------

my $SECRET = 'sk-proj-abcdefghijklmnopqrstuvwxyz0123';
my $WORD = 'forbidden-word';
my $JSONC = JSON::PP->new->canonical;

# every string of what the mock was sent: member names too, tool call
# arguments, data: URLs and base64 sources also decoded
sub strings_of {
    my ($v) = @_;
    return () unless defined $v;
    if (ref $v eq 'HASH') {
        my @s = map { ($_, strings_of($v->{$_})) } keys %$v;
        push @s, decode_base64($v->{data})              # an Anthropic source
            if ($v->{type} // '') eq 'base64' && defined $v->{data} && !ref $v->{data};
        return @s;
    }
    return map { strings_of($_) } @$v if ref $v eq 'ARRAY';
    return () if ref $v;
    my @s = ($v);
    push @s, strings_of(eval { JSON::PP->new->decode($v) }) if $v =~ /^\s*[\[{]/;
    if ($v =~ /^data:([^,]*),(.*)\z/s) {
        my ($head, $data) = ($1, $2);
        if ($head =~ /;base64\z/i) { push @s, decode_base64($data) }
        else { $data =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ge; push @s, $data }
    }
    return @s;
}

sub pct { join '', map { sprintf '%%%02X', ord } split //, $_[0] }
sub escape_k { (my $e = $_[0]) =~ s/k/\\u006b/; $e =~ s/-/\\u002d/; $e }

sub fchat { return { model => 'openai/gpt-4o',
                     messages => [{ role => 'user', content => 'hi' }], @_ } }
sub fmsg { return { model => 'claude/sonnet', max_tokens => 100,
                    messages => [{ role => 'user', content => 'hi' }], @_ } }

sub tool_turns {
    my ($args) = @_;
    return [{ role => 'user', content => 'weather?' },
            { role => 'assistant', content => undef, tool_calls => [{ id => 'c1',
                type => 'function', function => { name => 'w', arguments => $args } }] },
            { role => 'tool', tool_call_id => 'c1', content => 'sunny' }];
}

sub tool_use {
    my ($input, $model) = @_;
    return fmsg(model => $model // 'claude/sonnet', messages => [
        { role => 'user', content => 'weather?' },
        { role => 'assistant', content => [{ type => 'tool_use', id => 'tu1',
                                             name => 'w', input => $input }] },
        { role => 'user', content => [{ type => 'tool_result', tool_use_id => 'tu1',
                                        content => 'sunny' }] }]);
}

my $fc = '/f/v1/chat/completions';
my $fm = '/f/v1/messages';

my @fields = (
    [ 'tool call arguments', $fc,
      sub { fchat(messages => tool_turns($JSONC->encode({ city => "x $_[0]" }))) } ],
    [ 'tool call arguments, \\u-escaped', $fc,
      sub { fchat(messages => tool_turns('{"city":"x ' . escape_k($_[0]) . '"}')) } ],
    [ 'tool call arguments, a member name', $fc,
      sub { fchat(messages => tool_turns($JSONC->encode({ $_[0] => 1 }))) } ],
    [ 'tool call arguments (F6)', $fc,
      sub { '{"model":"openai/gpt-4o","messages":[{"role":"user","content":"hi"},'
            . '{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":'
            . '"function","function":{"name":"f","arguments":"{\\"k\\":\\"' . $_[0]
            . '\\"}"}}]},{"role":"tool","tool_call_id":"c1","content":"ok"}]}' } ],
    [ 'message name', $fc,
      sub { fchat(messages => [{ role => 'user', name => $_[0], content => 'hi' }]) } ],
    [ 'tool name', $fc,
      sub { fchat(tools => [{ type => 'function', function => { name => $_[0] } }]) } ],
    [ 'tool description', $fc,
      sub { fchat(tools => [{ type => 'function', function => { name => 'w',
                              description => "gets $_[0]" } }]) } ],
    [ 'tool parameters, a description', $fc,
      sub { fchat(tools => [{ type => 'function', function => { name => 'w',
              parameters => { type => 'object', properties => {
                  city => { type => 'string', description => "the $_[0]" } } } } }]) } ],
    [ 'tool parameters, an enum', $fc,
      sub { fchat(tools => [{ type => 'function', function => { name => 'w',
              parameters => { type => 'object', properties => {
                  city => { type => 'string', enum => ['a', $_[0]] } } } } }]) } ],
    [ 'tool parameters, a property name', $fc,
      sub { fchat(tools => [{ type => 'function', function => { name => 'w',
              parameters => { type => 'object',
                              properties => { $_[0] => { type => 'string' } } } } }]) } ],
    [ 'tool_choice function name', $fc,
      sub { fchat(tool_choice => { type => 'function', function => { name => $_[0] } },
                  tools => [{ type => 'function', function => { name => 'w' } }]) } ],
    [ 'response_format json_schema schema', $fc,
      sub { fchat(response_format => { type => 'json_schema', json_schema => {
              name => 'out', schema => { type => 'object', properties => {
                  a => { type => 'string', description => "say $_[0]" } } } } }) } ],
    [ 'response_format json_schema description', $fc,
      sub { fchat(response_format => { type => 'json_schema', json_schema => {
              name => 'out', description => $_[0], schema => { type => 'object' } } }) } ],
    [ 'prediction', $fc,
      sub { fchat(prediction => { type => 'content', content => "old $_[0]" }) } ],
    [ 'user', $fc, sub { fchat(user => "u $_[0]") } ],
    [ 'metadata, a value', $fc, sub { fchat(metadata => { note => $_[0] }) } ],
    [ 'metadata, a name', $fc, sub { fchat(metadata => { $_[0] => 'v' }) } ],
    [ 'stop', $fc, sub { fchat(stop => ['END', "x $_[0]"]) } ],
    [ 'a member the gateway does not know', $fc, sub { fchat(x_extra => { note => $_[0] }) } ],
    [ 'image_url data: URL, text/plain base64', $fc,
      sub { fchat(messages => [{ role => 'user', content => [
              { type => 'text', text => 'read this' },
              { type => 'image_url', image_url => {
                  url => 'data:text/plain;base64,' . encode_base64("note: $_[0]", '') } }] }]) } ],
    [ 'image_url data: URL, %XX', $fc,
      sub { fchat(messages => [{ role => 'user', content => [
              { type => 'image_url', image_url => { url => 'data:,note%3A%20' . pct($_[0]) } }] }]) } ],
    [ 'image_url data: URL whose base64 does not decode', $fc,
      sub { fchat(messages => [{ role => 'user', content => [
              { type => 'image_url', image_url => { url => "data:text/plain;base64,!$_[0]" } }] }]) } ],
    [ 'image_url https URL', $fc,
      sub { fchat(messages => [{ role => 'user', content => [
              { type => 'image_url', image_url => { url => "https://example.com/a.png?k=$_[0]" } }] }]) } ],
    [ 'image_url as a string, a data: URL', $fc,
      sub { fchat(messages => [{ role => 'user', content => [
              { type => 'image_url', image_url => 'data:text/markdown;base64,'
                                                  . encode_base64("# $_[0]", '') }] }]) } ],
    [ 'file_data data: URL, application/json', $fc,
      sub { fchat(messages => [{ role => 'user', content => [
              { type => 'file', file => { filename => 'a.json',
                file_data => 'data:application/json;base64,'
                             . encode_base64($JSONC->encode({ k => $_[0] }), '') } }] }]) } ],
    [ 'file name', $fc,
      sub { fchat(messages => [{ role => 'user', content => [
              { type => 'file', file => { filename => "$_[0].txt", file_data => 'data:application/pdf;base64,JVBERi0=' } }] }]) } ],
    [ 'messages: tool_use input', $fm, sub { tool_use({ city => "x $_[0]" }) } ],
    [ 'messages: tool_use input, a member name', $fm, sub { tool_use({ $_[0] => 1 }) } ],
    [ 'messages: tool_use input, to an openai provider', $fm,
      sub { tool_use({ city => "x $_[0]" }, 'openai/gpt-4o') } ],
    [ 'messages: tool name', $fm, sub { fmsg(tools => [{ name => $_[0],
                                                        input_schema => { type => 'object' } }]) } ],
    [ 'messages: tool description', $fm,
      sub { fmsg(tools => [{ name => 'w', description => "gets $_[0]",
                             input_schema => { type => 'object' } }]) } ],
    [ 'messages: tool input_schema', $fm,
      sub { fmsg(tools => [{ name => 'w', input_schema => { type => 'object',
              properties => { city => { type => 'string', description => "the $_[0]" } } } }]) } ],
    [ 'messages: metadata.user_id', $fm, sub { fmsg(metadata => { user_id => "u $_[0]" }) } ],
    [ 'messages: stop_sequences', $fm, sub { fmsg(stop_sequences => ["x $_[0]"]) } ],
    [ 'messages: a text/plain image', $fm,
      sub { fmsg(messages => [{ role => 'user', content => [
              { type => 'text', text => 'read this' },
              { type => 'image', source => { type => 'base64', media_type => 'text/plain',
                                             data => encode_base64("note: $_[0]", '') } }] }]) } ],
);

for my $f (@fields) {
    my ($name, $path, $make) = @$f;

    my $r = $t->post_json($path, $make->($SECRET));
    is($r->{status}, 200, "$name: redact: 200") or diag($r->{content});
    my $rec = $t->mock_records('m1')->[-1];
    my @s = strings_of($rec->{body_json});
    ok(@s && !grep(/\Q$SECRET\E/, @s), "$name: redact: the provider never saw the secret")
        or diag($rec->{body});
    ok(scalar grep(/\[REDACTED:api_key\]/, @s), "$name: redact: it saw the redaction")
        or diag($rec->{body});

    my $n = records();
    $r = $t->post_json($path, $make->($WORD));
    is($r->{status}, 400, "$name: deny: 400") or diag($r->{content});
    like($r->{json}{error}{message} // '', qr/guard "word"/, "$name: deny: the rule named");
    is(records(), $n, "$name: deny: no provider call");
}

my %field = map { ($_->[0] => $_->[2]) } @fields;

# a redacted data: URL stays one, of the same kind
$r = $t->post_json($fc, $field{'image_url data: URL, text/plain base64'}->($SECRET));
my $url = $t->mock_records('m1')->[-1]{body_json}{messages}[0]{content}[1]{image_url}{url};
like($url, qr{^data:text/plain;base64,}, 'data: URL: still base64');
is(decode_base64($url =~ s/^[^,]*,//r), 'note: [REDACTED:api_key]', 'data: URL: its text redacted');
$r = $t->post_json($fc, $field{'image_url data: URL, %XX'}->($SECRET));
$url = $t->mock_records('m1')->[-1]{body_json}{messages}[0]{content}[0]{image_url}{url};
is($url, 'data:,note%3A%20%5BREDACTED%3Aapi_key%5D', 'data: URL: %XX again');

# arguments redacted inside stay JSON
$r = $t->post_json($fc, $field{'tool call arguments, \\u-escaped'}->($SECRET));
my $args = $t->mock_records('m1')->[-1]{body_json}{messages}[1]{tool_calls}[0]{function}{arguments};
is_deeply(eval { decode_json($args) }, { city => 'x [REDACTED:api_key]' },
          'arguments: redacted, still JSON');

# binary data is not text: an image's base64 is left as it is
my $png = 'data:image/png;base64,' . encode_base64("\x89PNG $SECRET $WORD", '');
$r = $t->post_json($fc, fchat(messages => [{ role => 'user', content => [
    { type => 'image_url', image_url => { url => $png, detail => 'auto' } }] }]));
is($r->{status}, 200, 'binary data: URL: not checked');
is($t->mock_records('m1')->[-1]{body_json}{messages}[0]{content}[0]{image_url}{url}, $png,
   'binary data: URL: sent as it is');

# odd data: URLs pass as they are
for my $u ('data:', 'data:text/plain;base64,', 'data:,', 'data:,%', 'data:,%4', 'data:;base64,====',
           'data:text/plain;base64,' . ('A' x 4095)) {
    $r = $t->post_json($fc, fchat(messages => [{ role => 'user', content => [
        { type => 'image_url', image_url => { url => $u } }] }]));
    is($t->mock_records('m1')->[-1]{body_json}{messages}[0]{content}[0]{image_url}{url}, $u,
       'data: URL sent as it is: ' . substr($u, 0, 30));
}

# what cannot be checked is refused
my $n = records();
$r = $t->post_json($fc, fchat(messages => [{ role => 'user', content => [
    { type => 'file', file => { file_data => 'data:text/plain;base64,'
                                . encode_base64('a' x (1024 * 1024 + 10), '') } }] }]));
is($r->{status}, 400, 'a data: URL of more than 1 MiB of text: 400');
like($r->{json}{error}{message}, qr/more text than they check/, '... saying why');
$r = $t->post_json($fc, fchat(messages => tool_turns(('[' x 70) . (']' x 70))));
is($r->{status}, 400, 'arguments nested too deeply to check: 400');
$r = $t->post_json($fc, fchat(messages => tool_turns('{"k":"\\u0000 ' . escape_k($SECRET) . '"}')));
is($r->{status}, 400, 'arguments with a NUL: 400');
is(records(), $n, 'refused: no provider call');

# --- error messages -----------------------------------------------------------

my $ECHO = "Incorrect API key provided: Authorization: Bearer $SECRET";
$t->mock_answer('m1', $_, $ECHO)
    for qw(k1-status401 k2-status401 k3-streamerror k4-status401);

for my $model ('openai/k1-status401', 'claude/k2-status401') {
    $r = $t->post_json($fc, fchat(model => $model));
    is($r->{status}, 401, "error $model: the provider's status");
    is($r->{json}{error}{message}, 'Incorrect API key provided: Authorization: Bearer '
                                   . '[REDACTED:api_key]', "error $model: redacted");
    unlike($r->{content}, qr/\Q$SECRET\E/, "error $model: the key not in the body");

    $r = $t->post_json($fm, fmsg(model => $model));
    is($r->{status}, 401, "error on /messages $model: the provider's status");
    is($r->{json}{type}, 'error', "error on /messages $model: an Anthropic error");
    like($r->{json}{error}{message}, qr/Bearer \[REDACTED:api_key\]$/,
         "error on /messages $model: redacted");

    $s = $t->stream($fc, fchat(model => $model, stream => \1));
    is($s->{status}, 401, "streamed, error before the first byte, $model: 401");
    like($s->{raw_body}, qr/Bearer \[REDACTED:api_key\]/, "... $model: redacted");
    unlike($s->{raw_body}, qr/\Q$SECRET\E/, "... $model: the key not sent");
}

$r = $t->post_json('/fb/v1/chat/completions', fchat(model => 'openai/k1-status401'));
is($r->{status}, 502, 'fallback, every call failed: 502');
like($r->{json}{error}{message},
     qr/openai\/k1-status401: HTTP 401: .*\[REDACTED:api_key\]; claude\/k2-status401: HTTP 401: .*\[REDACTED:api_key\]/,
     'fallback: every attempt\'s reason redacted');
unlike($r->{content}, qr/\Q$SECRET\E/, 'fallback: the key not in the body');

for my $model ('openai/k3-streamerror', 'claude/k3-streamerror') {
    $s = $t->stream($fc, fchat(model => $model, stream => \1));
    is($s->{status}, 200, "error in the stream, $model: 200");
    my $ev = $s->{json_events}[-1];
    is(ref $ev && $ev->{error}{message}, $ECHO =~ s/\Q$SECRET\E/[REDACTED:api_key]/r,
       "error in the stream, $model: the error event redacted");
    unlike($s->{raw_body}, qr/\Q$SECRET\E/, "error in the stream, $model: the key not sent");

    $s = $t->stream($fm, fmsg(model => $model, stream => \1));
    is($s->{event_names}[-1], 'error', "error in the stream on /messages, $model: an error event");
    like($s->{json_events}[-1]{error}{message} // '', qr/Bearer \[REDACTED:api_key\]$/,
         "error in the stream on /messages, $model: redacted");
    unlike($s->{raw_body}, qr/\Q$SECRET\E/, "... $model: the key not sent");
}

# deny rules alone withhold an error message that holds what they match
$r = $t->post_json('/d/v1/chat/completions', fchat(model => 'openai/k4-status401'));
is($r->{status}, 401, 'deny rule, error: the status');
is($r->{json}{error}{message}, 'The error message was withheld by a guard (key).',
   'deny rule, error: withheld');
$s = $t->stream('/d/v1/chat/completions', fchat(model => 'openai/k3-streamerror', stream => \1));
is(ref $s->{json_events}[-1] && $s->{json_events}[-1]{error}{message},
   'The error message was withheld by a guard (key).', 'deny rule, error in the stream: withheld');
unlike($s->{raw_body}, qr/\Q$SECRET\E/, 'deny rule, error in the stream: the key not sent');
is(content_of($s), 'Incorrect API', 'deny rule, error in the stream: the text before it as it was');
$r = $t->post_json('/d/v1/chat/completions', fchat(model => 'openai/gpt-4o-status401'));
is($r->{json}{error}{message}, 'mock: status 401 requested', 'deny rule, error: other messages as they are');

# --- nginx -t -----------------------------------------------------------------

$t->stop_nginx;

sub conf_with {
    my ($loc) = @_;
    return $t->config_preamble . "http {\n" . $t->http_preamble . <<"EOF";
    ai_provider openai type=openai pass=/_ai/openai;
    server {
        listen 127.0.0.1:%%PORT%%;
        location /v1/ {
            ai_gateway;
$loc
        }
    }
}
EOF
}

my @bad = (
    [ 'ai_guard x "regex=a(b" action=deny;', qr/ai_guard "x": pcre2?_compile\(\) failed: .*in "a\(b"/ ],
    [ 'ai_guard x regex=a;', qr/ai_guard "x" needs action=deny or action=redact/ ],
    [ 'ai_guard x action=deny;', qr/ai_guard "x" needs regex=/ ],
    [ 'ai_guard x regex=a action=drop;', qr/invalid "action=drop": action is deny or redact/ ],
    [ 'ai_guard x regex=a action=redact scope=all;', qr/invalid "scope=all"/ ],
    [ 'ai_guard x regex=a action=deny scope=both;', qr/action=deny applies to requests only/ ],
    [ 'ai_guard x regex=a action=redact check=crc;', qr/invalid parameter "check=crc"/ ],
    [ "ai_guard x regex=a action=deny;\n ai_guard x regex=b action=deny;",
      qr/duplicate ai_guard "x"/ ],
    [ 'ai_guard a/b regex=a action=deny;', qr/invalid guard name "a\/b"/ ],
    [ "ai_guard off;\n ai_guard x regex=a action=deny;", qr/mixes "off" with rules/ ],
);

for my $case (@bad) {
    my ($line, $re) = @$case;
    my $text = $t->write_config(conf_with("            $line"));
    my ($rc, $out) = $t->nginx_test_config;
    my $name = join ' ', map { s/^\s+//r } split /\n/, $line;
    isnt($rc, 0, "nginx -t fails: $name");
    like($out, qr/\[emerg\].*$re/, "nginx -t message: $name") or diag($out);
    my @lines = split /\n/, $text;
    my ($last) = grep { $lines[$_ - 1] =~ /ai_guard/ } reverse 1 .. @lines;
    like($out, qr{conf/nginx\.conf:$last\b}, "nginx -t file and line: $name");
}

$t->write_config(conf_with("            include $examples;"));
my ($rc, $out) = $t->nginx_test_config;
is($rc, 0, 'examples/guards.conf: nginx -t passes') or diag($out);

$t->done_testing_checks;
done_testing;
