#!/usr/bin/perl
# The cost zone's state file (ai_cost_zone state=): written through a
# fresh O_EXCL|O_NOFOLLOW name as the workers' user even by the master
# running as root (symlinks planted at every name the old code used, and
# at the state path, leave a root-only file untouched); read record by
# record, so that a changed byte loses one record, a truncated file keeps
# its budget accounts, a damaged totals line is rebuilt; 50000 records
# read streaming; version 1 files still read (and written anew as
# version 2); "nginx -t" warns about an unwritable directory and a
# damaged file; the save error is said once, not every interval.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";

use Compress::Zlib qw(crc32);
use Digest::SHA qw(sha256_hex);
use POSIX ();
use Test::More;
use Time::HiRes qw(time sleep);
use GatewayTest;

my $t = GatewayTest->new(name => 'state');
plan skip_all => 'module not built' unless $t->has_module;
plan skip_all => 'runs as root: the master as root, the workers as nobody'
    unless $> == 0;

my $nobody = getpwnam('nobody');
my $dir = $t->prefix . '/state';
my $file = "$dir/cost.state";

$t->start_mock(name => 'm1');

# the state zone, its size and interval
sub conf {
    my (%o) = @_;
    my $size = $o{size} // '1m';
    my $interval = $o{interval} // '200ms';
    return $t->config_preamble . "http {\n" . $t->http_preamble . <<"EOF";
    ai_provider openai type=openai pass=/_ai/openai key=sk-provider;
    ai_price openai/gpt-4o 2.50 10.00;
    ai_price openai/gpt-4o-mini 0.15 0.60;

    ai_cost_zone cost:$size state=%%PREFIX%%/state/cost.state interval=$interval;

    server {
        listen 127.0.0.1:%%PORT%% reuseport;

        location /v1/ {
            ai_gateway;
            ai_cost zone=cost key=\$http_authorization budget=10/day;
        }

        location = /status { ai_status; }

        location /_ai/openai/ {
            internal;
            proxy_pass http://127.0.0.1:%%MOCK_PORT_m1%%/;
        }
    }
}
EOF
}

sub chat {
    my ($key, $model) = @_;
    return $t->post_json('/v1/chat/completions',
        { model => $model // 'openai/gpt-4o',
          messages => [{ role => 'user', content => 'Hello gateway' }] },
        headers => { Authorization => "Bearer $key" });
}

sub status { $t->get('/status')->{json} }

sub prefix { substr(sha256_hex("Bearer $_[0]"), 0, 8) }

# the zone as text: totals, then ledger entries and accounts by key
sub snapshot {
    my $st = status();
    my ($z) = grep { $_->{zone} eq 'cost' } @{ $st->{zones} };
    my %l = map { ($_->{key} // '-') . " $_->{model}" => join ' ', @$_{qw(requests errors
                  input_tokens output_tokens cost_nano_usd first_seen last_seen)} }
            grep { $_->{zone} eq 'cost' } @{ $st->{ledger} };
    my %a = map { ($_->{key} // '-') => join ' ', @$_{qw(total_nano_usd day_nano_usd
                  month_nano_usd)} }
            grep { $_->{zone} eq 'cost' } @{ $st->{spend} };
    my $tot = join ' ', @{ $z->{totals} }{qw(requests errors input_tokens output_tokens
                                             cost_nano_usd)};
    return { totals => $tot, ledger => \%l, accounts => \%a,
             entries => $z->{entries}, naccounts => $z->{accounts} };
}

sub owner { (lstat $_[0])[4] }

sub line_crc { sprintf '%s %08x', $_[0], crc32($_[0]) }

my @keys = map { "sk-tenant-$_" } 1 .. 5;

# --- F2: symlinks at every name the old code wrote through ---------------------

$t->write_config(conf());
chown $nobody, -1, $dir;
chmod 0700, $dir;                          # the workers' user's, as documented

my $victim = $t->prefix . '/victim';
$t->write_file($victim, "ORIGINAL\n", raw => 1);
chmod 0600, $victim;

