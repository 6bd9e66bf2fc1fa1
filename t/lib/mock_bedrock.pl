# mock_bedrock.pl - Amazon Bedrock's Converse and ConverseStream for
# mock_provider.pl (which requires this file; Perl core modules only).
#
#   POST /model/MODEL_ID/converse          -> a Converse answer (JSON)
#   POST /model/MODEL_ID/converse-stream   -> application/vnd.amazon.eventstream
#   POST /model/MODEL_ID/invoke            -> InvokeModel of an embedding
#        model, in its own body (sub br_invoke): Amazon Titan
#        {"inputText"[,"dimensions" 256|512|1024,"normalize"]} ->
#        {"embedding":[...],"inputTextTokenCount":ceil(CHARS/4)}; Cohere
#        {"texts":[1..96],"input_type"(required)[,"truncate",
#        "output_dimension"]} -> {"embeddings":[[...]],"id",
#        "response_type":"embeddings_floats","texts"} (no token count in
#        the body); both with the header X-Amzn-Bedrock-Input-Token-Count
#        (the sum of ceil(CHARS/4) over the texts; not sent with the model
#        token "noheadercount"); the vectors as mock_provider.pl's; an
#        unknown member, or another model, is a 400 ValidationException
#
# MODEL_ID is the path segment percent-decoded once (as AWS does): a model
# id "anthropic.claude-3-7-sonnet-20250219-v1:0" is sent as
# ".../v1%3A0/", an ARN's "/" as %2F.  A decoded id that still holds "%"
# (the path was escaped twice on the way) is a 400 ValidationException.
#
# SIGNATURE V4, checked exactly as AWS does, before anything else:
#   Authorization: AWS4-HMAC-SHA256 Credential=AKID/DAY/REGION/bedrock/
#   aws4_request, SignedHeaders=..., Signature=...  The canonical request
#   is rebuilt from what arrived: the method, the path as received escaped
#   once more (each byte but A-Za-z0-9-._~ and "/"), the query, every
#   signed header's value (trimmed, inner blanks collapsed), the
#   SignedHeaders list and the SHA-256 of the body received; "host" and
#   "x-amz-date" must be signed, Host must be
#   bedrock-runtime.REGION.amazonaws.com, x-amz-content-sha256 (when sent)
#   the body's hash.  The mock's clock is time() + skew<N> seconds (a
#   model token, e.g. "mock.claude-skew1200-v1:0"); a date more than 15
#   minutes away from it is refused.  Credentials known:
#     AKIDMOCKBEDROCK / mock/Secret+Key/EXAMPLE0123456789abcdef
#     ASIAMOCKSESSION / session/Secret+Key/EXAMPLE9876543210fedc (needs
#                       x-amz-security-token, signed: MOCKSESSIONTOKEN
#                       valid, MOCKEXPIREDTOKEN expired)
#   Refusals are 403 with Bedrock's body {"message": ...} and
#   x-amzn-ErrorType: UnrecognizedClientException (unknown key id, or no
#   Authorization: MissingAuthenticationTokenException),
#   InvalidSignatureException (wrong signature, Signature expired),
#   ExpiredTokenException (the expired session token).
#
# CONVERSE REQUESTS (400 ValidationException otherwise, as the real API):
#   a JSON object with only messages, system, inferenceConfig, toolConfig,
#   additionalModelRequestFields...; "messages" a non-empty array of
#   {role: user|assistant, content: [blocks]} starting with user, roles
#   alternating; a block is {text}, {image: {format, source: {bytes}}},
#   {toolUse: {toolUseId, name, input}} or {toolResult: {toolUseId,
#   content}}; toolUse/toolResult need toolConfig.tools.
#
# ANSWERS follow mock_provider.pl's rules: "Mock answer to: LAST_USER_TEXT"
#   (the text blocks of the last user message joined with a space),
#   outputTokens = its words (cut to inferenceConfig.maxTokens, stopReason
#   "max_tokens", else "end_turn"), inputTokens = ceil(CHARS / 4) over the
#   text blocks of every message and "system".  Behaviours (model tokens
#   or x-mock-behave): status<NNN>, delay<N>, drop, slow<N>, cut,
#   streamerror (a modelStreamErrorException after two words), toolcall
#   (a toolUse of the first declared tool, input {"text": LAST_USER_TEXT};
#   stopReason "tool_use"), cache (cacheReadInputTokens 7,
#   cacheWriteInputTokens 5, not in inputTokens), badcrc (the third
#   message's CRC is wrong), skew<N>.
#   Streams: messageStart, one contentBlockDelta per word, contentBlockStop,
#   messageStop, metadata {usage, metrics}; every payload carries AWS's
#   "p" padding.

