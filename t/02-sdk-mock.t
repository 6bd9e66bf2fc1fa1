#!/usr/bin/perl
# The SDK client scripts (t/sdk/*.mjs) against the mock provider directly:
# proves the scripts and the mock's wire formats satisfy the official
# OpenAI and Anthropic SDKs, so gateway tests can trust both.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use GatewayTest;

my $t = GatewayTest->new(name => 'sdk-mock');
plan skip_all => 'npm modules not installed in t/node_modules (build.sh installs them)'
    unless $t->has_node_sdk('openai') && $t->has_node_sdk('@anthropic-ai/sdk');

my $port = $t->start_mock(name => 'm1');
my $answer = 'Mock answer to: Hello SDK';

my $r = $t->node_sdk('openai_chat.mjs', "http://127.0.0.1:$port/v1", 'gpt-4o', 'Hello SDK');
is($r->{exit}, 0, 'openai sdk: exit 0') or diag($r->{stderr});
my $j = $r->{json};
ok($j->{ok}, 'openai sdk: ok');
is($j->{nonstream}{content}, $answer, 'openai sdk: create');
is_deeply($j->{nonstream}{usage},
          { prompt_tokens => 3, completion_tokens => 5, total_tokens => 8 },
          'openai sdk: usage');
is($j->{stream}{content}, $answer, 'openai sdk: stream joined');
is($j->{stream}{finish_reason}, 'stop', 'openai sdk: stream finish_reason');
is($j->{stream}{usage}, undef, 'openai sdk: no usage without include_usage');
is($j->{stream_usage}{usage}{total_tokens}, 8, 'openai sdk: include_usage');

my $recs = $t->mock_records('m1');
is($recs->[0]{headers}{authorization}, 'Bearer sk-test-client', 'openai sdk: its key sent');

$r = $t->node_sdk('openai_chat.mjs', "http://127.0.0.1:$port/v1", 'x-status429');
is($r->{exit}, 1, 'openai sdk: failure exits 1');
is($r->{json}{status}, 429, 'openai sdk: failure status reported');
like($r->{stderr}, qr/429/, 'openai sdk: message on stderr');

$r = $t->node_sdk('anthropic_messages.mjs', "http://127.0.0.1:$port", 'claude-x', 'Hello SDK');
is($r->{exit}, 0, 'anthropic sdk: exit 0') or diag($r->{stderr});
$j = $r->{json};
is($j->{nonstream}{content}, $answer, 'anthropic sdk: create');
is_deeply($j->{nonstream}{usage}, { input_tokens => 3, output_tokens => 5 },
          'anthropic sdk: usage');
is($j->{stream}{content}, $answer, 'anthropic sdk: stream joined');
is($j->{stream}{stop_reason}, 'end_turn', 'anthropic sdk: stop_reason');
is($j->{stream}{output_tokens}, 5, 'anthropic sdk: output tokens');
# (@anthropic-ai/sdk 1.14 sends apiKey as "Authorization: Bearer", older
# versions as "x-api-key": accept either)
my $h = $t->mock_records('m1')->[-1]{headers};
is($h->{'x-api-key'} // ($h->{authorization} // '') =~ s/^Bearer //r, 'sk-test-client',
   'anthropic sdk: its key sent');

$t->done_testing_checks;
done_testing;