$t->start_nginx;
is(chat($_)->{status}, 200, "charged $_") for @keys;
sleep 0.5;                                 # a timer save or two
my $before = snapshot();
is(scalar keys %{ $before->{ledger} }, 5, 'five ledger entries');

# every name the old code used: PATH.<pid>.tmp of the master and workers,
# and the state path itself, each a link to a root-only file
my @planted = map { "$file.$_.tmp" } $t->nginx_pid, $t->worker_pids;
for my $link (@planted, $file) {
    unlink $link;
    system('runuser', '-u', 'nobody', '--', 'ln', '-s', $victim, $link) == 0
        or die "ln -s $link: $?";
}
ok(-l $file, 'F2: the state path is a link to the root-only file');

is(chat('sk-late')->{status}, 200, 'F2: one more call after the links');
sleep 0.5;
$t->stop_nginx;                            # the master's save at exit

is($t->read_file($victim), "ORIGINAL\n", 'F2: the root-only file is untouched');
is(owner($victim), 0, 'F2: still root\'s');
is((stat $victim)[2] & 07777, 0600, 'F2: mode 0600 still');
ok(!-l $file && -f $file, 'F2: the state path is a regular file again');
is(owner($file), $nobody, 'F2: written by the workers\' user, even at the master\'s exit');
like($t->read_file($file), qr/^ngx_ai_gateway_cost_state 2 [0-9a-f]{8}\n/,
     'F2: the ledger was saved (version 2)');
opendir my $dh, $dir or die;
my @root_files = grep { !/^\.\.?$/ && owner("$dir/$_") == 0 } readdir $dh;
closedir $dh;
is_deeply(\@root_files, [], 'F2: no file of root\'s in the state directory');
ok(-l $_, "F2: the planted link is left alone: " . ($_ =~ s{.*/}{}r)) for @planted;
unlink @planted;

$t->start_nginx;
my $after = snapshot();
is($after->{ledger}{prefix('sk-late') . ' openai/gpt-4o'} ? 1 : 0, 1,
   'F2: restart: the call after the links is in the ledger');
delete $after->{ledger}{prefix('sk-late') . ' openai/gpt-4o'};
is_deeply($after->{ledger}, $before->{ledger}, 'F2: restart: every ledger entry read back');
$t->stop_nginx;

# a link at the state path at start: not followed, not moved aside
my $saved = $t->read_file($file);
unlink $file;
symlink $victim, $file or die;
$t->start_nginx;
ok($t->wait_for_log(qr/the state file ".*cost\.state" is a symbolic link, which is not followed/),
   'a link at the state path at start: refused with a clear error');
ok(-l $file && !-e "$file.corrupt", 'a link at the state path: not moved aside');
is(status()->{totals}{requests}, 0, 'a link at the state path: nothing read');
$t->stop_nginx;
is($t->read_file($victim), "ORIGINAL\n", 'a link at the state path: the root-only file untouched');
unlink $file;

# --- a changed byte in a ledger record and in an account record ----------------

$t->write_file($file, $saved, raw => 1);
chown $nobody, -1, $file;
$t->start_nginx;
my $good = snapshot();
$t->stop_nginx;
$saved = $t->read_file($file);

my @lines = split /^/, $saved;
my ($li) = grep { $lines[$_] =~ /^l 1 / && $lines[$_] =~ /gpt-4o / } 0 .. $#lines;
my ($ai) = grep { $lines[$_] =~ /^a 1 / } 0 .. $#lines;
ok(defined $li && defined $ai, 'a ledger line and an account line to damage');
my ($lkey) = $lines[$li] =~ /^l 1 ([0-9a-f]{8})/;
my ($akey) = $lines[$ai] =~ /^a 1 ([0-9a-f]{8})/;
for my $i ($li, $ai) {                     # one digit of the first figure
    $lines[$i] =~ s/^([al] 1 [0-9a-f]{64} =\S*(?: =\S+)? )(\d)/$1 . (($2 + 1) % 10)/e
        or die "no figure in $lines[$i]";
}
$t->write_file($file, join('', @lines), raw => 1);
$t->start_nginx;
my $hurt = snapshot();
my $line = $t->wait_for_log(qr/the state file .* is damaged: 2 lines do not check out/);
ok($line, 'damaged: reported') or diag $t->_log_tail;
like($line // '', qr/line ${\($ai + 1)}: its checksum does not match; line ${\($li + 1)}: its checksum does not match/,
     'damaged: the line numbers and why');
