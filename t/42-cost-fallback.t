#!/usr/bin/perl
# Every call a provider answered is charged, not only the one whose answer
# the client gets: fallback attempts that failed are in the ledger as
# calls and errors, a hedge loser the gateway aborted is counted apart as
# aborted with an estimated input charge, and a client that goes away in
# the middle of a stream leaves no reservation behind; fusion members,
# judges and stragglers are all in the ledger.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";

use IO::Socket::INET;
use Test::More;
use Time::HiRes qw(time sleep);
use GatewayTest;

my $t = GatewayTest->new(name => 'cost_fallback');
plan skip_all => 'module not built' unless $t->has_module;

$t->start_mock(name => 'm1');

$t->write_config($t->config_preamble . "http {\n" . $t->http_preamble . <<'EOF');
    ai_provider openai type=openai pass=/_ai/openai key=sk-provider;
    ai_price openai/gpt-4o 2.50 10.00;
    ai_price openai/gpt-4o-status500 2.50 10.00;
    ai_price openai/gpt-4o-delay1500 2.50 10.00;
    ai_price openai/gpt-4o-slow300 2.50 10.00;
    ai_price openai/f1 1 2;
    ai_price openai/f2-delay150 1 2;
    ai_price openai/f3-delay3000 1 2;
    ai_price openai/judge 3 4;

    ai_cost_zone cost:1m;
    ai_rate_zone rate:1m;

    server {
        listen 127.0.0.1:%%PORT%%;

        location /fallback/v1/ {
            ai_gateway;
            ai_fallback openai/gpt-4o-status500 openai/gpt-4o;
            ai_cost zone=cost key=$http_authorization;
        }

        location /hedge/v1/ {
            ai_gateway;
            ai_fallback openai/gpt-4o-delay1500 openai/gpt-4o hedge=200ms;
            ai_cost zone=cost key=$http_authorization;
        }

        location /fusion/v1/ {
            ai_gateway;
            ai_pool openai/f1 openai/f2-delay150 openai/f3-delay3000
                    judge=openai/judge quorum=2 mode=merge;
            ai_cost zone=cost key=$http_authorization;
        }

        location /stream/v1/ {
            ai_gateway;
            ai_cost zone=cost key=$http_authorization budget=10;
            ai_rate zone=rate tpm=100000;
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
$t->start_nginx;

my $msgs = [{ role => 'user', content => 'Hello gateway' }];   # 13 bytes
# the mock: 4 prompt tokens, 5 completion tokens; gpt-4o: 2500 and 10000
# nano-USD a token
my $one = 4 * 2500 + 5 * 10000;

sub status { $t->get('/status')->{json} }

sub entry {
    my ($st, $route, $model) = @_;
    my ($e) = grep { $_->{route} eq $route && $_->{model} eq $model } @{ $st->{ledger} };
    return $e;
}

# --- a failed attempt, then an answer: both calls are in the ledger -------------

my $r = $t->post_json('/fallback/v1/chat/completions',
    { model => 'openai/gpt-4o-status500', messages => $msgs },
    headers => { Authorization => 'Bearer sk-fb' });
is($r->{status}, 200, 'fallback: answered by the second model');
is($r->{headers}{'x-ai-attempts'}, 2, 'fallback: two calls');
is($r->{headers}{'x-ai-cost'}, '0.000060', 'fallback: X-AI-Cost sums every call');

my $st = status();
my $e = entry($st, '/fallback/v1/', 'openai/gpt-4o-status500');
is_deeply([@$e{qw(requests errors cost_nano_usd aborted)}], [1, 1, 0, 0],
          'fallback: the failed attempt is a call and an error');
$e = entry($st, '/fallback/v1/', 'openai/gpt-4o');
is_deeply([@$e{qw(requests errors input_tokens output_tokens cost_nano_usd)}],
          [1, 0, 4, 5, $one], 'fallback: the answer is charged');

# --- a hedge: the loser is aborted, counted apart with an estimate --------------

$r = $t->post_json('/hedge/v1/chat/completions',
    { model => 'openai/gpt-4o-delay1500', messages => $msgs },
    headers => { Authorization => 'Bearer sk-hedge' });
is($r->{status}, 200, 'hedge: answered');
is($r->{headers}{'x-ai-model'}, 'openai/gpt-4o', 'hedge: by the second model');

sleep 0.2;
$st = status();
$e = entry($st, '/hedge/v1/', 'openai/gpt-4o-delay1500');
ok($e, 'hedge: the loser is in the ledger') or diag explain $st->{ledger};
is_deeply([@$e{qw(requests errors input_tokens cost_nano_usd)}], [0, 0, 0, 0],
          'hedge: no exact figures for the aborted call');
is_deeply([@$e{qw(aborted estimated_input_tokens estimated_cost_nano_usd)}],
          [1, 3, 3 * 2500], 'hedge: aborted, input estimated from the prompt (13 bytes / 4)');
$e = entry($st, '/hedge/v1/', 'openai/gpt-4o');
is_deeply([@$e{qw(requests cost_nano_usd)}], [1, $one], 'hedge: the winner is charged');
is($st->{totals}{aborted}, 1, 'totals: one aborted call');
is($st->{totals}{estimated_cost_nano_usd}, 3 * 2500, 'totals: its estimate apart');

# --- fusion: every member and the judge; the straggler aborted -------------------

{
    $r = $t->post_json('/fusion/v1/chat/completions',
        { model => 'fusion', messages => $msgs },
        headers => { Authorization => 'Bearer sk-fusion' });
    is($r->{status}, 200, 'fusion: answered');
    sleep 0.2;
    $st = status();
    my %e = map { $_ => entry($st, '/fusion/v1/', "openai/$_") }
            qw(f1 f2-delay150 f3-delay3000 judge);
    is($e{f1}{requests}, 1, 'fusion: member 1 charged');
    is($e{'f2-delay150'}{requests}, 1, 'fusion: member 2 charged');
    is_deeply([@{ $e{'f3-delay3000'} }{qw(requests aborted estimated_input_tokens)}],
              [0, 1, 3], 'fusion: the straggler is aborted, its input estimated');
    is($e{judge}{requests}, 1, 'fusion: the judge charged');
    my $sum = 0;
    $sum += $_->{cost_nano_usd} for grep { $_ } values %e;
    is($r->{headers}{'x-ai-cost'}, sprintf('0.%06d', $sum / 1000),
       "fusion: X-AI-Cost is every exact call ($sum nano-USD)");
}

# --- a client that leaves in the middle of a stream ------------------------------

my $body = JSON::PP->new->encode({ model => 'openai/gpt-4o-slow300', stream => JSON::PP::true(),
                                   messages => [{ role => 'user', content => 'one two three four five six' }] });
my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $t->port, Proto => 'tcp')
    or die "connect: $!";
print $s "POST /stream/v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
       . "Authorization: Bearer sk-leaver\r\nContent-Type: application/json\r\n"
       . "Content-Length: " . length($body) . "\r\n\r\n$body";
my $got = '';
while ($got !~ /data: /) {
    sysread($s, $got, 4096, length $got) or last;
}
like($got, qr/^HTTP\/1\.1 200/, 'client abort: the stream started');
close $s;

my ($rate, $acct);
for (1 .. 50) {
    sleep 0.1;
    $st = status();
    ($rate) = grep { $_->{route} eq '/stream/v1/' } @{ $st->{rate} };
    ($acct) = grep { defined $_->{key} && $_->{route} // '' } ();
    ($acct) = grep { $_->{zone} eq 'cost' && defined $_->{key}
                     && $_->{in_flight_nano_usd} } @{ $st->{spend} };
    last if $rate && $rate->{in_flight} == 0 && !$acct;
}
is($rate->{in_flight}, 0, 'client abort: the tpm reservation is settled');
ok(!$acct, 'client abort: the budget reservation is released');
$e = entry($st, '/stream/v1/', 'openai/gpt-4o-slow300');
is_deeply([@$e{qw(requests aborted estimated_input_tokens)}], [0, 1, 6],
          'client abort: the call cut short is counted as aborted, its input '
          . 'estimated (27 bytes / 4)') or diag explain $e;

$t->done_testing_checks;
done_testing;
