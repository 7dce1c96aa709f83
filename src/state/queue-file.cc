#include "queue-file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <utility>

#include <fmt/format.h>

#include "atomic-file.h"
#include "syscall-error.h"
#include "tab-escape.h"
#include "unique-fd.h"

namespace drepl {

namespace {

constexpr std::size_t kMaxFields = 32;
constexpr std::size_t kIoChunk = 1u << 20;

Error io_error(std::string_view call, std::string_view path, int err) {
  return syscall_failure(call, path, err);
}

bool parse_time(std::string_view s, UnixTime* out) {
  if (s.empty()) return false;
  UnixTime v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v < 0) return false;
  *out = v;
  return true;
}

bool parse_u32(std::string_view s, std::uint32_t* out) {
  if (s.empty()) return false;
  std::uint32_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return false;
  *out = v;
  return true;
}

bool parse_bool01(std::string_view s, bool* out) {
  if (s == "0") { *out = false; return true; }
  if (s == "1") { *out = true; return true; }
  return false;
}

bool parse_error_kind(std::string_view token, SyncErrorKind* out) {
  // Walks the enum through its string form, so new kinds are picked up.
  for (unsigned k = 0; k < 256; k++) {
    const auto kind = static_cast<SyncErrorKind>(k);
    const std::string_view name = sync_error_kind_to_string(kind);
    if (k > 0 && name == "none") continue;  // not a kind
    if (name == token) {
      *out = kind;
      return true;
    }
  }
  return false;
}

// Escapes only when needed: states are base64 and need none.
void append_escaped(std::string& out, std::string_view value) {
  if (value.find_first_of(std::string_view("\0\x01\t\r\n", 5)) == std::string_view::npos) {
    out.append(value);
  } else {
    tab_escape_append(out, value);
  }
}

std::string unescape(std::string_view field) {
  if (field.find('\x01') == std::string_view::npos) return std::string(field);
  return tab_unescape(field);
}

template <typename T>
void append_int(std::string& out, T v) {
  char buf[24];
  auto [p, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  (void)ec;
  out.append(buf, p);
}

// Splits on TAB into at most kMaxFields views (the rest stay in the last one).
std::size_t split_fields(std::string_view line, std::string_view* fields) {
  std::size_t n = 0;
  std::size_t start = 0;
  for (;;) {
    const std::size_t tab = n + 1 < kMaxFields ? line.find('\t', start) : std::string_view::npos;
    if (tab == std::string_view::npos) {
      fields[n++] = line.substr(start);
      return n;
    }
    fields[n++] = line.substr(start, tab - start);
    start = tab + 1;
  }
}

}  // namespace

Result<QueueRecord> parse_queue_record(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  std::string_view f[kMaxFields];
  const std::size_t n = split_fields(line, f);
  if (n < 7) return invalid(fmt::format("expected at least 7 fields, got {}", n));
  QueueRecord r;
  r.username = unescape(f[0]);
  if (r.username.empty()) return invalid("empty username");
  const auto prio = priority_from_int_string(f[1]);
  if (!prio) return invalid("invalid priority");
  r.priority = *prio;
  if (!parse_time(f[2], &r.last_update)) return invalid("invalid last_update");
  if (!parse_time(f[3], &r.last_fast_sync)) return invalid("invalid last_fast_sync");
  if (!parse_time(f[4], &r.last_full_sync)) return invalid("invalid last_full_sync");
  r.last_sync_failed = f[5].empty() || f[5][0] != '0';  // stock rule
  r.state = unescape(f[6]);
  if (n >= 8 && !parse_time(f[7], &r.last_successful_sync)) {
    return invalid("invalid last_successful_sync");
  }
  if (n >= 9) {
    QueueRecord ext;
    if (n < 13) {
      r.extension_error = fmt::format("expected 13 fields with the extension, got {}", n);
    } else if (!parse_u32(f[8], &ext.consecutive_failures)) {
      r.extension_error = "invalid consecutive_failures";
    } else if (!parse_error_kind(f[9], &ext.last_error.kind)) {
      r.extension_error = "invalid last error kind";
    } else if (!parse_bool01(f[11], &ext.never_sync)) {
      r.extension_error = "invalid never_sync";
    } else if (!parse_bool01(f[12], &ext.force_full_sync)) {
      r.extension_error = "invalid force_full_sync";
    } else {
      r.has_extension = true;
      r.consecutive_failures = ext.consecutive_failures;
      r.last_error.kind = ext.last_error.kind;
      r.last_error.text = unescape(f[10]);
      r.never_sync = ext.never_sync;
      r.force_full_sync = ext.force_full_sync;
    }
  }
  return r;
}

void append_queue_record(std::string& out, const ReplicatorUser& user) {
  Priority prio = user.priority;
  bool force_full = user.force_full_sync || user.full_sync_retry;
  if (user.popped) {
    // A running sync: write what it is serving, so a crash loses nothing.
    prio = std::max(prio, user.priority_in_sync);
    force_full = force_full || user.full_sync_running;
  }
  append_escaped(out, user.username);
  out += '\t';
  out += static_cast<char>('0' + static_cast<int>(prio));
  out += '\t';
  append_int(out, user.last_update);
  out += '\t';
  append_int(out, user.last_fast_sync);
  out += '\t';
  append_int(out, user.last_full_sync);
  out += '\t';
  out += user.last_sync_failed ? '1' : '0';
  out += '\t';
  append_escaped(out, user.state);
  out += '\t';
  append_int(out, user.last_successful_sync);
  out += '\t';
  append_int(out, user.consecutive_failures);
  out += '\t';
  out.append(sync_error_kind_to_string(user.last_error.kind));
  out += '\t';
  append_escaped(out, user.last_error.text);
  out += '\t';
  out += user.never_sync ? '1' : '0';
  out += '\t';
  out += force_full ? '1' : '0';
  out += '\n';
}

bool merge_queue_record(ReplicatorQueue& queue, QueueRecord&& rec) {
  ReplicatorUser* u = queue.lookup(rec.username);
  if (u != nullptr) {
    if (u->popped) return false;
    if (u->last_update > rec.last_update) return false;  // we have newer
    if (u->last_update == rec.last_update && u->priority > rec.priority) return false;
  } else {
    u = &queue.get_listed(rec.username, rec.last_update);
  }
  queue.modify(*u, [&rec](ReplicatorUser& x) {
    x.priority = std::max(x.priority, rec.priority);
    x.last_update = rec.last_update;
    x.last_fast_sync = rec.last_fast_sync;
    x.last_full_sync = rec.last_full_sync;
    x.last_successful_sync = rec.last_successful_sync;
    x.last_sync_failed = rec.last_sync_failed;
    x.state = std::move(rec.state);
    x.retry_now = false;
    x.not_before = 0;
    if (rec.has_extension) {
      x.consecutive_failures = rec.consecutive_failures;
      x.last_error = std::move(rec.last_error);
      x.never_sync = rec.never_sync;
      x.force_full_sync = rec.force_full_sync;
    } else {
      x.consecutive_failures = rec.last_sync_failed ? 1 : 0;
    }
    if (!x.last_sync_failed) x.consecutive_failures = 0;
    if (x.never_sync) {
      x.priority = Priority::kNone;
      x.last_sync_failed = false;
    }
  });
  return true;
}

Result<QueueImportStats> import_queue_file(ReplicatorQueue& queue, const std::string& path) {
  QueueImportStats stats;
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return stats;
    return io_error("open", path, errno);
  }
  auto report = [&](std::size_t line_no, std::string_view why) {
    if (stats.errors.size() < kMaxImportErrors) {
      stats.errors.push_back(
          fmt::format("Corrupted replicator record in {} line {}: {}", path, line_no, why));
    }
  };
  auto handle_line = [&](std::string_view line, std::size_t line_no) {
    stats.lines++;
    Result<QueueRecord> rec = parse_queue_record(line);
    if (!rec.has_value()) {
      stats.corrupt_lines++;
      report(line_no, rec.error().message);
      return;
    }
    if (!rec->extension_error.empty()) report(line_no, rec->extension_error);
    if (merge_queue_record(queue, std::move(rec.value()))) {
      stats.applied++;
    } else {
      stats.kept_existing++;
    }
  };

