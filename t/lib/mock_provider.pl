#!/usr/bin/perl
# mock_provider.pl - a mock LLM provider (OpenAI, Anthropic and Gemini wire
# formats) for the ngx_ai_gateway_module tests, `./build.sh demo` and the
# benchmarks.  Perl core modules only.
#
#   perl t/lib/mock_provider.pl --port N [--host 127.0.0.1] [--record FILE]
#                               [--answers FILE] [--workers N]
#
#   --port N        port to listen on; 0 picks a free one (see READY below)
#   --host ADDR     address to bind (default 127.0.0.1)
#   --record FILE   append one JSON line per request received (see RECORDS)
#   --answers FILE  canned answers: a JSON object {"model name": "answer
#                   text", ...}, re-read whenever the file changes; a request
#                   whose model is a key gets that text as its answer
#                   instead of the default one (usage follows the text)
#   --workers N     pre-forked worker processes (default 4)
#   --watch-pid PID exit when process PID is gone (the test harness passes
#                   its own pid, so a killed test leaves no mock behind)
#
# Prints "READY <port>" on stdout once listening.  SIGTERM / SIGINT stop the
# workers and exit 0; workers also exit on their own if the parent dies.
#
# PROCESS MODEL
#   The parent binds one listening socket, forks N workers and only
#   supervises them (re-forks a worker that dies).  Each worker runs a small
#   non-blocking event loop (select) over the shared listening socket and
#   its own connections, so one worker serves any number of concurrent
#   connections, HTTP/1.1 keep-alive (nginx upstream keepalive), pipelined
#   requests, HTTP/1.0 and "Connection: close".  A response is computed
#   whole when its request arrives, as a list of timed writes (for delays,
#   slow streams, cut connections); the loop sends each piece when it is due.
#
# WIRE FORMATS
#   OpenAI     POST /v1/chat/completions   (stream: SSE of chat.completion.chunk,
#                                           data: [DONE] at the end)
#              GET  /v1/models
#   Anthropic  POST /v1/messages           (stream: message_start ...
#                                           message_stop events)
#   Gemini     POST /v1beta/models/MODEL:generateContent
#              POST /v1beta/models/MODEL:streamGenerateContent?alt=sse
#                   (without alt=sse: one JSON array of the chunks)
#   OpenAI     POST /v1/embeddings         (see EMBEDDINGS AND TOKEN COUNTS)
#   Gemini     POST /v1beta/models/MODEL:batchEmbedContents
#   Anthropic  POST /v1/messages/count_tokens
#   Gemini     POST /v1beta/models/MODEL:countTokens
#   Azure      POST /openai/deployments/D/chat/completions?api-version=V
#              and the others of t/lib/mock_cloud.pl (its checks first)
#   Bedrock    POST /model/MODEL_ID/converse, /converse-stream (signed
#                   with SigV4, checked; mock_bedrock.pl has the rules)
#   Requests are validated as the real APIs do for the fields a gateway must
#   get right (400 in the provider's error format otherwise):
#     OpenAI    model (string) and messages (non-empty array) required
#     Anthropic model, max_tokens, messages (non-empty array) required;
#               message roles only "user" / "assistant" (system goes in
#               the top-level "system")
#     Gemini    contents (non-empty array) required; roles only "user" /
#               "model" (or absent)
#
# DETERMINISTIC CONTENT AND USAGE (tests compute expectations from these)
#   answer            = "Mock answer to: " . LAST_USER_TEXT
#       LAST_USER_TEXT: the text of the last message with role "user"
#       (Gemini: the last content with role "user" or no role); a string
#       content as is, an array of content parts / blocks / parts -> the
#       "text" of each text part joined with one space; "" if none.
#       With --answers, a model listed in the file answers its canned text.
#   completion tokens = number of whitespace-separated words in the answer
#   prompt tokens     = ceil(CHARS / 4), minimum 1, where CHARS is the total
#       number of characters (Unicode characters, after JSON decoding) of
#       every text in the request: every message's content (string, or each
#       text part), plus OpenAI system/developer messages (they are
#       messages), Anthropic "system" (string or text blocks), Gemini
#       "systemInstruction" parts.  Nothing else counts (no roles, no
#       separators, no tool definitions).
#   max tokens        if the request sets a limit (OpenAI max_completion_tokens
#       or max_tokens, Anthropic max_tokens, Gemini
#       generationConfig.maxOutputTokens) smaller than the answer's word
#       count, the answer is cut to that many words and the finish reason is
#       OpenAI "length" / Anthropic "max_tokens" / Gemini "MAX_TOKENS"
#       (otherwise "stop" / "end_turn" / "STOP").
#   Streams send the answer one word per content event (the first word
#   alone, each later word with its leading whitespace), so the deltas
#   concatenate to the answer exactly and their count = completion tokens.
#   Anthropic: a model with the token "cache" adds usage
#       cache_creation_input_tokens = 5 and cache_read_input_tokens = 7
#       (input_tokens stays the uncached prompt count).
#   Gemini: a model with the token "thoughts" adds usageMetadata
#       thoughtsTokenCount = 3, included in totalTokenCount
#       (= prompt + candidates + thoughts).
#   Gemini streams carry usageMetadata on every chunk with running counts
#   (candidatesTokenCount = words sent so far) and finishReason on the last.
#   OpenAI streams: role delta, one content delta per word, a finish chunk,
#   then with stream_options.include_usage a usage chunk (choices: []) --
#   and then every chunk carries "usage": null, as the real API does.
#
# EMBEDDINGS AND TOKEN COUNTS
#   A vector has D values (D = OpenAI "dimensions" / Gemini
#   "outputDimensionality", default 3); value j of an input of N units is
#   (N + j) / 1024 -- exact in float32 and in decimal -- where N is the
#   input's characters (a token array: its tokens).  OpenAI: input a
#   string, strings, a token array or token arrays (400 otherwise);
#   encoding_format "base64" sends each vector as little-endian float32 in
#   base64; usage prompt_tokens = total_tokens = ceil(CHARS / 4) (minimum
#   1) over every text input plus the tokens of token arrays.  Gemini:
#   {"requests":[{"model":"models/MODEL","content":{"parts":[{"text"}]}}]}
#   (each request's model must be the path's, 400 otherwise) ->
#   {"embeddings":[{"values":[...]}]}, no usage, as the real API.
#   Vertex AI (/v1beta/models/M:predict, reached through mock_cloud.pl):
#   {"instances":[{"content"}],"parameters":{...}} -> {"predictions":
#   [{"embeddings":{"values","statistics":{"token_count":ceil(CHARS/4)}}}]}
#   (sub vertex_embed).  Bedrock's InvokeModel embeddings: mock_bedrock.pl.
#   count_tokens (Anthropic) takes model, messages, system, tools,
#   tool_choice, thinking; any other member (max_tokens, stream,
#   temperature ...) is a 400 "Extra inputs are not permitted", as the real
#   API; answer {"input_tokens": PROMPT} with PROMPT the prompt tokens of
#   the same messages (above).  countTokens (Gemini) takes "contents" or a
#   "generateContentRequest" holding them; answer {"totalTokens": PROMPT}.
#   Behaviours of the model name (status, delay, drop, garbage, empty,
#   nousage for OpenAI embeddings) apply as for chat.
#
# BEHAVIOURS (dash-separated tokens in the model name, e.g. "mock-delay300",
# "x-status429-retryafter2"; also the request header "x-mock-behave" with
# the same syntax -- where both set a token the model name wins)
#   delay<N>        wait N ms before answering (before the headers)
#   status<NNN>     answer status NNN (>= 400) with the provider's error JSON;
#                   a 429 carries Retry-After: <retryafter N, default 1>;
#                   its message is the model's canned answer (--answers)
#                   when it has one, else "mock: status NNN requested"
#   retryafter<N>   Retry-After value (any error status when given)
#   retryafterms<N> also send retry-after-ms: N
#   garbage         200 with a non-JSON body; streams: SSE headers, one
#                   garbage event, then close (no terminator)
#   empty           200 with "{}"; streams: 200 SSE with only the
#                   terminator (OpenAI "data: [DONE]", Anthropic
#                   message_stop, Gemini nothing)
#   drop            close the connection without any response
#   cut             non-stream: Content-Length larger than the body sent,
#                   then close; streams: the opening events and the first 2
#                   content events, then close without the terminator
#                   (no final zero-length chunk either)
#   streamerror     streams (OpenAI, Anthropic): the opening events and the
#                   first 2 content events, then the provider's error event
#                   (OpenAI: data {"error":{...}}; Anthropic: event "error")
#                   instead of the end; its message is the model's canned
#                   answer when it has one, else "mock: error in the stream"
#   slow<N>         wait N ms between stream events
#   headerdelay<N>  send the headers at once, the body N ms later
#   crlf            SSE lines end with "\r\n" instead of "\n"
#   cache, thoughts see above
#   nousage         OpenAI: the answer carries no usage (streams: no usage
#                   chunk, even when asked for)
#   badusage        OpenAI: usage with a negative prompt_tokens and a
#                   completion_tokens of 1e30
#   echoheaders     an error answer's message echoes every request header
#                   (as some servers' 401 do), with its status<NNN>
#   toolcall        answer with one tool call instead of text: the first
#                   function the request declares (OpenAI
#                   tools[0].function.name, Anthropic tools[0].name, Gemini
#                   tools[0].functionDeclarations[0].name; "mock_tool" when
#                   none), arguments {"text": LAST_USER_TEXT}; no text
#                   content; usage as for the text answer.  OpenAI: message
#                   tool_calls [{id "call_mock_N"}], finish_reason
#                   "tool_calls"; streamed as the id/name delta, then the
#                   arguments in two fragments.  Anthropic: a tool_use block
#                   (id "toolu_mock_N"), stop_reason "tool_use"; streamed as
#                   content_block_start (input {}), an empty input_json_delta
#                   (as the real API sends first), then two fragments.
#                   Gemini: a functionCall part (no id), finishReason STOP;
#                   streamed as one chunk (as the real API sends calls whole).
#   Unknown tokens are ignored, so names like "gpt-4o" answer normally.
#
# RECORDS (--record FILE): one JSON line per request, appended under flock
# by whichever worker served it, written before the response is sent:
#   {"time": epoch float, "method": "POST", "path": "/v1/...?query",
#    "headers": {"lowercased-name": "value", ...}, "body": "raw body",
#    "conn": "pid:n" (the connection), "conn_request": n-th on it (1, 2 ...)}
# (conn / conn_request let tests see upstream keep-alive reuse.)
#
# Every response carries X-Mock-Pid and X-Mock-Conn-Request headers.

