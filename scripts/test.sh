#!/usr/bin/env bash
# Builds everything and runs ALL tests: unit tests and the end-to-end tests on a real
# Dovecot 2.3 pair (see tests/e2e/). Exits non-zero if anything fails.
#   BUILD_DIR  build directory (default: build)      JOBS  parallel build jobs (default 2)
#   extra arguments go to ctest, e.g.  scripts/test.sh -L unit   or   -R e2e
# The e2e tests need root (private Dovecot masters, a vmail user).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}

scripts/deps.sh
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build "$BUILD_DIR" -j"${JOBS:-2}"
cd "$BUILD_DIR"
ctest --output-on-failure "$@"
