#!/usr/bin/perl
# Key names in the status (issue #17, item 4): with ai_auth, the ledger
# entries, budget accounts, rate buckets and the metrics zone's keys and
# series carry "key_name" and "team" in clear beside the digest's 8 hex
# digits (a team's account: "team"); Prometheus series with a key label
# get key_name and team labels and pass promtool; the dashboard shows name
# and team columns; a key= location without ai_auth stays digest-only; a
# reload brings the names of the new key file, a restart with the state
# file finds the names again; no client key anywhere.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use JSON::PP;
use File::Temp qw(tempdir);
use GatewayTest;

my $t = GatewayTest->new(name => 'key-names');
plan skip_all => 'module not built' unless $t->has_module;

my $PROMTOOL = $ENV{AI_GW_PROMTOOL} || '/usr/bin/promtool';
my $CHROMIUM = $ENV{AI_GW_CHROMIUM} || '/usr/bin/chromium';

$t->start_mock(name => 'm1');

my %keys = (
    alice => 'sk-alice-names-0123456789abcdef',
    bob   => 'sk-bob-names-0123456789abcdef',
    carol => 'sk-carol-names-0123456789abcdef',
    dave  => 'sk-dave-names-0123456789abcdef',
    raw   => 'sk-raw-user-0123456789abcdef',
);

my $alice_hash = `printf %s '$keys{alice}' | sha256sum`;
$alice_hash =~ s/\s.*//s;

sub sha8 {
    my ($s) = @_;
    my $h = `printf %s '$s' | sha256sum`;
    return substr($h, 0, 8);
}

sub keys_file {
    my (%o) = @_;
    my $f = "sha256:$alice_hash name=alice team=eng\n"
          . "plain:$keys{bob} name=bob team=ops\n"
          . "plain:$keys{carol} name=carol\n"
          . "team:eng budget=5\n"
          . "team:ops budget=5/day\n";
    $f .= "plain:$keys{dave} name=dave team=eng\n" if $o{dave};
    return $f;
}

$t->write_file('conf/keys.txt', keys_file());

