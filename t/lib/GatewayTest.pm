package GatewayTest;

# Test harness for ngx_ai_gateway_module, in the style of nginx-tests:
# a private nginx prefix per test, mock providers, HTTP / SSE helpers and
# error-log checks.  Perl core modules only.  Full API in the POD at the end.

use strict;
use warnings;

use Cwd qw(abs_path);
use Errno qw(EAGAIN EWOULDBLOCK EINTR);
use Fcntl qw(:flock SEEK_SET);
use File::Basename qw(dirname basename);
use File::Path qw(make_path remove_tree);
use HTTP::Tiny;
use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use POSIX qw(WNOHANG);
use Socket qw(IPPROTO_TCP TCP_NODELAY);
use Storable ();
use Test::More ();
use Time::HiRes qw(time sleep);

our $VERSION = '0.1';

# The repository root (this file is t/lib/GatewayTest.pm).
our $ROOT = abs_path(dirname(abs_path(__FILE__)) . '/../..');
our $NGINX = $ENV{AI_GW_NGINX} || '/usr/sbin/nginx';
our $MOCK = "$ROOT/t/lib/mock_provider.pl";

my $JSON = JSON::PP->new->utf8->canonical->allow_nonref;

my @LIVE;          # every harness object, cleaned up at exit
my %PORTS_GIVEN;   # ports handed out by free_port in this process

# A test killed by SIGINT / SIGTERM still runs END (and so cleans up);
# writes to a closed socket return an error instead of killing the test.
$SIG{INT}  = sub { exit 130 } unless $SIG{INT};
$SIG{TERM} = sub { exit 143 } unless $SIG{TERM};
$SIG{PIPE} = 'IGNORE' unless $SIG{PIPE};

# ======================================================================
# Construction and the prefix directory

sub new {
    my ($class, %args) = @_;
    my $name = $args{name} // basename($0, '.t');
    $name =~ s/[^\w.-]+/_/g;
    my $self = bless {
        name      => $name,
        owner     => $$,                 # only this process cleans up
        prefix    => "$ROOT/t/servroot-$name-$$",
        mocks     => {},                 # name => {pid port record log answers}
        answers   => {},                 # mock name => {model => text}
        allowed   => [],                 # regexps excused from the log check
        ignored   => {},                 # exact log lines excused
        checked   => 0,
    }, $class;
    _kill_stale_nginx();

    my $p = $self->{prefix};
    remove_tree($p) if -e $p;
    make_path("$p/logs", "$p/conf", "$p/temp", "$p/state");
    # nginx workers run as "nobody" when the tests run as root: let them
    # write state files and temp files in the prefix.
    chmod 0777, $p, "$p/logs", "$p/temp", "$p/state";

    $self->{port} = $self->free_port;
    push @LIVE, $self;
    return $self;
}

sub prefix { $_[0]{prefix} }
sub port   { $_[0]{port} }
sub name   { $_[0]{name} }
sub base_url { 'http://127.0.0.1:' . $_[0]{port} }
sub error_log_path { "$_[0]{prefix}/logs/error.log" }

# Absolute path of the module .so (env AI_GW_MODULE, default build/).
sub module_path {
    my $m = $ENV{AI_GW_MODULE} || "$ROOT/build/ngx_ai_gateway_module.so";
    return $m =~ m{^/} ? $m : "$ROOT/$m";
}

sub has_module { -f $_[0]->module_path }

# An unused TCP port on 127.0.0.1, below the kernel's ephemeral range (so
# outgoing connections never hold it) and not handed out before here.
sub free_port {
    my ($self) = @_;
    for (1 .. 200) {
        my $port = 20000 + int(rand(12000));
        next if $PORTS_GIVEN{$port};
        my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                      LocalPort => $port, Proto => 'tcp',
                                      Listen => 1, ReuseAddr => 1) or next;
        close $s;
        $PORTS_GIVEN{$port} = 1;
        return $port;
    }
    die "GatewayTest: no free port found\n";
}

# Write a file under the prefix (relative path) or anywhere (absolute),
# after placeholder substitution (see write_config).  Returns its path.
sub write_file {
    my ($self, $file, $text, %o) = @_;
    my $path = $file =~ m{^/} ? $file : "$self->{prefix}/$file";
    make_path(dirname($path));
    $text = $self->expand($text) unless $o{raw};
    open my $fh, '>:raw', $path or die "GatewayTest: write $path: $!\n";
    print $fh $text;
    close $fh or die "GatewayTest: write $path: $!\n";
    return $path;
}

sub read_file {
    my ($self, $file) = @_;
    my $path = $file =~ m{^/} ? $file : "$self->{prefix}/$file";
    open my $fh, '<:raw', $path or return undef;
    local $/;
    return scalar <$fh>;
}

# ======================================================================
# Configuration

# Placeholder substitution: %%MODULE%% %%PORT%% %%PREFIX%%
# %%MOCK_PORT_<name>%%.  An unknown placeholder is an error.
sub expand {
    my ($self, $text) = @_;
    my %v = (MODULE => $self->module_path, PORT => $self->{port},
             PREFIX => $self->{prefix});
    $v{"MOCK_PORT_$_"} = $self->{mocks}{$_}{port} for keys %{$self->{mocks}};
    $text =~ s/%%(\w+)%%/
        defined $v{$1} ? $v{$1}
                       : die "GatewayTest: unknown placeholder %%$1%% "
                           . "(mock not started?)\n"/ge;
    return $text;
}

