#!/usr/bin/perl
# A provider that echoes the request's headers (issue #14 point 4): its
# error messages and answers reach the client with every provider key
# taken out, whole, masked or JSON-escaped, for the three provider types,
# streamed or not, through fallback, on both inbound APIs, for keys from
# the configuration and from a variable; and no key reaches a log.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use Test::More;
use GatewayTest;

my $t = GatewayTest->new(name => 'key-echo');
plan skip_all => 'module not built' unless $t->has_module;

$t->start_mock(name => 'm1');

my %key = (openai => 'sk-OPENAISECRET0123456789', anth => 'sk-ant-ANTHSECRET0123456789',
           gem => 'AIzaGEMSECRET0123456789', dyn => 'sk-DYNAMICSECRET9876543210');

$t->write_config($t->config_preamble . "http {\n" . $t->http_preamble . <<"EOF");
    map \$host \$dyn_key { default $key{dyn}; }

    ai_provider openai type=openai    pass=/_ai/m key=$key{openai};
    ai_provider anth   type=anthropic pass=/_ai/m key=$key{anth};
    ai_provider gem    type=gemini    pass=/_ai/m key=$key{gem};
    ai_provider dyn    type=openai    pass=/_ai/m key=\$dyn_key;

    server {
        listen 127.0.0.1:%%PORT%%;

        location /v1/ {
            ai_gateway;
        }

        location /fb/v1/ {
            ai_gateway;
            ai_fallback openai/echoheaders-status500 anth/echoheaders-status500
                        gem/echoheaders-status500;
        }

        location /_ai/m/ {
            internal;
            proxy_pass http://127.0.0.1:%%MOCK_PORT_m1%%/;
            proxy_buffering off;
        }
    }
}
EOF
$t->start_nginx;

my @hi = (messages => [{ role => 'user', content => 'hi' }]);

# no key, and no 12-byte part of one, in the text
sub leaks {
    my ($text) = @_;
    $text //= '';
    for my $k (values %key) {
        for my $i (0 .. length($k) - 12) {
            return substr($k, $i, 12) if index($text, substr($k, $i, 12)) >= 0;
        }
    }
    return undef;
}

sub all_of { my ($r) = @_; join "\n", $r->{content} // $r->{raw_body} // '',
                                    map { "$_: $r->{headers}{$_}" } keys %{ $r->{headers} } }

for my $p (qw(openai anth gem dyn)) {
    my $model = "$p/echoheaders-status401";

    my $r = $t->post_json('/v1/chat/completions', { model => $model, @hi });
    is($r->{status}, 401, "$p: the provider's 401 is passed on");
    like($r->{json}{error}{message} // '', qr/Incorrect API key provided: .*\[REDACTED\]/,
         "$p: its message, the key redacted");
    is(leaks(all_of($r)), undef, "$p: no key in the answer");

    $r = $t->stream('/v1/chat/completions', { model => $model, stream => JSON::PP::true, @hi });
    is($r->{status}, 401, "$p, stream: 401 before the first byte");
    is(leaks(all_of($r)), undef, "$p, stream: no key in the answer");

    $r = $t->post_json('/v1/messages', { model => $model, max_tokens => 10, @hi });
    is($r->{status}, 401, "$p, Messages API: 401");
    is(leaks(all_of($r)), undef, "$p, Messages API: no key in the answer");
}

{
    my $r = $t->post_json('/fb/v1/chat/completions', { model => 'x', @hi });
    is($r->{status}, 502, 'fallback: every call failed');
    my $msg = $r->{json}{error}{message} // '';
    is(() = $msg =~ /\[REDACTED\]/g, 3, 'fallback: each echo redacted in the reasons');
    is(leaks(all_of($r)), undef, 'fallback: no key in the answer');
}

# answers (200) that carry a key, whole and masked
$t->mock_answer('m1', 'leaky', "whole $key{openai} masked sk-OPE*********6789 "
                              . "and dots sk-OPENAI...6789 end");
$t->mock_answer('m1', 'leaky-dyn', "dynamic $key{dyn} end");

for my $case (['openai/leaky', 'configured key'], ['dyn/leaky-dyn', 'key from a variable']) {
    my ($model, $what) = @$case;
    my $r = $t->post_json('/v1/chat/completions', { model => $model, @hi });
    is($r->{status}, 200, "answer with a $what: 200");
    my $content = $r->{json}{choices}[0]{message}{content} // '';
    like($content, qr/\[REDACTED\]/, "answer with a $what: redacted");
    is(leaks($content), undef, "answer with a $what: no key in it");
    unlike($content, qr/sk-OPE\*+6789|\.\.\.6789/, "answer with a $what: no masked form");
    like($content, qr/ end$/, "answer with a $what: the rest is kept");

    $r = $t->stream('/v1/chat/completions', { model => $model, stream => JSON::PP::true, @hi });
    ok($r->{done}, "stream with a $what: whole");
    is(leaks($r->{raw_body}), undef, "stream with a $what: no key in it");
}

{
    # nginx's own debug lines show what a map or a variable evaluates to
    # (the key of key=$var: documented); the gateway's lines never do
    my $log = join "\n", grep { !/\[debug\].*http (?:map|script var):/ }
                         split /\n/, $t->read_file('logs/error.log');
    $log .= $t->read_file('logs/access.log') // '';
    is(leaks($log), undef, 'no key in the error or access log');
    ok($t->error_log_contains(qr/sent a provider key back/), 'the echo is logged, without the key');
}

$t->done_testing_checks;
done_testing();
