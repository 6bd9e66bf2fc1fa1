# mock_cloud.pl - the cloud providers' front doors for mock_provider.pl:
# what Azure OpenAI and Google Vertex AI check before a request reaches
# the model, and Google's OAuth2 token endpoint (loaded by
# mock_provider.pl; its subs plain_plan etc. are called from here).
#
# AZURE OPENAI
#   POST /openai/deployments/DEPLOYMENT/chat/completions?api-version=V
#   POST /openai/deployments/DEPLOYMENT/embeddings?api-version=V
#   POST /openai/v1/chat/completions    (the v1 API: no api-version, the
#   POST /openai/v1/embeddings           deployment is the body's model)
#   Checked as Azure does, in its error format {"error":{"code","message"}}:
#     no api-version on a deployments path          404 "Resource not found"
#     an api-version not like YYYY-MM-DD[-preview]  400 "API version not
#                                                   supported"
#     neither "api-key" nor "Authorization: Bearer" 401
#     an api-key not starting "az-", a Bearer token not starting "eyJ"
#                                                   401 (invalid key)
#     a Bearer token containing "expired"           401 "token is expired"
#     a deployment containing "nodeploy"            404 DeploymentNotFound
#   then served as OpenAI's /v1/chat/completions or /v1/embeddings, the
#   body's model (else the deployment) naming the behaviours.
#
# GOOGLE VERTEX AI (the service account: $ENV{MOCK_VERTEX_SA}, a key file
# as Google hands out; its public key in PEM: $ENV{MOCK_VERTEX_PUB})
#   POST /token, /skew<N>/token (the mock's clock N s ahead),
#        /short<N>/token (tokens that last N s)
#     the OAuth2 JWT bearer grant (RFC 7523) checked as Google does:
#     grant_type, a JWT of three base64url parts, header alg RS256 and typ
#     JWT, claims iss = the
#     client_email, aud = the token_uri, scope with cloud-platform, iat
#     not in the future and exp after now (60 s of skew allowed either
#     way), exp - iat at most 3600; the RS256 signature verified with the
#     public key (openssl dgst -verify).  400 {"error":"invalid_grant",
#     "error_description":...} otherwise; else {"access_token":
#     "ya29.mock-EXPIRY-N","expires_in":3599|N,"token_type":"Bearer"}.
#   POST /v1/projects/P/locations/R/publishers/google/models/M:generateContent
#        (and :streamGenerateContent?alt=sse, :countTokens, :predict of an
#        embedding model): served as
#        Gemini's /v1beta/models/M:...
#   POST /v1/projects/P/locations/R/publishers/anthropic/models/M:rawPredict
#        (and :streamRawPredict): the body must carry anthropic_version
#        "vertex-2023-10-16" and no model (400 otherwise); served as
#        Anthropic's /v1/messages for model M
#   Both need "Authorization: Bearer ya29.mock-EXPIRY-N" with EXPIRY not
#   past (401 UNAUTHENTICATED otherwise).

use strict;
use warnings;
use JSON::PP;

my $CLOUD_JSON = JSON::PP->new->utf8->canonical;

sub azure_error {
    my ($c, $req, $status, $code, $msg) = @_;
    return plain_plan($c, $req, $status, 'application/json',
                      $CLOUD_JSON->encode({ error => { code => $code,
                                                       message => $msg } }),
                      {});
}

sub b64url_decode {
    my ($s) = @_;
    return undef if $s =~ /[^A-Za-z0-9_-]/;
    $s =~ tr{-_}{+/};
    $s .= '=' x ((4 - length($s) % 4) % 4);
    require MIME::Base64;
    return MIME::Base64::decode_base64($s);
}

sub google_grant_error {
    my ($c, $req, $desc) = @_;
    return plain_plan($c, $req, 400, 'application/json',
        $CLOUD_JSON->encode({ error => 'invalid_grant',
                              error_description => $desc }), {});
}

my $vertex_sa;

