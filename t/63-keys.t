#!/usr/bin/perl
# Client keys (ai_keys, ai_auth): missing, unknown and expired keys
# refused 401 in the route's error shape before any provider call; the
# key's models= through chat, messages, a fallback chain and a fusion
# pool (403 model_not_allowed when nothing is left); $ai_key_name and
# $ai_key_team; per-key rpm and budget, a team budget, over 2 workers; a
# key never in the debug log, the status, the metrics, an error or a
# provider's request; malformed key files fail nginx -t with file:line;
# a reload revokes a key and adds one under load, no request failing
# that should not and none passing that should not.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use JSON::PP;
use Time::HiRes qw(time sleep);
use GatewayTest;

my $t = GatewayTest->new(name => 'keys');
plan skip_all => 'module not built' unless $t->has_module;

$t->start_mock(name => 'm1');

my %keys = (
    alice => 'sk-alice-0123456789abcdef',
    bob   => 'sk-bob-0123456789abcdef',
    old   => 'sk-old-0123456789abcdef',
    carol => 'sk-carol-0123456789abcdef',
    dave  => 'sk-dave-0123456789abcdef',
    erin  => 'sk-erin-0123456789abcdef',
    frank => 'sk-frank-0123456789abcdef',
    new   => 'sk-new-0123456789abcdef',
);

my $alice_hash = `printf %s '$keys{alice}' | sha256sum`;
$alice_hash =~ s/\s.*//s;

sub keys_file {
    my (%o) = @_;
    my $f = "# test keys\nsha256:$alice_hash name=alice team=eng\n"
          . "plain:$keys{bob} name=bob team=eng "
          . "models=openai/gpt-4o-mini,anthropic/*\n"
          . "plain:$keys{old} name=old expires=2020-01-01T00:00:00Z\n"
          . "plain:$keys{carol} name=carol rpm=3\n"
          . "plain:$keys{dave} name=dave budget=0.00001\n"
          . "plain:$keys{erin} name=erin team=ops\n"
          . "plain:$keys{frank} name=frank team=ops\n"
          . "team:ops budget=0.00001\n";
    $f .= "plain:$keys{new} name=alice team=eng\n" if $o{rotate};
    $f =~ s/^plain:\Q$keys{bob}\E.*\n//m if $o{revoke_bob};
    return $f;
}

$t->write_file('conf/keys.txt', keys_file());

my $conf = $t->config_preamble . "http {\n" . $t->http_preamble . <<'EOF';
    log_format keys '$request_uri $status name=$ai_key_name team=$ai_key_team';
    access_log logs/keys.log keys;

    ai_provider openai type=openai pass=/_ai/openai key=sk-provider-openai;
    ai_provider anthropic type=anthropic pass=/_ai/openai key=sk-provider-ant;
    ai_price openai/gpt-4o 2.50 10.00;
    ai_price openai/gpt-4o-mini 2.50 10.00;
    ai_price anthropic/claude 2.50 10.00;

    ai_keys clients file=keys.txt;
    ai_rate_zone rate:1m;
    ai_cost_zone cost:1m;
    ai_metrics_zone metrics:1m;

    server {
        listen 127.0.0.1:%%PORT%% reuseport;

        ai_auth clients;

        location /v1/ {
            ai_gateway;
            ai_rate zone=rate rpm=1000000;
            ai_cost zone=cost;
        }

        location /fb/v1/ {
            ai_gateway;
            ai_fallback openai/gpt-4o openai/gpt-4o-mini;
        }

        location /pool/v1/ {
            ai_gateway;
            ai_pool openai/gpt-4o anthropic/claude openai/gpt-4o-mini
                    judge=openai/gpt-4o-mini mode=best-of;
        }

        location /open/v1/ {
            ai_gateway;
            ai_auth off;
        }

        location = /status { ai_status; }

        location /_ai/openai/ {
            internal;
            proxy_pass http://127.0.0.1:%%MOCK_PORT_m1%%/;
        }
    }
}
EOF
$t->write_config($conf);
$t->start_nginx;