my $conf = $t->config_preamble . "http {\n" . $t->http_preamble . <<'EOF';
    ai_provider openai type=openai pass=/_ai/openai key=sk-provider-openai;
    ai_price openai/gpt-4o 2.50 10.00;

    ai_keys clients file=keys.txt;
    ai_rate_zone rate:1m;
    ai_cost_zone cost:1m state=cost.state;
    ai_metrics_zone metrics:1m;

    server {
        listen 127.0.0.1:%%PORT%% reuseport;

        location /v1/ {
            ai_gateway;
            ai_auth clients;
            ai_rate zone=rate rpm=1000;
            ai_cost zone=cost budget=10;
        }

        location /plain/v1/ {
            ai_gateway;
            ai_rate zone=rate key=$http_x_user rpm=1000;
            ai_cost zone=cost key=$http_x_user budget=10;
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
    my ($path, $headers) = @_;
    return $t->post_json($path . '/v1/chat/completions',
                         { model => 'openai/gpt-4o',
                           messages => [{ role => 'user', content => 'Hi' }] },
                         headers => $headers);
}

sub bearer { { Authorization => "Bearer $keys{$_[0]}" } }

sub status_json {
    my ($q) = @_;
    my $r = $t->get('/status' . ($q // ''));
    return eval { decode_json($r->{content}) } // {};
}

# entries of a list by their 8 hex digits
sub by_key {
    my ($list) = @_;
    return { map { (defined $_->{key} ? $_->{key} : '(route)') => $_ }
             @{ $list // [] } };
}

is(chat('', bearer('alice'))->{status}, 200, 'alice (team eng): 200');
is(chat('', bearer('bob'))->{status}, 200, 'bob (team ops): 200');
is(chat('', bearer('carol'))->{status}, 200, 'carol (no team): 200');
is(chat('/plain', { 'x-user' => $keys{raw} })->{status}, 200,
   'key= without ai_auth: 200');
sleep 0.3;

my %hex = (alice => sha8('alice'), bob => sha8('bob'), carol => sha8('carol'),
           eng => sha8('team:eng'), ops => sha8('team:ops'),
           raw => sha8($keys{raw}));

my $st = status_json('?series=1');

# --- the status JSON ----------------------------------------------------------

for my $list (qw(ledger spend rate)) {
    my $e = by_key($st->{$list});
    for ([alice => 'eng'], [bob => 'ops'], [carol => undef]) {
        my ($name, $team) = @$_;
        my $x = $e->{ $hex{$name} };
        ok($x, "$list: an entry of $name") or next;
        is($x->{key_name}, $name, "$list: key_name of $name");
        is($x->{team}, $team, "$list: team of $name"
                              . (defined $team ? '' : ' (none)'));
    }
    my $raw = $e->{ $hex{raw} };
    ok($raw, "$list: an entry of the key= location");
    ok($raw && !exists $raw->{key_name} && !exists $raw->{team},
       "$list: key= without ai_auth: no key_name, no team");
}

my $spend = by_key($st->{spend});
for my $team (qw(eng ops)) {
    my $a = $spend->{ $hex{$team} };
    ok($a, "spend: the account of team $team") or next;
    is($a->{team}, $team, "spend: team $team's account names its team");
    ok(!exists $a->{key_name}, "spend: team $team's account has no key_name");
    ok($a->{total_nano_usd} > 0, "spend: team $team's account spent");
}

# a key with a budget of its own and a team: charged once, and its team's
# account charged too
is($spend->{ $hex{alice} }{total_nano_usd}, $spend->{ $hex{carol} }{total_nano_usd},
   'spend: a key with a team charged once, as a key without one');
is($spend->{ $hex{eng} }{total_nano_usd}, $spend->{ $hex{alice} }{total_nano_usd},
   'spend: team eng charged what alice spent');
is($spend->{ $hex{ops} }{total_nano_usd}, $spend->{ $hex{bob} }{total_nano_usd},
   'spend: team ops charged what bob spent');

my $mkeys = by_key($st->{metrics}{keys});
is($mkeys->{ $hex{alice} }{key_name}, 'alice',
   'metrics keys: alice counted by her key name');
is($mkeys->{ $hex{alice} }{team}, 'eng', 'metrics keys: her team');
is($mkeys->{ $hex{alice} }{requests}, 1, 'metrics keys: her one request');
is($mkeys->{ $hex{carol} }{key_name}, 'carol', 'metrics keys: carol');
ok(!exists $mkeys->{ $hex{raw} }{key_name},
   'metrics keys: key= without ai_auth: no key_name');
my $skeys = by_key($st->{series}{keys});
is($skeys->{ $hex{bob} }{key_name}, 'bob', 'series keys: bob by name');
is($skeys->{ $hex{bob} }{team}, 'ops', 'series keys: his team');
ok($skeys->{ $hex{raw} } && !exists $skeys->{ $hex{raw} }{key_name},
   'series keys: key= without ai_auth: no key_name');

# ?key= still takes the hex digits
my $one = status_json("?key=$hex{alice}");
is(scalar @{ $one->{ledger} }, 1, '?key=: one ledger entry');
is($one->{ledger}[0]{key_name}, 'alice', '?key=: with its name');

# --- Prometheus ------------------------------------------------------------------

my $prom = $t->get('/status?format=prometheus');
is($prom->{status}, 200, 'prometheus: 200');
my $p = $prom->{content};
like($p, qr/^ai_gateway_budget_spend_usd\{zone="cost",key="$hex{alice}",key_name="alice",team="eng",route="",period="total"\} \d/m,
     'prometheus: a budget series of alice with key_name and team');
like($p, qr/^ai_gateway_budget_spend_usd\{zone="cost",key="$hex{eng}",team="eng",route="",period="day"\} /m,
     'prometheus: the team account with its team label');
like($p, qr/^ai_gateway_rate_limit\{zone="rate",route="\/v1\/",key="$hex{bob}",key_name="bob",team="ops",type="requests"\} 1000$/m,
     'prometheus: a rate series of bob with key_name and team');
like($p, qr/^ai_gateway_rate_limit\{zone="rate",route="\/v1\/",key="$hex{carol}",key_name="carol",type="requests"\} 1000$/m,
     'prometheus: carol: key_name, no team');
like($p, qr/^ai_gateway_rate_limit\{zone="rate",route="\/plain\/v1\/",key="$hex{raw}",type="requests"\} 1000$/m,
     'prometheus: key= without ai_auth: no key_name label');

SKIP: {
    skip "promtool not found at $PROMTOOL (Debian package prometheus)", 2
        unless -x $PROMTOOL;
    my $file = $t->prefix . '/metrics.txt';
    $t->write_file('metrics.txt', $p);
    my $out = `'$PROMTOOL' check metrics < '$file' 2>&1`;
    is($?, 0, 'promtool check metrics: passes') or diag $out;
    is($out, '', 'promtool check metrics: no lint') or diag $out;
}

# --- the dashboard ----------------------------------------------------------------

my $h = $t->get('/status?format=html');
is($h->{status}, 200, 'dashboard: 200');
my $html = $h->{content} // $h->{content};
like($html, qr{<div id="t-spend"></div>}, 'dashboard: a budget accounts table');
like($html, qr{table\("t-keys", \["name", "team", "key",},
     'dashboard: keys table by name, team, key');
like($html, qr{table\("t-rate", \["route", "key", "name", "team",},
     'dashboard: rate table with name and team');
like($html, qr{table\("t-spend", \["zone", "name", "team", "key",},
     'dashboard: budget table with name and team');
like($html, qr{return \[k\.key_name, k\.team, k\.key,},
     'dashboard: keys table reads key_name and team');
like($html, qr{topSeries\(se\.keys, keyLabel,}, 'dashboard: charts by key name');

my $dom = '';
SKIP: {
    skip "chromium not found at $CHROMIUM (Debian package chromium)", 6
        unless -x $CHROMIUM;
    my $profile = tempdir(CLEANUP => 1);
    my @cmd = ($CHROMIUM, qw(--headless --no-sandbox --disable-gpu
               --disable-quic --no-first-run --disable-background-networking
               --disable-component-update --disable-sync
               --disable-dev-shm-usage --hide-scrollbars --mute-audio),
               "--user-data-dir=$profile", '--virtual-time-budget=8000',
               '--dump-dom', $t->base_url . '/status?format=html');
    unshift @cmd, 'timeout', '120' if -x '/usr/bin/timeout';
    open my $fh, '-|', @cmd or die "chromium: $!\n";
    $dom = do { local $/; <$fh> } // '';
    close $fh;
    my %tab;
    for my $id (qw(t-keys t-rate t-spend)) {
        ($tab{$id}) = $dom =~ m{<div id="$id">(.*?)</table>}s;
        $tab{$id} //= '';
    }
    like($tab{'t-keys'}, qr{<th>name</th><th>team</th><th>key</th>},
         'dashboard in a browser: keys table has name and team columns');
    like($tab{'t-keys'}, qr{<td title="alice">alice</td><td title="eng">eng</td><td title="$hex{alice}">$hex{alice}</td>},
         'dashboard in a browser: alice, eng, her digits');
    like($tab{'t-rate'}, qr{<td title="$hex{bob}">$hex{bob}</td><td title="bob">bob</td><td title="ops">ops</td>},
         'dashboard in a browser: rate row of bob with his team');
    like($tab{'t-spend'}, qr{<td title="ops">ops</td><td title="$hex{ops}">$hex{ops}</td>},
         'dashboard in a browser: team ops\'s account');
    like($tab{'t-spend'}, qr{<td title="carol">carol</td>},
         'dashboard in a browser: carol\'s account');
    my ($errs) = $dom =~ m{<pre id="errors">(.*?)</pre>}s;
    is($errs // '', '', 'dashboard in a browser: no JavaScript error');
}

# --- never a key --------------------------------------------------------------------

my $json = $t->get('/status?series=1')->{content};
for my $k (sort keys %keys) {
    unlike($json, qr/\Q$keys{$k}\E/, "key of $k not in the status");
    unlike($p, qr/\Q$keys{$k}\E/, "key of $k not in the metrics");
    unlike($dom, qr/\Q$keys{$k}\E/, "key of $k not in the dashboard");
}

# --- a reload: the names of the new file --------------------------------------------

$t->write_file('conf/keys.txt', keys_file(dave => 1));
ok($t->reload, 'reloaded with dave added');
is(chat('', bearer('dave'))->{status}, 200, 'dave: 200 after the reload');
sleep 0.3;
$st = status_json();
my $ledger = by_key($st->{ledger});
is($ledger->{ sha8('dave') }{key_name}, 'dave',
   'after a reload: the new key has its name');
is($ledger->{ sha8('dave') }{team}, 'eng', 'after a reload: and its team');
is($ledger->{ $hex{alice} }{key_name}, 'alice',
   'after a reload: an older entry keeps its name');

# --- a restart with the state file: the names come back from the key file -------

$t->stop_nginx;
ok(-s $t->prefix . '/conf/cost.state' || -s $t->prefix . '/cost.state',
   'the state file was written');
my $state = join '', map { $t->read_file($_) // '' }
            grep { -e } map { $t->prefix . $_ } '/conf/cost.state',
                                                 '/cost.state';
unlike($state, qr/alice|carol|"eng"/, 'no name in the state file');
$t->start_nginx;
$st = status_json();
$ledger = by_key($st->{ledger});
ok($ledger->{ $hex{alice} }, 'after a restart: alice\'s entry restored');
is($ledger->{ $hex{alice} }{key_name}, 'alice',
   'after a restart: with her name');
is($ledger->{ $hex{alice} }{team}, 'eng', 'after a restart: and her team');
$spend = by_key($st->{spend});
is($spend->{ $hex{ops} }{team}, 'ops',
   'after a restart: the team account has its team');
ok($ledger->{ $hex{raw} } && !exists $ledger->{ $hex{raw} }{key_name},
   'after a restart: the key= entry still digest-only');

$t->done_testing_checks;
done_testing;