# The top of every nginx.conf.  module => 0 leaves out load_module
# (harness self-tests without the module).
sub config_preamble {
    my ($self, %o) = @_;
    my $load = (!exists $o{module} || $o{module})
             ? "load_module %%MODULE%%;\n" : '';
    return $load . <<'EOF';
daemon on;
master_process on;
worker_processes 2;
error_log logs/error.log debug;
pid logs/nginx.pid;
events { worker_connections 1024; }
EOF
}

# Lines for the top of the http block: access log and every temp path
# inside the prefix (the compiled-in ones are under /var/lib/nginx).
sub http_preamble {
    return <<'EOF';
    access_log logs/access.log;
    client_body_temp_path %%PREFIX%%/temp/body;
    proxy_temp_path %%PREFIX%%/temp/proxy;
    fastcgi_temp_path %%PREFIX%%/temp/fastcgi;
    uwsgi_temp_path %%PREFIX%%/temp/uwsgi;
    scgi_temp_path %%PREFIX%%/temp/scgi;
EOF
}

# Writes conf/nginx.conf (a full config, after substitution); returns the
# expanded text.
sub write_config {
    my ($self, $text) = @_;
    my $expanded = $self->expand($text);
    $self->write_file('conf/nginx.conf', $expanded, raw => 1);
    return $expanded;
}

# ======================================================================
# nginx

# With AI_GW_SANITIZE set (the path of libasan.so, by ./build.sh
# test-asan), nginx runs with the sanitizer runtime preloaded, since the
# module is instrumented and the system nginx is not; reports go to
# logs/asan.PID and logs/ubsan.PID, which error_log_problems reads.
sub _sanitizer_env {
    my ($self) = @_;
    my $lib = $ENV{AI_GW_SANITIZE} or return ();
    my $logs = "$self->{prefix}/logs";
    return (LD_PRELOAD => $lib,
            ASAN_OPTIONS => "log_path=$logs/asan:detect_leaks=1",
            LSAN_OPTIONS => "suppressions=$ROOT/t/lsan.supp"
                . ":print_suppressions=0",
            UBSAN_OPTIONS => "log_path=$logs/ubsan:print_stacktrace=1");
}

sub _nginx_args {
    my ($self) = @_;
    return ('-p', "$self->{prefix}/", '-c', 'conf/nginx.conf',
            '-e', "$self->{prefix}/logs/error.log");
}

# Runs a command; returns (exit code, stdout+stderr).  Exit code 255+ for
# a command that could not start; -1 on timeout (the command is killed).
sub _run {
    my ($self, $timeout, @cmd) = @_;
    my $out = "$self->{prefix}/logs/.run-$$.out";
    my $pid = fork;
    die "GatewayTest: fork: $!\n" unless defined $pid;
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $out;
        open STDERR, '>&', \*STDOUT;
        { exec { $cmd[0] } @cmd }
        print STDERR "exec $cmd[0]: $!\n";
        POSIX::_exit(255);
    }
    my $deadline = time + $timeout;
    my $rc;
    while (1) {
        my $r = waitpid($pid, WNOHANG);
        if ($r == $pid) { $rc = $? >> 8; $rc = 128 + ($? & 127) if $? & 127; last }
        if (time > $deadline) { kill 'KILL', $pid; waitpid($pid, 0); $rc = -1; last }
        sleep 0.01;
    }
    my $text = $self->read_file($out) // '';
    unlink $out;
    return ($rc, $text);
}

# Lines appended to error.log while $code runs are excused from the
# problem check (used where a failure is the expected result).
sub _excusing_new_log_lines {
    my ($self, $code) = @_;
    my $log = $self->error_log_path;
    my $before = -s $log || 0;
    my @r = $code->();
    my $size = -s $log || 0;
    if ($size > $before && open my $fh, '<:raw', $log) {
        seek $fh, $before, SEEK_SET;
        while (my $line = <$fh>) { chomp $line; $self->{ignored}{$line} = 1 }
    }
    return @r;
}

# nginx -t on the current config: (exit code, output).  Its log lines do
# not count as problems (a failing -t is what config-error tests want).
sub nginx_test_config {
    my ($self) = @_;
    return $self->_excusing_new_log_lines(sub {
        my %san = $self->_sanitizer_env;
        local @ENV{keys %san} = values %san;
        $self->_run(30, $NGINX, '-t', $self->_nginx_args);
    });
}

