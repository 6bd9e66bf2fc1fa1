#!/usr/bin/perl
# Small HTTP/1.1 keep-alive client for bench/run.sh (Perl core modules only).
#
#   client.pl --port P --path /v1/chat/completions --body FILE [--header 'K: V']...
#       --check KIND   send one request, validate the answer, print one JSON
#                      line {ok, status, reason, headers, body}; exit 0 if ok.
#                      KIND: chat      an OpenAI chat.completion
#                            chat-sse  OpenAI chat.completion.chunk events
#                                      ending in data: [DONE]
#                            anthropic an Anthropic message (native, direct
#                                      and plain-proxy cases)
#                            anthropic-sse  Anthropic SSE ending in message_stop
#                      --expect NAME=VALUE (repeatable): the answer must also
#                      carry this response header with this value
#       --count N      send N requests one after another on one connection
#                      (callgrind driver); exit 1 if any answer is not 2xx
#       --ttft N       send --warmup W then N requests one after another and
#                      print JSON percentiles of the time to the first body
#                      byte (for SSE: the first event) and to the last byte;
#                      --max-seconds S stops earlier (slow servers)
#
# Times are taken with Time::HiRes around syswrite / sysread; the client's
# own overhead is the same for every case and cancels in "added" numbers.
use strict;
use warnings;
use IO::Socket::INET;
use Socket qw(IPPROTO_TCP TCP_NODELAY);
use Time::HiRes qw(time);
use Getopt::Long;
use JSON::PP;

my %o = (host => '127.0.0.1', warmup => 100, timeout => 10);
my (@headers, @expect);
GetOptions(\%o, 'host=s', 'port=i', 'path=s', 'body=s', 'check=s', 'expect=s' => \@expect,
           'count=i', 'ttft=i', 'warmup=i', 'timeout=i', 'max-seconds=f',
           'header=s' => \@headers) or die "bad options\n";
die "--port and --path are required\n" unless $o{port} && $o{path};

my $body = '';
if (defined $o{body}) {
    open my $fh, '<:raw', $o{body} or die "$o{body}: $!\n";
    local $/;
    $body = <$fh>;
    close $fh;
}
my $req = "POST $o{path} HTTP/1.1\r\nHost: $o{host}:$o{port}\r\n"
        . "Content-Type: application/json\r\n"
        . join('', map { "$_\r\n" } @headers)
        . "Content-Length: " . length($body) . "\r\n\r\n" . $body;

my $sock;
sub connect_sock {
    $sock = IO::Socket::INET->new(PeerAddr => $o{host}, PeerPort => $o{port},
                                  Proto => 'tcp', Timeout => $o{timeout})
        or die "connect $o{host}:$o{port}: $!\n";
    setsockopt($sock, IPPROTO_TCP, TCP_NODELAY, 1);
    binmode $sock;
}

