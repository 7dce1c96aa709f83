// src/state/queue-journal.cc: see queue-journal.h.
#include "queue-journal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <utility>

#include <fmt/format.h>

#include "queue-file.h"
#include "syscall-error.h"
#include "tab-escape.h"
#include "unique-fd.h"

namespace drepl {
namespace {

constexpr std::string_view kHeaderTag = "drepl-journal 1 ";
constexpr std::string_view kTombstoneTag = "D\t";

Error io_error(const char* call, const std::string& path, int err) {
  return syscall_failure(call, path, err);
}

template <typename T>
bool parse_number(std::string_view& rest, T& out) {
  auto sp = rest.find(' ');
  std::string_view field = rest.substr(0, sp);
  auto [p, ec] = std::from_chars(field.data(), field.data() + field.size(), out);
  if (ec != std::errc() || p != field.data() + field.size() || field.empty()) return false;
  rest = sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1);
  return true;
}

bool parse_header(std::string_view line, SnapshotId& id) {
  if (line.substr(0, kJournalMarker.size()) != kJournalMarker) return false;
  line.remove_prefix(kJournalMarker.size());
  if (line.substr(0, kHeaderTag.size()) != kHeaderTag) return false;
  line.remove_prefix(kHeaderTag.size());
  return parse_number(line, id.dev) && parse_number(line, id.ino) &&
         parse_number(line, id.size) && parse_number(line, id.mtime_ns) && line.empty();
}

}  // namespace

Result<SnapshotId> snapshot_id(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) < 0) return io_error("stat", path, errno);
  SnapshotId id;
  id.dev = static_cast<std::uint64_t>(st.st_dev);
  id.ino = static_cast<std::uint64_t>(st.st_ino);
  id.size = static_cast<std::uint64_t>(st.st_size);
  id.mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  return id;
}

void append_journal_header(std::string& out, const SnapshotId& base) {
  out += kJournalMarker;
  out += kHeaderTag;
  out += fmt::format("{} {} {} {}\n", base.dev, base.ino, base.size, base.mtime_ns);
}

void append_journal_tombstone(std::string& out, std::string_view username) {
  out += kJournalMarker;
  out += kTombstoneTag;
  tab_escape_append(out, username);
  out += '\n';
}

Result<JournalReplayStats> replay_queue_journal(ReplicatorQueue& queue,
                                                const std::string& journal_path,
                                                const SnapshotId& snapshot) {
  JournalReplayStats stats;
  UniqueFd fd(::open(journal_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return stats;
    return io_error("open", journal_path, errno);
  }
  stats.found = true;
  std::string data;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return io_error("read", journal_path, errno);
    }
    if (n == 0) break;
    data.append(buf, static_cast<std::size_t>(n));
  }
  fd.reset();

  std::string_view rest(data);
  auto nl = rest.find('\n');
  SnapshotId base;
  if (nl == std::string_view::npos || !parse_header(rest.substr(0, nl), base) ||
      base != snapshot) {
    if (!rest.empty()) {
      stats.stale = true;
      stats.errors.push_back(fmt::format(
          "{}: ignored: it doesn't continue the current replicator.db (stale or foreign "
          "journal)",
          journal_path));
    }
    return stats;
  }
  rest.remove_prefix(nl + 1);
  std::size_t line_no = 1;
  auto report = [&](std::string_view why) {
    stats.corrupt_lines++;
    if (stats.errors.size() < kMaxImportErrors) {
      stats.errors.push_back(fmt::format("Corrupted replicator journal record in {} line {}: {}",
                                         journal_path, line_no, why));
    }
  };
  while (!rest.empty()) {
    ++line_no;
    ++stats.lines;
    nl = rest.find('\n');
    if (nl == std::string_view::npos) {
      stats.torn_tail = true;
      stats.errors.push_back(fmt::format(
          "{} line {}: incomplete last line ignored (interrupted write)", journal_path, line_no));
      break;
    }
    std::string_view line = rest.substr(0, nl);
    rest.remove_prefix(nl + 1);
    if (line.substr(0, kJournalMarker.size()) == kJournalMarker) {
      std::string_view body = line.substr(kJournalMarker.size());
      if (body.substr(0, kTombstoneTag.size()) != kTombstoneTag ||
          body.size() == kTombstoneTag.size()) {
        report("unknown journal line");
        continue;
      }
      std::string name = tab_unescape(body.substr(kTombstoneTag.size()));
      if (queue.remove(name)) stats.removed++;
      continue;
    }
    Result<QueueRecord> rec = parse_queue_record(line);
    if (!rec.has_value()) {
      report(rec.error().message);
      continue;
    }
    // Overwrite semantics: the record is the user's whole state.
    queue.remove(rec->username);
    merge_queue_record(queue, std::move(rec.value()));
    stats.records++;
  }
  return stats;
}

}  // namespace drepl
