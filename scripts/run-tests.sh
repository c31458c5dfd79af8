#!/usr/bin/env bash
# Runs every suite against the sanitizer build and exits non-zero if any failed.
# The runners' own summaries (ctest, pytest, node --test) are printed as they end.
set -uo pipefail
build=$(cd "$1" && pwd)
cd "$(dirname "$0")/.."
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

if [ ! -d ../shared/corpora ]; then
  echo "run-tests: ../shared/corpora not found: the corpus suites will report as skipped-by-absence (see tests/README)."
fi

rc=0
(cd "$build" && ctest --output-on-failure -j "$(nproc)") || rc=1
# The fuzz targets (tests/fuzz), built with clang in a directory of their own,
# FUZZ_TIME seconds each (20 here; `make fuzz` runs them long).
FUZZ_TIME=${FUZZ_TIME:-20} scripts/run-fuzz.sh "${FUZZBUILD:-build-fuzz}" || rc=1

# The integration suite, twice: on SQLite and on PostgreSQL (LB_TEST_STORE=pg: one throw-away
# server for the pass, a database per daemon; see tests/integration/conftest.py).
# The two passes run at the same time. Each spends most of its time waiting (backoffs, timeouts,
# peers, sleeps to let seconds pass): on 2 cores one pass keeps about 0.7 of a core busy, so the
# second costs little more wall time than it adds CPU, where one after the other would add all
# of its ~20 minutes. The suite's timing limits (answers "within a second", backoffs) have
# margins meant for a loaded sanitizer build, and every daemon, peer and database of a pass
# is its own (free ports, own temp dirs), so the passes do not see each other. Running only the
# backend-independent part on PostgreSQL was the other way: little of the suite is (even
# input validation over HTTP reads sessions from the store), and a hand-kept list would go stale.
# The SQLite pass prints as it goes; the PostgreSQL pass writes to a file printed when it ends,
# each with pytest's own summary.
pgbin=${PGBIN:-/usr/lib/postgresql/15/bin}
pg_pass=1
if [ ! -x "$pgbin/initdb" ] || [ ! -x "$pgbin/pg_ctl" ] || [ ! -x "$pgbin/psql" ]; then
  pg_pass=0
fi
pglog="$build/integration-pg.log"
if [ $pg_pass -eq 1 ]; then
  echo "run-tests: the integration suite on PostgreSQL runs meanwhile; its output follows the SQLite pass's ($pglog)"
  # A background job of a script starts with SIGINT ignored, and Python then keeps it ignored:
  # restored here, so that a Ctrl-C reaches this pass too and pytest's teardown stops its
  # daemons and its PostgreSQL server.
  LB_TEST_STORE=pg LIFEBOAT_BUILD="$build" /usr/bin/python3 -c '
import signal, sys
import pytest
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.exit(pytest.main(sys.argv[1:]))' -q -rs -p no:cacheprovider tests/integration >"$pglog" 2>&1 </dev/null &
  pgpid=$!
fi
echo "=== integration suite on SQLite ==="
LIFEBOAT_BUILD="$build" /usr/bin/python3 -m pytest -q -rs -p no:cacheprovider tests/integration
prc=$?
[ $prc -ne 0 ] && rc=1
if [ $prc -eq 2 ]; then  # pytest: interrupted (Ctrl-C)
  [ $pg_pass -eq 1 ] && kill -INT $pgpid 2>/dev/null && wait $pgpid
  echo "run-tests: interrupted"
  exit 130
fi
if [ $pg_pass -eq 1 ]; then
  wait $pgpid
  pgrc=$?
  echo "=== integration suite on PostgreSQL (LB_TEST_STORE=pg) ==="
  cat "$pglog"
  [ $pgrc -ne 0 ] && rc=1
else
  echo "=== integration suite on PostgreSQL: NOT RUN ==="
  echo "run-tests: $pgbin has no PostgreSQL 15 server binaries (Debian's postgresql-15, which"
  echo "run-tests: scripts/install-deps.sh --test installs): the PostgreSQL pass of the integration suite was NOT run."
  # In CI make test has just installed it: its absence there is a broken set-up, not a choice.
  if [ -n "${CI:-}" ]; then
    echo "run-tests: CI is set: a missing PostgreSQL pass fails the run."
    rc=1
  fi
fi

# The webmail in headless Chromium (tests/e2e): playwright-core from the lock
# file, driving the system's /usr/bin/chromium (never a browser download).
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
if [ ! -d node_modules/playwright-core ] || [ ! -d node_modules/axe-core ]; then
  npm ci --no-audit --no-fund --loglevel=error || rc=1
fi
LIFEBOAT_BUILD="$build" node --test tests/e2e/
erc=$?
[ $erc -ne 0 ] && rc=1
if [ $pg_pass -eq 0 ]; then
  echo "run-tests: reminder: the integration suite did NOT run on PostgreSQL (no postgresql-15 binaries)."
fi
exit $rc
