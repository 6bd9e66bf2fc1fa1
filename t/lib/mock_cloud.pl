# mock_cloud.pl - the cloud providers' front doors for mock_provider.pl:
# what Azure OpenAI checks before a request reaches the model (loaded by
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

# () when the request is no Azure one, or passes (its target then is
# OpenAI's path); else (plan, close) of Azure's refusal.
sub cloud_route {
    my ($c, $req) = @_;
    my ($path, $query) = split /\?/, $req->{target}, 2;
    $query //= '';
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
