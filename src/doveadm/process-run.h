// src/process-run.h: runs a program and captures its output (used by
// `doveadm replicator verify` to ask each replica's doveadm server through
// `doveadm -S`). No shell: argv is passed as is.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "result.h"

namespace drepl {

struct ProcessOutput {
  int exit_code = 0;       // the program's exit status; 128+N when killed by signal N
  std::string out;         // stdout, at most max_out_bytes
  std::string err;         // stderr, at most 64 KiB
};

// Runs argv[0] (looked up in PATH when it has no '/') with argv, stdin from
// /dev/null, and waits for it. Errors (kTemp): "spawn(<prog>) failed:
// <strerror>", "<prog> timed out after <ms> ms" (the program is killed),
// "<prog> wrote more than <n> bytes". A non-zero exit is not an error here.
Result<ProcessOutput> run_process(const std::vector<std::string>& argv, std::size_t max_out_bytes,
                                  int timeout_ms);

}  // namespace drepl
