#!/usr/bin/perl
# Configuration: bad arguments fail `nginx -t` with the file, the line and
# a message that says what is wrong; provider keys come from the
# environment, a file, a variable or the literal, and reach the provider.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use GatewayTest;

my $t = GatewayTest->new(name => 'config');
plan skip_all => 'module not built' unless $t->has_module;

sub conf_with {
    my ($http) = @_;
    return $t->config_preamble . "http {\n" . $t->http_preamble . $http . <<'EOF';
    server {
        listen 127.0.0.1:%%PORT%%;
        location /v1/ { ai_gateway; }
        location /_ai/openai/ { internal; proxy_pass http://127.0.0.1:1/; }
    }
}
EOF
}

my @bad = (
    [ "ai_provider openai type=cohere pass=/_ai/openai;\n",
      qr/invalid provider type "cohere": expected openai, anthropic, gemini/ ],
    [ "ai_provider br type=bedrock pass=/_ai/br key=AKID:SECRET;\n",
      qr/ai_provider "br": type=bedrock needs region= like us-east-1/ ],
    [ "ai_provider br type=bedrock region=US_EAST pass=/_ai/br;\n",
      qr/type=bedrock needs region=/ ],
    [ "ai_provider br type=bedrock region=us-east-1 pass=/_ai/br "
      . "key=AKIDONLY;\n",
      qr/a type=bedrock key is ACCESS_KEY_ID:SECRET_ACCESS_KEY/ ],
    [ "ai_provider openai type=openai region=us-east-1 pass=/_ai/openai;\n",
      qr/region=, host= and session_token= are for type=bedrock/ ],
    [ "ai_provider openai type=openai;\n",
      qr/ai_provider "openai" needs pass=/ ],
    [ "ai_provider openai pass=_ai/openai;\n",
      qr/invalid "pass=_ai\/openai": pass= takes a location prefix/ ],
    [ "ai_provider openai pass=/_ai/openai/;\n",
      qr/no trailing "\/"/ ],
    [ "ai_provider openai pass=/_ai/openai colour=blue;\n",
      qr/invalid parameter "colour=blue"/ ],
    [ "ai_provider open/ai pass=/_ai/openai;\n",
      qr/invalid provider name "open\/ai"/ ],
    [ "ai_provider openai pass=/_ai/openai;\n    ai_provider openai pass=/_ai/x;\n",
      qr/duplicate ai_provider "openai"/ ],
    [ "ai_provider openai pass=/_ai/openai key=file:/nonexistent/key;\n",
      qr/cannot open key file "\/nonexistent\/key"/ ],
    [ "ai_provider openai pass=/_ai/openai \"key=sk bad\";\n",
      qr/the key holds control characters or spaces/ ],
    [ "ai_price openai/gpt-4o 1 2;\n",
      qr/unknown provider "openai" \(declare it with ai_provider before ai_price\)/ ],
    [ "ai_provider openai pass=/_ai/openai;\n    ai_price gpt-4o 1 2;\n",
      qr/invalid model "gpt-4o": ai_price takes provider\/model/ ],
    [ "ai_provider openai pass=/_ai/openai;\n    ai_price openai/gpt-4o 1.5x 2;\n",
      qr/invalid price "1.5x"/ ],
    [ "ai_provider openai pass=/_ai/openai;\n    ai_price openai/gpt-4o 1 0.0000000001;\n",
      qr/invalid price "0.0000000001".*at most 9 decimals/ ],
    [ "ai_provider openai pass=/_ai/openai;\n    ai_price openai/gpt-4o 1 2;\n"
      . "    ai_price openai/gpt-4o 1 2;\n",
      qr/duplicate ai_price for "openai\/gpt-4o"/ ],
    [ "ai_default_max_tokens 0;\n", qr/value must be between 1 and 100000000/ ],
    [ "ai_gateway;\n", qr/"ai_gateway" directive is not allowed here/ ],
);

for my $case (@bad) {
    my ($http, $re) = @$case;
    $t->write_config(conf_with('    ' . $http));
    my ($rc, $out) = $t->nginx_test_config;
    my ($first) = $http =~ /^([^\n]*)/;
    isnt($rc, 0, "nginx -t fails: $first");
    like($out, qr/\[emerg\].*$re/, "message: $first") or diag($out);
    like($out, qr{in \S+/conf/nginx\.conf:\d+}, "file and line: $first");
}

# a directive in its place, one more time: the reported line is the right one
my $text = $t->write_config(conf_with("    ai_provider openai pass=/_ai/openai;\n"
                                      . "    ai_price openai/gpt-4o one two;\n"));
my ($rc, $out) = $t->nginx_test_config;
my @lines = split /\n/, $text;
my ($lineno) = grep { $lines[$_ - 1] =~ /ai_price/ } 1 .. @lines;
like($out, qr{nginx\.conf:$lineno\b}, "the reported line is ai_price's ($lineno)");

# an unset environment variable is a warning, not an error
$text = $t->write_config(conf_with(
    "    ai_provider openai pass=/_ai/openai key=env:AI_GW_TEST_UNSET_VAR;\n"));
delete $ENV{AI_GW_TEST_UNSET_VAR};
($rc, $out) = $t->nginx_test_config;
is($rc, 0, 'unset key variable: nginx -t passes');
like($out, qr/\[warn\].*environment variable "AI_GW_TEST_UNSET_VAR" is not set/,
     'unset key variable: warned');

# --- keys from every source reach the provider -------------------------------

$t->start_mock(name => 'm1');
$t->write_file('conf/provider.key', "sk-from-a-file\n");
$ENV{AI_GW_TEST_KEY} = 'sk-from-the-environment';

$t->write_config($t->config_preamble . "http {\n" . $t->http_preamble . <<'EOF');
    map $http_x_tenant $tenant_key {
        default  sk-tenant-default;
        blue     sk-tenant-blue;
    }

    ai_provider envkey  pass=/_ai/m key=env:AI_GW_TEST_KEY;
    ai_provider filekey pass=/_ai/m key=file:provider.key;
    ai_provider litkey  pass=/_ai/m key=sk-literal;
    ai_provider varkey  pass=/_ai/m key=$tenant_key;
    ai_provider nokey   pass=/_ai/m;

    server {
        listen 127.0.0.1:%%PORT%%;
        location /v1/ { ai_gateway; }
        location /_ai/m/ { internal; proxy_pass http://127.0.0.1:%%MOCK_PORT_m1%%/; }
    }
}
EOF
$t->start_nginx;

my %want = (envkey => 'Bearer sk-from-the-environment',
            filekey => 'Bearer sk-from-a-file',
            litkey => 'Bearer sk-literal',
            varkey => 'Bearer sk-tenant-blue');

for my $p (sort keys %want) {
    my $r = $t->post_json('/v1/chat/completions',
        { model => "$p/m", messages => [{ role => 'user', content => 'k' }] },
        headers => { 'X-Tenant' => 'blue', Authorization => 'Bearer client' });
    is($r->{status}, 200, "$p: 200");
    is($t->mock_records('m1')->[-1]{headers}{authorization}, $want{$p},
       "$p: the provider gets its key");
}

my $r = $t->post_json('/v1/chat/completions',
    { model => 'nokey/m', messages => [{ role => 'user', content => 'k' }] },
    headers => { Authorization => 'Bearer client' });
is($r->{status}, 200, 'no key: 200');
ok(!exists $t->mock_records('m1')->[-1]{headers}{authorization},
   'no key: no Authorization at all, not the client\'s');

$t->done_testing_checks;
done_testing;