sub start_nginx {
    my ($self, %o) = @_;
    die "GatewayTest: nginx already running\n" if $self->nginx_pid;
    unlink "$self->{prefix}/logs/nginx.pid";
    my %san = $self->_sanitizer_env;
    local @ENV{keys %san} = values %san;
    my ($rc, $out) = $self->_run(30, $NGINX, $self->_nginx_args);
    die "GatewayTest: nginx failed to start (exit $rc):\n$out\n"
        . $self->_log_tail if $rc != 0;

    my $deadline = time + ($o{timeout} // 10);
    my $master;
    until ($master = $self->_pid_from_file) {
        die "GatewayTest: nginx wrote no pid file\n$out\n" . $self->_log_tail
            if time > $deadline;
        sleep 0.02;
    }
    $self->{nginx_pid} = $master;
    until ($self->_port_open($self->{port})) {
        if (time > $deadline || !_alive($master)) {
            my $tail = $self->_log_tail;
            $self->stop_nginx;
            die "GatewayTest: nginx is not accepting on port $self->{port}\n$tail";
        }
        sleep 0.02;
    }
    # the workers are the ones that answer: wait for them too
    my @w;
    until (@w = $self->worker_pids) {
        last if time > $deadline;
        sleep 0.02;
    }
    return $master;
}

# The master's pid while nginx runs, else undef.
sub nginx_pid {
    my ($self) = @_;
    my $pid = $self->{nginx_pid} or return undef;
    return _alive($pid) ? $pid : undef;
}

# Active worker pids (not those shutting down after a reload).
sub worker_pids {
    my ($self) = @_;
    my $master = $self->nginx_pid or return ();
    return grep { _cmdline($_) =~ /worker process$/ } _children($master);
}

# Graceful reload (SIGHUP to the master, as `nginx -s reload` sends; a
# signal rather than -s, which would itself need a valid config).  Waits
# until every active worker is a new one.  A reload nginx refuses (bad
# config) dies with the log tail -- or with may_fail => 1 returns 0 and
# excuses the [emerg] lines it logged.  Returns 1 on success.
sub reload {
    my ($self, %o) = @_;
    my $master = $self->nginx_pid or die "GatewayTest: nginx is not running\n";
    my %old = map { $_ => 1 } $self->worker_pids;
    my $log = $self->error_log_path;
    my $before = -s $log || 0;
    delete $self->{ua};               # its kept-alive connection is stale
    kill 'HUP', $master;

    my $deadline = time + ($o{timeout} // 10);
    while (time < $deadline) {
        my @now = $self->worker_pids;
        return 1 if @now && !grep { $old{$_} } @now;
        if ((-s $log || 0) > $before) {
            my $new = $self->_log_since($before);
            if ($new =~ /\[emerg\]/) {
                sleep 0.1;             # let the master finish logging
                $new = $self->_log_since($before);
                # reported here, by the return value or the die: not again
                # as a log problem
                $self->{ignored}{$_} = 1 for split /\n/, $new;
                return 0 if $o{may_fail};
                die "GatewayTest: reload refused:\n$new";
            }
        }
        sleep 0.02;
    }
    return 0 if $o{may_fail};
    die "GatewayTest: no new workers after reload\n" . $self->_log_tail;
}

# Graceful stop (SIGQUIT, as `nginx -s quit`), waiting for the master and
# workers to exit; then SIGTERM, then SIGKILL.
sub stop_nginx {
    my ($self, %o) = @_;
    my $master = $self->{nginx_pid} or return;
    delete $self->{ua};
    my @pids = ($master, _children($master));
    for my $sig ('QUIT', 'TERM', 'KILL') {
        kill $sig, $sig eq 'KILL' ? @pids : $master;
        my $deadline = time + ($sig eq 'QUIT' ? ($o{timeout} // 10) : 5);
        while (time < $deadline) {
            last unless grep { _alive($_) } @pids;
            sleep 0.02;
        }
        last unless grep { _alive($_) } @pids;
        Test::More::diag("GatewayTest: nginx did not stop on SIG$sig")
            unless $sig eq 'KILL';
    }
    delete $self->{nginx_pid};
}

sub _pid_from_file {
    my ($self) = @_;
    my $pid = $self->read_file('logs/nginx.pid') // return undef;
    return $pid =~ /^(\d+)/ ? $1 : undef;
}

sub _port_open {
    my ($self, $port) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp', Timeout => 1);
    return $s ? 1 : 0;
}

# --- processes, from /proc (pid 1 here may not reap zombies: a zombie
# counts as dead)

# Is process $pid running (a zombie is not)?
sub process_alive { shift if ref $_[0] || ($_[0] // "") eq __PACKAGE__; _alive(@_) }

sub _alive {
    my ($pid) = @_;
    return 0 unless $pid && kill 0, $pid;
    open my $fh, '<', "/proc/$pid/stat" or return 0;
    my $stat = <$fh> // return 0;
    my ($state) = substr($stat, rindex($stat, ')') + 2) =~ /^(\S)/;
    return ($state // 'Z') ne 'Z' && $state ne 'X';
}

sub _children {
    my ($ppid) = @_;
    my @kids;
    opendir my $dh, '/proc' or return ();
    for my $pid (grep { /^\d+$/ } readdir $dh) {
        open my $fh, '<', "/proc/$pid/stat" or next;
        my $stat = <$fh> // next;
        my @f = split ' ', substr($stat, rindex($stat, ')') + 2);
        push @kids, $pid if $f[1] == $ppid && $f[0] ne 'Z';
    }
    return @kids;
}

sub _cmdline {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/cmdline" or return '';
    local $/;
    my $c = <$fh> // '';
    $c =~ s/\0+$//;
    $c =~ s/\0/ /g;
    return $c;
}

# nginx masters left by earlier test processes that were killed (SIGKILL
# skips END): a master of a t/servroot-*-<dead pid> prefix is stopped.
sub _kill_stale_nginx {
    for my $dir (glob "$ROOT/t/servroot-*") {
        my ($owner) = $dir =~ /-(\d+)$/ or next;
        next if _alive($owner);
        open my $fh, '<', "$dir/logs/nginx.pid" or next;
        my ($pid) = (<$fh> // '') =~ /^(\d+)/ or next;
        next unless _alive($pid) && _cmdline($pid) =~ /\Q$dir\E/;
        kill 'TERM', $pid;
    }
}

# ======================================================================
# Mock providers

# Starts t/lib/mock_provider.pl; returns its port.  Options: name (default
# "m1"), workers, args => [extra arguments].
sub start_mock {
    my ($self, %o) = @_;
    my $name = $o{name} // 'm1';
    die "GatewayTest: mock '$name' already running\n" if $self->{mocks}{$name};
    die "GatewayTest: mock name '$name' must be a word\n" unless $name =~ /^\w+$/;
    my $p = $self->{prefix};
    my %m = (record  => "$p/logs/mock-$name.jsonl",
             log     => "$p/logs/mock-$name.log",
             answers => "$p/conf/mock-$name-answers.json");
    unlink $m{log};
    { open my $touch, ">>", $m{record} or die "GatewayTest: $m{record}: $!\n" }

    my @cmd = ($^X, $MOCK, '--port', 0, '--record', $m{record},
               '--answers', $m{answers}, '--watch-pid', $$,
               ($o{workers} ? ('--workers', $o{workers}) : ()),
               @{ $o{args} || [] });
    my $pid = fork;
    die "GatewayTest: fork: $!\n" unless defined $pid;
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $m{log};
        open STDERR, '>&', \*STDOUT;
        { exec { $cmd[0] } @cmd }
        print STDERR "exec: $!\n";
        POSIX::_exit(255);
    }
    $m{pid} = $pid;
    $self->{mocks}{$name} = \%m;

    my $deadline = time + 10;
    while (1) {
        my $out = $self->read_file($m{log}) // '';
        if ($out =~ /^READY (\d+)$/m) { $m{port} = $1; last }
        if (waitpid($pid, WNOHANG) == $pid || time > $deadline) {
            delete $self->{mocks}{$name};
            kill 'KILL', $pid;
            die "GatewayTest: mock '$name' did not start:\n$out\n";
        }
        sleep 0.01;
    }
    return $m{port};
}

sub mock_port {
    my ($self, $name) = @_;
    my $m = $self->{mocks}{$name // 'm1'} or die "GatewayTest: no mock '$name'\n";
    return $m->{port};
}

sub stop_mock {
    my ($self, $name) = @_;
    my $m = delete $self->{mocks}{$name // 'm1'} or return;
    kill 'TERM', $m->{pid};
    my $deadline = time + 5;
    while (time < $deadline) {
        return if waitpid($m->{pid}, WNOHANG) != 0;
        sleep 0.01;
    }
    kill 'KILL', $m->{pid};
    waitpid($m->{pid}, 0);
}

# The requests a mock received, in arrival order: arrayref of hashes
# {time method path headers body conn conn_request}, plus body_json (the
# body decoded, when it is JSON).  Works after stop_mock too.
sub mock_records {
    my ($self, $name) = @_;
    my $file = "$self->{prefix}/logs/mock-" . ($name // 'm1') . ".jsonl";
    open my $fh, '<:raw', $file or return [];
    flock $fh, LOCK_SH;
    my @recs;
    my $plain = JSON::PP->new;                # body is a character string
    while (my $line = <$fh>) {
        my $r = eval { $JSON->decode($line) } or next;
        $r->{body_json} = eval { $plain->decode($r->{body}) }
            if defined $r->{body} && $r->{body} =~ /^\s*[\[{]/;
        push @recs, $r;
    }
    return \@recs;
}

sub clear_records {
    my ($self, $name) = @_;
    my $file = "$self->{prefix}/logs/mock-" . ($name // 'm1') . ".jsonl";
    open my $fh, '+<', $file or return;
    flock $fh, LOCK_EX;
    truncate $fh, 0;
    close $fh;
}

# Waits until the mock has at least $n records (default timeout 5 s);
# returns the records (fewer on timeout).
sub wait_records {
    my ($self, $name, $n, $timeout) = @_;
    my $deadline = time + ($timeout // 5);
    while (1) {
        my $r = $self->mock_records($name);
        return $r if @$r >= $n || time > $deadline;
        sleep 0.02;
    }
}

# Canned answer: requests naming $model get $text as the answer (usage
# follows the text); $text undef removes it.  Takes effect at once.
sub mock_answer {
    my ($self, $name, $model, $text) = @_;
    my $m = $self->{mocks}{$name} or die "GatewayTest: no mock '$name'\n";
    my $a = $self->{answers}{$name} //= {};
    if (defined $text) { $a->{$model} = $text } else { delete $a->{$model} }
    my $tmp = "$m->{answers}.tmp";
    $self->write_file($tmp, $JSON->encode($a), raw => 1);
    rename $tmp, $m->{answers} or die "GatewayTest: rename: $!\n";
}

# ======================================================================
# HTTP helpers

sub _url {
    my ($self, $path, $port) = @_;
    return $path if $path =~ m{^https?://};
    return 'http://127.0.0.1:' . ($port // $self->{port}) . $path;
}

sub _decode_json_body {
    my ($body) = @_;
    return undef unless defined $body && $body =~ /^\s*[\[{]/;
    return eval { $JSON->decode($body) };
}

# request(METHOD, PATH, body => $bytes, headers => {...}, port => N,
#         timeout => S, keep_alive => 0|1)
# PATH is a path on the gateway (or on port N), or a full URL.  Returns
# the HTTP::Tiny response hash (status, reason, content, headers with
# lowercased names, success; status 599 = connection error, text in
# content) plus json (the decoded body when it is JSON) and elapsed
# (seconds).  Each request uses a new connection unless keep_alive => 1,
# which reuses one kept-alive connection (dropped on reload/stop).
sub request {
    my ($self, $method, $path, %o) = @_;
    my $ua;
    if ($o{keep_alive}) {
        $ua = $self->{ua} //= HTTP::Tiny->new(keep_alive => 1, max_redirect => 0,
                                              timeout => $o{timeout} // 60);
    } else {
        $ua = HTTP::Tiny->new(keep_alive => 0, max_redirect => 0,
                              timeout => $o{timeout} // 60);
    }
    my %args = (headers => { %{ $o{headers} || {} } });
    if (defined $o{body}) {
        my $body = $o{body};
        utf8::encode($body) if utf8::is_utf8($body);
        $args{content} = $body;
    }
    my $start = time;
    my $res = $ua->request($method, $self->_url($path, $o{port}), \%args);
    $res->{elapsed} = time - $start;
    $res->{json} = _decode_json_body($res->{content});
    return $res;
}

# POST $data (a Perl structure, sent as JSON; a plain string is sent as
# is) to PATH; same options and result as request().
sub post_json {
    my ($self, $path, $data, %o) = @_;
    my $body = ref $data ? $JSON->encode($data) : $data;
    my %h = ('Content-Type' => 'application/json', %{ $o{headers} || {} });
    return $self->request('POST', $path, %o, body => $body, headers => \%h);
}

sub get {
    my ($self, $path, %o) = @_;
    return $self->request('GET', $path, %o);
}

# stream(PATH, $data, headers => {...}, port => N, timeout => S,
#        method => 'POST')
# One request over a raw HTTP/1.1 connection (defaults: Host, Accept:
# text/event-stream, Connection: close, and with a body Content-Type:
# application/json and Content-Length; headers => {} overrides any), the
# response read as it arrives: chunked transfer encoding decoded
# incrementally and SSE events split on blank lines (LF or CRLF).  Returns
#   status, reason, headers {lowercased name => value, repeats joined ", "}
#   raw_body         the body (de-chunked)
#   events           the data: payload of each event, in arrival order
#                    (several data: lines of one event joined with "\n")
#   event_names      the event: field of each event (undef when none)
#   json_events      each payload decoded (undef for [DONE] / non-JSON)
#   event_times      Time::HiRes time each event was complete
#   start_time       before connecting; first_byte_time: first response
#                    byte; body_time: first body byte; end_time
#   done             a "data: [DONE]" event arrived
#   complete         the body ended properly: the final zero-length chunk
#                    (chunked), all Content-Length bytes, or -- for a
#                    close-delimited body -- the close (which cannot tell
#                    a cut stream from a whole one)
#   closed_early     the connection closed before the body was complete
#   timed_out        the timeout (default 60 s) expired first
#   error            connection or protocol error text
#   write_error      the request could not be sent whole (the response, if
#                    any, is still read)
#   json             the decoded body when it is JSON (error responses)
sub stream {
    my ($self, $path, $data, %o) = @_;
    my $port = $o{port} // $self->{port};
    my $method = $o{method} // 'POST';
    my $body = !defined $data ? '' : ref $data ? $JSON->encode($data) : $data;
    utf8::encode($body) if utf8::is_utf8($body);

    my %r = (status => 0, headers => {}, raw_body => '', events => [],
             event_names => [], json_events => [], event_times => [],
             done => 0, complete => 0, start_time => time);
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                     Proto => 'tcp', Timeout => 5);
    if (!$sock) { $r{error} = "connect: $@"; $r{status} = 599; return \%r }
    setsockopt($sock, IPPROTO_TCP, TCP_NODELAY, 1);

    # default headers, unless the caller sets them (in any case)
    my %h = %{ $o{headers} || {} };
    my %have = map { lc($_) => 1 } keys %h;
    my %def = ('Host' => "127.0.0.1:$port", 'Accept' => 'text/event-stream',
               'Connection' => 'close');
    if ($method ne 'GET' || length $body) {
        $def{'Content-Type'} = 'application/json';
        $def{'Content-Length'} = length $body;
    }
    $have{lc $_} or $h{$_} = $def{$_} for keys %def;
    my $req = "$method $path HTTP/1.1\r\n"
            . join('', map { "$_: $h{$_}\r\n" } sort keys %h) . "\r\n" . $body;
    my $off = 0;
    while ($off < length $req) {
        my $n = syswrite($sock, $req, length($req) - $off, $off);
        if (!defined $n) {
            next if $! == EINTR;
            $r{write_error} = "write: $!";      # the server may have answered
            last;                               # early (413): read it anyway
        }
        $off += $n;
    }

    my $deadline = $r{start_time} + ($o{timeout} // 60);
    my $sel = IO::Select->new($sock);
    my ($buf, $head_done, $mode, $remaining, $chunk_left) = ('', 0, '', 0, undef);
    my $sse = '';            # SSE text not yet split into events
    my $eof = 0;

    # feed de-chunked body bytes to raw_body and the SSE splitter
    my $feed = sub {
        my ($bytes, $now) = @_;
        return unless length $bytes;
        $r{body_time} //= $now;
        $r{raw_body} .= $bytes;
        $sse .= $bytes;
        # a trailing CR may be the first half of CRLF: keep it for later
        my $hold = $sse =~ s/\r\z// ? "\r" : '';
        $sse =~ s/\r\n?/\n/g;
        while ($sse =~ s/\A(.*?)\n\n//s) {
            my $block = $1;
            my (@data, $event);
            for my $line (split /\n/, $block) {
                if ($line =~ /^data:(.*)/) { my $d = $1; $d =~ s/^ //; push @data, $d }
                elsif ($line =~ /^event:\s*(.*)/) { $event = $1 }
            }
            next unless @data;
            my $payload = join "\n", @data;
            push @{$r{events}}, $payload;
            push @{$r{event_names}}, $event;
            push @{$r{event_times}}, $now;
            push @{$r{json_events}}, $payload eq '[DONE]' ? undef
                                                          : _decode_json_body($payload);
            $r{done} = 1 if $payload eq '[DONE]';
        }
        $sse .= $hold;
    };

    READ: while (1) {
        my $left = $deadline - time;
        if ($left <= 0) { $r{timed_out} = 1; last }
        next unless $sel->can_read($left);
        my $n = sysread($sock, $buf, 65536, length $buf);
        my $now = time;
        if (!defined $n) {
            next if $! == EINTR || $! == EAGAIN || $! == EWOULDBLOCK;
            $r{error} = "read: $!";
            $eof = 1;
        } elsif ($n == 0) {
            $eof = 1;
        }
        $r{first_byte_time} //= $now if length $buf;

        if (!$head_done) {
            my $end = index($buf, "\r\n\r\n");
            if ($end < 0) {
                if ($eof) {
                    $r{error} //= $r{write_error} // 'connection closed before the headers';
                    last;
                }
                next;
            }
            my ($line, @lines) = split /\r\n/, substr($buf, 0, $end);
            substr($buf, 0, $end + 4, '');
            @r{qw(status reason)} = $line =~ m{^HTTP/\d\.\d (\d{3}) ?(.*)$};
            $r{status} //= 0;
            for (@lines) {
                my ($k, $v) = /^([^:]+):\s*(.*?)\s*$/ or next;
                $k = lc $k;
                $r{headers}{$k} = exists $r{headers}{$k} ? "$r{headers}{$k}, $v" : $v;
            }
            $head_done = 1;
            if (($r{headers}{'transfer-encoding'} // '') =~ /chunked/i) {
                $mode = 'chunked';
            } elsif (defined $r{headers}{'content-length'}) {
                $mode = 'length';
                $remaining = $r{headers}{'content-length'};
            } else {
                $mode = 'close';
            }
            if ($method eq 'HEAD' || $r{status} =~ /^(1|204|304)/) {
                $r{complete} = 1;
                last;
            }
        }

        if ($mode eq 'length') {
            my $take = substr($buf, 0, $remaining, '');
            $remaining -= length $take;
            $feed->($take, $now);
            if ($remaining == 0) { $r{complete} = 1; last }
        } elsif ($mode eq 'close') {
            $feed->($buf, $now);
            $buf = '';
            if ($eof) { $r{complete} = 1 unless $r{error}; last }
        } else {                                        # chunked
            while (1) {
                if (!defined $chunk_left) {             # want a size line
                    my $eol = index($buf, "\r\n");
                    last if $eol < 0;
                    my ($size) = substr($buf, 0, $eol) =~ /^([0-9a-fA-F]+)/;
                    substr($buf, 0, $eol + 2, '');
                    if (!defined $size) { $r{error} = 'bad chunk size'; last READ }
                    $chunk_left = hex $size;
                    if ($chunk_left == 0) {             # last chunk
                        $r{complete} = 1;
                        last READ;
                    }
                }
                last if length($buf) < $chunk_left + 2;
                $feed->(substr($buf, 0, $chunk_left), $now);
                substr($buf, 0, $chunk_left + 2, '');
                $chunk_left = undef;
            }
            # hand over a partial chunk's data at once (for timing)
            if (defined $chunk_left && length $buf) {
                my $take = substr($buf, 0, $chunk_left < length $buf
                                              ? $chunk_left : length $buf, '');
                $chunk_left -= length $take;     # (0: only the CRLF is left)
                $feed->($take, $now);
            }
        }
        last if $eof;
    }
    close $sock;
    $r{end_time} = time;
    $r{closed_early} = ($eof && !$r{complete}) ? 1 : 0;
    $r{json} = _decode_json_body($r{raw_body});
    return \%r;
}

# Runs each code ref in its own process at the same time; returns their
# return values (a hash or array ref, or a scalar), in order.  A code ref
# that dies yields {error => message}.  Children must not call Test::More
# functions: assert on the returned values in the parent.
sub parallel {
    my ($self, @codes) = @_;
    my @kids;
    for my $i (0 .. $#codes) {
        my $file = "$self->{prefix}/logs/.parallel-$$-$i";
        my $pid = fork;
        die "GatewayTest: fork: $!\n" unless defined $pid;
        if ($pid == 0) {
            delete $self->{ua};                 # never share a connection
            my $res = eval { $codes[$i]->() };
            $res = { error => "$@" } if $@;
            eval { Storable::nstore(\$res, $file); 1 }
                or Storable::nstore(\{ error => "result not storable: $@" }, $file);
            POSIX::_exit(0);                    # no END block in children
        }
        push @kids, [$pid, $file];
    }
    my @res;
    for my $k (@kids) {
        waitpid($k->[0], 0);
        my $r = eval { Storable::retrieve($k->[1]) };
        unlink $k->[1];
        push @res, $r ? $$r : { error => 'child produced no result' };
    }
    return @res;
}

# ======================================================================
# Node SDK clients (t/sdk/*.mjs, modules installed in t/node_modules)

sub has_node_sdk {
    my ($self, $pkg) = @_;
    $pkg //= 'openai';
    return -d "$ROOT/t/node_modules/$pkg" && _which('node');
}

sub _which {
    my ($cmd) = @_;
    for (split /:/, $ENV{PATH} // '') { return "$_/$cmd" if -x "$_/$cmd" }
    return undef;
}

# Runs `node t/sdk/SCRIPT ARGS...` (timeout 60 s); returns {exit, stdout,
# stderr, json (the last stdout line decoded)}.  Environment: env => {}.
sub node_sdk {
    my ($self, $script, @args) = @_;
    my %env = ref $args[-1] eq 'HASH' ? %{ pop @args } : ();
    my ($out, $err) = map { "$self->{prefix}/logs/.node-$$.$_" } qw(out err);
    my $pid = fork;
    die "GatewayTest: fork: $!\n" unless defined $pid;
    if ($pid == 0) {
        $ENV{$_} = $env{$_} for keys %env;
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $out;
        open STDERR, '>', $err;
        chdir "$ROOT/t";
        { exec "node", "$ROOT/t/sdk/$script", @args }
        print STDERR "exec node: $!\n";
        POSIX::_exit(255);
    }
    my $deadline = time + 60;
    my $rc;
    while (1) {
        if (waitpid($pid, WNOHANG) == $pid) { $rc = $? >> 8; last }
        if (time > $deadline) { kill 'KILL', $pid; waitpid($pid, 0); $rc = -1; last }
        sleep 0.02;
    }
    my %r = (exit => $rc, stdout => $self->read_file($out) // '',
             stderr => $self->read_file($err) // '');
    unlink $out, $err;
    my ($last) = reverse grep { /\S/ } split /\n/, $r{stdout};
    $r{json} = _decode_json_body($last);
    return \%r;
}

# ======================================================================
# Error log checks

sub _log_since {
    my ($self, $offset) = @_;
    open my $fh, '<:raw', $self->error_log_path or return '';
    seek $fh, $offset, SEEK_SET;
    local $/;
    return scalar(<$fh>) // '';
}

# The last lines of error.log at info level and above, without the
# routine [notice] lines (for failure messages).
sub _log_tail {
    my ($self, $n) = @_;
    my @l = grep { m{^\d{4}/\d\d/\d\d \S+ \[(\w+)\]} && $1 ne "debug" && $1 ne "notice" }
            split /\n/, $self->_log_since(0);   # (no multi-line debug dumps)
    @l = @l[-($n // 30) .. -1] if @l > ($n // 30);
    return @l ? "--- error.log (tail, no debug/notice lines):\n" . join("\n", @l) . "\n" : '';
}

# Excuse log lines matching $re from the problem check.
sub allow_log_problems {
    my ($self, @re) = @_;
    push @{$self->{allowed}}, @re;
}

# Lines of error.log at [alert] / [emerg] / [crit] or reporting a worker
# killed by a signal, and mock-provider worker crashes -- less those
# excused (allow_log_problems, failed nginx -t / reload(may_fail)).
sub error_log_problems {
    my ($self) = @_;
    my @p;
    for my $line (split /\n/, $self->_log_since(0)) {
        next unless $line =~ /^\S+ \S+ \[(?:alert|emerg|crit)\]/
                 || $line =~ /worker process \d+ exited on signal/;
        next if $self->{ignored}{$line};
        next if grep { $line =~ $_ } @{$self->{allowed}};
        push @p, $line;
    }
    for my $log (glob "$self->{prefix}/logs/asan.* $self->{prefix}/logs/ubsan.*") {
        my $text = $self->read_file($log) // '';
        push @p, basename($log) . ":\n$text"
            if $text =~ /ERROR: |runtime error|SUMMARY: /;
    }
    for my $log (glob "$self->{prefix}/logs/mock-*.log") {
        my $text = $self->read_file($log) // '';
        push @p, map { basename($log) . ": $_" }
                 grep { /MOCK WORKER DIED|worker \d+ exited/ } split /\n/, $text;
    }
    return @p;
}

sub error_log_contains {
    my ($self, $re) = @_;
    return scalar grep { $_ =~ $re } split /\n/, $self->_log_since(0);
}

# Waits (default 5 s) until a line of error.log matches; returns it or undef.
sub wait_for_log {
    my ($self, $re, $timeout) = @_;
    my $deadline = time + ($timeout // 5);
    while (1) {
        my ($l) = grep { $_ =~ $re } split /\n/, $self->_log_since(0);
        return $l if defined $l || time > $deadline;
        sleep 0.05;
    }
}

# Stops nginx and the mocks, then one Test::More assertion: no problem
# lines (see error_log_problems).  Call it before done_testing().
sub done_testing_checks {
    my ($self) = @_;
    $self->stop_nginx;
    $self->stop_mock($_) for keys %{$self->{mocks}};
    my @p = $self->error_log_problems;
    $self->{checked} = 1;
    Test::More::ok(!@p, "$self->{name}: no alert/crit/emerg or crashed workers in the logs")
        or Test::More::diag(join "\n", @p);
}

# ======================================================================
# Cleanup: at exit (also after die or SIGINT/SIGTERM) every harness
# object stops its nginx and mocks and removes its prefix (unless env
# TEST_KEEP is set).  Problems found here, when done_testing_checks was
# not called, are reported and make the test's exit status non-zero.

sub _cleanup {
    my ($self) = @_;
    return if $self->{cleaned} || $self->{owner} != $$;
    $self->{cleaned} = 1;
    my $exit = $?;
    eval { $self->stop_nginx };
    eval { $self->stop_mock($_) } for keys %{$self->{mocks}};
    if (!$self->{checked}) {
        my @p = $self->error_log_problems;
        if (@p) {
            Test::More::diag("$self->{name}: problems in the logs:\n" . join "\n", @p);
            $exit ||= 1;
        }
    }
    my $failing = !Test::More->builder->is_passing || $exit;
    Test::More::diag($self->_log_tail) if $failing && -f $self->error_log_path;
    if ($ENV{TEST_KEEP}) {
        Test::More::diag("$self->{name}: kept $self->{prefix}");
    } else {
        remove_tree($self->{prefix});
    }
    $? = $exit;
}

END {
    my $exit = $?;
    for my $t (@LIVE) { $? = $exit; $t->_cleanup; $exit = $? }
    $? = $exit;
}

1;

__END__

=head1 NAME

GatewayTest - test harness for ngx_ai_gateway_module (nginx-tests style)

=head1 SYNOPSIS

    use lib 't/lib';
    use Test::More;
    use GatewayTest;

    my $t = GatewayTest->new(name => 'basic');
    plan skip_all => 'module not built' unless $t->has_module;
    $t->start_mock(name => 'm1');
    $t->write_config($t->config_preamble . "http {\n" . $t->http_preamble . <<'EOF');
        ai_provider openai type=openai pass=/_ai/openai key=sk-test;
        server {
            listen 127.0.0.1:%%PORT%%;
            location /v1/ { ai_gateway; }
            location /_ai/openai/ { internal;
                proxy_pass http://127.0.0.1:%%MOCK_PORT_m1%%/; }
        }
    }
    EOF
    $t->start_nginx;
    my $r = $t->post_json('/v1/chat/completions',
        { model => 'openai/gpt-4o', messages => [{ role => 'user', content => 'Hi' }] });
    is($r->{status}, 200);
    is($r->{json}{choices}[0]{message}{content}, 'Mock answer to: Hi');
    $t->done_testing_checks;
    done_testing;

=head1 API

=over

=item new(name => NAME)

Fresh prefix C<t/servroot-NAME-PID> (logs/, conf/, temp/, state/; made
world-writable because nginx workers run as nobody when tests run as root),
and a free port for the gateway (C<< $t->port >>).  Removed at exit unless
C<TEST_KEEP> is set.  Accessors: prefix, port, name, base_url,
error_log_path, module_path, has_module.

=item free_port

An unused TCP port on 127.0.0.1 (20000-31999, below the ephemeral range).

=item start_mock(name => 'm1', workers => N, args => [...]) / mock_port(NAME) / stop_mock(NAME)

Starts t/lib/mock_provider.pl with a record file in the prefix; returns its
port.  It dies with the test process even when that is SIGKILLed.

=item mock_records(NAME) / clear_records(NAME) / wait_records(NAME, N, TIMEOUT)

Records: arrayref of {time, method, path, headers (lowercased), body (raw
string), body_json (decoded when JSON), conn, conn_request}.

=item mock_answer(NAME, MODEL, TEXT)

Canned answer for requests naming MODEL (TEXT undef removes it).

=item expand(TEXT) / write_config(TEXT) / write_file(PATH, TEXT) / read_file(PATH)

Placeholders: C<%%MODULE%%>, C<%%PORT%%>, C<%%PREFIX%%>,
C<%%MOCK_PORT_name%%>; an unknown one dies.  Relative paths are under the
prefix.

=item config_preamble(module => 1) / http_preamble

The common top of nginx.conf (load_module, daemon on, 2 workers, debug
error log, pid, events); the http-level access log and temp paths.

=item nginx_test_config

C<nginx -t>: returns (exit code, output); its log lines are excused.

=item start_nginx / reload(may_fail => 0, timeout => 10) / stop_nginx / nginx_pid / worker_pids / process_alive(PID)

start dies with the output and log tail on failure.  reload sends SIGHUP and
waits until every active worker is new (dies if nginx refuses the config,
or returns 0 with may_fail).  stop sends QUIT, then TERM, then KILL.

=item request(METHOD, PATH, body =>, headers =>, port =>, timeout =>, keep_alive =>)

=item post_json(PATH, DATA, ...) / get(PATH, ...)

HTTP::Tiny response hash plus C<json> and C<elapsed>.

=item stream(PATH, DATA, headers =>, port =>, timeout =>, method =>)

Raw HTTP/1.1 with incremental chunked and SSE decoding; returns status,
headers, raw_body, events, event_names, json_events, event_times,
start_time, first_byte_time, body_time, end_time, done, complete,
closed_early, timed_out, error, json.

=item parallel(CODE, CODE, ...)

Runs each code ref in a child process at once; returns their results.

=item has_node_sdk(PKG) / node_sdk(SCRIPT, ARGS..., {ENV})

Runs t/sdk/SCRIPT with node; {exit, stdout, stderr, json}.

=item error_log_problems / error_log_contains(RE) / wait_for_log(RE, T) / allow_log_problems(RE...)

=item done_testing_checks

Stops nginx and mocks, asserts no problem lines (one test).  Call before
done_testing.  Without it, problems still fail the test at exit.

=back

=cut
