#!/usr/bin/env bash
# Installs the Debian packages lifeboat needs to build, run and test.
# Idempotent and quick when everything is already there: `make run` and
# `make test` call it on every invocation.
set -euo pipefail

BUILD_PKGS="build-essential cmake pkg-config libevent-dev libssl-dev libsqlite3-dev
 libgmime-3.0-dev libmicrohttpd-dev libjansson-dev libsodium-dev libldap2-dev
 libc-ares-dev libzstd-dev libxml2-dev libopendkim-dev libcurl4-openssl-dev libpq-dev openssl"
# slapd and ldap-utils: the LDAP tests' directory (tests/integration/test_ldap.py).
# clang and libFuzzer's runtime build the fuzz targets (tests/fuzz, scripts/run-fuzz.sh);
# libclang-rt-dev is the runtime of the default clang (libclang-rt-14-dev on Debian 12).
# postgresql-15: the throw-away servers of tests/pg/pgserver (its citext and
# unaccent extensions included); the system's own cluster is not used.
TEST_PKGS="libcmocka-dev clang libclang-rt-dev postfix swaks python3-pytest python3-aiosmtpd chromium nodejs
 opendkim-tools libmail-dkim-perl libnet-dns-perl slapd ldap-utils postgresql-15"
# npm comes with some builds of nodejs (NodeSource's) and conflicts with the
# Debian package there: ask for it only when no npm is on PATH.
command -v npm >/dev/null 2>&1 || TEST_PKGS="$TEST_PKGS npm"

want="$BUILD_PKGS"
case "${1:-}" in
  --test) want="$BUILD_PKGS $TEST_PKGS" ;;
  --demo) want="$BUILD_PKGS python3-aiosmtpd swaks" ;;
esac

missing=()
for p in $want; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
# Postfix asks questions at install time; answer them for a local-only setup.
echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
# The tests start private Postfix instances; the system one must not hold port 25.
if [[ " ${missing[*]} " == *" postfix "* ]]; then
  $SUDO postfix stop >/dev/null 2>&1 || true
fi
