#!/usr/bin/perl
# Full rate and cost zones under a flood of new keys: nothing that still
# holds a limit or a budget is dropped to make room (a client cycling
# through random keys cannot give other keys, or itself, their limits or
# budgets back); new keys are refused with 503 zone_full and Retry-After
# instead, before any provider call; ledger entries (reporting only) are
# dropped least recently used first, with the zone totals exact.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use GatewayTest;

my $t = GatewayTest->new(name => 'zonefull');
plan skip_all => 'module not built' unless $t->has_module;

$t->start_mock(name => 'm1');

my $conf = $t->config_preamble . "http {\n" . $t->http_preamble . <<'EOF';
    ai_provider openai type=openai pass=/_ai/openai key=sk-provider;

    # a call of the mock costs far more than any budget below
    ai_price openai/gpt-4o 1000 1000;

    # the smallest zones nginx allows: room for about a hundred entries
    ai_rate_zone flood:32k;
    ai_cost_zone spend:32k;
    ai_cost_zone total:32k;

    server {
        listen 127.0.0.1:%%PORT%%;

        location /rate/v1/ {
            ai_gateway;
            ai_rate zone=flood key=$http_authorization rpm=2;
        }

        location /budget/v1/ {
            ai_gateway;
            ai_cost zone=spend key=$http_authorization budget=0.001/day;
        }

        location /ever/v1/ {
            ai_gateway;
            ai_cost zone=total key=$http_authorization budget=0.001;
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
    my ($loc, $key) = @_;
    return $t->post_json("/$loc/v1/chat/completions",
                         { model => 'openai/gpt-4o',
                           messages => [{ role => 'user', content => 'Hi' }] },
                         headers => { Authorization => "Bearer $key" });
}

sub status_json { $t->get('/status')->{json} }

sub zone_of {
    my ($name) = @_;
    my ($z) = grep { $_->{zone} eq $name } @{ status_json()->{zones} };
    return $z;
}

# floods a location with new keys until the zone refuses them; returns
# the statuses seen and the first refusal
sub flood {
    my ($loc, $tag, $max) = @_;
    my (%seen, $refusal);
    for my $i (1 .. $max) {
        my $r = chat($loc, "sk-flood-$tag-$i-" . int(rand(1e9)));
        $seen{ $r->{status} }++;
        $refusal //= $r if $r->{status} == 503;
        last if ($seen{503} // 0) >= 20;
    }
    return (\%seen, $refusal);
}

# --- rate: a limited key stays limited whatever the flood --------------------

is(chat('rate', 'sk-victim')->{status}, 200, 'rate: victim 1st request');
is(chat('rate', 'sk-victim')->{status}, 200, 'rate: victim 2nd request');
is(chat('rate', 'sk-victim')->{status}, 429, 'rate: victim limited (rpm=2)');

my $calls_before = scalar @{ $t->mock_records('m1') };
my ($seen, $refusal) = flood('rate', 'r', 1000);

ok($seen->{200} && $seen->{200} > 20,
   "rate flood: new keys admitted while there is room ($seen->{200})");
ok($seen->{503}, 'rate flood: then new keys are refused');
ok(!grep({ $_ != 200 && $_ != 503 } keys %$seen),
   'rate flood: no other status (' . join(',', sort keys %$seen) . ')');
is($refusal->{json}{error}{code}, 'zone_full', 'zone full: code');
is($refusal->{json}{error}{type}, 'server_error', 'zone full: type');
is($refusal->{headers}{'retry-after'}, 60, 'zone full: Retry-After');
like($refusal->{json}{error}{message}, qr/no room for a new key/,
     'zone full: message');
is(scalar @{ $t->mock_records('m1') } - $calls_before, $seen->{200},
   'zone full: a refused request calls no provider');

my $r = chat('rate', 'sk-victim');
is($r->{status}, 429, 'rate: the victim is still limited after the flood');
is($r->{json}{error}{code}, 'rate_limit_exceeded', 'rate: by its own bucket');

ok($t->wait_for_log(qr/zone "flood" is full: refused a request with a key/),
   'zone full: logged');

# --- budget per day: the spent account is kept -------------------------------

is(chat('budget', 'sk-spender')->{status}, 200, 'budget: first call');
$r = chat('budget', 'sk-spender');
is($r->{status}, 402, 'budget: then spent');

($seen, $refusal) = flood('budget', 'b', 1000);

ok($seen->{200} && $seen->{200} > 10,
   "budget flood: new keys admitted while there is room ($seen->{200})");
ok($seen->{503}, 'budget flood: then new keys are refused');
ok(!grep({ $_ != 200 && $_ != 503 } keys %$seen),
   'budget flood: no other status (' . join(',', sort keys %$seen) . ')');
is($refusal->{json}{error}{code}, 'zone_full', 'budget flood: zone_full');

$r = chat('budget', 'sk-spender');
is($r->{status}, 402, 'budget: the spent key is still refused after the flood');
is($r->{json}{error}{code}, 'budget_exceeded', 'budget: by its own budget');

my $z = zone_of('spend');
is($z->{totals}{requests}, 1 + $seen->{200},
   'budget flood: zone totals count every call');
ok($z->{evicted} > 0, "budget flood: ledger entries were dropped ($z->{evicted})");
is($z->{accounts}, 1 + $seen->{200},
   'budget flood: no account with spend today was dropped');

# --- a budget without period keeps its accounts too --------------------------

is(chat('ever', 'sk-lifetime')->{status}, 200, 'ever: first call');
is(chat('ever', 'sk-lifetime')->{status}, 402, 'ever: then spent');
($seen) = flood('ever', 'e', 1000);
ok($seen->{503}, 'ever flood: new keys refused once full');
is(chat('ever', 'sk-lifetime')->{status}, 402,
   'ever: the spent key is still refused after the flood');

# --- nothing crashed ---------------------------------------------------------

$t->done_testing_checks;
done_testing;