use strict;
use warnings;

use Errno qw(EAGAIN EWOULDBLOCK EINTR);
use Fcntl qw(:flock O_WRONLY O_APPEND O_CREAT);
use Getopt::Long qw(GetOptions);
use IO::Socket::INET;
use JSON::PP;
use POSIX qw(WNOHANG);
use Socket qw(IPPROTO_TCP TCP_NODELAY);
use Time::HiRes qw(time);

my %opt = (host => '127.0.0.1', port => undef, workers => 4);
GetOptions(\%opt, 'host=s', 'port=i', 'record=s', 'answers=s', 'workers=i',
           'watch-pid=i')
    or die "usage: $0 --port N [--host ADDR] [--record FILE] "
         . "[--answers FILE] [--workers N] [--watch-pid PID]\n";
defined $opt{port} or die "$0: --port is required (0 picks a free port)\n";

# One JSON codec for everything: UTF-8 bytes in and out, stable key order.
my $JSON = JSON::PP->new->utf8->canonical;

# Amazon Bedrock (Converse, SigV4, event streams): bedrock_dispatch()
use File::Basename qw(dirname);
use File::Spec;
require(File::Spec->rel2abs(dirname(__FILE__)) . '/mock_bedrock.pl');

$SIG{PIPE} = 'IGNORE';

# ----------------------------------------------------------------------
# Parent: listen, fork the workers, supervise them.  main() is called at
# the end of the file, so every file-level variable below is initialised
# before any worker is forked.

my ($listener, $parent_pid, %workers, $stopping);

sub main {
    $listener = IO::Socket::INET->new(
        LocalAddr => $opt{host},
        LocalPort => $opt{port},
        Proto     => 'tcp',
        Listen    => 1024,
        ReuseAddr => 1,
    ) or die "mock_provider: cannot listen on $opt{host}:$opt{port}: $@\n";
    $listener->blocking(0);
    $parent_pid = $$;

    $SIG{TERM} = $SIG{INT} = \&stop_all;
    spawn_worker() for 1 .. ($opt{workers} > 0 ? $opt{workers} : 1);

    if (my $watch = $opt{'watch-pid'}) {
        $SIG{ALRM} = sub { stop_all() unless pid_alive($watch); alarm 1 };
        alarm 1;
    }

    {
        local $| = 1;
        print "READY ", $listener->sockport, "\n";
    }

    # Supervise: a worker that dies (a bug) is reported and replaced.
    while (1) {
        my $pid = waitpid(-1, 0);
        last if $pid < 0;
        next unless delete $workers{$pid};
        print STDERR "mock_provider: worker $pid exited (status $?), "
            . "starting another\n";
        spawn_worker() unless $stopping;
    }
    exit 0;
}

sub spawn_worker {
    my $pid = fork;
    die "mock_provider: fork: $!\n" unless defined $pid;
    if ($pid == 0) {
        $SIG{TERM} = $SIG{INT} = 'DEFAULT';
        alarm 0;
        my $ok = eval { worker_main(); 1 };
        print STDERR "MOCK WORKER DIED: $@" unless $ok;
        POSIX::_exit($ok ? 0 : 1);              # no END blocks, no stdio flush
    }
    $workers{$pid} = 1;
}

# Is $pid running?  A zombie is not (pid 1 may not reap the test
# process we watch, so kill 0 alone would say yes).
sub pid_alive {
    my ($pid) = @_;
    return 0 unless kill 0, $pid;
    open my $fh, '<', "/proc/$pid/stat" or return 1;    # no /proc: trust kill
    my $stat = <$fh> // return 0;
    my ($state) = substr($stat, rindex($stat, ')') + 2) =~ /^(\S)/;
    return defined $state && $state ne 'Z' && $state ne 'X';
}

# SIGTERM / SIGINT: stop the workers, then exit.  (Perl restarts a
# waitpid interrupted by a signal, so the handler does the work itself.)
sub stop_all {
    POSIX::_exit(0) if $$ != $parent_pid;     # a worker not yet reset
    $stopping = 1;
    kill 'TERM', keys %workers;
    my $deadline = time + 3;
    while (%workers && time < $deadline) {
        my $pid = waitpid(-1, WNOHANG);
        if ($pid > 0) { delete $workers{$pid}; next }
        last if $pid < 0;
        Time::HiRes::sleep(0.02);
    }
    kill 'KILL', keys %workers;
    exit 0;
}

# ----------------------------------------------------------------------
# Worker: the event loop.
#
# Connection state (hash):
#   sock, fd, id           the socket, its fileno, "pid:n"
#   rbuf                   bytes received, not yet parsed
#   wbuf                   bytes due and not yet written
#   queue                  [[delay_s, bytes | undef(=close)], ...]: the rest
#                          of the response in progress; each step is sent
#                          delay_s after the previous one was written
#   due                    when the queue's first step is due
#   busy                   a response is in progress
#   close_after            close once the response is sent
#   peer_closed            the client closed its side
#   nreq                   requests served on this connection
#   continue_sent          "100 Continue" sent for the current request

my ($record_fh, $conn_seq, $resp_seq) = (undef, 0, 0);

