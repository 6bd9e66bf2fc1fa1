#!/usr/bin/perl
# The circuit breaker, shared by all workers: after N consecutive failures
# a model is skipped for the cool-down; then one probe per cool-down is let
# through, whatever the burst; a successful probe closes the circuit.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(sleep);
use GatewayTest;

my $t = GatewayTest->new(name => 'breaker');
plan skip_all => 'module not built' unless $t->has_module;

$t->start_mock(name => 'm1');
my $refused = $t->free_port;

# the "flaky" provider fails (503) while the file "down" exists
$t->write_config($t->config_preamble . "http {\n" . $t->http_preamble . <<"EOF");
    ai_provider gone   pass=/_ai/gone   key=sk-gone;
    ai_provider flaky  pass=/_ai/flaky  key=sk-flaky;
    ai_provider openai pass=/_ai/openai key=sk-openai;

    server {
        listen 127.0.0.1:%%PORT%%;

        location /v1/ {
            ai_gateway;
            ai_fallback flaky/m openai/backup breaker=3/2s;
        }

        location /gone/v1/ {
            ai_gateway;
            ai_fallback gone/m openai/backup breaker=2/2s;
        }

        location /_ai/gone/ {
            internal;
            proxy_pass http://127.0.0.1:$refused/;
        }

        location /_ai/flaky/ {
            internal;
            set \$behave "";
            if (-f %%PREFIX%%/down) {
                set \$behave status503;
            }
            proxy_set_header X-Mock-Behave \$behave;
            proxy_pass http://127.0.0.1:%%MOCK_PORT_m1%%/;
        }

        location /_ai/openai/ {
            internal;
            proxy_pass http://127.0.0.1:%%MOCK_PORT_m1%%/;
        }
    }
}
EOF
$t->start_nginx;

my $req = { model => 'flaky/m', messages => [{ role => 'user', content => 'hi' }] };

sub flaky_calls {
    return scalar grep { $_->{body_json}{model} eq 'm' } @{ $t->mock_records('m1') };
}

sub burst {
    my ($n) = @_;
    return $t->parallel(map { sub { $t->post_json('/v1/chat/completions', $req) } } 1 .. $n);
}

# healthy: the first model answers
my $r = $t->post_json('/v1/chat/completions', $req);
is($r->{headers}{'x-ai-model'}, 'flaky/m', 'closed: the first model answers');

$t->write_file('down', '');

# three consecutive failures, each rescued by the backup
for my $i (1 .. 3) {
    $r = $t->post_json('/v1/chat/completions', $req);
    is($r->{status}, 200, "failure $i: answered");
    is($r->{headers}{'x-ai-model'}, 'openai/backup', "failure $i: by the backup");
    is($r->{headers}{'x-ai-attempts'}, 2, "failure $i: after trying flaky");
}
is(flaky_calls(), 4, 'flaky was called for each of them');

# open: a burst from many connections (both workers) never calls flaky
my @res = burst(12);
is(scalar(grep { $_->{status} == 200 } @res), 12, 'open: every request answered');
is(scalar(grep { $_->{headers}{'x-ai-attempts'} == 1 } @res), 12,
   'open: one call each, flaky skipped');
is(flaky_calls(), 4, 'open: flaky not called at all');


# after the cool-down, one probe for the whole burst; it fails: open again
sleep 2.2;
@res = burst(12);
is(scalar(grep { $_->{status} == 200 } @res), 12, 'half-open: every request answered');
is(flaky_calls(), 5, 'half-open: exactly one probe for a burst of 12');
is(scalar(grep { $_->{headers}{'x-ai-attempts'} == 2 } @res), 1,
   'half-open: one request carried the probe');

@res = burst(6);
is(flaky_calls(), 5, 'failed probe: open again, no calls');

# the provider recovers; after the cool-down the probe succeeds and closes it
unlink $t->prefix . '/down';
sleep 2.2;
$r = $t->post_json('/v1/chat/completions', $req);
is($r->{headers}{'x-ai-model'}, 'flaky/m', 'probe succeeds: flaky answers');
@res = burst(6);
is(scalar(grep { $_->{headers}{'x-ai-model'} eq 'flaky/m' } @res), 6,
   'closed again: every request goes to flaky');
is(flaky_calls(), 12, 'closed: flaky called for each');

# a provider that refuses connections costs one connect() per cool-down,
# whatever the burst: nginx logs each attempt, so the log counts them

my $greq = { model => 'gone/m', messages => [{ role => 'user', content => 'hi' }] };
sub refusals { scalar $t->error_log_contains(qr/connect\(\) failed .*\/_ai\/gone\//) }

for (1 .. 2) {
    $r = $t->post_json('/gone/v1/chat/completions', $greq);
    is($r->{headers}{'x-ai-model'}, 'openai/backup', 'refused: the backup answers');
}
is(refusals(), 2, 'refused: two connection attempts, the circuit opens');
@res = $t->parallel(map { sub { $t->post_json('/gone/v1/chat/completions', $greq) } } 1 .. 12);
is(scalar(grep { $_->{status} == 200 } @res), 12, 'refused, open: a burst of 12 all answered');
is(refusals(), 2, 'refused, open: no connection attempted');
sleep 2.2;
@res = $t->parallel(map { sub { $t->post_json('/gone/v1/chat/completions', $greq) } } 1 .. 12);
is(scalar(grep { $_->{status} == 200 } @res), 12, 'refused, half-open: all answered');
is(refusals(), 3, 'refused, half-open: one probe for the burst of 12');

# the circuit opens and closes in the log
ok($t->error_log_contains(qr/circuit of flaky\/m open for 2000 ms after 3 consecutive failures/),
   'log: opened');
ok($t->error_log_contains(qr/circuit of flaky\/m closed/), 'log: closed');

$t->done_testing_checks;
done_testing;
