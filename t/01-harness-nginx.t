#!/usr/bin/perl
# The harness's nginx side, with plain nginx (no load_module): config
# placeholders, nginx -t, start / reload / stop, proxying to the mock
# (HTTP/1.0 and kept-alive HTTP/1.1 upstreams), streaming through nginx
# unbuffered, and the error-log check.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use Test::More;
use GatewayTest;

my $t = GatewayTest->new(name => 'harness-nginx');
plan skip_all => "no nginx at $GatewayTest::NGINX" unless -x $GatewayTest::NGINX;

my $mport = $t->start_mock(name => 'm1');

sub config {
    my ($extra) = @_;
    return $t->config_preamble(module => 0) . "http {\n" . $t->http_preamble
        . <<'EOF' . ($extra // '') . "    }\n}\n";
    upstream mock {
        server 127.0.0.1:%%MOCK_PORT_m1%%;
        keepalive 8;
    }
    server {
        listen 127.0.0.1:%%PORT%%;
        # nginx's default upstream protocol: HTTP/1.0, Connection: close
        location /plain/ {
            proxy_pass http://127.0.0.1:%%MOCK_PORT_m1%%/;
        }
        location /small/ {
            client_max_body_size 1k;
            proxy_pass http://127.0.0.1:%%MOCK_PORT_m1%%/;
        }
        # kept-alive HTTP/1.1 upstream, unbuffered (as for SSE)
        location /ka/ {
            proxy_pass http://mock/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }
EOF
}

my $text = $t->write_config(config());
like($text, qr/listen 127\.0\.0\.1:\d+;/, 'write_config: %%PORT%%');
like($text, qr/server 127\.0\.0\.1:$mport;/, 'write_config: %%MOCK_PORT_m1%%');
like($text, qr{proxy_temp_path \Q${\ $t->prefix}\E/temp/proxy;}, 'write_config: %%PREFIX%%');
ok(!eval { $t->expand('%%MOCK_PORT_nope%%'); 1 }, 'unknown placeholder dies');
like($t->config_preamble, qr/^load_module %%MODULE%%;/, 'preamble loads the module');
like($t->module_path, qr{^/.*\.so$}, 'module path is absolute');

my ($rc, $out) = $t->nginx_test_config;
is($rc, 0, 'nginx -t: ok') or diag($out);
like($out, qr/syntax is ok/, 'nginx -t: output');

$t->start_nginx;
ok($t->nginx_pid, 'nginx running');
is(scalar(my @w = $t->worker_pids), 2, 'two workers');

my $msg = { model => 'gpt-4o', messages => [{ role => 'user', content => 'via nginx' }] };

# HTTP/1.0 upstream
my $r = $t->post_json('/plain/v1/chat/completions', $msg);
is($r->{status}, 200, 'plain proxy: 200');
is($r->{json}{choices}[0]{message}{content}, 'Mock answer to: via nginx', 'plain proxy: answer');
my $rec = $t->mock_records('m1')->[-1];
is($rec->{headers}{connection}, 'close', 'plain proxy: upstream Connection: close');
is($rec->{body_json}{model}, 'gpt-4o', 'plain proxy: body recorded');

# kept-alive upstream: the same client connection (so the same worker)
# reuses one upstream connection
$t->clear_records('m1');
$t->post_json('/ka/v1/chat/completions', $msg, keep_alive => 1) for 1 .. 3;
my $recs = $t->mock_records('m1');
is(scalar @$recs, 3, 'keepalive: three requests');
is($recs->[2]{conn}, $recs->[0]{conn}, 'keepalive: one upstream connection');
is($recs->[2]{conn_request}, 3, 'keepalive: third request on it');

# streaming through nginx, unbuffered: events keep their spacing
$r = $t->stream('/ka/v1/chat/completions',
    { %$msg, model => 'gpt-slow100', stream => JSON::PP::true });
is($r->{status}, 200, 'stream via nginx: 200');
ok($r->{done} && $r->{complete}, 'stream via nginx: complete with [DONE]');
my @times = @{$r->{event_times}};
my @gaps = map { $times[$_] - $times[$_ - 1] } 1 .. $#times;
ok(@gaps >= 5 && !grep({ $_ < 0.09 } @gaps), 'stream via nginx: not buffered')
    or diag("gaps: @gaps");

# the stream helper through a plain (HTTP/1.0, close-delimited) upstream
$r = $t->stream('/plain/v1/chat/completions', { %$msg, stream => JSON::PP::true });
ok($r->{done}, 'stream via HTTP/1.0 upstream: [DONE]');
is(join('', map { $_ && @{$_->{choices}} ? $_->{choices}[0]{delta}{content} // '' : '' }
            @{$r->{json_events}}),
   'Mock answer to: via nginx', 'stream via HTTP/1.0 upstream: content');

# a cut upstream stream reaches the client without its last chunk
$r = $t->stream('/ka/v1/chat/completions',
    { %$msg, model => 'gpt-cut', stream => JSON::PP::true });
ok(!$r->{done} && !$r->{complete}, 'cut stream via nginx: not complete');
$t->allow_log_problems(qr/upstream prematurely closed/);

# nginx refusing a large body early: stream() still reads the answer
$r = $t->stream('/small/v1/chat/completions', 'x' x 2_000_000,
                headers => { 'content-type' => 'text/plain' });
is($r->{status}, 413, 'large body: 413 read even if the write failed');

# parallel requests through nginx
my @res = $t->parallel(map { my $i = $_; sub {
    $t->post_json('/ka/v1/chat/completions',
        { model => 'p-delay200', messages => [{ role => 'user', content => "p$i" }] });
} } 1 .. 8);
is(scalar(grep { $_->{status} == 200 } @res), 8, 'parallel via nginx');
is($res[3]{json}{choices}[0]{message}{content}, 'Mock answer to: p4', 'parallel: in order');

ok($t->error_log_contains(qr/\[notice\].*start worker process/), 'error_log_contains');
ok($t->wait_for_log(qr/start worker process/, 1), 'wait_for_log');

# reload to a new config
$t->write_config(config("        location = /added { return 204; }\n"));
my %old = map { $_ => 1 } $t->worker_pids;
is($t->reload, 1, 'reload');
my @new = $t->worker_pids;
ok(@new == 2 && !grep({ $old{$_} } @new), 'reload: all workers new');
is($t->get('/added')->{status}, 204, 'reload: new config serves');

# a config nginx refuses: nginx -t says so, reload(may_fail) returns 0,
# the old config keeps serving, and its [emerg] is not a problem
$t->write_config(config("        no_such_directive on;\n"));
($rc, $out) = $t->nginx_test_config;
isnt($rc, 0, 'nginx -t: bad config fails');
like($out, qr/unknown directive "no_such_directive" in .*nginx\.conf:\d+/, 'nginx -t: file and line');
is($t->reload(may_fail => 1), 0, 'reload: refused');
is($t->get('/added')->{status}, 204, 'refused reload: old config still serves');
ok(!eval { $t->reload; 1 } && $@ =~ /reload refused/, 'reload without may_fail dies');
is_deeply([$t->error_log_problems], [], 'excused: nginx -t and refused reloads');

# stop and start again
$t->write_config(config());
my $master = $t->nginx_pid;
$t->stop_nginx;
ok(!$t->nginx_pid && !$t->process_alive($master), "stopped");
is($t->get('/added')->{status}, 599, 'port closed after stop');
$t->start_nginx;
is($t->post_json('/ka/v1/chat/completions', $msg)->{status}, 200, 'started again');

$t->done_testing_checks;
done_testing;