sub worker_main {
    if (defined $opt{record}) {
        sysopen($record_fh, $opt{record}, O_WRONLY | O_APPEND | O_CREAT)
            or die "cannot open record file $opt{record}: $!\n";
    }
    my %conns;                          # fd => connection
    my $lfd = fileno $listener;

    while (1) {
        return if getppid() != $parent_pid;     # orphaned: parent is gone

        my $next_due;
        for my $c (values %conns) {
            service_conn($c);
            if ($c->{closed}) { delete $conns{$c->{fd}}; next }
            if (!length $c->{wbuf} && defined $c->{due}) {
                $next_due = $c->{due} if !defined $next_due || $c->{due} < $next_due;
            }
        }

        my ($rin, $win) = ('', '');
        vec($rin, $lfd, 1) = 1;
        for my $c (values %conns) {
            vec($rin, $c->{fd}, 1) = 1 unless $c->{peer_closed};
            vec($win, $c->{fd}, 1) = 1 if length $c->{wbuf};
        }
        my $timeout = 1;
        if (defined $next_due) {
            my $wait = $next_due - time;
            $timeout = $wait < 0 ? 0 : $wait < 1 ? $wait : 1;
        }
        my ($rout, $wout) = ($rin, $win);
        my $n = select($rout, $wout, undef, $timeout);
        next if $n <= 0;

        if (vec($rout, $lfd, 1)) {
            for (1 .. 32) {             # accept what is pending, then serve
                my $sock = $listener->accept or last;
                $sock->blocking(0);
                setsockopt($sock, IPPROTO_TCP, TCP_NODELAY, 1);
                my $c = {
                    sock => $sock, fd => fileno($sock),
                    id => "$$:" . ++$conn_seq,
                    rbuf => '', wbuf => '', queue => [], nreq => 0,
                };
                $conns{$c->{fd}} = $c;
            }
        }
        for my $c (values %conns) {
            next if $c->{peer_closed} || !vec($rout, $c->{fd}, 1);
            my $got = sysread($c->{sock}, $c->{rbuf}, 65536, length $c->{rbuf});
            if (defined $got && $got == 0) {
                $c->{peer_closed} = 1;
            } elsif (!defined $got && $! != EAGAIN && $! != EWOULDBLOCK
                     && $! != EINTR) {
                close_conn($c);
            }
        }
        # writable sockets and new requests are handled by service_conn at
        # the top of the loop
    }
}

sub close_conn {
    my ($c) = @_;
    return if $c->{closed};
    close $c->{sock};
    $c->{closed} = 1;
}

# Move what is due to the write buffer, write, finish the response, start
# the next request on the connection.
sub service_conn {
    my ($c) = @_;
    return if $c->{closed};
    while (1) {
        my $q = $c->{queue};
        while (@$q) {
            # a step is due its delay after the previous one was written
            $c->{due} //= time + $q->[0][0];
            last if $c->{due} > time;
            my $item = shift @$q;
            undef $c->{due};
            if (!defined $item->[1]) {          # a close step
                @$q = ();
                $c->{close_now} = 1;
                last;
            }
            $c->{wbuf} .= $item->[1];
        }
        if (length $c->{wbuf}) {
            my $n = syswrite($c->{sock}, $c->{wbuf});
            if (!defined $n) {
                return if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
                return close_conn($c);          # peer gone
            }
            substr($c->{wbuf}, 0, $n, '');
            return if length $c->{wbuf};        # rest when writable
        }
        return close_conn($c) if $c->{close_now};

        if ($c->{busy}) {
            return if @$q;                      # more to send later
            $c->{busy} = 0;                     # response complete
            return close_conn($c) if $c->{close_after};
        }

        # idle: parse the next request, if it has fully arrived
        my $req = parse_request($c);
        if (!$req) {
            next if $c->{busy};                 # a protocol error answer
            close_conn($c) if $c->{peer_closed};
            return;
        }
        start_response($c, $req);
    }
}

# ----------------------------------------------------------------------
# HTTP/1.x request parsing: returns a request hash once the head and the
# whole body (Content-Length or chunked) are in rbuf, else undef.

