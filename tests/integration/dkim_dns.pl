#!/usr/bin/perl
# dkim_dns.pl — a DNS server for the DKIM tests (test_dkim.py): answers on
# 127.0.0.1:PORT (UDP and TCP) from ZONEFILE, a zone file such as
# "$ORIGIN acme.test." followed by the SELECTOR.txt that opendkim-genkey
# writes, so a verifier looks the public key up by DNS as on the internet.
# Unknown names get NXDOMAIN. Prints "ready" once it listens; runs until killed.
#
# usage: perl dkim_dns.pl PORT ZONEFILE
use strict;
use warnings;
use Net::DNS::Nameserver;

my ($port, $zone) = @ARGV;
die "usage: $0 PORT ZONEFILE\n" unless $port && $zone;

my $ns = Net::DNS::Nameserver->new(
    LocalAddr => ['127.0.0.1'],
    LocalPort => $port,
    ZoneFile  => $zone,
) or die "cannot start the name server on port $port\n";
$| = 1;
print "ready\n";
$ns->main_loop;
