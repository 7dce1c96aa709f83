#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/) with clang, ASan and UBSan in their own build
# directory and fuzzes each for a bounded time (ctest -L fuzz there).
#   FUZZ_BUILD_DIR  build directory (default: build-fuzz)    JOBS  build jobs (default 2)
#   FUZZ_SECONDS    seconds per target (default 25)
#   extra arguments go to ctest, e.g.  scripts/fuzz.sh -R fuzz-http-request
# Exits 77 (skipped) when clang or libFuzzer is missing, non-zero on a crash. Each
# target's line "fuzz-<name>: N executions in S s" is in ctest's output (-V).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${FUZZ_BUILD_DIR:-build-fuzz}

if ! command -v clang++ >/dev/null; then
  echo "fuzz: clang++ not installed (scripts/deps.sh installs clang), skipped" >&2
  exit 77
fi
if ! echo 'extern "C" int LLVMFuzzerTestOneInput(const char*, unsigned long) { return 0; }' |
     clang++ -x c++ -fsanitize=fuzzer -o /dev/null - 2>/dev/null; then
  echo "fuzz: clang++ cannot link libFuzzer (libclang-rt-14-dev missing?), skipped" >&2
  exit 77
fi

cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DDREPL_BUILD_FUZZ=ON -DDREPL_BUILD_PLUGIN=OFF -DDREPL_BUILD_TESTS=OFF -DDREPL_BUILD_BENCH=OFF \
  -DDREPL_FUZZ_SECONDS="${FUZZ_SECONDS:-25}" >/dev/null
cmake --build "$BUILD_DIR" -j"${JOBS:-2}" --target fuzz-all
cd "$BUILD_DIR"
rc=0
ctest -L fuzz --output-on-failure -V "$@" >fuzz-ctest.log 2>&1 || rc=$?
# the per-target execution counts and ctest's summary; the full log stays in fuzz-ctest.log
grep -E '^[0-9]+: fuzz-.* executions in|tests passed|tests failed|\*\*\*Failed|FAILED' fuzz-ctest.log || true
[ $rc -eq 0 ] || tail -n 80 fuzz-ctest.log
exit $rc
