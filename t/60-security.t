#!/usr/bin/perl
# Security: provider keys never appear in a log line (debug level
# included), a response or an error message; no request field reaches a
# URL other than the pass locations or adds a header to a provider call;
# the client's credentials never leave.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use GatewayTest;

my $t = GatewayTest->new(name => 'security');
plan skip_all => 'module not built' unless $t->has_module;

$t->start_mock(name => 'm1');

my %keys = (openai => 'sk-OPENAI-SECRET-0001', anthropic => 'sk-ant-SECRET-0002',
            google => 'AIza-GOOGLE-SECRET-0003');

$t->write_config($t->config_preamble . "http {\n" . $t->http_preamble . <<"EOF");
    log_format all '\$remote_addr "\$request" \$status \$ai_model \$http_authorization';
    ai_provider openai    type=openai    pass=/_ai/openai    key=$keys{openai};
    ai_provider anthropic type=anthropic pass=/_ai/anthropic key=$keys{anthropic};
    ai_provider google    type=gemini    pass=/_ai/google    key=$keys{google};

    server {
        listen 127.0.0.1:%%PORT%%;
        access_log %%PREFIX%%/logs/all.log all;

        location /v1/ {
            ai_gateway;
            ai_fallback openai/x-status500 anthropic/claude google/gemini-pro;
        }

        location /fusion/v1/ {
            ai_gateway;
            ai_pool openai/a anthropic/b google/c judge=openai/judge mode=merge;
        }

        location /_ai/openai/ {
            internal;
            proxy_pass http://127.0.0.1:%%MOCK_PORT_m1%%/;
        }

        location /_ai/anthropic/ {
            internal;
            proxy_pass http://127.0.0.1:%%MOCK_PORT_m1%%/;
        }

        location /_ai/google/ {
            internal;
            proxy_pass http://127.0.0.1:%%MOCK_PORT_m1%%/;
        }
    }
}
EOF
$t->start_nginx;

my $user = [{ role => 'user', content => 'secret test' }];
my @bodies;

for my $model ('openai/gpt-4o', 'anthropic/claude', 'google/gemini-pro', 'openai/x-status500',
               'openai/x-status401', 'openai/x-garbage')
{
    my $r = $t->post_json('/v1/chat/completions', { model => $model, messages => $user },
                          headers => { Authorization => 'Bearer client-token-XYZ' });
    push @bodies, $r->{content}, join(' ', map { "$_: $r->{headers}{$_}" } keys %{ $r->{headers} });
    my $s = $t->stream('/v1/chat/completions', { model => $model, messages => $user, stream => \1 });
    push @bodies, $s->{raw_body};
}
my $r = $t->post_json('/fusion/v1/chat/completions', { model => 'f', messages => $user });
is($r->{status}, 200, 'fusion answered');
push @bodies, $r->{content};

my $recs = $t->mock_records('m1');
ok(@$recs >= 20, 'the providers were called (' . scalar(@$recs) . ' calls)');
is(scalar(grep { ($_->{headers}{authorization} // '') eq "Bearer $keys{openai}"
                 || ($_->{headers}{'x-api-key'} // '') eq $keys{anthropic}
                 || ($_->{headers}{'x-goog-api-key'} // '') eq $keys{google} } @$recs),
   scalar(@$recs), 'every provider call carried its provider\'s key');
ok(!grep({ join(' ', values %{ $_->{headers} }) =~ /client-token-XYZ/ } @$recs),
   'the client\'s Authorization never reached a provider');

$t->stop_nginx;
my $log = $t->read_file('logs/error.log');
ok(length $log > 10000, 'the error log was written at debug level');
like($log, qr/http proxy status/, 'debug logging of provider calls still works');
for my $p (sort keys %keys) {
    unlike($log, qr/\Q$keys{$p}\E/, "the $p key is not in the debug error log");
    unlike($t->read_file('logs/all.log'), qr/\Q$keys{$p}\E/, "the $p key is not in the access log");
    ok(!grep({ index($_ // '', $keys{$p}) >= 0 } @bodies), "the $p key is in no response");
}
like($t->read_file('logs/all.log'), qr/client-token-XYZ/,
     '(the access log does log what the operator asked: the client header)');

# --- nothing a client sends changes where a call goes ---------------------------

$t->start_nginx;
my $n = scalar @{ $t->mock_records('m1') };
for my $bad ('google/../../admin', 'google/x%2F..%2Fy', "openai/a\r\nX-Injected: 1",
             'google/a b', 'google/a?key=1', 'google/a#b', 'openai/' . ('a' x 400),
             "openai/a\x00b", 'openai/a"b', 'openai/a\\b')
{
    $r = $t->post_json('/v1/chat/completions', { model => $bad, messages => $user });
    (my $name = $bad) =~ s/[^\x21-\x7e]/~/g;
    is($r->{status}, 400, 'model ' . substr($name, 0, 24) . ': refused');
}
$r = $t->post_json('/v1/chat/completions',
    { model => 'openai/gpt-4o', messages => $user, models => ['google/../x'] });
is($r->{status}, 400, 'a bad name in models: refused');
is(scalar @{ $t->mock_records('m1') }, $n, 'no refused request reached a provider');

# the client's headers never become a provider call's headers
$r = $t->post_json('/v1/chat/completions', { model => 'anthropic/claude', messages => $user },
    headers => { 'X-Api-Key' => 'client-anthropic-key', 'Anthropic-Version' => '1999-01-01',
                 'X-Goog-Api-Key' => 'client-google-key',
                 'X-Forwarded-For' => '6.6.6.6' });
is($r->{status}, 200, 'client headers: answered');
my $h = $t->mock_records('m1')->[-1]{headers};
is($h->{'x-api-key'}, $keys{anthropic}, 'client x-api-key replaced by the provider key');
is($h->{'anthropic-version'}, '2023-06-01', 'client anthropic-version not forwarded');
ok(!exists $h->{'x-goog-api-key'}, 'client x-goog-api-key not forwarded');
ok(!exists $h->{'x-forwarded-for'}, 'client X-Forwarded-For not forwarded');

# a huge or deep body is refused before any call
$r = $t->request('POST', '/v1/chat/completions',
    body => '{"model":"openai/gpt-4o","messages":' . ('[' x 100000) . (']' x 100000) . '}');
is($r->{status}, 400, 'a 100000-deep body: 400');

$t->done_testing_checks;
done_testing;