package main;

use strict;
use warnings;

use Digest::SHA qw(sha256_hex hmac_sha256 hmac_sha256_hex);
use JSON::PP;
use POSIX qw(strftime);

my $BR_JSON = JSON::PP->new->utf8->canonical;

my %BR_KEYS = (
    AKIDMOCKBEDROCK => 'mock/Secret+Key/EXAMPLE0123456789abcdef',
    ASIAMOCKSESSION => 'session/Secret+Key/EXAMPLE9876543210fedc',
);
my %BR_TOKENS = (MOCKSESSIONTOKEN => 'valid', MOCKEXPIREDTOKEN => 'expired');

my @BR_CRC;
for my $n (0 .. 255) {
    my $c = $n;
    $c = ($c & 1) ? 0xedb88320 ^ ($c >> 1) : $c >> 1 for 1 .. 8;
    $BR_CRC[$n] = $c;
}

sub br_crc32 {
    my $c = 0xffffffff;
    $c = $BR_CRC[($c ^ $_) & 0xff] ^ ($c >> 8) for unpack 'C*', $_[0];
    return $c ^ 0xffffffff;
}

# One event stream message: headers [name, string value]..., payload.
sub br_message {
    my ($headers, $payload, $badcrc) = @_;
    my $h = '';
    for my $kv (@$headers) {
        $h .= pack('C', length $kv->[0]) . $kv->[0] . pack('C n', 7,
                                                           length $kv->[1])
            . $kv->[1];
    }
    my $total = 12 + length($h) + length($payload) + 4;
    my $pre = pack('N N', $total, length $h);
    my $m = $pre . pack('N', br_crc32($pre)) . $h . $payload;
    my $crc = br_crc32($m);
    $crc ^= 1 if $badcrc;
    return $m . pack('N', $crc);
}

sub br_event {
    my ($type, $data, $badcrc) = @_;
    $data->{p} = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0'
        unless exists $data->{p};
    return br_message([[':event-type', $type],
                       [':content-type', 'application/json'],
                       [':message-type', 'event']],
                      $BR_JSON->encode($data), $badcrc);
}

sub br_exception {
    my ($type, $msg) = @_;
    return br_message([[':exception-type', $type],
                       [':content-type', 'application/json'],
                       [':message-type', 'exception']],
                      $BR_JSON->encode({ message => $msg }));
}

sub br_error {
    my ($c, $req, $status, $type, $msg, $b) = @_;
    my %b = %{ $b || {} };
    delete $b{headerdelay};
    return plain_plan($c, $req, $status, 'application/json',
                      $BR_JSON->encode({ message => $msg }), \%b,
                      [['x-amzn-ErrorType', "$type:http://internal.amazon.com/"
                                           . "coral/com.amazon.bedrock/"],
                       ['x-amzn-RequestId', 'mock-req-1']]);
}

sub br_refuse { return [@_] }

sub br_uri_escape {
    my ($s, $slash) = @_;
    my $keep = $slash ? qr{[A-Za-z0-9\-._~/]} : qr{[A-Za-z0-9\-._~]};
    return join '', map { $_ =~ $keep ? $_ : sprintf('%%%02X', ord) }
                    split //, $s;
}

sub br_date_epoch {
    my ($d) = @_;
    my ($Y, $M, $D, $h, $m, $s) =
        $d =~ /^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/ or return undef;
    require Time::Local;
    return eval { Time::Local::timegm($s, $m, $h, $D, $M - 1, $Y) };
}