  std::string buf(kIoChunk, '\0');
  std::string pending;        // start of a line that spans reads
  bool overlong = false;      // discarding the rest of a too-long line
  std::size_t line_no = 0;
  for (;;) {
    const ssize_t r = ::read(fd.get(), buf.data(), buf.size());
    if (r < 0) {
      if (errno == EINTR) continue;
      return io_error("read", path, errno);
    }
    if (r == 0) break;
    std::string_view data(buf.data(), static_cast<std::size_t>(r));
    while (!data.empty()) {
      const std::size_t nl = data.find('\n');
      const std::string_view part = data.substr(0, nl);
      if (!overlong && pending.size() + part.size() > kMaxQueueLineBytes) {
        overlong = true;
        pending.clear();
        pending.shrink_to_fit();
      }
      if (nl == std::string_view::npos) {
        if (!overlong) pending.append(part);
        break;
      }
      line_no++;
      if (overlong) {
        stats.lines++;
        stats.corrupt_lines++;
        report(line_no, fmt::format("line longer than {} bytes", kMaxQueueLineBytes));
        overlong = false;
      } else if (pending.empty()) {
        handle_line(part, line_no);
      } else {
        pending.append(part);
        handle_line(pending, line_no);
        pending.clear();
      }
      data.remove_prefix(nl + 1);
    }
  }
  if (overlong || !pending.empty()) {
    stats.lines++;
    stats.corrupt_lines++;
    report(line_no + 1, "no newline at end of file (truncated?)");
  }
  return stats;
}

Result<std::size_t> export_queue_file(const ReplicatorQueue& queue, const std::string& path) {
  auto file = AtomicFileWriter::create(path);
  if (!file) return file.error();

  std::string buf;
  buf.reserve(kIoChunk + 4096);
  std::size_t users = 0;
  Status st;
  queue.for_each([&](const ReplicatorUser& u) {
    if (!st.has_value()) return;
    append_queue_record(buf, u);
    users++;
    if (buf.size() >= kIoChunk) {
      st = file->write(buf);
      buf.clear();
    }
  });
  if (st.has_value() && !buf.empty()) st = file->write(buf);
  if (!st.has_value()) return st.error();  // the writer removes the temp file
  if (Status c = file->commit(); !c.has_value()) return c.error();
  return users;
}

}  // namespace drepl
