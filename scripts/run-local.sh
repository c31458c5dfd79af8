#!/usr/bin/env bash
# `make run`: start lifeboatd in the foreground on the shipped local config, with
# a demo customer (demo.test, user alice@demo.test, administrator
# admin@demo.test) whose "own mail server" is a small local SMTP server that
# prints what it receives to data/demo-server.log.
set -euo pipefail
build=$1
conf=$2
cd "$(dirname "$0")/.."
ctl() { "$build/lifeboatctl" -c "$conf" "$@"; }

mkdir -p data

if ! ctl customer list 2>/dev/null | grep -q '^demo\b'; then
  echo "run: creating the demo customer, domain demo.test and user alice@demo.test"
  ctl customer add demo
  ctl domain add demo.test --customer demo --route 127.0.0.1:2626
  ctl domain set demo.test --recipient-check on
  echo "lifeboat-demo" | ctl user add alice@demo.test --name "Alice Demo" --password-stdin --activate
  # The archive keeps mail from the subscription's start; continuity is one
  # command away (the tour in README.md).
  ctl subscription start demo
fi
# The demo customer's administrator, for the control panel (also added to a
# data folder made before the panel existed).
if ! ctl user list --domain demo.test 2>/dev/null | grep -q '^admin@demo.test '; then
  echo "run: creating the demo customer's administrator admin@demo.test"
  echo "lifeboat-admin" | ctl user add admin@demo.test --name "Demo Administrator" --role admin \
    --password-stdin --activate
fi

# The demo customer's own mail server.
demo_pid=""
if /usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null; then
  /usr/bin/python3 -m aiosmtpd -n -l 127.0.0.1:2626 -c aiosmtpd.handlers.Debugging \
    >data/demo-server.log 2>&1 &
  demo_pid=$!
  trap '[ -n "$demo_pid" ] && kill $demo_pid 2>/dev/null' EXIT
fi

cat <<MSG

lifeboat is starting (Ctrl-C stops it).
  SMTP (MX):        127.0.0.1:2525
  webmail:          http://127.0.0.1:8080/   (log in as alice@demo.test / lifeboat-demo)
  control panel:    http://127.0.0.1:8080/admin/   (log in as admin@demo.test / lifeboat-admin)
  demo mail server: 127.0.0.1:2626, what it receives is in data/demo-server.log
Try:  swaks --server 127.0.0.1:2525 --to alice@demo.test --from you@example.org
MSG
"$build/lifeboatd" -c "$conf" --foreground
