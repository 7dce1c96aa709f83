// fuzz/fuzz-replicator-notify.cc: the replicator-notify protocol
// (aggregator -> replicator, src/notify-line.h): the VERSION handshake, the
// "U\tuser\tprio[\tid]" requests and the "+\tid" / "-\tid" replies the
// aggregator reads back.
//
// Invariants: errors are one line; an accepted request or reply, formatted
// again, parses back to the same values; a sync request always carries an id.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz-common.h"
#include "notify-line.h"

namespace {

using drepl::fuzz::fuzz_check;
using drepl::fuzz::is_one_line;

void check_request(std::string_view line) {
  auto parsed = drepl::parse_replicator_notify_line(line);
  if (!parsed) {
    fuzz_check(is_one_line(parsed.error().message), "request error not one line");
    return;
  }
  fuzz_check(!parsed->username.empty(), "accepted an empty user");
  fuzz_check(parsed->priority != drepl::Priority::kSync || parsed->sync_id.has_value(),
             "sync request without id");
  drepl::ReplicatorNotify normalized = *parsed;
  if (normalized.priority != drepl::Priority::kSync) normalized.sync_id.reset();
  std::string again = drepl::format_replicator_notify_line(normalized);
  fuzz_check(!again.empty() && again.back() == '\n', "formatted request without LF");
  again.pop_back();
  auto reparsed = drepl::parse_replicator_notify_line(again);
  fuzz_check(reparsed.has_value(), "formatted request does not parse");
  fuzz_check(reparsed->username == normalized.username, "user changed in a round trip");
  fuzz_check(reparsed->priority == normalized.priority, "priority changed in a round trip");
  if (normalized.priority == drepl::Priority::kSync) {
    fuzz_check(reparsed->sync_id == normalized.sync_id, "sync id changed in a round trip");
  }
}

void check_reply(std::string_view line) {
  auto parsed = drepl::parse_replicator_notify_reply(line);
  if (!parsed) {
    fuzz_check(is_one_line(parsed.error().message), "reply error not one line");
    return;
  }
  std::string again = drepl::format_replicator_notify_reply(parsed->id, parsed->success);
  again.pop_back();
  auto reparsed = drepl::parse_replicator_notify_reply(again);
  fuzz_check(reparsed.has_value() && reparsed->id == parsed->id &&
                 reparsed->success == parsed->success,
             "reply round trip");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  bool first = true;
  drepl::fuzz::for_each_line(drepl::fuzz::as_text(data, size), [&](std::string_view line) {
    if (first) {
      auto st = drepl::verify_replicator_notify_handshake(line);
      if (!st) fuzz_check(is_one_line(st.error().message), "handshake error not one line");
      first = false;
    }
    check_request(line);
    check_reply(line);
  });
  return 0;
}
