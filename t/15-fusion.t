#!/usr/bin/perl
# Fusion (ai_pool): members in parallel, the critical path and not the sum,
# quorum / grace / deadline cutting stragglers (which never hold the
# client's keep-alive connection), best-of verbatim and shuffled, merge,
# debate, vote without a judge, failed members and judges, streaming
# through the openai SDK, usage summed over every call.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(time);
use JSON::PP;
use GatewayTest;

my $t = GatewayTest->new(name => 'fusion');
plan skip_all => 'module not built' unless $t->has_module;

$t->start_mock(name => 'm1');

$t->write_config($t->config_preamble . "http {\n" . $t->http_preamble . <<'EOF');
    ai_provider openai    pass=/_ai/openai key=sk-openai;
    ai_provider anthropic type=anthropic pass=/_ai/openai key=sk-ant;

    upstream mock {
        server 127.0.0.1:%%MOCK_PORT_m1%%;
        keepalive 16;
    }

    server {
        listen 127.0.0.1:%%PORT%%;

        location /path/v1/ {
            ai_gateway;
            ai_pool openai/p1-delay100 openai/p2-delay300 anthropic/p3-delay600
                    judge=openai/pjudge-delay100 mode=merge;
        }

        location /best/v1/ {
            ai_gateway;
            ai_pool openai/alpha openai/beta anthropic/gamma
                    judge=openai/verdict mode=best-of;
        }

        location /quorum/v1/ {
            ai_gateway;
            ai_pool openai/q1-delay100 openai/q2-delay150 openai/q3-delay3000
                    judge=openai/verdict mode=best-of quorum=2 grace=100ms;
        }

        location /deadline/v1/ {
            ai_gateway;
            ai_pool openai/d1-delay100 openai/d2-delay3000 openai/d3-delay3000
                    judge=openai/verdict deadline=500ms;
        }

        location /failed/v1/ {
            ai_gateway;
            ai_pool openai/alpha openai/x-status500 openai/beta
                    judge=openai/x-status503,openai/writer mode=merge;
        }

        location /nojudge/v1/ {
            ai_gateway;
            ai_pool openai/six openai/seven openai/fortytwo
                    judge=openai/x-status500,openai/x-garbage mode=best-of;
        }

        location /alt/v1/ {
            ai_gateway;
            ai_pool openai/x-status500|openai/alpha openai/beta
                    judge=openai/verdict;
        }

        location /allfail/v1/ {
            ai_gateway;
            ai_pool openai/x-status500 openai/x-drop judge=openai/verdict;
        }

        location /debate/v1/ {
            ai_gateway;
            ai_pool openai/alpha openai/beta openai/gamma
                    judge=openai/writer mode=debate rounds=1;
        }

        location /vote/v1/ {
            ai_gateway;
            ai_pool openai/v42a openai/v42b openai/v41 mode=vote
                    judge=openai/verdict;
        }

        location /tie/v1/ {
            ai_gateway;
            ai_pool openai/v41 openai/v42a mode=vote judge=openai/verdict;
        }

        location /slow/v1/ {
            ai_gateway;
            ai_pool openai/s1-delay1300 openai/s2-delay1300 judge=openai/verdict;
        }

        location /_ai/openai/ {
            internal;
            proxy_pass http://mock/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
$t->start_nginx;

my %answers = (
    alpha => 'Alpha says the sky is blue.',
    beta => 'Beta says the sky is azure.',
    gamma => 'Gamma says the sky is grey.',
    verdict => '{"winner": 1}',
    writer => 'The sky is blue, merged.',
    'pjudge-delay100' => 'Merged answer.',
    six => 'six', seven => 'seven', fortytwo => 'forty-two',
    v42a => 'Let me compute: 6*7 = 42.', v42b => 'The answer is 42',
    v41 => 'I think it is 41.',
);
$t->mock_answer('m1', $_, $answers{$_}) for keys %answers;

my $q = [{ role => 'user', content => 'What colour is the sky?' }];

sub fuse {
    my ($path, %extra) = @_;
    return $t->post_json("$path/v1/chat/completions",
                         { model => 'fusion', messages => $q, %extra });
}

sub since { my ($n) = @_; my $r = $t->mock_records('m1'); [ @{$r}[$n .. $#$r] ] }
sub nrec { scalar @{ $t->mock_records('m1') } }

sub usage_sum {
    my ($f) = @_;
    my %s = (prompt_tokens => 0, completion_tokens => 0);
    for my $c (@{ $f->{members} }, @{ $f->{judges} }) {
        next unless $c->{usage};
        $s{$_} += $c->{usage}{$_} for keys %s;
    }
    $s{total_tokens} = $s{prompt_tokens} + $s{completion_tokens};
    return \%s;
}

# --- the critical path: slowest member plus the judge, not the sum ---------

my $n = nrec();
my $t0 = time;
my $r = fuse('/path');
my $took = time - $t0;
is($r->{status}, 200, 'merge: 200');
is($r->{json}{model}, 'fusion/merge', 'merge: model fusion/merge');
is($r->{headers}{'x-ai-model'}, 'fusion/merge', 'merge: X-AI-Model');
is($r->{headers}{'x-ai-fusion'}, 'merge; answered=3/3', 'merge: X-AI-Fusion');
is($r->{json}{choices}[0]{message}{content}, 'Merged answer.', 'merge: the judge wrote it');
ok($took < 0.95, "members 100/300/600 ms + judge 100 ms took $took s: the "
   . "critical path (0.7 s), not the sum (1.1 s)");
my $recs = since($n);
my @member_starts = map { $_->{time} } grep { $_->{body_json}{model} =~ /^p\d/ } @$recs;
is(scalar @member_starts, 3, 'merge: three member calls');
my ($lo, $hi) = (sort { $a <=> $b } @member_starts)[0, -1];
ok($hi - $lo < 0.05, sprintf('members start together (%.1f ms apart)', 1000 * ($hi - $lo)));
my ($judge_rec) = grep { ($_->{body_json}{model} // '') eq 'pjudge-delay100' } @$recs;
ok($judge_rec->{time} - $hi > 0.55, 'the judge starts after the slowest member');
is($judge_rec->{body_json}{temperature}, 0, 'judge at temperature 0');
like($judge_rec->{body_json}{messages}[1]{content}, qr/### Source 3/, 'judge sees Source 1..3');
unlike($judge_rec->{body_json}{messages}[1]{content}, qr/p\d-delay/,
       'judge does not see the members\' names');
is($judge_rec->{headers}{'x-ai-fusion-depth'}, 1, 'inner calls carry the depth header');

my $f = $r->{json}{fusion};
is($f->{mode}, 'merge', 'fusion object: mode');
is($f->{judge}, 'openai/pjudge-delay100', 'fusion object: judge');
is($f->{judge_status}, 'ok', 'fusion object: judge_status');
is(scalar @{ $f->{members} }, 3, 'fusion object: members');
is_deeply([sort map { $_->{status} } @{ $f->{members} }], [qw(ok ok ok)], 'members ok');
ok((grep { $_->{latency_ms} >= 590 } @{ $f->{members} }), 'member latency recorded');
is_deeply($r->{json}{usage}, usage_sum($f), 'usage is the sum over every call');

# --- best-of: one member's text verbatim, shown in a shuffled order --------

my (%won, %first_shown);
for (1 .. 12) {
    $n = nrec();
    $r = fuse('/best');
    my $text = $r->{json}{choices}[0]{message}{content};
    $won{$text}++;
    my ($j) = grep { $_->{body_json}{model} eq 'verdict' } @{ since($n) };
    my ($s1) = $j->{body_json}{messages}[1]{content} =~ /### Source 1\n\n(\w+) says/;
    $first_shown{$s1}++ if $s1;
}
ok(!grep({ my $w = $_; !grep { $_ eq $w } @answers{qw(alpha beta gamma)} } keys %won),
   'best-of: the answer is a member\'s text, verbatim');
ok(keys %first_shown >= 2, 'best-of: the order shown to the judge is shuffled ('
   . join(',', map { "$_=$first_shown{$_}" } sort keys %first_shown) . ')');
ok(keys %won >= 2, 'best-of: so "Source 1" is not always the same member');
is($r->{json}{fusion}{judge_status}, 'ok', 'best-of: judge_status ok');
like($r->{json}{fusion}{winner}, qr{^(openai/alpha|openai/beta|anthropic/gamma)$},
     'best-of: the winner is named');
is($r->{json}{model}, 'fusion/best-of', 'best-of: model');
($judge_rec) = grep { $_->{body_json}{model} eq 'verdict' } @{ since($n) };
is($judge_rec->{body_json}{max_tokens}, 20, 'best-of: the verdict is small');
like($judge_rec->{body_json}{messages}[0]{content}, qr/correctness.*Length is not a merit/s,
     'best-of: the rubric ranks correctness over length');

# --- quorum and grace cut a straggler; it does not hold the connection -------

my $http = HTTP::Tiny->new(keep_alive => 1, timeout => 10);
$t0 = time;
my $res = $http->post($t->base_url . '/quorum/v1/chat/completions',
    { content => encode_json({ model => 'fusion', messages => $q }) });
$took = time - $t0;
is($res->{status}, 200, 'quorum: 200');
ok($took < 0.8, "quorum 2 + grace 100 ms: proceeds without the 3 s straggler ($took)");
$f = decode_json($res->{content})->{fusion};
my ($straggler) = grep { $_->{model} eq 'openai/q3-delay3000' } @{ $f->{members} };
is($straggler->{status}, 'aborted', 'quorum: the straggler is recorded as aborted');
ok($straggler->{estimated}, 'quorum: its charge is flagged as an estimate');
is($straggler->{usage}, undef, 'quorum: no usage is invented for it');
$t0 = time;
$res = $http->post($t->base_url . '/best/v1/chat/completions',
    { content => encode_json({ model => 'fusion', messages => $q }) });
$took = time - $t0;
is($res->{status}, 200, 'keep-alive: the next request on the same connection');
ok($took < 0.5, "keep-alive: not held by the first one's straggler ($took)");

$t0 = time;
$r = fuse('/deadline');
$took = time - $t0;
is($r->{status}, 200, 'deadline: 200');
ok($took > 0.45 && $took < 1.2, "deadline 500 ms: proceeds then ($took)");
is($r->{json}{fusion}{judge_status}, 'single_answer', 'deadline: one answer, no judge');
is($r->{json}{choices}[0]{message}{content}, 'Mock answer to: What colour is the sky?',
   'deadline: the single answer as it was');
is(scalar @{ $r->{json}{fusion}{judges} }, 0, 'deadline: no judge call');

# --- failures -------------------------------------------------------------------

$r = fuse('/failed');
is($r->{status}, 200, 'failed member, failed judge: 200');
is($r->{json}{choices}[0]{message}{content}, 'The sky is blue, merged.',
   'failed judge: the next judge wrote it');
is($r->{json}{fusion}{judge_status}, 'next_judge', 'failed judge: judge_status next_judge');
is($r->{headers}{'x-ai-fusion'}, 'merge; answered=2/3', 'failed member: 2 of 3 answered');
my ($failed) = grep { $_->{model} eq 'openai/x-status500' } @{ $r->{json}{fusion}{members} };
is($failed->{status}, 'failed', 'failed member: status');
like($failed->{error}, qr/HTTP 500/, 'failed member: reason');

$r = fuse('/nojudge');
is($r->{status}, 200, 'every judge failed: still 200');
is($r->{json}{fusion}{judge_status}, 'judge_failed_first_answer',
   'every judge failed, no majority: the first answer');
is($r->{json}{choices}[0]{message}{content}, 'six', 'every judge failed: the first member\'s');

$n = nrec();
$r = fuse('/alt');
is($r->{status}, 200, 'member alternative: 200');
ok((grep { $_->{model} eq 'openai/alpha' && $_->{status} eq 'ok' } @{ $r->{json}{fusion}{members} }),
   'member alternative: its fallback answered');

$r = fuse('/allfail');
is($r->{status}, 502, 'every member failed: 502');
is($r->{json}{error}{code}, 'all_members_failed', 'every member failed: code');
like($r->{json}{error}{message}, qr{openai/x-status500: HTTP 500.*openai/x-drop: could not be reached},
     'every member failed: each reason listed');

# --- debate -----------------------------------------------------------------------

$n = nrec();
$r = fuse('/debate');
is($r->{status}, 200, 'debate: 200');
is($r->{json}{fusion}{rounds}, 1, 'debate: one round');
is(scalar @{ $r->{json}{fusion}{members} }, 6, 'debate: 3 first answers + 3 revisions');
my @revisions = grep { $_->{body_json}{model} =~ /^(alpha|beta|gamma)$/
                       && @{ $_->{body_json}{messages} } > 1 } @{ since($n) };
is(scalar @revisions, 3, 'debate: each member was asked to revise');
for my $rev (@revisions) {
    my $me = $rev->{body_json}{model};
    my @msgs = @{ $rev->{body_json}{messages} };
    is($msgs[1]{content}, $answers{$me}, "debate: $me sees its own answer");
    my @others = grep { $_ ne $me } qw(alpha beta gamma);
    ok((grep({ index($msgs[2]{content}, $answers{$_}) >= 0 } @others) == 2
        && index($msgs[2]{content}, $answers{$me}) < 0),
       "debate: $me sees the two others' answers, not its own");
}
is($r->{json}{choices}[0]{message}{content}, 'The sky is blue, merged.', 'debate: the judge decides');

# --- vote ---------------------------------------------------------------------------

$n = nrec();
$r = fuse('/vote');
is($r->{status}, 200, 'vote: 200');
is($r->{json}{fusion}{judge_status}, 'majority', 'vote: a majority, no judge');
like($r->{json}{choices}[0]{message}{content}, qr/42/, 'vote: the majority answer');
ok(!grep({ $_->{body_json}{model} eq 'verdict' } @{ since($n) }), 'vote: the judge was not called');

$n = nrec();
$r = fuse('/tie');
is($r->{json}{fusion}{judge_status}, 'tie_broken_by_judge', 'vote tie: the judge breaks it');
ok((grep { $_->{body_json}{model} eq 'verdict' } @{ since($n) }), 'vote tie: the judge was called');

# --- tools and depth bypass fusion ------------------------------------------------

$n = nrec();
$r = fuse('/best', tools => [{ type => 'function', function => { name => 'f', parameters => {} } }]);
is($r->{status}, 200, 'tools: 200');
is($r->{headers}{'x-ai-model'}, 'openai/alpha', 'tools: served by the first member');
is(scalar @{ since($n) }, 1, 'tools: one call, no fusion');

$r = $t->post_json('/best/v1/chat/completions', { model => 'fusion', messages => $q },
                   headers => { 'X-AI-Fusion-Depth' => '1' });
is($r->{headers}{'x-ai-model'}, 'openai/alpha', 'depth header: no recursion');

# --- streaming ----------------------------------------------------------------------

my $s = $t->stream('/quorum/v1/chat/completions',
    { model => 'fusion', messages => $q, stream => \1, stream_options => { include_usage => \1 } });
is($s->{status}, 200, 'stream: 200');
is($s->{events}[-1], '[DONE]', 'stream: [DONE]');
my @chunks = grep { ref } @{ $s->{json_events} };
is(join('', map { $_->{choices}[0]{delta}{content} // '' } grep { @{ $_->{choices} } } @chunks),
   'Mock answer to: What colour is the sky?', 'stream: the chosen answer, chunked');
ok(!grep({ $_->{model} ne 'fusion/best-of' } @chunks), 'stream: every chunk is fusion/best-of');
my $last = $chunks[-1];
ok($last->{usage} && $last->{fusion}, 'stream: the last chunk has usage and the fusion object');
is_deeply($last->{usage}, usage_sum($last->{fusion}), 'stream: usage summed');

$s = $t->stream('/slow/v1/chat/completions',
    { model => 'fusion', messages => $q, stream => \1 });
like($s->{raw_body}, qr/\A(?:: keep-alive\n\n)+data: /,
     'stream: keep-alive comments while the members work, then the answer');
is($s->{events}[-1], '[DONE]', 'stream after keep-alives: [DONE]');

SKIP: {
    skip 'openai npm package not installed', 6 unless $t->has_node_sdk('openai');
    my $sdk = $t->node_sdk('openai_chat.mjs', $t->base_url . '/path/v1', 'fusion', 'Fuse this');
    is($sdk->{exit}, 0, 'sdk: exit 0') or diag($sdk->{stderr});
    is($sdk->{json}{nonstream}{content}, 'Merged answer.', 'sdk: fusion answer');
    is($sdk->{json}{stream}{content}, 'Merged answer.', 'sdk: streamed fusion (the judge relayed)');
    is($sdk->{json}{stream}{model}, 'fusion/merge', 'sdk: streamed model');
    ok($sdk->{json}{stream_usage}{usage}{total_tokens} > 0, 'sdk: streamed usage');
    is($sdk->{json}{stream}{finish_reason}, 'stop', 'sdk: finish_reason');
}

$t->done_testing_checks;
done_testing;
