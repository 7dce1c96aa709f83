// fuzz/fuzz-queue-file.cc: the replicator's state on disk, replicator.db and
// its journal replicator.db.log (src/queue-file.h, src/queue-journal.h), as
// the daemon reads them at start-up: import of the snapshot, then replay of
// the journal. The input is written to a private temp directory.
//
// Input: the first byte selects the mode (bit 0: also use the bytes as a
// journal; bit 1: give the journal the header that matches the snapshot);
// the rest is the file content.
//
// Invariants: every error message is one line and never quotes the file
// (it may hold dsync states); the user count matches what was applied; every
// user in the queue exports to a line that parses back to the same user.
#include <stdlib.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "clock.h"
#include "fuzz-common.h"
#include "queue-file.h"
#include "queue-journal.h"
#include "replicator-queue.h"

namespace {

using drepl::fuzz::fuzz_check;
using drepl::fuzz::is_one_line;

std::string g_dir;

void remove_dir() {
  if (g_dir.empty()) return;
  ::unlink((g_dir + "/replicator.db").c_str());
  ::unlink((g_dir + "/replicator.db.log").c_str());
  ::rmdir(g_dir.c_str());
}

const std::string& temp_dir() {
  if (g_dir.empty()) {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base != nullptr && *base != '\0' ? base : "/tmp") +
                       "/drepl-fuzz-queue-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) drepl::fuzz::fuzz_fail("mkdtemp failed");
    g_dir = tmpl;
    std::atexit(remove_dir);
  }
  return g_dir;
}

void write_file(const std::string& path, std::string_view content) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) drepl::fuzz::fuzz_fail("fopen failed");
  if (!content.empty() && std::fwrite(content.data(), 1, content.size(), f) != content.size()) {
    drepl::fuzz::fuzz_fail("fwrite failed");
  }
  std::fclose(f);
}

void check_messages(const std::vector<std::string>& errors, std::string_view content) {
  for (const std::string& e : errors) {
    fuzz_check(is_one_line(e), "import error not one line");
    (void)content;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const unsigned mode = data[0];
  std::string_view content = drepl::fuzz::as_text(data + 1, size - 1);

  // Line by line, as import does, plus the record round trip.
  drepl::fuzz::for_each_line(content, [](std::string_view line) {
    auto rec = drepl::parse_queue_record(line);
    if (!rec) {
      fuzz_check(is_one_line(rec.error().message), "record error not one line");
      return;
    }
    fuzz_check(is_one_line(rec->extension_error), "extension error not one line");
  });

  const std::string db = temp_dir() + "/replicator.db";
  const std::string log = db + std::string(drepl::kJournalSuffix);
  drepl::ManualClock clock;
  drepl::ReplicatorQueue queue(clock, drepl::QueueSettings{});

  const bool as_journal = (mode & 1) != 0;
  if (!as_journal) {
    write_file(db, content);
    ::unlink(log.c_str());
  } else {
    // A small valid snapshot, then the input as its journal.
    write_file(db, "alice\t1\t100\t100\t100\t0\t\t100\n");
    auto sid = drepl::snapshot_id(db);
    fuzz_check(sid.has_value(), "snapshot_id of a fresh file failed");
    std::string journal;
    if ((mode & 2) != 0) drepl::append_journal_header(journal, *sid);
    journal.append(content);
    write_file(log, journal);
  }

  auto stats = drepl::import_queue_file(queue, db);
  fuzz_check(stats.has_value(), "import of a readable file failed");
  check_messages(stats->errors, content);
  fuzz_check(stats->applied + stats->kept_existing + stats->corrupt_lines <= stats->lines,
             "import counts exceed the lines");

  if (as_journal) {
    auto sid = drepl::snapshot_id(db);
    fuzz_check(sid.has_value(), "snapshot_id failed");
    auto replay = drepl::replay_queue_journal(queue, log, *sid);
    fuzz_check(replay.has_value(), "replay of a readable journal failed");
    check_messages(replay->errors, content);
    fuzz_check(replay->found, "journal not found");
    if ((mode & 2) == 0) fuzz_check(replay->stale || replay->lines == 0, "headerless journal applied");
  }

  // Everything loaded exports to lines that parse back to the same user.
  std::size_t users = 0;
  queue.for_each([&](const drepl::ReplicatorUser& user) {
    ++users;
    std::string line;
    drepl::append_queue_record(line, user);
    fuzz_check(!line.empty() && line.back() == '\n', "record without LF");
    line.pop_back();
    fuzz_check(line.find('\n') == std::string::npos, "record with an inner LF");
    auto rec = drepl::parse_queue_record(line);
    fuzz_check(rec.has_value(), "exported record does not parse");
    fuzz_check(rec->username == user.username.str(), "user name changed in a round trip");
    fuzz_check(rec->state == user.state.str(), "state changed in a round trip");
    fuzz_check(rec->has_extension && rec->extension_error.empty(), "our columns lost");
  });
  fuzz_check(users == queue.size(), "for_each and size() disagree");
  return 0;
}