like($line // '', qr/\[error\]/, 'damaged: at error level');
is($hurt->{totals}, $good->{totals}, 'damaged: the totals are read');
my %want_l = %{ $good->{ledger} };
delete $want_l{"$lkey openai/gpt-4o"};
is_deeply($hurt->{ledger}, \%want_l, 'damaged: every other ledger entry is read, exactly');
my %want_a = %{ $good->{accounts} };
delete $want_a{$akey};
is_deeply($hurt->{accounts}, \%want_a, 'damaged: every other budget account is read, exactly');
ok(!-e "$file.corrupt", 'damaged: not moved aside');
ok($t->wait_for_log(qr/"cost": 10 records read from .* \(5 budget accounts, 5 ledger entries\)/),
   'damaged: the records read are counted');
sleep 0.5;
$t->stop_nginx;
unlike($t->read_file($file), qr/^l 1 \Q$lkey\E/m, 'damaged: written anew without the bad line');

# --- the totals line damaged: rebuilt from the ledger read -------------------------

$t->write_file($file, $saved =~ s/^totals (\d)/"totals " . (($1 + 1) % 10)/mer, raw => 1);
$t->start_nginx;
my $rebuilt = snapshot();
ok($t->wait_for_log(qr/the totals line of .* is damaged or missing: the zone totals were rebuilt from the \d+ ledger entries read/),
   'totals damaged: rebuilt, and said so');
is($rebuilt->{totals}, $good->{totals}, 'totals damaged: rebuilt to the same figures (nothing was evicted)');
is_deeply($rebuilt->{ledger}, $good->{ledger}, 'totals damaged: the ledger is whole');
$t->stop_nginx;

# --- truncated: the budget accounts come first and are kept ---------------------

my ($first_l) = $saved =~ /\A(.*?^l )/ms;
my $cut = length($first_l) + 30;           # inside the first ledger line
$t->write_file($file, substr($saved, 0, $cut), raw => 1);
$t->start_nginx;
my $trunc = snapshot();
ok($t->wait_for_log(qr/the state file .* is truncated after line \d+/), 'truncated: reported');
is_deeply($trunc->{accounts}, $good->{accounts}, 'truncated: every budget account is kept');
is(scalar keys %{ $trunc->{ledger} }, 0, 'truncated: the ledger after the cut is lost');
is($trunc->{totals}, $good->{totals}, 'truncated: the totals (before the records) are kept');
ok(!-e "$file.corrupt", 'truncated: not moved aside');
$t->stop_nginx;

# --- nothing at all checks out: moved aside -------------------------------------

$t->write_file($file, "garbage\nmore garbage\n", raw => 1);
$t->start_nginx;
ok($t->wait_for_log(qr/the state file .* is corrupt \(no line of it checks out\) and is ignored; it was kept as ".*\.corrupt"/),
   'garbage: corrupt, moved aside');
ok(-e "$file.corrupt", 'garbage: kept as .corrupt');
$t->stop_nginx;
unlink "$file.corrupt";

# --- version 1 files (the old format) still read ----------------------------------

{
    my $d = sha256_hex('Bearer sk-v1');
    my $body = "ngx_ai_gateway_cost_state 1\nzone =cost\ntime 1700000000\n"
             . "totals 7 1 700 70 123456 0 0 0\n"
             . "a 1 $d =/v1/ " . int(time / 86400) . " 5000 0 0 5000 " . int(time) . "\n"
             . "l 1 $d =/v1/ =openai/gpt-4o 7 1 700 70 123456 0 0 0 1700000000 1700000100\n";
    my $v1 = $body . sprintf("end 2 %08x\n", crc32($body));
    $t->write_file($file, $v1, raw => 1);
    $t->start_nginx;
    my $s = snapshot();
    is($s->{totals}, '7 1 700 70 123456', 'v1: the totals read');
    is($s->{ledger}{prefix('sk-v1') . ' openai/gpt-4o'},
       '7 1 700 70 123456 1700000000 1700000100', 'v1: the ledger entry read');
    like($s->{accounts}{prefix('sk-v1')} // '', qr/^5000 5000 /, 'v1: the budget account read');
    ok($t->wait_for_log(qr/2 records read from .*a version 1 file/), 'v1: logged as version 1');
    sleep 0.6;                              # written anew on the next interval
    like($t->read_file($file), qr/^ngx_ai_gateway_cost_state 2 /, 'v1: written anew as version 2');
    $t->stop_nginx;

    # a changed byte in a version 1 file: all or nothing, as before
    $t->write_file($file, $v1 =~ s/ 7 1 700 70 123456 0 0 0 17/ 8 1 700 70 123456 0 0 0 17/r, raw => 1);
    $t->start_nginx;
    ok($t->wait_for_log(qr/is corrupt \(its checksum does not match\) and is ignored/),
       'v1: a changed byte: the whole file refused, as version 1 always was');
    $t->stop_nginx;
    unlink "$file.corrupt";
}

# --- nginx -t: an unwritable directory, a damaged file ---------------------------

$t->write_file($file, $saved =~ s/^(l 1 [0-9a-f]{4})/"$1" =~ tr{0-9a-f}{1-9a-f0}r/mer, raw => 1);
chown 0, 0, $dir;
chmod 0755, $dir;
my ($rc, $out) = $t->nginx_test_config;
is($rc, 0, 'nginx -t: still succeeds');
like($out, qr/test is successful/, 'nginx -t: test is successful');
like($out, qr/\[warn\] ai_cost_zone "cost": the worker processes' user \("nobody"\) cannot write in the directory ".*state" of the state file/,
     'nginx -t: warns that the workers\' user cannot write in the directory');
like($out, qr/\[warn\] ai_cost_zone "cost": the state file .* is damaged: 1 lines do not check out and would be skipped \(line \d+: its checksum does not match\)/,
     'nginx -t: warns about the record that does not check out');
$t->write_file($file, "garbage\n", raw => 1);
($rc, $out) = $t->nginx_test_config;
like($out, qr/\[warn\] ai_cost_zone "cost": the state file .* is corrupt \(no line of it checks out\): a start would ignore it/,
     'nginx -t: warns about a file where nothing checks out');
ok(!-e "$file.corrupt", 'nginx -t: moves nothing');
chown $nobody, -1, $dir;
$t->write_file($file, $saved, raw => 1);
($rc, $out) = $t->nginx_test_config;
unlike($out, qr/\[warn\]/, 'nginx -t: a good file in a writable directory: no warning');

# --- the save error: said once a minute, not every interval -----------------------

unlink $file;
chown 0, 0, $dir;
chmod 0755, $dir;
$t->start_nginx;
my $deadline = time + 2.5;                 # about 12 intervals, each with a change
my $n = 0;
while (time < $deadline) { chat('sk-busy-' . $n++ % 3); sleep 0.05 }
my $errors = $t->error_log_contains(qr/ai_cost_zone "cost": cannot write its state/);
is($errors, 1, "save error: said once in 2.5 s of failing saves ($n calls)");
ok($t->error_log_contains(qr/cannot write its state: open\(\) ".*cost\.state\.[0-9a-f]{16}\.tmp" failed \(said at most once a minute\) \(13: Permission denied\)/),
   'save error: says what failed');
chown $nobody, -1, $dir;
chmod 0700, $dir;
chat('sk-busy-0');
ok($t->wait_for_log(qr/its state is written to ".*cost\.state" again, after \d+ failed writes/, 3),
   'save error: the success after it is said');
sleep 0.5;
chat('sk-busy-1');
sleep 0.5;
is($t->error_log_contains(qr/its state is written to .* again/), 1, 'save error: the success said once');
ok(-f $file, 'save error: the file is there now');
$t->stop_nginx;

# --- 50000 records, read streaming ------------------------------------------------

{
    my $now = int(time);
    my $day = int($now / 86400);
    my @l = ("zone =cost", "time $now", 'totals 25000 0 2500000 250000 25000000 0 0 0');
    for my $i (1 .. 25000) {
        my $d = sha256_hex("key-$i");
        push @l, "a 1 $d =/v1/ $day $i 0 0 $i $now";
    }
    for my $i (1 .. 25000) {
        my $d = sha256_hex("key-$i");
        push @l, "l 1 $d =/v1/ =openai/gpt-4o 1 0 100 10 1000 0 0 0 $now $now";
    }
    my $v2 = join '', map { line_crc($_) . "\n" }
             'ngx_ai_gateway_cost_state 2', @l, 'end 50000';
    my $v1 = join '', map { "$_\n" } 'ngx_ai_gateway_cost_state 1', @l;
    $v1 .= sprintf "end 50000 %08x\n", crc32($v1);
    $t->write_file($file, $v2, raw => 1);

    $t->write_config(conf(size => '64m', interval => '10s'));
    my $t0 = time;
    $t->start_nginx(timeout => 60);
    my $took = time - $t0;
    ok($t->wait_for_log(qr/50000 records read from .* \(25000 budget accounts, 25000 ledger entries\)/),
       '50000 records: read');
    my ($z) = grep { $_->{zone} eq 'cost' } @{ status()->{zones} };
    is("$z->{entries} $z->{accounts}", '25000 25000', '50000 records: all in the zone');
    $t->stop_nginx;

    # the memory of the process that read it: a master in the foreground
    # (with "daemon on" the reader is the parent, gone at once); a version
    # 1 file, read in two passes, each streaming
    $t->write_file($file, $v1, raw => 1);
    my $size = -s $file;
    $t->write_config(conf(size => '64m', interval => '10s') =~ s/^daemon on;/daemon off;/mr);
    my $log0 = -s $t->error_log_path;
    my $pid = fork // die;
    if ($pid == 0) {
        my %san = $t->_sanitizer_env;
        @ENV{keys %san} = values %san;
        open STDOUT, '>', '/dev/null';
        open STDERR, '>', '/dev/null';
        { exec $GatewayTest::NGINX, '-p', $t->prefix . '/', '-c', 'conf/nginx.conf' }
        POSIX::_exit(1);
    }
    my $until = time + 30;
    sleep 0.05 until $t->_log_since($log0) =~ /50000 records read/ || time > $until;
    like($t->_log_since($log0), qr/50000 records read from .*a version 1 file/,
         '50000 records, version 1: read');
    sleep 0.2;
    my $ps = $t->read_file("/proc/$pid/status") // '';
    my %m = map { $ps =~ /^$_:\s+(\d+)/m ? ($_ => $1) : ($_ => 0) } qw(VmHWM RssAnon RssFile RssShmem);
    my $peak = $m{VmHWM} - $m{RssShmem} - $m{RssFile};
    diag(sprintf "50000 records, %.1f MB version 1 file (v2 read in %.2f s, start to serving); "
         . "master VmHWM %d kB (RssShmem %d, RssFile %d, RssAnon %d): peak private %d kB",
         $size / 1e6, $took, @m{qw(VmHWM RssShmem RssFile RssAnon)}, $peak);
    SKIP: {
        skip 'memory under a sanitizer is not the memory', 1 if $ENV{AI_GW_SANITIZE};
        ok($m{VmHWM} && $peak * 1024 < $size / 2,
           "50000 records: read streaming, the master's peak private memory ($peak kB) "
           . "under half the file's size");
    }
    kill 'QUIT', $pid;
    waitpid $pid, 0;
}

$t->done_testing_checks;
done_testing;