# undef when the request is signed right, else [status, type, message].
sub br_check_signature {
    my ($c, $req, $path, $query, $b) = @_;
    my $h = $req->{headers};
    my $auth = $h->{authorization}
        // return br_refuse(403, 'MissingAuthenticationTokenException',
                           'Missing Authentication Token');
    my ($akid, $day, $region, $service, $signed, $sig) = $auth =~
        m{^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request,\s*SignedHeaders=([a-z0-9;\-]+),\s*Signature=([0-9a-f]{64})$}
        or return br_refuse(403, 'IncompleteSignatureException',
                           "Authorization header requires 'Credential', "
                           . "'Signature', 'SignedHeaders' parameters.");
    my $secret = $BR_KEYS{$akid}
        // return br_refuse(403, 'UnrecognizedClientException',
                           'The security token included in the request is '
                           . 'invalid.');
    my @signed = split /;/, $signed;
    my %is = map { $_ => 1 } @signed;
    my $date = $h->{'x-amz-date'} // '';
    return br_refuse(403, 'IncompleteSignatureException',
                    'host and x-amz-date must be signed')
        unless $is{host} && $is{'x-amz-date'};
    return br_refuse(403, 'InvalidSignatureException',
                    'Credential should be scoped to correct service: '
                    . "'bedrock'.")
        unless $service eq 'bedrock';
    return br_refuse(403, 'InvalidSignatureException',
                    "Host $h->{host} is not bedrock-runtime.$region.amazonaws.com")
        unless ($h->{host} // '') eq "bedrock-runtime.$region.amazonaws.com";
    my $body_hash = sha256_hex($req->{body});
    return br_refuse(400, 'ValidationException',
                    'The provided x-amz-content-sha256 header does not match '
                    . 'what was computed.')
        if defined $h->{'x-amz-content-sha256'}
           && $h->{'x-amz-content-sha256'} ne $body_hash;

    my $canon_headers = '';
    for my $n (@signed) {
        my $v = $h->{$n} // '';
        $v =~ s/^\s+|\s+$//g;
        $v =~ s/\s+/ /g;
        $canon_headers .= "$n:$v\n";
    }
    my $cr = join "\n", $req->{method}, br_uri_escape($path, 1), $query,
                        $canon_headers, $signed, $body_hash;
    my $scope = "$day/$region/$service/aws4_request";
    my $sts = join "\n", 'AWS4-HMAC-SHA256', $date, $scope, sha256_hex($cr);
    my $k = hmac_sha256($day, "AWS4$secret");
    $k = hmac_sha256($region, $k);
    $k = hmac_sha256($service, $k);
    $k = hmac_sha256('aws4_request', $k);
    if (hmac_sha256_hex($sts, $k) ne $sig || substr($date, 0, 8) ne $day) {
        return br_refuse(403, 'InvalidSignatureException',
            'The request signature we calculated does not match the '
            . 'signature you provided. Check your AWS Secret Access Key and '
            . 'signing method. Consult the service documentation for '
            . 'details.');
    }

    my $t = br_date_epoch($date);
    my $now = time + ($b->{skew} // 0);
    if (!defined $t || abs($now - $t) > 15 * 60) {
        my $fmt = '%Y%m%dT%H%M%SZ';
        return br_refuse(403, 'InvalidSignatureException',
            "Signature expired: $date is now earlier than "
            . strftime($fmt, gmtime($now - 15 * 60)) . ' ('
            . strftime($fmt, gmtime($now)) . ' - 15 min.)')
            if !defined $t || $t < $now;
        return br_refuse(403, 'InvalidSignatureException',
            "Signature not yet current: $date is still later than "
            . strftime($fmt, gmtime($now + 15 * 60)) . ' ('
            . strftime($fmt, gmtime($now)) . ' + 15 min.)');
    }

    if ($akid =~ /^ASIA/) {
        my $tok = $h->{'x-amz-security-token'};
        return br_refuse(403, 'UnrecognizedClientException',
                        'The security token included in the request is '
                        . 'invalid.')
            unless defined $tok && $is{'x-amz-security-token'}
                   && $BR_TOKENS{$tok};
        return br_refuse(403, 'ExpiredTokenException',
                        'The security token included in the request is '
                        . 'expired')
            if $BR_TOKENS{$tok} eq 'expired';
    }
    return undef;
}

sub br_texts {
    my ($content) = @_;
    return () unless ref $content eq 'ARRAY';
    return map { $_->{text} } grep { ref eq 'HASH' && defined $_->{text}
                                     && !ref $_->{text} } @$content;
}

# The Converse body -> {chars, last_user, max_tokens} or an error text.
sub br_conversation {
    my ($d) = @_;
    my %ok = map { $_ => 1 } qw(messages system inferenceConfig toolConfig
        guardrailConfig additionalModelRequestFields promptVariables
        additionalModelResponseFieldPaths requestMetadata performanceConfig);
    for (sort keys %$d) {
        return "Malformed input request: extraneous key [$_] is not "
             . 'permitted, please reformat your input and try again.'
            unless $ok{$_};
    }
    my $msgs = $d->{messages};
    return 'A conversation must start with a user message. Try again with '
         . 'a conversation that starts with a user message.'
        unless ref $msgs eq 'ARRAY' && @$msgs
               && ref $msgs->[0] eq 'HASH' && ($msgs->[0]{role} // '') eq 'user';
    my ($chars, $last, $prev, $tools) = (0, '', '', 0);
    $tools = 1 if ref $d->{toolConfig} eq 'HASH'
                  && ref $d->{toolConfig}{tools} eq 'ARRAY'
                  && @{ $d->{toolConfig}{tools} };
    for my $m (@$msgs) {
        return 'messages: each message is an object' unless ref $m eq 'HASH';
        my $role = $m->{role} // '';
        return "Value '$role' at 'messages.role' failed to satisfy "
             . 'constraint: Member must satisfy enum value set: '
             . '[user, assistant]'
            unless $role eq 'user' || $role eq 'assistant';
        return 'A conversation must alternate between user and assistant '
             . 'roles.' if $role eq $prev;
        $prev = $role;
        return 'messages.content must be a non-empty array'
            unless ref $m->{content} eq 'ARRAY' && @{ $m->{content} };
        for my $blk (@{ $m->{content} }) {
            return 'content block must be an object' unless ref $blk eq 'HASH';
            my @k = keys %$blk;
            return 'content block must have exactly one member' unless @k == 1;
            return "unknown content block $k[0]"
                unless $k[0] =~ /^(text|image|toolUse|toolResult)$/;
            return 'The toolConfig field must be defined when using toolUse '
                 . 'and toolResult content blocks.'
                if $k[0] =~ /^tool/ && !$tools;
            return 'image block needs format and source.bytes'
                if $k[0] eq 'image'
                   && !(ref $blk->{image} eq 'HASH' && $blk->{image}{format}
                        && ref $blk->{image}{source} eq 'HASH'
                        && defined $blk->{image}{source}{bytes});
        }
        my @t = br_texts($m->{content});
        $chars += length for @t;
        $last = join ' ', @t if $role eq 'user';
    }
    if (defined $d->{system}) {
        return 'system must be an array' unless ref $d->{system} eq 'ARRAY';
        $chars += length for br_texts($d->{system});
    }
    my $ic = ref $d->{inferenceConfig} eq 'HASH' ? $d->{inferenceConfig} : {};
    return { chars => $chars, last_user => $last,
             max_tokens => $ic->{maxTokens} };
}

sub br_usage {
    my ($a, $b) = @_;
    my %u = (inputTokens => $a->{prompt_tokens},
             outputTokens => $a->{completion_tokens});
    if ($b->{cache}) {
        $u{cacheReadInputTokens} = 7;
        $u{cacheWriteInputTokens} = 5;
    }
    my $t = 0;
    $t += $_ for values %u;
    $u{totalTokens} = $t;
    return \%u;
}

sub br_tool {
    my ($d, $conv) = @_;
    my $t = eval { $d->{toolConfig}{tools}[0]{toolSpec}{name} } // 'mock_tool';
    my $json = $BR_JSON->encode({ text => $conv->{last_user} });
    my $half = int(length($json) / 2);
    return { id => 'tooluse_mock_1', name => $t, input => { text =>
             $conv->{last_user} }, fragments => [substr($json, 0, $half),
             substr($json, $half)] };
}

# InvokeModel of an embedding model (Titan or Cohere), the body checked as
# Bedrock checks it
sub br_invoke {
    my ($c, $req, $model, $d, $b) = @_;
    my $bad = sub { br_error($c, $req, 400, 'ValidationException', $_[0], $b) };
    my $chars = sub { my $n = length $_[0]; int(($n + 3) / 4) || 1 };
    my ($body, $tokens) = (undef, 0);
    if ($model =~ /amazon\.titan-embed/) {
        my %ok = map { $_ => 1 } qw(inputText dimensions normalize embeddingTypes);
        for (sort keys %$d) {
            return $bad->("Malformed input request: extraneous key [$_] is "
                        . "not permitted, please reformat your input and try "
                        . "again.") unless $ok{$_};
        }
        my $t = $d->{inputText};
        return $bad->('Malformed input request: #: required key [inputText] '
                    . 'not found') unless defined $t && !ref $t && length $t;
        my $dims = $d->{dimensions} // 1024;
        return $bad->('Malformed input request: #/dimensions: '
                    . "$dims is not a valid enum value")
            unless $dims =~ /^(?:256|512|1024)$/;
        my $v = embed_vector(length $t, $dims, 0);
        $tokens = $chars->($t);
        $body = { embedding => $v, inputTextTokenCount => $tokens,
                  embeddingsByType => { float => $v } };
    } elsif ($model =~ /cohere\.embed/) {
        my %ok = map { $_ => 1 }
                 qw(texts input_type truncate embedding_types output_dimension);
        for (sort keys %$d) {
            return $bad->("Malformed input request: extraneous key [$_] is "
                        . "not permitted") unless $ok{$_};
        }
        my $texts = $d->{texts};
        return $bad->('Malformed input request: #/texts: expected an array '
                    . 'of 1 to 96 strings')
            unless ref $texts eq 'ARRAY' && @$texts && @$texts <= 96
                   && !grep { !defined || ref || !length } @$texts;
        return $bad->('Malformed input request: #: required key '
                    . '[input_type] not found')
            unless ($d->{input_type} // '')
                   =~ /^(?:search_document|search_query|classification|clustering)$/;
        my $dims = embed_dims($d->{output_dimension})
            // return $bad->('output_dimension: an integer is required');
        $tokens += $chars->($_) for @$texts;
        $body = { id => 'mock-embed-1', response_type => 'embeddings_floats',
                  texts => $texts,
                  embeddings => [map { embed_vector(length, $dims, 0) } @$texts] };
    } else {
        return $bad->('The provided model does not support InvokeModel of '
                    . 'this body');
    }
    my @h = (['x-amzn-RequestId', 'mock-req-1']);
    push @h, ['X-Amzn-Bedrock-Input-Token-Count', $tokens] unless $b->{noheadercount};
    return plain_plan($c, $req, 200, 'application/json',
                      $BR_JSON->encode($body), $b, \@h);
}

# Called by mock_provider.pl's dispatch: () when the path is not Bedrock's.
sub bedrock_dispatch {
    my ($c, $req, $path, $query) = @_;
    my ($raw, $op) = $path =~ m{^/model/([^/]+)/(converse|converse-stream|invoke)$}
        or return ();
    my $b = parse_behave($req->{headers}{'x-mock-behave'}, {});
    my $model = $raw;
    $model =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ge;
    parse_behave($model, $b);
    for (split /-/, lc $model) {
        $b->{skew} = $1 if /^skew(\d+)$/;
        $b->{badcrc} = 1 if $_ eq 'badcrc';
        $b->{noheadercount} = 1 if $_ eq 'noheadercount';
    }

    my $refusal = br_check_signature($c, $req, $path, $query // '', $b);
    return br_error($c, $req, @$refusal) if $refusal;

    return br_error($c, $req, 400, 'ValidationException',
                    'The provided model identifier is invalid.')
        if $model =~ /%/;
    return ([[$b->{delay} // 0, undef]], 1) if $b->{drop};
    if ($b->{status} && $b->{status} >= 400) {
        my %type = (400 => 'ValidationException', 403 => 'AccessDeniedException',
                    404 => 'ResourceNotFoundException',
                    429 => 'ThrottlingException',
                    500 => 'InternalServerException',
                    503 => 'ServiceUnavailableException');
        return br_error($c, $req, $b->{status},
                        $type{$b->{status}} // 'InternalServerException',
                        canned_answer($model)
                        // "mock: status $b->{status} requested", $b);
    }
    my $d = eval { $BR_JSON->decode($req->{body}) };
    return br_error($c, $req, 400, 'ValidationException',
                    'Malformed input request, please reformat your input '
                    . 'and try again.', $b)
        unless ref $d eq 'HASH';
    return br_invoke($c, $req, $model, $d, $b) if $op eq 'invoke';
    my $conv = br_conversation($d);
    return br_error($c, $req, 400, 'ValidationException', $conv, $b)
        unless ref $conv;

    my $a = answer($model, $conv);
    my $tool = $b->{toolcall} ? br_tool($d, $conv) : undef;
    my $stop = $tool ? 'tool_use' : $a->{truncated} ? 'max_tokens' : 'end_turn';

    if ($op eq 'converse') {
        my $content = $tool ? [{ toolUse => { toolUseId => $tool->{id},
                                              name => $tool->{name},
                                              input => $tool->{input} } }]
                            : [{ text => $a->{text} }];
        my $body = { output => { message => { role => 'assistant',
                                              content => $content } },
                     stopReason => $stop, usage => br_usage($a, $b),
                     metrics => { latencyMs => 12 } };
        return plain_plan($c, $req, 200, 'application/json',
                          $BR_JSON->encode($body), $b,
                          [['x-amzn-RequestId', 'mock-req-1']]);
    }

    my @ev = (br_event('messageStart', { role => 'assistant' }));
    if ($tool) {
        push @ev, br_event('contentBlockStart', { contentBlockIndex => 0,
            start => { toolUse => { toolUseId => $tool->{id},
                                    name => $tool->{name} } } });
        push @ev, br_event('contentBlockDelta', { contentBlockIndex => 0,
            delta => { toolUse => { input => $_ } } })
            for @{ $tool->{fragments} };
    } else {
        push @ev, br_event('contentBlockDelta', { contentBlockIndex => 0,
            delta => { text => $_ } }) for @{ $a->{pieces} };
    }
    my $cut = 0;
    if ($b->{cut} || $b->{streamerror}) {
        splice @ev, 3 if @ev > 3;
        if ($b->{streamerror}) {
            push @ev, br_exception('modelStreamErrorException',
                                   canned_answer($model)
                                   // 'mock: error in the stream');
        } else {
            $cut = 1;
        }
    } else {
        push @ev, br_event('contentBlockStop', { contentBlockIndex => 0 }),
                  br_event('messageStop', { stopReason => $stop }),
                  br_event('metadata', { usage => br_usage($a, $b),
                                         metrics => { latencyMs => 12 } });
    }
    $ev[2] = substr($ev[2], 0, -4) . pack('N', unpack('N', substr($ev[2], -4)) ^ 1)
        if $b->{badcrc} && @ev > 2;

    my $chunked = $req->{version} eq '1.1';
    my $close = $cut || !$chunked;
    my $head = response_head($c, $req, 200, 'application/vnd.amazon.eventstream',
                             undef, $close,
                             [['x-amzn-RequestId', 'mock-req-1']]);
    my @plan = ([$b->{delay} // 0, $head]);
    for my $i (0 .. $#ev) {
        my $e = $ev[$i];
        push @plan, [$i ? $b->{slow} // 0 : 0,
                     $chunked ? sprintf("%x\r\n%s\r\n", length $e, $e) : $e];
    }
    push @plan, [0, ($cut || !$chunked) ? undef : "0\r\n\r\n"];
    return (\@plan, $close);
}

1;
