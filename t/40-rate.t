#!/usr/bin/perl
# Rate limits (ai_rate_zone, ai_rate): rpm and tpm buckets per key and per
# route, exact under concurrency across two workers, tpm reservations
# settled with the real usage (streams included), x-ratelimit-* headers,
# 429 with Retry-After and an OpenAI error, $ai_rate_status, buckets kept
# across a reload, configuration errors.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(time sleep);
use GatewayTest;

my $t = GatewayTest->new(name => 'rate');
plan skip_all => 'module not built' unless $t->has_module;

$t->start_mock(name => 'm1');

my $conf = $t->config_preamble . "http {\n" . $t->http_preamble . <<'EOF';
    log_format rate '$request_uri $status $ai_rate_status';
    access_log logs/rate.log rate;

    ai_provider openai type=openai pass=/_ai/openai key=sk-provider;
    ai_price openai/gpt-4o 2.50 10.00;

    ai_rate_zone rate:1m;
    ai_rate_zone other:1m;

    server {
        listen 127.0.0.1:%%PORT%% reuseport;

        add_header X-Pid $pid always;

        location /key/v1/ {
            ai_gateway;
            ai_rate zone=rate key=$http_authorization rpm=10;
        }

        location /one/v1/ {
            ai_gateway;
            ai_rate zone=rate key=$http_authorization rpm=1;
        }

        location /route/v1/ {
            ai_gateway;
            ai_rate zone=rate rpm=10;
        }

        location /conc/v1/ {
            ai_gateway;
            ai_rate zone=rate rpm=10;
        }

        location /both/v1/ {
            ai_gateway;
            ai_rate zone=rate key=$http_authorization rpm=100;
            ai_rate zone=other rpm=3;
        }

        location /tpm/v1/ {
            ai_gateway;
            ai_rate zone=rate key=$http_authorization tpm=1000;
        }

        location /stream/v1/ {
            ai_gateway;
            ai_rate zone=rate tpm=6000 rpm=1000;
        }

        location /free/v1/ {
            ai_gateway;
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

sub chat {
    my ($loc, $key, %o) = @_;
    my $body = { model => $o{model} // 'openai/gpt-4o',
                 messages => [{ role => 'user', content => $o{text} // 'Hi' }] };
    $body->{max_tokens} = $o{max_tokens} if defined $o{max_tokens};
    return $t->post_json("/$loc/v1/chat/completions", $body,
                         headers => { $key ? (Authorization => "Bearer $key") : () });
}

sub status_json { $t->get('/status')->{json} }

sub rate_entry {
    my ($route, $keyed) = @_;
    my ($e) = grep { $_->{route} eq $route
                     && (defined $_->{key}) == ($keyed ? 1 : 0) }
              @{ status_json()->{rate} };
    return $e;
}

# --- rpm per key: headers, refusal, Retry-After, other keys unaffected -----

my $r = chat('key', 'sk-alice');
is($r->{status}, 200, 'rpm: admitted');
is($r->{headers}{'x-ratelimit-limit-requests'}, 10, 'rpm: limit header');
is($r->{headers}{'x-ratelimit-remaining-requests'}, 9, 'rpm: remaining header');
is($r->{headers}{'x-ratelimit-reset-requests'}, '6s',
   'rpm: reset header (one request refills in 6s at 10 rpm)');
ok(!exists $r->{headers}{'x-ratelimit-limit-tokens'}, 'rpm only: no -tokens headers');

my @st = map { chat('key', 'sk-alice')->{status} } 1 .. 9;
is_deeply(\@st, [(200) x 9], 'rpm: the 10 requests of the bucket pass');

$r = chat('key', 'sk-alice');
is($r->{status}, 429, 'rpm: the 11th is refused');
is($r->{json}{error}{type}, 'rate_limit_exceeded', '429: OpenAI error type');
is($r->{json}{error}{code}, 'rate_limit_exceeded', '429: code');
like($r->{json}{error}{message}, qr/requests per minute on \/key\/v1\/: limit 10/,
     '429: message says which limit');
unlike($r->{content}, qr/sk-alice/, '429: the key is not in the answer');
ok($r->{headers}{'retry-after'} >= 1 && $r->{headers}{'retry-after'} <= 6,
   "429: Retry-After in seconds ($r->{headers}{'retry-after'})");
is($r->{headers}{'x-ratelimit-remaining-requests'}, 0, '429: remaining 0');
like($r->{headers}{'x-ratelimit-reset-requests'}, qr/^\d+(\.\d+)?s$/, '429: reset');
ok(!exists $r->{headers}{'x-ai-model'}, '429: no provider was called');

is(chat('key', 'sk-bob')->{status}, 200, 'rpm: another key has its own bucket');

# a bad request in a limited location: headers, nothing taken
$r = $t->post_json('/key/v1/chat/completions', { messages => [] },
                   headers => { Authorization => 'Bearer sk-bob' });
is($r->{status}, 400, 'bad request: 400');
is($r->{headers}{'x-ratelimit-remaining-requests'}, 9,
   'bad request: headers show the bucket, nothing taken');

# --- per route (no key), and two limits at once -------------------------------

@st = map { chat('route', "sk-$_")->{status} } 1 .. 11;
is_deeply(\@st, [(200) x 10, 429], 'per route: 10 requests of any key, then 429');

@st = map { chat('both', "sk-both-$_") } 1 .. 4;
is_deeply([map { $_->{status} } @st], [200, 200, 200, 429],
          'two limits: the route limit (3) refuses though the key limit (100) would not');
is($st[0]{headers}{'x-ratelimit-limit-requests'}, 3,
   'two limits: headers show the tightest');
is($st[2]{headers}{'x-ratelimit-remaining-requests'}, 0, 'two limits: remaining 0');

# --- concurrency: 30 requests at once, 2 workers, rpm=10 per route -------------

$t->clear_records('m1');
my $start = time;
my @res = $t->parallel(map {
    my $i = $_;
    sub {
        my $x = chat('conc', "sk-c$i", model => 'openai/gpt-4o-delay300');
        return { status => $x->{status}, pid => $x->{headers}{'x-pid'} };
    }
} 1 .. 30);
my $elapsed = time - $start;
my %by = ();
$by{$_->{status} // 'none'}++ for @res;
my %pids = map { ($_->{pid} // '') => 1 } @res;
# refill: 10 rpm = one request per 6 s
my $extra = int($elapsed / 6);
ok($by{200} >= 10 && $by{200} <= 10 + $extra,
   "concurrency: $by{200} of 30 admitted at rpm=10 (elapsed ${\ sprintf '%.1f', $elapsed}s)")
    or diag explain \%by;
is(($by{200} // 0) + ($by{429} // 0), 30, 'concurrency: the others got 429');
is(scalar(keys %pids), 2, 'concurrency: both workers served')
    or diag explain \%pids;
is(scalar @{ $t->mock_records('m1') }, $by{200},
   'concurrency: only admitted requests reached the provider');

# --- tpm: reservations at admission, exact under concurrency -------------------

# prompt: 40 chars -> 10 tokens estimated (and counted by the mock);
# max_tokens 100: each request reserves 110 of 1000 tokens
my $text = 'x' x 40;
$start = time;
@res = $t->parallel(map {
    sub {
        my $x = chat('tpm', 'sk-tpm', text => $text, max_tokens => 100,
                     model => 'openai/gpt-4o-delay1500');
        return { status => $x->{status}, usage => $x->{json}{usage},
                 rem => $x->{headers}{'x-ratelimit-remaining-tokens'},
                 ra => $x->{headers}{'retry-after'} };
    }
} 1 .. 20);
%by = ();
$by{$_->{status}}++ for @res;
is($by{200}, 9, 'tpm: 9 requests of 110 tokens fit in 1000 at once')
    or diag explain \%by;
is($by{429}, 11, 'tpm: 11 refused');
my ($ok) = grep { $_->{status} == 200 } @res;
my $real = $ok->{usage}{total_tokens};
is($real, 14, 'tpm: each answer really used 14 tokens (10 prompt, 4 completion)');
my ($no) = grep { $_->{status} == 429 } @res;
ok($no->{ra} >= 1, 'tpm: Retry-After on the refusal');

# once they ended, the reservations (9 x 110) were replaced by 9 x 14
my $e = rate_entry('/tpm/v1/', 1);
my $gone = time - $start;
my $want = 1000 - 9 * $real;
ok($e->{tpm_remaining} >= $want && $e->{tpm_remaining} <= $want + int($gone * 1000 / 60) + 1,
   "tpm: settled with the real usage: $e->{tpm_remaining} remaining "
   . "(9 x $real used, refill ${\ sprintf '%.1f', $gone}s)");
is($e->{tpm_limit}, 1000, 'status: tpm_limit');
is($e->{rpm_limit}, undef, 'status: no rpm limit here');
is($e->{in_flight}, 0, 'status: nothing in flight');

# headers with tpm
$r = chat('tpm', 'sk-tpm-2', text => $text, max_tokens => 100);
is($r->{headers}{'x-ratelimit-limit-tokens'}, 1000, 'tpm: limit header');
is($r->{headers}{'x-ratelimit-remaining-tokens'}, 890, 'tpm: remaining after the reservation');
ok(!exists $r->{headers}{'x-ratelimit-limit-requests'}, 'tpm only: no -requests headers');

# a request larger than the whole minute reserves all of it, never refused forever
$r = chat('tpm', 'sk-tpm-3', max_tokens => 5000);
is($r->{status}, 200, 'tpm: a request estimated above the limit passes on an empty bucket');

# --- streams settle with their real usage ----------------------------------------

my @both = $t->parallel(
    sub {
        my $s = $t->stream('/stream/v1/chat/completions',
            { model => 'openai/gpt-4o-slow300', stream => JSON::PP::true(),
              max_tokens => 3000,
              messages => [{ role => 'user', content => 'stream me please' }] });
        return { status => $s->{status}, done => $s->{done},
                 rem => $s->{headers}{'x-ratelimit-remaining-tokens'},
                 cost => $s->{headers}{'x-ai-cost'} };
    },
    sub {
        sleep 0.5;
        return rate_entry('/stream/v1/', 0);
    });
is($both[0]{status}, 200, 'stream: 200');
ok($both[0]{done}, 'stream: complete');
# "stream me please" = 16 bytes -> 4 tokens + 3000
is($both[0]{rem}, 6000 - 3004, 'stream: 3004 tokens reserved at admission');
ok(!defined $both[0]{cost}, 'stream: no X-AI-Cost header (its cost comes at its end)');
ok($both[1]{tpm_remaining} <= 6000 - 3004 + 100, 'stream: reserved while it runs')
    or diag explain $both[1];
is($both[1]{in_flight}, 1, 'stream: in flight while it runs');
# the mock: 4 prompt tokens, "Mock answer to: stream me please" = 6 words
$e = rate_entry('/stream/v1/', 0);
ok($e->{tpm_remaining} >= 6000 - 10 && $e->{tpm_remaining} <= 6000,
   "stream: settled to the 10 tokens it used ($e->{tpm_remaining} remaining)");
is($e->{in_flight}, 0, 'stream: released');

# --- $ai_rate_status -------------------------------------------------------------

chat('free', 'x');
my $log = '';
for (1 .. 100) {      # the log line is written after the answer is sent
    $log = $t->read_file('logs/rate.log') // '';
    last if $log =~ m{^/free/}m;
    sleep 0.02;
}
like($log, qr{^/key/v1/chat/completions 200 PASSED$}m, '$ai_rate_status: PASSED');
like($log, qr{^/key/v1/chat/completions 429 REJECTED$}m, '$ai_rate_status: REJECTED');
like($log, qr{^/free/v1/chat/completions 200 -$}m, '$ai_rate_status: empty without limits');

# --- a reload keeps the buckets --------------------------------------------------

# rpm=1: a taken request comes back after a whole minute
is(chat('one', 'sk-alice')->{status}, 200, 'before reload: one request per minute');
is(chat('one', 'sk-alice')->{status}, 429, 'before reload: the second is refused');
$t->reload;
is(chat('one', 'sk-alice')->{status}, 429, 'after reload: still refused (zone reused)');
is(chat('one', 'sk-carol')->{status}, 200, 'after reload: others pass');

my $status = $t->get('/status')->{content};
unlike($status, qr/sk-(alice|bob|carol|tpm)/, 'status: no raw key');

$t->stop_nginx;

# --- configuration errors --------------------------------------------------------

sub conf_with {
    my ($http, $loc) = @_;
    return $t->config_preamble . "http {\n" . $t->http_preamble . $http . <<"EOF";
    ai_provider openai pass=/_ai/openai;
    server {
        listen 127.0.0.1:%%PORT%%;
        location /v1/ { ai_gateway; $loc }
    }
}
EOF
}

my @bad = (
    [ "ai_rate_zone r;\n", '', qr/invalid zone "r": ai_rate_zone takes NAME:SIZE/ ],
    [ "ai_rate_zone r:1k;\n", '', qr/zone "r:1k" is too small/ ],
    [ "ai_rate_zone r:1m sync=rediss://127.0.0.1:1;\n", '',
      qr/TLS to Redis \(rediss:\/\/\) is not available/ ],
    [ "ai_rate_zone r:1m;\n", 'ai_rate rpm=5;', qr/"ai_rate" must have the "zone=" parameter/ ],
    [ "ai_rate_zone r:1m;\n", 'ai_rate zone=r;', qr/"ai_rate" needs rpm= or tpm=/ ],
    [ "ai_rate_zone r:1m;\n", 'ai_rate zone=r rpm=0;', qr/invalid "rpm=0"/ ],
    [ "ai_rate_zone r:1m;\n", 'ai_rate zone=r rpm=ten;', qr/invalid "rpm=ten"/ ],
    [ "ai_rate_zone r:1m;\n", 'ai_rate zone=r rpm=1 burst=5;', qr/invalid parameter "burst=5"/ ],
    [ "ai_rate_zone r:1m;\n", 'ai_rate zone=r rpm=1; ai_rate zone=r rpm=2;',
      qr/duplicate "ai_rate" for zone "r"/ ],
    [ '', 'ai_rate zone=nowhere rpm=1;', qr/zero size shared memory zone "nowhere"/ ],
    [ "ai_rate_zone r:1m;\n    ai_rate_zone r:1m;\n", '', qr/duplicate ai_rate_zone "r"|is already declared/ ],
);

for my $b (@bad) {
    $t->write_config(conf_with($b->[0], $b->[1]));
    my ($rc, $out) = $t->nginx_test_config;
    isnt($rc, 0, "nginx -t fails: $b->[0]$b->[1]");
    like($out, $b->[2], "message: $b->[2]");
    like($out, qr/nginx\.conf:\d+/, 'with the file and line')
        unless $b->[1] =~ /nowhere/;
}

$t->write_config(conf_with("ai_rate_zone r:1m;\n",
    'ai_rate zone=r key=$http_authorization rpm=1 tpm=5; ai_rate zone=r rpm=9;'));
my ($rc, $out) = $t->nginx_test_config;
is($rc, 0, 'a key limit and a route limit on one zone are fine') or diag $out;

$t->done_testing_checks;
done_testing;