sub parse_request {
    my ($c) = @_;
    my $end = index($c->{rbuf}, "\r\n\r\n");
    if ($end < 0) {
        if (length $c->{rbuf} > 65536) {          # absurd head: give up
            queue_plain($c, 431, 'text/plain', "header too large\n", 0);
        }
        return undef;
    }
    my $head = substr($c->{rbuf}, 0, $end);
    my ($line, @lines) = split /\r\n/, $head;
    my ($method, $target, $ver) =
        $line =~ m{^([A-Z]+) (\S+) HTTP/(1\.[01])$} or do {
        substr($c->{rbuf}, 0, $end + 4, '');
        queue_plain($c, 400, 'text/plain', "bad request line\n", 0);
        return undef;
    };
    my %h;
    for (@lines) {
        my ($k, $v) = /^([^:]+):[ \t]*(.*?)[ \t]*$/ or next;
        $k = lc $k;
        $h{$k} = exists $h{$k} ? "$h{$k}, $v" : $v;
    }

    my $body = '';
    my $consumed = $end + 4;
    if (($h{'transfer-encoding'} // '') =~ /chunked/i) {
        my $pos = $consumed;
        while (1) {
            my $eol = index($c->{rbuf}, "\r\n", $pos);
            return expect_continue($c, \%h, $ver) if $eol < 0;
            my ($size) = substr($c->{rbuf}, $pos, $eol - $pos) =~ /^([0-9a-fA-F]+)/;
            $size = hex($size // 0);
            $pos = $eol + 2;
            if ($size == 0) {                   # last chunk, then trailers
                my $tend = index($c->{rbuf}, "\r\n", $pos);
                while ($tend > $pos) {          # skip trailer fields
                    $pos = $tend + 2;
                    $tend = index($c->{rbuf}, "\r\n", $pos);
                }
                return expect_continue($c, \%h, $ver) if $tend < 0;
                $consumed = $tend + 2;
                last;
            }
            return expect_continue($c, \%h, $ver)
                if length($c->{rbuf}) < $pos + $size + 2;
            $body .= substr($c->{rbuf}, $pos, $size);
            $pos += $size + 2;
        }
    } elsif (my $len = $h{'content-length'}) {
        return expect_continue($c, \%h, $ver)
            if length($c->{rbuf}) < $consumed + $len;
        $body = substr($c->{rbuf}, $consumed, $len);
        $consumed += $len;
    }
    substr($c->{rbuf}, 0, $consumed, '');
    $c->{continue_sent} = 0;

    my $conn_hdr = lc($h{connection} // '');
    my $keep_alive = $ver eq '1.1' ? $conn_hdr !~ /close/
                                   : $conn_hdr =~ /keep-alive/;
    return { method => $method, target => $target, version => $ver,
             headers => \%h, body => $body, keep_alive => $keep_alive };
}

# The body is incomplete: answer "Expect: 100-continue" once, wait for more.
sub expect_continue {
    my ($c, $h, $ver) = @_;
    if ($ver eq '1.1' && !$c->{continue_sent}
        && lc($h->{expect} // '') eq '100-continue') {
        $c->{wbuf} .= "HTTP/1.1 100 Continue\r\n\r\n";
        $c->{continue_sent} = 1;
    }
    return undef;
}

# ----------------------------------------------------------------------
# Responses.  A handler returns a "plan": a list of [delay_ms, bytes] steps
# (delay relative to the previous step; bytes undef = close the
# connection).  start_response turns it into the connection's queue.

sub start_response {
    my ($c, $req) = @_;
    $c->{nreq}++;
    $c->{busy} = 1;
    record_request($c, $req) if $record_fh;

    my ($plan, $close) = dispatch($c, $req);
    $c->{close_after} = 1 if $close || !$req->{keep_alive};

    my $q = $c->{queue};
    for my $step (@$plan) {
        my $delay = $step->[0] / 1000;
        if (@$q && $delay == 0 && defined $step->[1] && defined $q->[-1][1]) {
            $q->[-1][1] .= $step->[1];          # coalesce back-to-back writes
        } else {
            push @$q, [$delay, $step->[1]];
        }
    }
}

sub record_request {
    my ($c, $req) = @_;
    my $body = $req->{body};
    utf8::decode($body);                # keep as bytes if not valid UTF-8
    my $line = $JSON->encode({
        time => time, method => $req->{method}, path => $req->{target},
        headers => $req->{headers}, body => $body,
        conn => $c->{id}, conn_request => $c->{nreq},
    }) . "\n";
    flock($record_fh, LOCK_EX);
    syswrite($record_fh, $line);
    flock($record_fh, LOCK_UN);
}

my %REASON = (
    100 => 'Continue', 200 => 'OK', 400 => 'Bad Request',
    401 => 'Unauthorized', 402 => 'Payment Required', 403 => 'Forbidden',
    404 => 'Not Found', 405 => 'Method Not Allowed', 408 => 'Request Timeout',
    409 => 'Conflict', 413 => 'Payload Too Large', 422 => 'Unprocessable Entity',
    429 => 'Too Many Requests', 431 => 'Request Header Fields Too Large',
    500 => 'Internal Server Error', 502 => 'Bad Gateway',
    503 => 'Service Unavailable', 504 => 'Gateway Timeout', 529 => 'Overloaded',
);

# The status line and headers of a response.  $length undef = no
# Content-Length (streams: chunked on HTTP/1.1, close-delimited on 1.0).
sub response_head {
    my ($c, $req, $status, $ctype, $length, $close, $extra) = @_;
    my $head = "HTTP/1.1 $status " . ($REASON{$status} // 'Status') . "\r\n"
        . "Server: mock-provider\r\n"
        . "Content-Type: $ctype\r\n"
        . "X-Mock-Pid: $$\r\n"
        . "X-Mock-Conn-Request: $c->{nreq}\r\n";
    if (defined $length) {
        $head .= "Content-Length: $length\r\n";
    } elsif ($req->{version} eq '1.1') {
        $head .= "Transfer-Encoding: chunked\r\n";
    }
    $head .= "Cache-Control: no-cache\r\n" if $ctype =~ /event-stream/;
    $head .= "$_->[0]: $_->[1]\r\n" for @{ $extra || [] };
    $head .= ($close || !$req->{keep_alive}) ? "Connection: close\r\n"
                                             : "Connection: keep-alive\r\n";
    return "$head\r\n";
}

# A complete response with a body, as a plan of one step (plus close).
sub plain_plan {
    my ($c, $req, $status, $ctype, $body, $b, $extra) = @_;
    my $delay = $b->{delay} // 0;
    my $close = 0;
    my $head = response_head($c, $req, $status, $ctype, length $body,
                             $close, $extra);
    if ($b->{headerdelay}) {
        return ([[$delay, $head], [$b->{headerdelay}, $body]], $close);
    }
    return ([[$delay, $head . $body]], $close);
}

# Used for protocol errors before a request could be dispatched.
sub queue_plain {
    my ($c, $status, $ctype, $body) = @_;
    my $req = { version => '1.1', keep_alive => 0 };
    $c->{nreq}++;
    $c->{busy} = 1;
    $c->{close_after} = 1;
    push @{$c->{queue}},
        [0, response_head($c, $req, $status, $ctype, length $body, 1) . $body],
        [0, undef];
}

# ----------------------------------------------------------------------
# Routing and behaviours.

# Behaviour tokens from a dash-separated string -> hash.
sub parse_behave {
    my ($s, $b) = @_;
    for my $tok (split /-/, lc($s // '')) {
        if    ($tok =~ /^delay(\d+)$/)        { $b->{delay} = $1 }
        elsif ($tok =~ /^status(\d{3})$/)     { $b->{status} = $1 }
        elsif ($tok =~ /^retryafterms(\d+)$/) { $b->{retryafterms} = $1 }
        elsif ($tok =~ /^retryafter(\d+)$/)   { $b->{retryafter} = $1 }
        elsif ($tok =~ /^slow(\d+)$/)         { $b->{slow} = $1 }
        elsif ($tok =~ /^headerdelay(\d+)$/)  { $b->{headerdelay} = $1 }
        elsif ($tok =~ /^(garbage|empty|drop|cut|crlf|cache|thoughts|toolcall|nousage|badusage|echoheaders|streamerror)$/) {
            $b->{$1} = 1;
        }
    }
    return $b;
}

sub dispatch {
    my ($c, $req) = @_;
    my @cloud = cloud_route($c, $req);         # mock_cloud.pl
    return @cloud if @cloud;
    my ($path, $query) = split /\?/, $req->{target}, 2;
    $query //= '';
    my $m = $req->{method};

    my @more = dispatch_more($c, $req, $path, $m);
    return @more if @more;
    @more = bedrock_dispatch($c, $req, $path, $query);     # mock_bedrock.pl
    return @more if @more;

    my ($gem_model, $gem_method) =
        $path =~ m{^/v1beta/models/([^/:]+):(generateContent|streamGenerateContent)$};
    my $fmt = $path eq '/v1/chat/completions' ? 'openai'
            : $path eq '/v1/messages'         ? 'anthropic'
            : defined $gem_model              ? 'gemini'
            :                                   undef;

    if (!$fmt) {
        if ($path eq '/v1/models' && $m eq 'GET') {
            return openai_models($c, $req);
        }
        my $f = $path =~ m{^/v1beta/} ? 'gemini' : 'openai';
        return error_plan($c, $req, $f, 404, {}, "mock: no route for $m $path");
    }
    return error_plan($c, $req, $fmt, 405, {}, "mock: method $m not allowed")
        if $m ne 'POST';

    my $data = eval { $JSON->decode($req->{body}) };
    if (ref $data ne 'HASH') {
        my $b = parse_behave($req->{headers}{'x-mock-behave'}, {});
        return error_plan($c, $req, $fmt, 400, $b,
                          "mock: request body is not a JSON object");
    }

    my $model = $fmt eq 'gemini' ? url_unescape($gem_model) : $data->{model};
    my $b = parse_behave($req->{headers}{'x-mock-behave'}, {});
    parse_behave($model, $b) if defined $model && !ref $model;

    my $stream = $fmt eq 'gemini' ? $gem_method eq 'streamGenerateContent'
                                  : ($data->{stream} && $data->{stream} ne 'false');

    return ([[$b->{delay} // 0, undef]], 1) if $b->{drop};
    if ($b->{status} && $b->{status} >= 400) {
        return error_plan($c, $req, $fmt, $b->{status}, $b,
                          canned_answer($model)
                          // "mock: status $b->{status} requested");
    }

    my $conv = $fmt eq 'openai'    ? openai_conversation($data)
             : $fmt eq 'anthropic' ? anthropic_conversation($data)
             :                       gemini_conversation($data);
    return error_plan($c, $req, $fmt, 400, $b, $conv) unless ref $conv;

    my $a = answer($model, $conv);
    my %ctx = (c => $c, req => $req, b => $b, model => $model, a => $a,
               data => $data, stream => $stream);
    $ctx{tool} = tool_call($fmt, $data, $conv) if $b->{toolcall};

    if ($b->{garbage}) {
        return garbage_plan(\%ctx);
    }
    if ($b->{empty}) {
        return plain_plan($c, $req, 200, 'application/json', '{}', $b)
            unless $stream;
        my $term = $fmt eq 'openai' ? [sse($b, undef, '[DONE]')]
                 : $fmt eq 'anthropic'
                     ? [sse($b, 'message_stop', '{"type":"message_stop"}')]
                 : [];
        return stream_plan(\%ctx, [], $term);
    }

    if ($fmt eq 'openai') {
        return $stream ? openai_stream(\%ctx) : openai_complete(\%ctx);
    } elsif ($fmt eq 'anthropic') {
        return $stream ? anthropic_stream(\%ctx) : anthropic_complete(\%ctx);
    }
    return !$stream ? gemini_complete(\%ctx)
         : $query =~ /(?:^|&)alt=sse(?:&|$)/ ? gemini_stream(\%ctx)
         : gemini_stream_array(\%ctx);
}

sub url_unescape {
    my ($s) = @_;
    $s =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ge;
    utf8::decode($s);
    return $s;
}

# ----------------------------------------------------------------------
# Conversations: each turns a request into {chars, last_user, max_tokens}
# or returns an error message string.

sub text_of {              # string, or array of parts with "text"
    my ($content, $chars) = @_;
    return '' unless defined $content;
    if (!ref $content) { $$chars += length $content; return $content }
    return '' unless ref $content eq 'ARRAY';
    my @texts;
    for my $part (@$content) {
        next unless ref $part eq 'HASH' && defined $part->{text} && !ref $part->{text};
        next if defined $part->{type} && $part->{type} ne 'text';
        $$chars += length $part->{text};
        push @texts, $part->{text};
    }
    return join ' ', @texts;
}

sub openai_conversation {
    my ($d) = @_;
    return "model: a string is required" unless defined $d->{model} && !ref $d->{model};
    my $msgs = $d->{messages};
    return "messages: a non-empty array is required"
        unless ref $msgs eq 'ARRAY' && @$msgs;
    my ($chars, $last) = (0, '');
    for my $m (@$msgs) {
        return "messages: each message must be an object" unless ref $m eq 'HASH';
        my $text = text_of($m->{content}, \$chars);
        $last = $text if ($m->{role} // '') eq 'user';
    }
    return { chars => $chars, last_user => $last,
             max_tokens => $d->{max_completion_tokens} // $d->{max_tokens} };
}

sub anthropic_conversation {
    my ($d) = @_;
    return "model: Field required" unless defined $d->{model} && !ref $d->{model};
    return "max_tokens: Field required" unless defined $d->{max_tokens};
    my $msgs = $d->{messages};
    return "messages: Field required" unless ref $msgs eq 'ARRAY' && @$msgs;
    my ($chars, $last) = (0, '');
    text_of($d->{system}, \$chars);
    for my $m (@$msgs) {
        return "messages: each message must be an object" unless ref $m eq 'HASH';
        my $role = $m->{role} // '';
        return qq{messages: Unexpected role "$role". The Messages API accepts }
             . qq{a top-level `system` parameter, not "system" as an input }
             . qq{message role.} if $role ne 'user' && $role ne 'assistant';
        my $text = text_of($m->{content}, \$chars);
        $last = $text if $role eq 'user';
    }
    return { chars => $chars, last_user => $last, max_tokens => $d->{max_tokens} };
}

sub gemini_conversation {
    my ($d) = @_;
    my $contents = $d->{contents};
    return "contents is not specified"
        unless ref $contents eq 'ARRAY' && @$contents;
    my ($chars, $last) = (0, '');
    text_of($d->{systemInstruction}{parts}, \$chars)
        if ref $d->{systemInstruction} eq 'HASH';
    for my $m (@$contents) {
        return "contents: each content must be an object" unless ref $m eq 'HASH';
        my $role = $m->{role} // 'user';
        return "Please use a valid role: user, model."
            if $role ne 'user' && $role ne 'model';
        my $text = text_of($m->{parts}, \$chars);
        $last = $text if $role eq 'user';
    }
    my $gc = ref $d->{generationConfig} eq 'HASH' ? $d->{generationConfig} : {};
    return { chars => $chars, last_user => $last,
             max_tokens => $gc->{maxOutputTokens} };
}

# Canned answers (--answers FILE), re-read when the file changes.
my ($answers, $answers_sig) = ({}, '');

sub canned_answer {
    my ($model) = @_;
    return undef unless defined $opt{answers} && defined $model;
    my @st = stat $opt{answers};
    my $sig = @st ? "$st[1]:$st[7]:$st[9]" : '';
    if ($sig ne $answers_sig) {
        $answers_sig = $sig;
        $answers = {};
        if (@st && open my $fh, '<', $opt{answers}) {
            local $/;
            my $d = eval { $JSON->decode(scalar <$fh>) };
            $answers = $d if ref $d eq 'HASH';
        }
    }
    return $answers->{$model};
}

# The answer and its usage, from a conversation (see the header comment).
sub answer {
    my ($model, $conv) = @_;
    my $text = canned_answer($model) // "Mock answer to: $conv->{last_user}";
    # pieces: first word, then each word with its leading whitespace;
    # trailing whitespace stays on the last piece so they join to $text
    my @pieces = $text =~ /(\s*\S+)/g;
    if (@pieces) {
        my ($trail) = $text =~ /(\s+)\z/;
        $pieces[-1] .= $trail if defined $trail;
    }
    my $truncated = 0;
    my $max = $conv->{max_tokens};
    if (defined $max && $max =~ /^\d+$/ && $max < @pieces) {
        splice @pieces, $max;
        $pieces[-1] =~ s/\s+\z// if @pieces;
        $text = join '', @pieces;
        $truncated = 1;
    }
    my $chars = $conv->{chars};
    my $prompt = $chars > 0 ? int(($chars + 3) / 4) : 1;
    return { text => $text, pieces => \@pieces, truncated => $truncated,
             prompt_tokens => $prompt, completion_tokens => scalar @pieces };
}

# Behaviour "toolcall": the call to answer with -- the first declared
# function, arguments {"text": LAST_USER_TEXT} (JSON text and its two
# halves, for streams).
sub tool_call {
    my ($fmt, $d, $conv) = @_;
    my $tools = ref $d->{tools} eq 'ARRAY' ? $d->{tools} : [];
    my $t0 = ref $tools->[0] eq 'HASH' ? $tools->[0] : {};
    my $name = $fmt eq 'openai'    ? (ref $t0->{function} eq 'HASH'
                                          ? $t0->{function}{name} : undef)
             : $fmt eq 'anthropic' ? $t0->{name}
             : ref $t0->{functionDeclarations} eq 'ARRAY'
               && ref $t0->{functionDeclarations}[0] eq 'HASH'
                   ? $t0->{functionDeclarations}[0]{name} : undef;
    $name = 'mock_tool' unless defined $name && !ref $name && length $name;
    my $args = { text => $conv->{last_user} };
    my $json = $JSON->encode($args);
    my $half = int(length($json) / 2);
    return { name => $name, args => $args, json => $json,
             fragments => [substr($json, 0, $half), substr($json, $half)],
             seq => ++$resp_seq };
}

# ----------------------------------------------------------------------
# Errors in each provider's format.

my %OPENAI_ERR = (400 => 'invalid_request_error', 401 => 'invalid_request_error',
                  403 => 'invalid_request_error', 404 => 'invalid_request_error',
                  429 => 'rate_limit_exceeded');
my %ANTHROPIC_ERR = (400 => 'invalid_request_error', 401 => 'authentication_error',
                     403 => 'permission_error', 404 => 'not_found_error',
                     413 => 'request_too_large', 429 => 'rate_limit_error',
                     500 => 'api_error', 529 => 'overloaded_error');
my %GOOGLE_ERR = (400 => 'INVALID_ARGUMENT', 401 => 'UNAUTHENTICATED',
                  403 => 'PERMISSION_DENIED', 404 => 'NOT_FOUND',
                  429 => 'RESOURCE_EXHAUSTED', 500 => 'INTERNAL',
                  503 => 'UNAVAILABLE', 504 => 'DEADLINE_EXCEEDED');

sub error_plan {
    my ($c, $req, $fmt, $status, $b, $msg) = @_;
    my $body;
    if ($b->{echoheaders}) {
        my $h = $req->{headers};
        $msg = 'Incorrect API key provided: '
             . join('; ', map { "$_: $h->{$_}" } sort keys %$h);
    }
    if ($fmt eq 'anthropic') {
        $body = { type => 'error', error => {
            type => $ANTHROPIC_ERR{$status} // ($status >= 500 ? 'api_error'
                                                               : 'invalid_request_error'),
            message => $msg } };
    } elsif ($fmt eq 'gemini') {
        $body = { error => { code => $status + 0, message => $msg,
            status => $GOOGLE_ERR{$status} // ($status >= 500 ? 'INTERNAL'
                                                              : 'FAILED_PRECONDITION') } };
    } else {
        my $type = $OPENAI_ERR{$status} // ($status >= 500 ? 'server_error'
                                                           : 'invalid_request_error');
        $body = { error => { message => $msg, type => $type, param => undef,
                             code => $status == 429 ? 'rate_limit_exceeded' : undef } };
    }
    my @extra;
    if ($status == 429 || defined $b->{retryafter}) {
        push @extra, ['Retry-After', $b->{retryafter} // 1];
    }
    push @extra, ['retry-after-ms', $b->{retryafterms}] if defined $b->{retryafterms};
    my %b = %$b;
    delete $b{headerdelay};             # errors come whole (after delay)
    return plain_plan($c, $req, $status, 'application/json',
                      $JSON->encode($body), \%b, \@extra);
}

sub garbage_plan {
    my ($x) = @_;
    my ($c, $req, $b) = @$x{qw(c req b)};
    if (!$x->{stream}) {
        return plain_plan($c, $req, 200, 'application/json',
                          "<html>mock garbage: this is {not JSON\n", $b);
    }
    my $ev = sse($b, undef, '{"this is": not JSON at all');
    return stream_plan($x, [$ev], [], 1);
}

# ----------------------------------------------------------------------
# Streams.
#
# stream_plan(ctx, \@events, \@terminator, $cut): headers, then the events
# (each its own write, slow<N> apart, the first after headerdelay<N>), then
# the terminator events and the end of the body; $cut (or behaviour "cut",
# which keeps only the opening events and two content events -- the caller
# marks them) closes the connection instead of ending the body.

sub sse {
    my ($b, $event, $data) = @_;
    my $nl = $b->{crlf} ? "\r\n" : "\n";
    return (defined $event ? "event: $event$nl" : '') . "data: $data$nl$nl";
}

sub stream_plan {
    my ($x, $events, $term, $cut) = @_;
    my ($c, $req, $b) = @$x{qw(c req b)};
    my $chunked = $req->{version} eq '1.1';
    my $close = $cut || !$chunked;
    my $head = response_head($c, $req, 200, 'text/event-stream', undef, $close);
    my $frame = $chunked ? sub { sprintf("%x\r\n%s\r\n", length $_[0], $_[0]) }
                         : sub { $_[0] };
    my @plan = ([$b->{delay} // 0, $head]);
    my $gap = $b->{slow} // 0;
    my $first = $b->{headerdelay} // 0;
    my @all = $cut ? @$events : (@$events, @$term);
    for my $i (0 .. $#all) {
        push @plan, [$i == 0 ? $first : $gap, $frame->($all[$i])];
    }
    if ($cut) {
        push @plan, [0, undef];
    } elsif ($chunked) {
        push @plan, [0, "0\r\n\r\n"];
    } else {
        push @plan, [0, undef];                 # HTTP/1.0: close ends the body
    }
    return (\@plan, $close);
}

# Split content events for behaviours "cut" and "streamerror": keep the
# first two (only "cut" cuts the connection).
sub maybe_cut {
    my ($b, $content) = @_;
    return ($content, 0) unless $b->{cut} || $b->{streamerror};
    return ([@$content[0 .. ($#$content < 1 ? $#$content : 1)]],
            $b->{cut} ? 1 : 0);
}

# Behaviour "streamerror": the provider's error event, as the stream's end.
sub stream_error {
    my ($x, $fmt) = @_;
    my $msg = canned_answer($x->{model}) // 'mock: error in the stream';
    return sse($x->{b}, undef, $JSON->encode({ error => {
        message => $msg, type => 'server_error', param => undef,
        code => undef } })) if $fmt eq 'openai';
    return sse($x->{b}, 'error', $JSON->encode({ type => 'error', error => {
        type => 'overloaded_error', message => $msg } }));
}

# Per-word events differ only in a few values, so each stream encodes its
# event once with "@@NAME@@" placeholders and fills them per word (JSON::PP
# is pure Perl: this keeps streams fast enough for the benchmarks).
my $JSON_VALUE = JSON::PP->new->utf8->allow_nonref;

sub json_template {
    my ($data) = @_;
    my $t = $JSON->encode($data);
    return sub {
        my %v = @_;
        (my $s = $t) =~ s/"\@\@(\w+)\@\@"/$v{$1}/g;
        return $s;
    };
}

# ---------------------------------------------------------------- OpenAI

sub openai_usage {
    my ($a, $b) = @_;
    return { prompt_tokens => -1000000, completion_tokens => 1e30,
             total_tokens => 7 } if $b && $b->{badusage};
    return { prompt_tokens => $a->{prompt_tokens},
             completion_tokens => $a->{completion_tokens},
             total_tokens => $a->{prompt_tokens} + $a->{completion_tokens} };
}

sub openai_complete {
    my ($x) = @_;
    my $a = $x->{a};
    my $body = {
        id => "chatcmpl-mock-$$-" . ++$resp_seq,
        object => 'chat.completion',
        created => int time,
        model => $x->{model},
        choices => [{ index => 0,
                      message => { role => 'assistant', content => $a->{text} },
                      logprobs => undef,
                      finish_reason => $a->{truncated} ? 'length' : 'stop' }],
        usage => openai_usage($a, $x->{b}),
    };
    delete $body->{usage} if $x->{b}{nousage};
    if (my $tc = $x->{tool}) {
        $body->{choices}[0]{message} = { role => 'assistant', content => undef,
            tool_calls => [{ id => "call_mock_$tc->{seq}", type => 'function',
                             function => { name => $tc->{name},
                                           arguments => $tc->{json} } }] };
        $body->{choices}[0]{finish_reason} = 'tool_calls';
    }
    my $json = $JSON->encode($body);
    return cut_or_plain($x, $json);
}

# Non-stream body, or for behaviour "cut" a Content-Length larger than it.
sub cut_or_plain {
    my ($x, $json) = @_;
    my ($c, $req, $b) = @$x{qw(c req b)};
    return plain_plan($c, $req, 200, 'application/json', $json, $b)
        unless $b->{cut};
    my $head = response_head($c, $req, 200, 'application/json',
                             length($json) + 100, 1);
    my $half = substr($json, 0, int(length($json) / 2));
    return ([[$b->{delay} // 0, $head . $half], [0, undef]], 1);
}

sub openai_stream {
    my ($x) = @_;
    my ($a, $b, $d) = @$x{qw(a b data)};
    my $include_usage = ref $d->{stream_options} eq 'HASH'
                        && $d->{stream_options}{include_usage};
    my %base = (id => "chatcmpl-mock-$$-" . ++$resp_seq,
                object => 'chat.completion.chunk',
                created => int time, model => $x->{model});
    $base{usage} = undef if $include_usage;
    my $chunk = sub {
        my ($delta, $finish) = @_;
        sse($b, undef, $JSON->encode({ %base, choices => [{
            index => 0, delta => $delta, logprobs => undef,
            finish_reason => $finish }] }));
    };
    my @open = ($chunk->({ role => 'assistant', content => '' }, undef));
    my $word = json_template({ %base, choices => [{
        index => 0, delta => { content => '@@TEXT@@' }, logprobs => undef,
        finish_reason => undef }] });
    my @content = map { sse($b, undef, $word->(TEXT => $JSON_VALUE->encode($_))) }
                      @{$a->{pieces}};
    my $finish = $a->{truncated} ? 'length' : 'stop';
    if (my $tc = $x->{tool}) {
        @open = ($chunk->({ role => 'assistant', content => undef }, undef));
        @content = ($chunk->({ tool_calls => [{ index => 0,
            id => "call_mock_$tc->{seq}", type => 'function',
            function => { name => $tc->{name}, arguments => '' } }] }, undef),
            map { $chunk->({ tool_calls => [{ index => 0,
                                 function => { arguments => $_ } }] }, undef) }
                @{$tc->{fragments}});
        $finish = 'tool_calls';
    }
    my ($content, $cut) = maybe_cut($b, \@content);
    my @term = ($chunk->({}, $finish));
    push @term, sse($b, undef, $JSON->encode({ %base, choices => [],
                                               usage => openai_usage($a, $b) }))
        if $include_usage && !$b->{nousage};
    push @term, sse($b, undef, '[DONE]');
    @term = (stream_error($x, 'openai')) if $b->{streamerror};
    return stream_plan($x, [@open, @$content], \@term, $cut);
}

sub openai_models {
    my ($c, $req) = @_;
    my $now = int time;
    my $body = $JSON->encode({ object => 'list', data => [
        map { { id => $_, object => 'model', created => $now, owned_by => 'mock' } }
            qw(mock-model gpt-4o gpt-4o-mini) ] });
    return plain_plan($c, $req, 200, 'application/json', $body, {});
}

# ------------------------------------------------------------- Anthropic

sub anthropic_usage {
    my ($x, $output) = @_;
    my $u = { input_tokens => $x->{a}{prompt_tokens}, output_tokens => $output };
    if ($x->{b}{cache}) {
        $u->{cache_creation_input_tokens} = 5;
        $u->{cache_read_input_tokens} = 7;
    }
    return $u;
}

sub anthropic_complete {
    my ($x) = @_;
    my $a = $x->{a};
    my $body = {
        id => "msg_mock_$$" . '_' . ++$resp_seq,
        type => 'message', role => 'assistant', model => $x->{model},
        content => [{ type => 'text', text => $a->{text} }],
        stop_reason => $a->{truncated} ? 'max_tokens' : 'end_turn',
        stop_sequence => undef,
        usage => anthropic_usage($x, $a->{completion_tokens}),
    };
    if (my $tc = $x->{tool}) {
        $body->{content} = [{ type => 'tool_use', id => "toolu_mock_$tc->{seq}",
                              name => $tc->{name}, input => $tc->{args} }];
        $body->{stop_reason} = 'tool_use';
    }
    return cut_or_plain($x, $JSON->encode($body));
}

sub anthropic_stream {
    my ($x) = @_;
    my ($a, $b) = @$x{qw(a b)};
    my $ev = sub { my ($type, $data) = @_;
                   sse($b, $type, $JSON->encode({ type => $type, %$data })) };
    my @open = (
        $ev->(message_start => { message => {
            id => "msg_mock_$$" . '_' . ++$resp_seq, type => 'message',
            role => 'assistant', model => $x->{model}, content => [],
            stop_reason => undef, stop_sequence => undef,
            usage => anthropic_usage($x, 1) } }),
        $ev->(content_block_start => { index => 0,
                                       content_block => { type => 'text', text => '' } }),
        $ev->(ping => {}),
    );
    my $delta = json_template({ type => 'content_block_delta', index => 0,
                                delta => { type => 'text_delta', text => '@@TEXT@@' } });
    my @content = map {
        sse($b, 'content_block_delta', $delta->(TEXT => $JSON_VALUE->encode($_)))
    } @{$a->{pieces}};
    my $stop = $a->{truncated} ? 'max_tokens' : 'end_turn';
    if (my $tc = $x->{tool}) {
        $open[1] = $ev->(content_block_start => { index => 0, content_block => {
            type => 'tool_use', id => "toolu_mock_$tc->{seq}",
            name => $tc->{name}, input => {} } });
        @content = map {
            $ev->(content_block_delta => { index => 0, delta => {
                type => 'input_json_delta', partial_json => $_ } })
        } '', @{$tc->{fragments}};
        $stop = 'tool_use';
    }
    my ($content, $cut) = maybe_cut($b, \@content);
    my @term = (
        $ev->(content_block_stop => { index => 0 }),
        $ev->(message_delta => {
            delta => { stop_reason => $stop,
                       stop_sequence => undef },
            usage => { output_tokens => $a->{completion_tokens} } }),
        $ev->(message_stop => {}),
    );
    @term = (stream_error($x, 'anthropic')) if $b->{streamerror};
    return stream_plan($x, [@open, @$content], \@term, $cut);
}

# ---------------------------------------------------------------- Gemini

sub gemini_chunk {
    my ($x, $text, $sent, $last) = @_;
    my $a = $x->{a};
    my $cand = { content => { role => 'model', parts => [{ text => $text }] },
                 index => 0 };
    $cand->{content}{parts} = [{ functionCall => { name => $x->{tool}{name},
                                                   args => $x->{tool}{args} } }]
        if $x->{tool};
    $cand->{finishReason} = $a->{truncated} && !$x->{tool} ? 'MAX_TOKENS' : 'STOP'
        if $last;
    my $thoughts = $x->{b}{thoughts} ? 3 : 0;
    my $um = { promptTokenCount => $a->{prompt_tokens},
               candidatesTokenCount => $sent,
               totalTokenCount => $sent =~ /^\d+$/
                   ? $a->{prompt_tokens} + $sent + $thoughts : '@@TOTAL@@' };
    $um->{thoughtsTokenCount} = $thoughts if $thoughts;
    return { candidates => [$cand], usageMetadata => $um,
             modelVersion => $x->{model} };
}

sub gemini_complete {
    my ($x) = @_;
    my $a = $x->{a};
    return cut_or_plain($x, $JSON->encode(
        gemini_chunk($x, $a->{text}, $a->{completion_tokens}, 1)));
}

# The JSON of each stream chunk: one word each, running usage counts,
# finishReason on the last.
sub gemini_chunks {
    my ($x) = @_;
    # toolcall: the call, whole, in one chunk
    return $JSON->encode(gemini_chunk($x, '', $x->{a}{completion_tokens}, 1))
        if $x->{tool};
    my @p = @{$x->{a}{pieces}};
    @p = ('') unless @p;
    my $mid = json_template(gemini_chunk($x, '@@TEXT@@', '@@SENT@@', 0));
    my $base = $x->{a}{prompt_tokens} + ($x->{b}{thoughts} ? 3 : 0);
    return map {
        $_ == $#p ? $JSON->encode(gemini_chunk($x, $p[$_], $_ + 1, 1))
                  : $mid->(TEXT => $JSON_VALUE->encode($p[$_]), SENT => $_ + 1,
                           TOTAL => $base + $_ + 1)
    } 0 .. $#p;
}

sub gemini_stream {
    my ($x) = @_;
    my @content = map { sse($x->{b}, undef, $_) } gemini_chunks($x);
    my ($content, $cut) = maybe_cut($x->{b}, \@content);
    return stream_plan($x, $content, [], $cut);
}

# streamGenerateContent without alt=sse: one JSON array of the chunks.
sub gemini_stream_array {
    my ($x) = @_;
    my $json = '[' . join(",\r\n", gemini_chunks($x)) . ']';
    return cut_or_plain($x, $json);
}

# ------------------------------------------------ embeddings, token counts

# (plan, close) for the endpoints beyond chat, or () for the others.
sub dispatch_more {
    my ($c, $req, $path, $m) = @_;
    my ($gem_model, $gem_method) =
        $path =~ m{^/v1beta/models/([^/:]+):(batchEmbedContents|countTokens|predict)$};
    my $kind = $path eq '/v1/embeddings'             ? 'openai_embed'
             : $path eq '/v1/messages/count_tokens'  ? 'anthropic_count'
             : !defined $gem_method                  ? undef
             : $gem_method eq 'countTokens'          ? 'gemini_count'
             : $gem_method eq 'predict'              ? 'vertex_embed'
             :                                         'gemini_embed';
    return () unless $kind;
    my $fmt = $kind =~ /^(\w+?)_/ ? $1 : 'openai';
    $fmt = 'gemini' if $fmt eq 'vertex';
    return error_plan($c, $req, $fmt, 405, {}, "mock: method $m not allowed")
        if $m ne 'POST';
    my $data = eval { $JSON->decode($req->{body}) };
    my $b = parse_behave($req->{headers}{'x-mock-behave'}, {});
    return error_plan($c, $req, $fmt, 400, $b,
                      "mock: request body is not a JSON object")
        unless ref $data eq 'HASH';
    my $model = defined $gem_model ? url_unescape($gem_model) : $data->{model};
    parse_behave($model, $b) if defined $model && !ref $model;
    return ([[$b->{delay} // 0, undef]], 1) if $b->{drop};
    if ($b->{status} && $b->{status} >= 400) {
        return error_plan($c, $req, $fmt, $b->{status}, $b,
                          canned_answer($model)
                          // "mock: status $b->{status} requested");
    }
    my %x = (c => $c, req => $req, b => $b, model => $model, data => $data);
    return garbage_plan(\%x) if $b->{garbage};
    return plain_plan($c, $req, 200, 'application/json', '{}', $b)
        if $b->{empty};
    my $out = $kind eq 'openai_embed'    ? openai_embed($data)
            : $kind eq 'gemini_embed'    ? gemini_embed($data, $model)
            : $kind eq 'vertex_embed'    ? vertex_embed($data)
            : $kind eq 'anthropic_count' ? anthropic_count($data)
            :                              gemini_count($data);
    return error_plan($c, $req, $fmt, 400, $b, $out) unless ref $out;
    delete $out->{usage} if $b->{nousage};
    return plain_plan($c, $req, 200, 'application/json', $JSON->encode($out),
                      $b);
}

sub is_json_int {
    require B;
    my $f = B::svref_2object(\$_[0])->FLAGS;
    return ($f & (B::SVp_IOK() | B::SVp_NOK())) && !($f & B::SVp_POK())
        && $_[0] == int $_[0] && $_[0] >= 0;
}

sub embed_vector {
    my ($units, $dims, $base64) = @_;
    my @v = map { ($units + $_) / 1024 } 0 .. $dims - 1;
    return \@v unless $base64;
    require MIME::Base64;
    return MIME::Base64::encode_base64(pack('f<*', @v), '');
}

sub embed_dims {
    my ($d) = @_;
    return 3 unless defined $d;
    return $d =~ /^\d+$/ && $d >= 1 && $d <= 4096 ? $d : undef;
}

sub openai_embed {
    my ($d) = @_;
    return "model: a string is required"
        unless defined $d->{model} && !ref $d->{model};
    my $in = $d->{input};
    # a token array is an array of JSON numbers (flags read before any
    # string use, which would make a number look like a string too)
    my $tokens_of = sub {
        my ($a) = @_;
        return 0 unless ref $a eq 'ARRAY' && @$a;
        for (@$a) {
            return 0 if ref || !is_json_int($_);
        }
        return 1;
    };
    my @inputs = !ref $in                  ? ($in)
               : $tokens_of->($in)         ? ($in)
               : ref $in eq 'ARRAY'        ? @$in
               :                             ();
    my $bad = "'\$.input' is invalid. Please check the API reference";
    return $bad unless @inputs;
    my $b64 = ($d->{encoding_format} // 'float') eq 'base64';
    my $dims = embed_dims($d->{dimensions})
        // return "dimensions: an integer from 1 to 4096 is required";
    my ($chars, $tokens, @data) = (0, 0);
    for my $i (0 .. $#inputs) {
        my $x = $inputs[$i];
        my $n;
        if ($tokens_of->($x)) {
            $n = @$x;
            $tokens += $n;
        } elsif (defined $x && !ref $x && !is_json_int($x) && length $x) {
            $n = length $x;
            $chars += $n;
        } else {
            return $bad;
        }
        push @data, { object => 'embedding', index => $i,
                      embedding => embed_vector($n, $dims, $b64) };
    }
    my $prompt = $tokens + ($chars ? int(($chars + 3) / 4) : 0);
    $prompt = 1 if $prompt < 1;
    return { object => 'list', data => \@data, model => $d->{model},
             usage => { prompt_tokens => $prompt, total_tokens => $prompt } };
}

sub gemini_embed {
    my ($d, $model) = @_;
    my $reqs = $d->{requests};
    return "requests: a non-empty array is required"
        unless ref $reqs eq 'ARRAY' && @$reqs;
    my @out;
    for my $r (@$reqs) {
        return "requests: each request must be an object" unless ref $r eq 'HASH';
        return "Model names in the requests must match the model in the "
             . "path (models/$model)"
            unless ($r->{model} // '') eq "models/$model";
        my $chars = 0;
        my $parts = ref $r->{content} eq 'HASH' ? $r->{content}{parts} : undef;
        return "content.parts: a non-empty array is required"
            unless ref $parts eq 'ARRAY' && @$parts;
        text_of($parts, \$chars);
        my $dims = embed_dims($r->{outputDimensionality})
            // return "outputDimensionality: an integer is required";
        push @out, { values => embed_vector($chars, $dims, 0) };
    }
    return { embeddings => \@out };
}

# Vertex AI's :predict of a text embedding model: {"instances":[{"content"
# [,"task_type","title"]}],"parameters":{"autoTruncate","outputDimensionality"}}
# -> {"predictions":[{"embeddings":{"values","statistics":{"token_count",
# "truncated"}}}]}; an input over 2048 tokens is a 400 when autoTruncate is
# false, else cut to 2048 (truncated true).
sub vertex_embed {
    my ($d) = @_;
    for my $k (sort keys %$d) {
        return "Invalid JSON payload received. Unknown name \"$k\""
            unless $k eq 'instances' || $k eq 'parameters';
    }
    my $in = $d->{instances};
    return "instances: a non-empty array is required"
        unless ref $in eq 'ARRAY' && @$in;
    my $p = $d->{parameters} // {};
    return "parameters: an object is required" unless ref $p eq 'HASH';
    for my $k (sort keys %$p) {
        return "Invalid JSON payload received. Unknown name \"$k\" at "
             . "'parameters'"
            unless $k eq 'autoTruncate' || $k eq 'outputDimensionality';
    }
    my $dims = embed_dims($p->{outputDimensionality})
        // return "outputDimensionality: an integer is required";
    my $cut = !(JSON::PP::is_bool($p->{autoTruncate}) && !$p->{autoTruncate});
    my ($chars, @out) = (0);
    for my $i (@$in) {
        return "instances: each instance must be an object with a content"
            unless ref $i eq 'HASH' && defined $i->{content}
                   && !ref $i->{content} && length $i->{content};
        my $n = length $i->{content};
        my $tok = int(($n + 3) / 4);
        return "Unable to submit request because the input token count is "
             . "$tok but the model supports up to 2048. Reduce the input "
             . "token count and try again."
            if $tok > 2048 && !$cut;
        my $trunc = $tok > 2048;
        $tok = 2048 if $trunc;
        $chars += $n;
        push @out, { embeddings => { values => embed_vector($n, $dims, 0),
            statistics => { token_count => $tok,
                            truncated => $trunc ? JSON::PP::true
                                                : JSON::PP::false } } };
    }
    return { predictions => \@out,
             metadata => { billableCharacterCount => $chars } };
}

sub anthropic_count {
    my ($d) = @_;
    my %ok = map { $_ => 1 } qw(model messages system tools tool_choice
                                thinking mcp_servers);
    for my $k (sort keys %$d) {
        return "$k: Extra inputs are not permitted" unless $ok{$k};
    }
    my $conv = anthropic_conversation({ %$d, max_tokens => 1 });
    return $conv unless ref $conv;
    return { input_tokens => answer($d->{model}, $conv)->{prompt_tokens} };
}

sub gemini_count {
    my ($d) = @_;
    my $inner = ref $d->{generateContentRequest} eq 'HASH'
              ? $d->{generateContentRequest} : $d;
    my $conv = gemini_conversation($inner);
    return $conv unless ref $conv;
    return { totalTokens => answer(undef, $conv)->{prompt_tokens} };
}

do((__FILE__ =~ m{^(.*/)} ? $1 : './') . 'mock_cloud.pl') or die "mock_cloud.pl: $@$!";

main();
