#!/usr/bin/perl
# ai_guard: deny rules refuse a request with 400 naming the rule before any
# provider is called (OpenAI and Anthropic error forms); redact rules
# replace matches before the provider sees the prompt (the mock's record
# proves it) and, with scope=response/both, in answers, whole and streamed
# (a match split across stream deltas included); the Luhn check; rules
# inherited as a whole, "off"; nginx -t errors; $ai_guard in an access
# log; the counters; the shipped examples/guards.conf.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use JSON::PP;
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

my @log;
for (1 .. 100) {
    @log = grep { m{^/v1/chat} } split /\n/, $t->read_file('logs/guard.log') // '';
    last if @log && $log[-1] =~ /codename/;
    select(undef, undef, undef, 0.05);
}
is($log[-4], "$chat 200 guard=-", '$ai_guard: "-" without a match');
is($log[-3], "$chat 400 guard=deny:secret", '$ai_guard: deny:NAME');
is($log[-2], "$chat 200 guard=redact:email,card", '$ai_guard: redact:NAME,NAME');
is($log[-1], "$chat 200 guard=redact:codename,card", '$ai_guard: response redactions');

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
