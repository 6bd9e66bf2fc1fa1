#!/usr/bin/perl
# A client that hangs up while the provider works (issue #14 point 6): the
# gateway notices at once, as proxy_pass does, stops the calls, logs 499
# and charges them as stopped, before the first byte (plain, stream,
# fusion) and in the middle of a stream; a pipelined request is not taken
# for a hang-up.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";

use IO::Socket::INET;
use JSON::PP;
use Test::More;
use Time::HiRes qw(time sleep);
use GatewayTest;

my $t = GatewayTest->new(name => 'disconnect');
plan skip_all => 'module not built' unless $t->has_module;

$t->start_mock(name => 'm1');

$t->write_config($t->config_preamble . "http {\n" . $t->http_preamble . <<'EOF');
    log_format gone '$request_uri $status $request_time $ai_attempts';
    access_log logs/gone.log gone;

    ai_provider openai type=openai pass=/_ai/openai key=sk-provider;
    ai_price openai/slow-delay4000 1000 1000;
    ai_price openai/drip-slow300 1000 1000;

    ai_cost_zone cz:1m;

    server {
        listen 127.0.0.1:%%PORT%%;

        location /v1/ {
            ai_gateway;
            ai_cost zone=cz;
        }

        location /fu/v1/ {
            ai_gateway;
            ai_pool openai/slow-delay4000 openai/slow-delay4000|openai/b
                    judge=openai/judge;
            ai_cost zone=cz;
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

my $JSON = JSON::PP->new->canonical;

sub send_request {
    my ($path, $data) = @_;
    my $body = $JSON->encode($data);
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $t->port,
                                     Proto => 'tcp') or die "connect: $!";
    print $sock "POST $path HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              . "Content-Length: " . length($body) . "\r\n\r\n" . $body;
    return $sock;
}

# the access log line of the n-th request to PATH, waited for
sub log_line {
    my ($path, $n, $timeout) = @_;
    my $deadline = time + $timeout;
    while (time < $deadline) {
        my @l = grep { /^\Q$path\E / } split /\n/, ($t->read_file('logs/gone.log') // '');
        return $l[$n - 1] if @l >= $n;
        sleep 0.05;
    }
    return undef;
}

sub ledger {
    my ($route) = @_;
    my $s = $t->get('/status')->{json};
    my ($e) = grep { $_->{route} eq $route && $_->{model} eq 'openai/slow-delay4000' }
              @{ $s->{ledger} || [] };
    return $e;
}

my @hi = (messages => [{ role => 'user', content => 'hello there' }]);

for my $stream (0, 1) {
    my $what = $stream ? 'stream' : 'plain';
    my $start = time;
    my $sock = send_request('/v1/chat/completions',
                            { model => 'openai/slow-delay4000', @hi,
                              $stream ? (stream => JSON::PP::true) : () });
    sleep 1;
    close $sock;

    my $line = log_line('/v1/chat/completions', $stream + 1, 6);
    my $ended = time - $start;
    ok($line, "$what: the request is logged");
    like($line // '', qr{ 499 }, "$what: status 499, as proxy_pass logs it");
    my ($rt) = ($line // '') =~ / 499 ([\d.]+) /;
    ok(defined $rt && $rt < 2.5, "$what: ended when the client left (\$request_time "
                                 . ($rt // '?') . ", not 4 s)");
    cmp_ok($ended, '<', 3.5, "$what: logged before the provider would have answered");
}

{
    my $e = ledger('/v1/');
    ok($e, 'ledger: the calls are recorded');
    is($e && $e->{aborted}, 2, 'ledger: both charged as stopped');
    is($e && $e->{requests}, 0, 'ledger: none as answered');
}

{
    # a fusion whose members are slow
    my $start = time;
    my $sock = send_request('/fu/v1/chat/completions', { model => 'x', @hi });
    sleep 1;
    close $sock;
    my $line = log_line('/fu/v1/chat/completions', 1, 6);
    like($line // '', qr{ 499 }, 'fusion: status 499');
    cmp_ok(time - $start, '<', 3.5, 'fusion: its members are not waited for');
}

{
    # in the middle of a stream: the provider sends a word every 300 ms
    my $words = join ' ', map { "w$_" } 1 .. 30;
    my $sock = send_request('/v1/chat/completions',
                            { model => 'openai/drip-slow300', stream => JSON::PP::true,
                              messages => [{ role => 'user', content => $words }] });
    my $buf = '';
    my $deadline = time + 10;
    while ($buf !~ /w3\b/ && time < $deadline) {
        my $n = sysread($sock, $buf, 4096, length $buf);
        last unless $n;
    }
    close $sock;
    my $start = time;
    my $line = log_line('/v1/chat/completions', 3, 6);
    # the status went out with the first event: it stays in the log
    ok($line, 'mid-stream: logged');
    cmp_ok(time - $start, '<', 2, 'mid-stream: noticed within a word or two');
    my ($rt) = ($line // '') =~ / \d{3} ([\d.]+) /;
    ok(defined $rt && $rt < 4, 'mid-stream: the 9 s stream was stopped ($request_time '
                               . ($rt // '?') . ')');
}

{
    # two pipelined requests on one connection: both answered
    my $body = $JSON->encode({ model => 'openai/p-delay300', @hi });
    my $one = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
            . "Content-Type: application/json\r\nContent-Length: "
            . length($body) . "\r\n\r\n" . $body;
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $t->port,
                                     Proto => 'tcp') or die "connect: $!";
    print $sock $one . $one;
    my $buf = '';
    my $deadline = time + 10;
    while ((() = $buf =~ /Mock answer to/g) < 2 && time < $deadline) {
        my $n = sysread($sock, $buf, 4096, length $buf);
        last unless $n;
    }
    close $sock;
    my $n = () = $buf =~ m{HTTP/1\.1 200 OK}g;
    is($n, 2, 'pipelined: both requests answered, the second is no hang-up');
}

$t->done_testing_checks;
done_testing();
