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
LIFEBOAT_BUILD="$build" /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/integration
prc=$?
[ $prc -ne 0 ] && rc=1

# The webmail in headless Chromium (tests/e2e): playwright-core from the lock
# file, driving the system's /usr/bin/chromium (never a browser download).
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
if [ ! -d node_modules/playwright-core ] || [ ! -d node_modules/axe-core ]; then
  npm ci --no-audit --no-fund --loglevel=error || rc=1
fi
LIFEBOAT_BUILD="$build" node --test tests/e2e/
erc=$?
[ $erc -ne 0 ] && rc=1
exit $rc
