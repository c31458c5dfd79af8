#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz (clang, in a build directory of
# their own) and runs each one for a bounded time; exits non-zero if any
# target crashed, leaked, timed out or tripped a check, or a kept regression
# input fails again.
#
#   scripts/run-fuzz.sh [BUILD_DIR]     (default build-fuzz)
#   FUZZ_TIME   seconds of fuzzing per target (default 20: `make test`; `make fuzz`: 600)
#   FUZZ_JOBS   targets run at once (default: the number of cores)
#   FUZZ_TARGETS  a subset, e.g. "http_request util_config" (default: every target)
#
# Each target first replays tests/fuzz/regressions/<target>/ (every input that
# once crashed it), then fuzzes from its working corpus (BUILD_DIR/corpus/<target>,
# kept between runs), tests/fuzz/seeds/<target> and the seeds made from
# ../shared/corpora (tests/fuzz/corpora.py). A finding is written to
# BUILD_DIR/artifacts/<target>/; the full logs are in BUILD_DIR/logs/.
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-fuzz}
time=${FUZZ_TIME:-20}
jobs=${FUZZ_JOBS:-$(nproc)}
all="smtp_parse smtp_data smtp_sasl mail_sanitize mail_view mail_archive_text util_config http_request csv_import"
targets=${FUZZ_TARGETS:-$all}

# Inputs longer than this are cut (libFuzzer's -max_len): the sizes where each
# parser does its work, small enough to keep the runs fast.
max_len() {
  case $1 in
    smtp_parse) echo 2048 ;;
    smtp_data) echo 4096 ;;
    smtp_sasl) echo 1024 ;;
    mail_view | mail_archive_text) echo 65536 ;;
    *) echo 8192 ;;
  esac
}

# A dictionary of tokens the parser looks for (where libFuzzer's own
# comparison tracing cannot see them: GMime, character-class checks).
dict() {
  case $1 in
    http_request) echo tests/fuzz/dict/http.dict ;;
    mail_view | mail_archive_text | smtp_data) echo tests/fuzz/dict/mime.dict ;;
  esac
}

# clang and libFuzzer's runtime (Debian: clang, libclang-rt-14-dev), tried on a tiny target.
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { (void)d; (void)n; return 0; }' > "$probe/t.c"
if ! command -v clang >/dev/null 2>&1 || ! clang -fsanitize=fuzzer,address,undefined "$probe/t.c" -o "$probe/t" 2>"$probe/err"; then
  echo "run-fuzz: NOT RUN: clang with libFuzzer is missing (scripts/install-deps.sh --test installs clang and its runtime, libclang-rt-dev)."
  sed 's/^/run-fuzz:   /' "$probe/err" 2>/dev/null | head -3
  exit 0
fi

if ! { CC=clang cmake -S . -B "$build" -DLB_FUZZ=ON -DLB_TESTS=OFF >/dev/null &&
       cmake --build "$build" --target fuzzers -j "$(nproc)" >"$probe/build.log" 2>&1; }; then
  cat "$probe/build.log" 2>/dev/null
  echo "run-fuzz: the fuzz build failed"
  exit 1
fi
build=$(cd "$build" && pwd)

rm -rf "$build/seeds"
/usr/bin/python3 tests/fuzz/corpora.py ../shared/corpora "$build/seeds"
mkdir -p "$build/logs"

# One target: replay its regressions, then fuzz. Writes logs/<t>.log and logs/<t>.rc.
run_one() {
  local t=$1 bin="$build/fuzz/fuzz_$1" log="$build/logs/$1.log" rc=0
  mkdir -p "$build/corpus/$t" "$build/artifacts/$t"
  local opts=(-max_len="$(max_len "$t")" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
              -artifact_prefix="$build/artifacts/$t/")
  : >"$log"
  local regs=()
  [ -d "tests/fuzz/regressions/$t" ] && mapfile -t regs < <(find "tests/fuzz/regressions/$t" -type f | sort)
  if [ ${#regs[@]} -gt 0 ]; then
    "$bin" "${opts[@]}" "${regs[@]}" >>"$log" 2>&1 || rc=1
  fi
  echo "run-fuzz: fuzzing" >>"$log" # what follows is no longer the replay
  if [ $rc -eq 0 ]; then
    local dirs=("$build/corpus/$t")
    for d in "tests/fuzz/seeds/$t" "tests/fuzz/regressions/$t" "$build/seeds/$t"; do
      [ -d "$d" ] && dirs+=("$d")
    done
    local d
    d=$(dict "$t")
    [ -n "$d" ] && opts+=(-dict="$d")
    "$bin" "${opts[@]}" -max_total_time="$time" "${dirs[@]}" >>"$log" 2>&1 || rc=1
  fi
  echo "${#regs[@]} $rc" >"$build/logs/$t.rc"
}

echo "run-fuzz: $(wc -w <<<"$targets") targets, ${time}s each, $jobs at a time"
start=$SECONDS
running=0
for t in $targets; do
  if [ ! -x "$build/fuzz/fuzz_$t" ]; then
    echo "run-fuzz: no target fuzz_$t"
    exit 1
  fi
  rm -f "$build/logs/$t.rc"
  run_one "$t" &
  running=$((running + 1))
  if [ $running -ge "$jobs" ]; then
    wait -n
    running=$((running - 1))
  fi
done
wait

fail=0
for t in $targets; do
  log="$build/logs/$t.log"
  read -r nregs rc <"$build/logs/$t.rc" 2>/dev/null || { nregs=0; rc=1; }
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p' <<<"$last")
  if [ "$rc" = 0 ]; then
    printf 'run-fuzz: %-18s ok      %9s runs %6s/s  cov %5s  corpus %5s  regressions %s\n' \
      "$t" "${runs:-?}" "${speed:-?}" "${cov:-?}" "${corp:-?}" "$nregs"
  else
    fail=1
    printf 'run-fuzz: %-18s FAILED  (log %s)\n' "$t" "$log"
    # the regression input that failed again, if it was one; the finding; where its input went
    grep -q '^run-fuzz: fuzzing' "$log" || grep -E '^Running: ' "$log" | tail -1 | sed 's/^/run-fuzz:   /'
    grep -E '^(==[0-9]+==ERROR|SUMMARY|artifact_prefix|Test unit written|.*runtime error)' "$log" | head -6 |
      sed 's/^/run-fuzz:   /'
    grep -m1 -E '^ +#[0-9]+ .*/(src|tests/fuzz)/' "$log" | sed 's/^ */run-fuzz:   at /'
  fi
done
echo "run-fuzz: done in $((SECONDS - start))s"
if [ $fail -ne 0 ]; then
  echo "run-fuzz: a finding: fix it and keep its input in tests/fuzz/regressions/<target>/ (see tests/fuzz/README.md)"
fi
exit $fail