sub vertex_sa {
    return $vertex_sa if $vertex_sa;
    open(my $fh, '<', $ENV{MOCK_VERTEX_SA} // '') or return undef;
    local $/;
    $vertex_sa = $CLOUD_JSON->decode(<$fh>);
    return $vertex_sa;
}

my $token_n = 0;

# the token endpoint: () when the path is not one
sub vertex_token {
    my ($c, $req, $path) = @_;
    my ($kind, $n) = $path =~ m{^/(?:(skew|short)(\d+)/)?token$} or return ();
    $kind //= '';
    my $now = time + ($kind eq 'skew' ? $n : 0);
    my %form = map { my ($k, $v) = split /=/, $_, 2;
                     ($k => url_unescape($v // '')) } split /&/, $req->{body};
    return google_grant_error($c, $req, 'Invalid grant_type.')
        unless ($form{grant_type} // '') eq
               'urn:ietf:params:oauth:grant-type:jwt-bearer';
    my @part = split /\./, $form{assertion} // '', -1;
    return google_grant_error($c, $req, 'Invalid JWT: not three parts.')
        unless @part == 3;
    my ($h, $cl, $sig) = map { b64url_decode($_) } @part;
    my $hj = eval { $CLOUD_JSON->decode($h // '') };
    my $cj = eval { $CLOUD_JSON->decode($cl // '') };
    return google_grant_error($c, $req, 'Invalid JWT: undecodable.')
        unless ref $hj eq 'HASH' && ref $cj eq 'HASH' && defined $sig;
    my $sa = vertex_sa() or return google_grant_error($c, $req, 'no SA');
    return google_grant_error($c, $req, 'Invalid JWT header.')
        unless ($hj->{alg} // '') eq 'RS256' && ($hj->{typ} // '') eq 'JWT';
    return google_grant_error($c, $req, 'Invalid JWT: iss.')
        unless ($cj->{iss} // '') eq $sa->{client_email};
    return google_grant_error($c, $req, 'Invalid JWT: aud.')
        unless ($cj->{aud} // '') eq $sa->{token_uri};
    return google_grant_error($c, $req, 'Invalid JWT: scope.')
        unless ($cj->{scope} // '') =~ m{auth/cloud-platform};
    my ($iat, $exp) = ($cj->{iat} // 0, $cj->{exp} // 0);
    return google_grant_error($c, $req, 'Invalid JWT: Token must be a '
        . 'short-lived token (60 minutes) and in a reasonable timeframe. '
        . 'Check your iat and exp values in the JWT claim.')
        if $iat > $now + 60 || $exp < $now - 60 || $exp - $iat > 3600
        || $exp <= $iat;
    # the signature, as Google checks it: RS256 with the account's key
    require File::Temp;
    my $dir = File::Temp::tempdir(CLEANUP => 1);
    open(my $d, '>', "$dir/in") or die; print $d "$part[0].$part[1]"; close $d;
    open(my $s, '>', "$dir/sig") or die; binmode $s; print $s $sig; close $s;
    my $ok = system('openssl', 'dgst', '-sha256', '-verify',
                    $ENV{MOCK_VERTEX_PUB} // '/nonexistent', '-signature',
                    "$dir/sig", "$dir/in") == 0;
    return google_grant_error($c, $req, 'Invalid JWT Signature.') unless $ok;
    my $life = $kind eq 'short' ? $n : 3599;
    $token_n++;
    my $tok = 'ya29.mock-' . (int(time) + $life) . "-$$-$token_n";
    return plain_plan($c, $req, 200, 'application/json',
        $CLOUD_JSON->encode({ access_token => $tok, expires_in => $life + 0,
                              token_type => 'Bearer' }), {});
}

sub vertex_unauthenticated {
    my ($c, $req, $msg) = @_;
    return plain_plan($c, $req, 401, 'application/json',
        $CLOUD_JSON->encode({ error => { code => 401, message => $msg,
                                         status => 'UNAUTHENTICATED' } }), {});
}

# Vertex's model paths: () when not one, or passing (then the target and
# body are Gemini's or Anthropic's own)
sub vertex_route {
    my ($c, $req, $path, $query) = @_;
    my ($pub, $model, $method) = $path =~
        m{^/v1/projects/[^/]+/locations/[^/]+/publishers/(google|anthropic)/models/([^/:]+):(\w+)$}
        or return ();
    my ($exp) = ($req->{headers}{authorization} // '') =~ /^Bearer ya29\.mock-(\d+)-/;
    return vertex_unauthenticated($c, $req, 'Request had invalid '
        . 'authentication credentials. Expected OAuth 2 access token.')
        unless defined $exp;
    return vertex_unauthenticated($c, $req, 'Request had invalid '
        . 'authentication credentials: the access token expired.')
        if $exp < time;
    if ($pub eq 'google') {
        $req->{target} = "/v1beta/models/$model:$method"
                       . (length $query ? "?$query" : '');
        return ();
    }
    my $data = eval { $CLOUD_JSON->decode($req->{body}) };
    my $bad = ref $data ne 'HASH' ? 'body is not a JSON object'
            : exists $data->{model} ? 'model: Extra inputs are not permitted'
            : ($data->{anthropic_version} // '') ne 'vertex-2023-10-16'
              ? 'anthropic_version: vertex-2023-10-16 is required'
            : $method !~ /^(?:rawPredict|streamRawPredict)$/
              ? "no method $method"
            : ($method eq 'streamRawPredict') != !!$data->{stream}
              ? 'streamRawPredict takes "stream": true, rawPredict not'
            : undef;
    if ($bad) {
        return plain_plan($c, $req, 400, 'application/json',
            $CLOUD_JSON->encode({ type => 'error', error => {
                type => 'invalid_request_error', message => $bad } }), {});
    }
    delete $data->{anthropic_version};
    $data->{model} = url_unescape($model);
    $req->{body} = $CLOUD_JSON->encode($data);
    $req->{target} = '/v1/messages';
    return ();
}

# () when the request is no Azure one, or passes (its target then is
# OpenAI's path); else (plan, close) of Azure's refusal.
sub cloud_route {
    my ($c, $req) = @_;
    my ($path, $query) = split /\?/, $req->{target}, 2;
    $query //= '';
    my @v = vertex_token($c, $req, $path);
    return @v if @v;
    @v = vertex_route($c, $req, $path, $query);
    return @v if @v;
    my ($dep, $op);
    if ($path =~ m{^/openai/deployments/([^/]+)/(chat/completions|embeddings)$}) {
        ($dep, $op) = ($1, $2);
    } elsif ($path =~ m{^/openai/v1/(chat/completions|embeddings)$}) {
        $op = $1;
    } else {
        return ();
    }
    my ($ver) = $query =~ /(?:^|&)api-version=([^&]*)/;
    if (defined $dep && !defined $ver) {
        return azure_error($c, $req, 404, '404', 'Resource not found');
    }
    if (defined $ver && $ver !~ /^\d{4}-\d\d-\d\d(?:-preview)?$/
        && !(!defined $dep && $ver =~ /^(?:preview|latest)$/))
    {
        return azure_error($c, $req, 400, 'BadRequest',
                           'API version not supported');
    }
    my $h = $req->{headers};
    my $auth = $h->{authorization} // '';
    if (!defined $h->{'api-key'} && $auth !~ /^Bearer /) {
        return azure_error($c, $req, 401, '401',
            'Access denied due to missing subscription key. Make sure to '
          . 'include subscription key when making requests to an API.');
    }
    if (defined $h->{'api-key'} ? $h->{'api-key'} !~ /^az-/
                                : $auth !~ /^Bearer eyJ/) {
        return azure_error($c, $req, 401, '401',
            'Access denied due to invalid subscription key or wrong API '
          . 'endpoint.');
    }
    if ($auth =~ /expired/) {
        return azure_error($c, $req, 401, '401',
                           'Unauthorized. Access token is expired.');
    }
    if (defined $dep && $dep =~ /nodeploy/) {
        return azure_error($c, $req, 404, 'DeploymentNotFound',
            "The API deployment for this resource does not exist.");
    }
    $req->{azure_deployment} = $dep;
    $req->{target} = "/v1/$op";
    if (defined $dep) {
        my $data = eval { $CLOUD_JSON->decode($req->{body}) };
        if (ref $data eq 'HASH' && !defined $data->{model}) {
            $data->{model} = $dep;
            $req->{body} = $CLOUD_JSON->encode($data);
        }
    }
    return ();
}

1;
