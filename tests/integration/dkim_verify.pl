#!/usr/bin/perl
# dkim_verify.pl — verifies the DKIM signatures of the message on stdin with
# Mail::DKIM (Debian's libmail-dkim-perl), asking the DNS server at
# 127.0.0.1:PORT (dkim_dns.pl) for the public keys.
#
# Prints the overall result first ("pass", "fail", "none", "invalid",
# "temperror", ...) with its detail, then one line per signature:
#   pass
#   signature: d=acme.test s=sel a=rsa-sha256 result=pass
#
# usage: perl dkim_verify.pl PORT < message
use strict;
use warnings;
use Mail::DKIM::Verifier;
use Net::DNS::Resolver;

my ($port) = @ARGV;
die "usage: $0 PORT < message\n" unless $port;

Mail::DKIM::DNS::resolver(Net::DNS::Resolver->new(
    nameservers => ['127.0.0.1'],
    port        => $port,
    recurse     => 0,
    retry       => 2,
    udp_timeout => 5,
    tcp_timeout => 5,
));

my $dkim = Mail::DKIM::Verifier->new();
binmode STDIN;
while (my $line = <STDIN>) {
    $line =~ s/\r?\n\z//;
    $dkim->PRINT("$line\r\n");
}
$dkim->CLOSE;

print $dkim->result_detail, "\n";
foreach my $sig ($dkim->signatures) {
    printf "signature: d=%s s=%s a=%s result=%s\n", $sig->domain // '', $sig->selector // '',
        $sig->algorithm // '', $sig->result_detail // '';
}