sub chat {
    my ($key, %o) = @_;
    my $body = { model => $o{model} // 'openai/gpt-4o',
                 messages => [{ role => 'user', content => 'Hi' }] };
    $body->{models} = $o{models} if $o{models};
    my $h = $o{headers} // ($key ? { Authorization => "Bearer $key" } : {});
    return $t->post_json(($o{path} // '') . '/v1/chat/completions', $body,
                         headers => $h);
}

sub messages {
    my ($key, $model) = @_;
    return $t->post_json('/v1/messages',
                         { model => $model, max_tokens => 10,
                           messages => [{ role => 'user', content => 'Hi' }] },
                         headers => { 'x-api-key' => $key });
}

sub err_code { ($_[0]{json}{error} // {})->{code} // '' }

# --- missing, unknown, expired: 401 before any call -------------------------

$t->clear_records('m1');

my $r = chat(undef);
is($r->{status}, 401, 'no key: 401');
is(err_code($r), 'invalid_api_key', 'no key: invalid_api_key');

$r = chat('sk-nobody-0123456789abcdef');
is($r->{status}, 401, 'unknown key: 401');
is(err_code($r), 'invalid_api_key', 'unknown key: invalid_api_key');
unlike($r->{content}, qr/sk-nobody/, 'unknown key: not echoed');

$r = chat($keys{old});
is($r->{status}, 401, 'expired key: 401');
is(err_code($r), 'key_expired', 'expired key: key_expired');

$r = chat(undef, headers => { Authorization => 'Basic abc' });
is($r->{status}, 401, 'not a bearer token: 401');

$r = messages('sk-nobody-0123456789', 'anthropic/claude');
is($r->{status}, 401, 'messages, unknown key: 401');
is($r->{json}{type}, 'error', 'messages: an Anthropic error');
is($r->{json}{error}{type}, 'authentication_error',
   'messages: authentication_error');

$r = $t->get('/v1/models');
is($r->{status}, 401, 'models without a key: 401');

sleep 0.2;
is(scalar @{ $t->mock_records('m1') }, 0, 'no provider call for a refusal');

# --- good keys: the three headers; the key never reaches the provider -------

$r = chat($keys{alice});
is($r->{status}, 200, 'sha256: key: 200');
$r = chat(undef, headers => { 'x-api-key' => $keys{bob} },
          model => 'openai/gpt-4o-mini');
is($r->{status}, 200, 'x-api-key: 200');
$r = chat(undef, headers => { 'x-goog-api-key' => $keys{erin} });
is($r->{status}, 200, 'x-goog-api-key: 200');

$r = messages($keys{bob}, 'anthropic/claude');
is($r->{status}, 200, 'messages with a key: 200');

my $recs = $t->wait_records('m1', 4);
is(scalar @$recs, 4, 'four provider calls');
my $enc = JSON::PP->new->canonical;
my $leak = grep { my $x = $enc->encode($_);
                  grep { index($x, $_) >= 0 } values %keys } @$recs;
is($leak, 0, 'no client key in what providers were sent');

$r = chat(undef, path => '/open');
is($r->{status}, 200, 'ai_auth off: no key needed');

# --- models=: chat, messages, responses, fallback, fusion --------------------------------

$r = chat($keys{bob}, model => 'openai/gpt-4o');
is($r->{status}, 403, 'model outside models=: 403');
is(err_code($r), 'model_not_allowed', 'model_not_allowed');

$r = messages($keys{bob}, 'openai/gpt-4o');
is($r->{status}, 403, 'messages, model outside models=: 403');
is($r->{json}{type}, 'error', 'messages 403: an Anthropic error');

# the model list shows what the key may use
$r = $t->get('/v1/models', headers => { Authorization => "Bearer $keys{bob}" });
is_deeply([sort map { $_->{id} } @{ $r->{json}{data} || [] }],
          ['anthropic/claude', 'openai/gpt-4o-mini'], 'models: only what models= allows');
$r = $t->get('/v1/models', headers => { Authorization => "Bearer $keys{carol}" });
is(scalar @{ $r->{json}{data} || [] }, 3, 'models: a key without models= sees all');
$r = $t->get('/v1/models/openai/gpt-4o', headers => { Authorization => "Bearer $keys{bob}" });
is($r->{status}, 404, 'models/{id}: a model outside models= is not found');
$r = $t->get('/v1/models/openai/gpt-4o-mini', headers => { Authorization => "Bearer $keys{bob}" });
is($r->{json}{id}, 'openai/gpt-4o-mini', 'models/{id}: an allowed model');

# the Responses API and embeddings go through the same plan
for my $case (['/v1/responses', { input => 'Hi' }, 'responses'],
              ['/v1/embeddings', { input => 'Hi' }, 'embeddings']) {
    my ($path, $body, $what) = @$case;
    $r = $t->post_json($path, { %$body, model => 'openai/gpt-4o' },
                       headers => { Authorization => "Bearer $keys{bob}" });
    is($r->{status}, 403, "$what, model outside models=: 403");
    is(err_code($r), 'model_not_allowed', "$what: model_not_allowed");
}
$r = $t->post_json('/v1/responses', { model => 'openai/gpt-4o-mini', input => 'Hi' },
                   headers => { Authorization => "Bearer $keys{bob}" });
is($r->{status}, 200, 'responses, an allowed model: 200');
is($r->{json}{object}, 'response', 'responses: a response object');
$r = $t->post_json('/v1/responses', { model => 'openai/gpt-4o', input => 'Hi' });
is($r->{status}, 401, 'responses without a key: 401');

$r = chat($keys{bob}, models => ['openai/gpt-4o', 'openai/gpt-4o-mini']);
is($r->{status}, 200, 'models list: the allowed one is used');
is($r->{headers}{'x-ai-model'}, 'openai/gpt-4o-mini',
   'models list: the disallowed one skipped');

$t->clear_records('m1');
$r = chat($keys{bob}, path => '/fb');
is($r->{status}, 200, 'fallback chain: 200');
is($r->{headers}{'x-ai-model'}, 'openai/gpt-4o-mini',
   'fallback chain: the disallowed model skipped');
$recs = $t->wait_records('m1', 1);
is_deeply([map { $_->{body_json}{model} } @$recs], ['gpt-4o-mini'],
          'fallback chain: only the allowed model called');

$r = chat($keys{bob}, path => '/fb', models => ['openai/gpt-4o']);
is($r->{status}, 403, 'a chain with nothing allowed: 403');

$t->clear_records('m1');
$r = chat($keys{bob}, path => '/pool', model => 'fusion');
is($r->{status}, 200, 'fusion: 200');
$recs = $t->wait_records('m1', 3, 3);
my %called = map { ($_->{body_json}{model} // '?') => 1 } @$recs;
ok(!$called{'gpt-4o'}, 'fusion: the disallowed member not called');
ok($called{'claude'}, 'fusion: an allowed member called (anthropic/*)');
ok($called{'gpt-4o-mini'}, 'fusion: the allowed judge called');

$t->clear_records('m1');
$r = chat($keys{alice}, path => '/pool', model => 'fusion');
is($r->{status}, 200, 'fusion, every model allowed: 200');
$recs = $t->wait_records('m1', 4, 3);
%called = map { ($_->{body_json}{model} // '?') => 1 } @$recs;
ok($called{'gpt-4o'}, 'fusion, every model allowed: gpt-4o called');

# --- per-key rpm over two workers ---------------------------------------------

my @st = $t->parallel(map { sub { chat($keys{carol})->{status} } } 1 .. 5);
is(scalar(grep { $_ == 200 } @st), 3, 'rpm=3 of the key: 3 of 5 pass');
is(scalar(grep { $_ == 429 } @st), 2, 'rpm=3 of the key: 2 refused 429');
is(chat($keys{alice})->{status}, 200, 'another key unaffected');

# --- per-key and per-team budgets -----------------------------------------------

is(chat($keys{dave})->{status}, 200, 'budget: first request passes');
$r = chat($keys{dave});
is($r->{status}, 402, 'budget of the key spent: 402');

# erin's one request above spent the team's budget
$r = chat($keys{frank});
is($r->{status}, 402, 'team budget spent by another key of the team: 402');
like($r->{json}{error}{message} // '', qr/budget/, 'team: a budget error');
$r = chat($keys{erin});
is($r->{status}, 402, 'team budget spent: 402 for its spender too');
is(chat($keys{alice})->{status}, 200, 'another team unaffected');

# --- variables, log, status, metrics: names, never keys -----------------------

sleep 0.3;
my $log = $t->read_file('logs/keys.log');
like($log, qr{/v1/chat/completions 200 name=alice team=eng},
     '$ai_key_name, $ai_key_team');
like($log, qr{ 401 name=- team=-}, 'a refused request has no key name');

my $status = $t->get('/status');
is($status->{status}, 200, 'status');
my $prom = $t->get('/status?format=prometheus');
is($prom->{status}, 200, 'prometheus');
my $errlog = $t->read_file('logs/error.log');
for my $k (sort keys %keys) {
    # nginx itself logs every request header at debug level, as it
    # parses them ("http header:"), before any module runs
    my @lines = grep { index($_, $keys{$k}) >= 0
                       && !/ http header: "(?i:authorization|x-api-key|x-goog-api-key): /
                     } split /\n/, $errlog;
    is(scalar @lines, 0, "key of $k in no debug log line but nginx's own")
        or diag join "\n", @lines[0 .. ($#lines < 3 ? $#lines : 3)];
    unlike($status->{content}, qr/\Q$keys{$k}\E/, "key of $k not in the status");
    unlike($prom->{content}, qr/\Q$keys{$k}\E/, "key of $k not in the metrics");
}

# --- reload under load: bob revoked, a new key of alice added ------------------

$t->write_file('conf/keys.txt', keys_file(rotate => 1, revoke_bob => 1));

my $t0 = time;
my @load = $t->parallel(
    (map { sub {
        my (@a, @b);
        while (time - $t0 < 2.5) {
            push @a, [time, chat($keys{alice})->{status}];
            push @b, [time, chat($keys{bob},
                                 model => 'openai/gpt-4o-mini')->{status}];
        }
        return [\@a, \@b];
    } } 1 .. 2),
    sub { sleep 0.7; my $ok = $t->reload; return [time, $ok] },
);
my ($reloaded_at, $ok) = @{ $load[2] };
ok($ok, 'reloaded');
my @alice = map { @{ $_->[0] } } @load[0, 1];
my @bob = map { @{ $_->[1] } } @load[0, 1];
ok(@alice > 10, 'under load: ' . scalar(@alice) . ' requests of alice');
is(scalar(grep { $_->[1] != 200 } @alice), 0,
   'alice, in the file before and after: no request failed');
is(scalar(grep { $_->[1] != 200 && $_->[1] != 401 } @bob), 0,
   'bob: 200 or 401, nothing else');
is(scalar(grep { $_->[1] == 401 && $_->[0] < $t0 + 0.6 } @bob), 0,
   'bob: not refused before the reload');
is(scalar(grep { $_->[1] == 200 && $_->[0] > $reloaded_at + 0.3 } @bob), 0,
   'bob: not admitted after the reload');
is(chat($keys{bob}, model => 'openai/gpt-4o-mini')->{status}, 401,
   'bob revoked');
is(chat($keys{new})->{status}, 200, 'the rotated key of alice works');
is(chat($keys{alice})->{status}, 200, 'the old key of alice still works');

# --- malformed key files fail nginx -t with file:line -------------------------

for my $bad (["plain:$keys{bob} name=a\nplain:$keys{bob} name=b\n",
              qr/keys\.txt:2: a key on two lines \(and line 1\)/],
             ["plain:$keys{bob} name=a\nsha256:abc name=b\n",
              qr/keys\.txt:2: sha256: takes 64 hex digits/],
             ["plain:$keys{bob} name=a budget=abc\n",
              qr/keys\.txt:1: invalid budget=/]) {
    $t->write_file('conf/keys.txt', $bad->[0]);
    my ($rc, $text) = $t->nginx_test_config;
    isnt($rc, 0, "nginx -t fails: $bad->[1]");
    like($text, $bad->[1], "nginx -t says file:line");
    unlike($text, qr/\Q$keys{bob}\E/, 'nginx -t: the key not quoted');
}
$t->write_file('conf/keys.txt', keys_file());
my ($rc, $text) = $t->nginx_test_config;
is($rc, 0, 'nginx -t passes');
like($text, qr/a plain: key is for tests/, 'nginx -t warns of plain: keys');

# --- build.sh key: a key printed once, its line holds only its hash ---------

my $tool = "$FindBin::Bin/../build.sh";
my $line = `'$tool' key tool team=eng rpm=5 2>'${\$t->prefix}/logs/key.err'`;
my $shown = $t->read_file('logs/key.err') // '';
my ($newkey) = $shown =~ /: (sk-gw-[A-Za-z0-9_-]{43})$/m;
ok($newkey, 'build.sh key: a key shown');
my $hash = `printf %s '$newkey' | sha256sum`;
$hash =~ s/\s.*//s;
is($line, "sha256:$hash name=tool team=eng rpm=5\n",
   'build.sh key: the line, with its SHA-256');
unlike($line, qr/\Q$newkey\E/, 'build.sh key: not the key itself in the line');

$t->done_testing_checks;
done_testing;
