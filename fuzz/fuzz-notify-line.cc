// fuzz/fuzz-notify-line.cc: the mail plugin's notification lines as the
// replicator reads them from replication-notify-fifo and the
// replication-notify socket (src/notify-line.h), split by LineReader in both
// overflow modes and any chunking.
//
// Invariants: error texts are one line; an accepted line re-formatted with
// format_plugin_notify_line() parses back to the same user and priority;
// both overflow modes hand over the same complete lines until the first
// over-long one; the plugin's reading of a sync reply never crashes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz-common.h"
#include "line-reader.h"
#include "notify-line.h"

namespace {

using drepl::LineReader;
using drepl::NotifySource;
using drepl::fuzz::fuzz_check;

constexpr std::size_t kMaxLine = 256;  // small, so over-long lines are reached

void check_line(std::string_view line) {
  for (NotifySource source : {NotifySource::kFifo, NotifySource::kSocket}) {
    auto parsed = drepl::parse_plugin_notify_line(line, source);
    if (!parsed) {
      fuzz_check(drepl::fuzz::is_one_line(parsed.error().message), "notify error not one line");
      continue;
    }
    fuzz_check(!parsed->username.empty(), "accepted an empty user");
    fuzz_check(parsed->priority != drepl::Priority::kNone, "accepted priority none");
    fuzz_check(source == NotifySource::kSocket || parsed->priority != drepl::Priority::kSync,
               "accepted sync on the FIFO");
    std::string again = drepl::format_plugin_notify_line(parsed->username, parsed->priority);
    fuzz_check(!again.empty() && again.back() == '\n', "formatted line without LF");
    again.pop_back();
    fuzz_check(again.find('\n') == std::string::npos, "formatted line has an inner LF");
    auto reparsed = drepl::parse_plugin_notify_line(again, source);
    fuzz_check(reparsed.has_value(), "formatted line does not parse");
    fuzz_check(reparsed->username == parsed->username, "user changed in a round trip");
    fuzz_check(reparsed->priority == parsed->priority, "priority changed in a round trip");
  }
}

std::vector<std::string> read_lines(const drepl::fuzz::Chunker& chunker, LineReader::OverflowMode mode,
                                    bool* too_long_r) {
  LineReader reader(kMaxLine, mode);
  std::vector<std::string> lines;
  *too_long_r = false;
  chunker.for_each_chunk([&](std::string_view chunk) {
    reader.feed(chunk);
    std::string_view line;
    for (;;) {
      LineReader::Status st = reader.next(&line);
      if (st == LineReader::Status::kNeedMore) break;
      if (st == LineReader::Status::kTooLong) {
        *too_long_r = true;
        if (mode == LineReader::OverflowMode::kFail) return;
        lines.emplace_back("\x01<too long>");
        continue;
      }
      fuzz_check(line.size() <= kMaxLine, "LineReader returned an over-long line");
      fuzz_check(line.find('\n') == std::string_view::npos, "LineReader line contains LF");
      if (!*too_long_r || mode == LineReader::OverflowMode::kSkipLine) lines.emplace_back(line);
    }
  });
  fuzz_check(reader.pending_bytes() <= kMaxLine + 1 || mode == LineReader::OverflowMode::kFail,
             "LineReader buffers more than one line");
  return lines;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  drepl::fuzz::Chunker chunker(data, size);
  bool fail_too_long = false, skip_too_long = false;
  std::vector<std::string> fail_lines =
      read_lines(chunker, LineReader::OverflowMode::kFail, &fail_too_long);
  std::vector<std::string> skip_lines =
      read_lines(chunker, LineReader::OverflowMode::kSkipLine, &skip_too_long);
  fuzz_check(fail_too_long == skip_too_long, "overflow modes disagree on an over-long line");
  // Up to the first over-long line both modes return the same lines.
  for (std::size_t i = 0; i < fail_lines.size(); ++i) {
    fuzz_check(i < skip_lines.size() && skip_lines[i] == fail_lines[i],
               "overflow modes return different lines");
  }
  for (const std::string& line : skip_lines) check_line(line);

  (void)drepl::parse_plugin_sync_reply(chunker.payload());
  return 0;
}
