#!/usr/bin/env bash
# fuzz/run-fuzzer.sh: one bounded libFuzzer run (ctest fuzz-<name>).
#   run-fuzzer.sh <fuzzer> <seed-corpus-dir> <work-dir> <seconds>
# New inputs go to <work-dir>/corpus (the seed corpus in the tree is only read);
# a crash is saved as <work-dir>/crash-<sha1> and fails the test. Prints the
# executions done, from libFuzzer's final stats, as "fuzz-<name>: N executions
# in S s". Extra libFuzzer flags: FUZZ_FLAGS.
set -euo pipefail
fuzzer=$1 seeds=$2 work=$3 secs=$4
mkdir -p "$work/corpus"
log="$work/fuzz.log"
set +e
# -rss_limit_mb: the parsers are bounded by design; more than this is a bug.
"$fuzzer" -max_total_time="$secs" -print_final_stats=1 -rss_limit_mb=1024 -timeout=10 \
  -artifact_prefix="$work/" ${FUZZ_FLAGS:-} "$work/corpus" "$seeds" >"$log" 2>&1
rc=$?
set -e
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
echo "$(basename "$fuzzer"): ${execs:-?} executions in ${secs} s, corpus $(ls "$work/corpus" | wc -l) inputs"
if [ $rc -ne 0 ]; then
  tail -n 60 "$log"
  echo "$(basename "$fuzzer") FAILED (rc $rc); inputs: $(ls "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-* 2>/dev/null | tr '\n' ' ')" >&2
  exit 1
fi
