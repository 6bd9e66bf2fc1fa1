package RedisTest;

# A redis-server for the fleet tests (t/92-lease.t): started on
# 127.0.0.1 under a watchdog process that kills it if the test dies, and
# a tiny RESP client (one command, one answer).  For t/90-fleet.t and
# t/92-lease.t.

use strict;
use warnings;

use Exporter qw(import);
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);

our @EXPORT_OK = qw(sync_of wait_for);

sub find_server {
    my ($s) = grep { -x } ($ENV{AI_GW_REDIS_SERVER} // ()),
                          '/usr/bin/redis-server', '/usr/local/bin/redis-server';
    return $s;
}

# new(server => PATH, port => N, dir => DIR, aof => 1): aof keeps every
# write (appendfsync always), for a Redis killed with SIGKILL
sub new {
    my ($class, %o) = @_;
    my $self = bless { %o, owner => $$ }, $class;
    mkdir $self->{dir} unless -d $self->{dir};
    return $self;
}

sub start {
    my ($self) = @_;
    my @persist = $self->{aof}
        ? ('--appendonly', 'yes', '--appendfsync', 'always', '--save', '')
        : ('--appendonly', 'no', '--save', '');
    my $owner = $self->{owner};
    my $w = fork // die "fork: $!\n";
    if ($w == 0) {
        my $pid = fork // POSIX::_exit(1);
        if ($pid == 0) {
            open STDIN, '<', '/dev/null';
            open STDOUT, '>>', "$self->{dir}/redis.log";
            open STDERR, '>&', \*STDOUT;
            { exec $self->{server}, '--port', $self->{port},
                   '--bind', '127.0.0.1', @persist, '--dir', $self->{dir},
                   '--daemonize', 'no' }
            POSIX::_exit(127);
        }
        $SIG{TERM} = sub { kill 'KILL', $pid; POSIX::_exit(0) };
        while (1) {
            POSIX::_exit(0) if waitpid($pid, WNOHANG) == $pid;
            if (!kill 0, $owner) { kill 'KILL', $pid; POSIX::_exit(0) }
            sleep 0.1;
        }
    }
    $self->{watchdog} = $w;
    my $deadline = time + 10;
    until (($self->cmd('PING') // '') eq 'PONG') {
        die "redis-server did not start\n" if time > $deadline;
        sleep 0.05;
    }
    return 1;
}

# SIGKILL of redis-server (the watchdog sees it exit)
sub kill9 {
    my ($self) = @_;
    my ($pid) = ($self->cmd('INFO', 'server') // '') =~ /process_id:(\d+)/;
    return 0 unless $pid && kill 'KILL', $pid;
    my $deadline = time + 10;
    until (waitpid($self->{watchdog}, WNOHANG) == $self->{watchdog}) {
        last if time > $deadline;
        sleep 0.02;
    }
    delete $self->{watchdog};
    return 1;
}

# SHUTDOWN SAVE: Redis goes away, its data kept on disk for start()
sub shutdown {
    my ($self) = @_;
    return unless $self->{watchdog};
    $self->cmd('SHUTDOWN', 'SAVE');
    my $deadline = time + 10;
    until (waitpid($self->{watchdog}, WNOHANG) == $self->{watchdog}) {
        if (time > $deadline) {
            kill 'TERM', $self->{watchdog};
            waitpid($self->{watchdog}, 0);
            last;
        }
        sleep 0.02;
    }
    delete $self->{watchdog};
}

sub stop {
    my ($self) = @_;
    return unless $self->{watchdog} && $$ == $self->{owner};
    kill 'TERM', $self->{watchdog};
    waitpid($self->{watchdog}, 0);
    delete $self->{watchdog};
}

sub DESTROY { $_[0]->stop }

sub cmd {
    my ($self, @cmd) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $self->{port},
                                  Proto => 'tcp', Timeout => 2) or return undef;
    $s->autoflush(1);
    print $s '*' . @cmd . "\r\n", map { '$' . length($_) . "\r\n$_\r\n" } @cmd;
    my $r = _read($s);
    close $s;
    return $r;
}

sub hash { my $r = $_[0]->cmd(@_[1 .. $#_]) || []; return ref $r eq 'ARRAY' ? { @$r } : {} }

sub _read {
    my ($s) = @_;
    my $line = <$s>;
    return undef unless defined $line;
    $line =~ s/\r\n\z//;
    my ($t, $v) = (substr($line, 0, 1), substr($line, 1));
    return $v if $t eq '+' || $t eq ':';
    return { error => $v } if $t eq '-';
    if ($t eq '$') {
        return undef if $v < 0;
        my $buf = '';
        while (length $buf < $v + 2) {
            read($s, $buf, $v + 2 - length $buf, length $buf) or last;
        }
        return substr($buf, 0, $v);
    }
    return [ map { _read($s) } 1 .. $v ] if $t eq '*' && $v >= 0;
    return undef;
}

# a host's "sync" status item of a zone (undef: none, or no status)
sub sync_of {
    my ($h, $zone) = @_;
    my $st = $h->get('/status')->{json} or return undef;
    my ($s) = grep { $_->{zone} eq $zone } @{ $st->{sync} || [] };
    return $s;
}

# polls cond every 50 ms until it holds (1) or timeout s pass (0)
sub wait_for {
    my ($cond, $timeout) = @_;
    my $deadline = time + ($timeout // 5);
    until ($cond->()) {
        return 0 if time > $deadline;
        sleep 0.05;
    }
    return 1;
}

1;