# One request on the keep-alive connection. Returns a hash: status, headers
# (lower-cased names), body (de-chunked), t_first (first body byte),
# t_end, and close (the server will close the connection).
sub do_request {
    connect_sock() unless $sock;
    my $t0 = time;
    my $off = 0;
    while ($off < length $req) {
        my $n = syswrite($sock, $req, length($req) - $off, $off);
        die "write: $!\n" unless defined $n;
        $off += $n;
    }
    my ($buf, $t_first, %h, $status) = ('');
    my $deadline = $t0 + $o{timeout};
    my $read = sub {
        my $rin = '';
        vec($rin, fileno($sock), 1) = 1;
        my $left = $deadline - time;
        die "timeout\n" if $left <= 0;
        select(my $rout = $rin, undef, undef, $left) or die "timeout\n";
        my $n = sysread($sock, $buf, 65536, length $buf);
        die "read: $!\n" unless defined $n;
        return $n;
    };
    # headers
    while ((my $i = index($buf, "\r\n\r\n")) < 0) {
        $read->() or die "connection closed before the response headers\n";
    }
    my $hend = index($buf, "\r\n\r\n");
    my @lines = split /\r\n/, substr($buf, 0, $hend);
    substr($buf, 0, $hend + 4) = '';
    my $sl = shift @lines;
    ($status) = $sl =~ m{^HTTP/1\.[01] (\d{3})} or die "bad status line: $sl\n";
    for (@lines) {
        my ($k, $v) = /^([^:]+):\s*(.*)$/ or next;
        $k = lc $k;
        $h{$k} = exists $h{$k} ? "$h{$k}, $v" : $v;
    }
    my $out = '';
    my $chunked = ($h{'transfer-encoding'} // '') =~ /chunked/i;
    my $len = $h{'content-length'};
    if ($chunked) {
        while (1) {
            my $i;
            while (($i = index($buf, "\r\n")) < 0) {
                $read->() or die "closed inside a chunk header\n";
            }
            my ($size) = substr($buf, 0, $i) =~ /^([0-9a-fA-F]+)/;
            die "bad chunk header\n" unless defined $size;
            $size = hex $size;
            if ($size == 0) {
                # "0\r\n" then trailers (none expected) and an empty line
                while (index($buf, "\r\n\r\n", $i) != $i
                       && index($buf, "\r\n\r\n") < 0) {
                    $read->() or last;
                }
                $buf = '';
                last;
            }
            while (length($buf) < $i + 2 + $size + 2) {
                $t_first //= time if length($buf) > $i + 2;
                $read->() or die "closed inside a chunk\n";
            }
            $t_first //= time;
            $out .= substr($buf, $i + 2, $size);
            substr($buf, 0, $i + 2 + $size + 2) = '';
        }
    } elsif (defined $len) {
        while (length($buf) < $len) {
            $t_first //= time if length $buf;
            $read->() or die "closed inside the body\n";
        }
        $t_first //= time if $len;
        $out = substr($buf, 0, $len);
    } else {
        while ($read->()) { $t_first //= time if length $buf }
        $out = $buf;
        $h{connection} = 'close';
    }
    my $t_end = time;
    $t_first //= $t_end;
    my $close = ($h{connection} // '') =~ /close/i;
    if ($close) { close $sock; undef $sock }
    return { status => $status, headers => \%h, body => $out,
             ttfb => $t_first - $t0, total => $t_end - $t0 };
}

sub sse_events {
    my ($text) = @_;
    my @ev;
    for my $block (split /\r?\n\r?\n/, $text) {
        my ($event, @data) = ('message');
        for (split /\r?\n/, $block) {
            $event = $1 if /^event:\s?(.*)$/;
            push @data, $1 if /^data:\s?(.*)$/;
        }
        push @ev, [$event, join("\n", @data)] if @data;
    }
    return @ev;
}

sub validate {
    my ($kind, $r) = @_;
    return "HTTP status $r->{status}" unless $r->{status} =~ /^2/;
    for (@expect) {
        my ($k, $v) = split /=/, $_, 2;
        my $got = $r->{headers}{ lc $k };
        return "response header $k is " . (defined $got ? "\"$got\"" : 'missing') . ", expected \"$v\""
            unless defined $got && $got eq $v;
    }
    my $b = $r->{body};
    my $json = JSON::PP->new;
    if ($kind eq 'chat' || $kind eq 'anthropic') {
        my $d = eval { $json->decode($b) } or return "body is not JSON";
        if ($kind eq 'chat') {
            return "object is not chat.completion"
                unless ($d->{object} // '') eq 'chat.completion';
            my $c = $d->{choices};
            return "no choices[0].message.content"
                unless ref $c eq 'ARRAY' && @$c && ref $c->[0]{message} eq 'HASH'
                    && defined $c->[0]{message}{content}
                    && length $c->[0]{message}{content};
            return "no usage.total_tokens"
                unless ref $d->{usage} eq 'HASH' && defined $d->{usage}{total_tokens};
        } else {
            return "type is not message" unless ($d->{type} // '') eq 'message';
        }
        return undef;
    }
    if ($kind eq 'chat-sse') {
        my @ev = sse_events($b);
        return "no SSE events" unless @ev;
        return "stream does not end with data: [DONE]" unless $ev[-1][1] eq '[DONE]';
        my $text = '';
        for my $e (@ev[0 .. $#ev - 1]) {
            my $d = eval { $json->decode($e->[1]) }
                or return "event data is not JSON: " . substr($e->[1], 0, 80);
            return "event is not chat.completion.chunk"
                unless ($d->{object} // '') eq 'chat.completion.chunk';
            for my $c (@{ $d->{choices} || [] }) {
                $text .= $c->{delta}{content}
                    if ref $c->{delta} eq 'HASH' && defined $c->{delta}{content};
            }
        }
        return "no content in the stream" unless length $text;
        return undef;
    }
    if ($kind eq 'anthropic-sse') {
        my @ev = sse_events($b);
        return "no SSE events" unless @ev;
        return "stream does not end with message_stop" unless $ev[-1][0] eq 'message_stop';
        return undef;
    }
    return undef if $kind eq 'any';
    return "unknown check kind $kind";
}

sub pct {
    my ($sorted, $p) = @_;
    return 0 unless @$sorted;
    my $i = int($p / 100 * @$sorted + 0.5) - 1;
    $i = 0 if $i < 0;
    $i = $#$sorted if $i > $#$sorted;
    return $sorted->[$i];
}

my $J = JSON::PP->new->canonical;

if ($o{check}) {
    my $r = eval { do_request() };
    my $res;
    if (!$r) {
        chomp(my $e = $@);
        $res = { ok => JSON::PP::false, reason => "request failed: $e" };
    } else {
        my $err = validate($o{check}, $r);
        $res = { ok => $err ? JSON::PP::false : JSON::PP::true,
                 reason => $err // 'ok', status => 0 + $r->{status},
                 headers => { map { $_ => $r->{headers}{$_} }
                              grep { /^(x-ai-|content-type|transfer-encoding|content-length)/ }
                              keys %{ $r->{headers} } },
                 body => substr($r->{body}, 0, 600) };
    }
    print $J->encode($res), "\n";
    exit($res->{ok} ? 0 : 1);
}

if ($o{count}) {
    my $bad = 0;
    for (1 .. $o{count}) {
        my $r = do_request();
        $bad++ unless $r->{status} =~ /^2/;
    }
    print $J->encode({ requests => $o{count}, non_2xx => $bad }), "\n";
    exit($bad ? 1 : 0);
}

if ($o{ttft}) {
    do_request() for 1 .. $o{warmup};
    my (@f, @t, $bad);
    $bad = 0;
    my $stop = $o{'max-seconds'} ? time + $o{'max-seconds'} : 0;
    for (1 .. $o{ttft}) {
        last if $stop && time > $stop;
        my $r = do_request();
        $bad++ unless $r->{status} =~ /^2/;
        push @f, $r->{ttfb} * 1e6;
        push @t, $r->{total} * 1e6;
    }
    @f = sort { $a <=> $b } @f;
    @t = sort { $a <=> $b } @t;
    my ($mean, $tmean) = (0, 0);
    $mean += $_ for @f;
    $tmean += $_ for @t;
    $mean /= @f if @f;
    $tmean /= @t if @t;
    printf "%s\n", $J->encode({
        requests => scalar @f, non_2xx => $bad,
        ttft_us  => { p50 => int(pct(\@f, 50)), p90 => int(pct(\@f, 90)),
                      p99 => int(pct(\@f, 99)), mean => int($mean),
                      min => int($f[0]) },
        total_us => { p50 => int(pct(\@t, 50)), p90 => int(pct(\@t, 90)),
                      p99 => int(pct(\@t, 99)), mean => int($tmean),
                      min => int($t[0] // 0) } });
    exit 0;
}

die "one of --check, --count, --ttft is required\n";
