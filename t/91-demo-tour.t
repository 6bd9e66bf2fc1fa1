#!/usr/bin/perl
# The README's tour against the demo: examples/demo.conf as `./build.sh
# demo-config` fills it in (the demo's own template, on free ports, every
# provider the bundled mock), then every `$ command` of the ```sh blocks
# of README.md's "A five-minute tour", in order, with localhost:8080 made
# the test's port and build/demo/ its prefix; each one's output must be
# the lines the README shows under it, where "..." stands for any text
# (ids, times, what changes from run to run).
#
#   TOUR_PRINT=1 prove -v t/91-demo-tour.t   prints what each command
#                                            printed, to update the README

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use GatewayTest;

my $t = GatewayTest->new(name => 'demo-tour');
plan skip_all => 'module not built' unless $t->has_module;
plan skip_all => 'curl and jq are needed (build.sh installs them)'
    unless -x '/usr/bin/curl' && -x '/usr/bin/jq';

my $ROOT = "$FindBin::Bin/..";

$t->start_mock(name => 'demo');
my $mock = $t->mock_port('demo');
my $port = $t->port;
my $prefix = $t->prefix;

# the demo's configuration, as ./build.sh demo writes it without keys
$ENV{"${_}_API_KEY"} = 'demo-key-for-the-mock' for qw(OPENAI ANTHROPIC GEMINI);
my $conf = `bash '$ROOT/build.sh' demo-config $port $mock`;
is($?, 0, 'build.sh demo-config: runs');
like($conf, qr/listen 127\.0\.0\.1:$port;/, 'demo-config: the port');
like($conf, qr{proxy_pass http://127\.0\.0\.1:$mock/;}, 'demo-config: the mock');
my $module = $t->module_path;
$conf =~ s/^load_module \S+;/load_module $module;/m;
$t->write_file('conf/nginx.conf', $conf, raw => 1);
$t->start_nginx;

# the tour's commands and what the README shows they print
my $readme = $t->read_file("$ROOT/README.md");
my ($tour) = $readme =~ /^## A five-minute tour\n(.*?)^## /ms;
ok($tour, 'README: the tour');

my @steps;
while ($tour =~ /^```sh\n(.*?)^```/msg) {
    my ($cur, $cont);
    for my $line (split /\n/, $1) {
        # a command goes on after a backslash, and inside '...'
        if ($cont) {
            $cur->{cmd} .= "\n$line";
            $cont = $line =~ /\\$/ || ($cur->{cmd} =~ tr/'//) % 2;
            next;
        }
        if ($line =~ /^\$ (.*)$/) {
            $cur = { cmd => $1, out => [] };
            push @steps, $cur;
            $cont = $line =~ /\\$/ || ($cur->{cmd} =~ tr/'//) % 2;
            next;
        }
        next if $line =~ /^# / || !$cur;
        push @{ $cur->{out} }, $line;
    }
}
cmp_ok(scalar @steps, '>=', 12, 'README: the tour has its commands');

for my $s (@steps) {
    (my $cmd = $s->{cmd}) =~ s/localhost:8080/127.0.0.1:$port/g;
    $cmd =~ s{build/demo/}{$prefix/}g;
    open my $ph, '-|', 'bash', '-c', $cmd or die "bash: $!";
    my $out = do { local $/; <$ph> } // '';
    close $ph;
    (my $text = $out) =~ s/\r\n/\n/g;            # HTTP headers end in CRLF
    my @got = split /\n/, $text;
    (my $name = $s->{cmd}) =~ s/\s*\\\n\s*/ /g;
    $name = substr($name, 0, 90);
    if ($ENV{TOUR_PRINT}) {
        diag "\$ $s->{cmd}\n$out";
    }
    push @{ $t->{tour} }, $out if $ENV{TOUR_DUMP};
    my @want = @{ $s->{out} };
    pop @want while @want && $want[-1] eq '';      # the blank before a comment
    my $ok = @got == @want;
    for my $i (0 .. $#want) {
        last unless $ok;
        my $re = join '.*?', map { quotemeta } split /\.\.\./, $want[$i], -1;
        $ok = $got[$i] =~ /^$re$/;
        diag "line " . ($i + 1) . ":\n  want: $want[$i]\n  got:  $got[$i]"
            unless $ok;
    }
    ok($ok, "tour: $name") or diag "printed:\n$out";
}

if ($ENV{TOUR_DUMP}) {
    require JSON::PP;
    $t->write_file($ENV{TOUR_DUMP}, JSON::PP->new->encode($t->{tour}));
}

$t->done_testing_checks;
done_testing;
