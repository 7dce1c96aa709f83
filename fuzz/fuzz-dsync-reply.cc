// fuzz/fuzz-dsync-reply.cc: doveadm-server's reply to the replicator's sync
// command (src/sync/dsync-reply.h: minor 1, plain or multiplexed), in any
// chunking, then EOF; and the log-text classifier.
//
// Invariants: after finish_eof() the result is final; a success has no error
// kind, a failure has a one-line error text and never carries a state; the
// same bytes give the same result whatever the chunking.
#include <cstddef>
#include <cstdint>
#include <string>

#include "dsync-reply.h"
#include "fuzz-common.h"

namespace {

using drepl::fuzz::fuzz_check;

drepl::DsyncResult run(const drepl::fuzz::Chunker& chunker, bool whole) {
  drepl::DsyncReplyParser parser(4096);  // small limit: reach the over-long line path
  if (whole) {
    parser.feed(chunker.payload());
  } else {
    chunker.for_each_chunk([&](std::string_view chunk) { parser.feed(chunk); });
  }
  parser.finish_eof();
  fuzz_check(parser.done(), "not done after EOF");
  return parser.result();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  drepl::fuzz::Chunker chunker(data, size);
  drepl::DsyncResult chunked = run(chunker, false);
  drepl::DsyncResult whole = run(chunker, true);
  fuzz_check(chunked.ok == whole.ok, "chunking changed ok");
  fuzz_check(chunked.state == whole.state, "chunking changed the state");
  fuzz_check(chunked.error.kind == whole.error.kind, "chunking changed the error kind");
  if (chunked.ok) {
    fuzz_check(chunked.error.kind == drepl::SyncErrorKind::kNone, "success with an error kind");
  } else {
    fuzz_check(chunked.state.empty(), "failure kept a state");
    fuzz_check(chunked.error.kind != drepl::SyncErrorKind::kNone, "failure without a kind");
    fuzz_check(drepl::fuzz::is_one_line(chunked.error.text), "error text not one line");
  }
  (void)drepl::classify_dsync_log_text(chunker.payload());
  return 0;
}
