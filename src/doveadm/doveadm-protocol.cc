#include "doveadm-protocol.h"

#include <algorithm>
#include <charconv>

#include <fmt/format.h>

#include "log-line.h"
#include "tab-escape.h"
#include "version-line.h"

namespace drepl {
namespace {

constexpr std::size_t kQuoteMax = 200;

std::string quote(std::string_view text) { return sanitize_log_text(text, kQuoteMax); }

Error invalid_params(std::string_view cmd) {
  return invalid(fmt::format("{}: Invalid parameters", cmd));
}

bool parse_i64(std::string_view s, std::int64_t* out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

std::string format_doveadm_server_greeting() {
  return format_version_line(kDoveadmProtocolServerService, kDoveadmProtocolMajor, 0);
}

std::string format_doveadm_client_greeting() {
  return format_version_line(kDoveadmProtocolClientService, kDoveadmProtocolMajor, 0);
}

Status check_doveadm_client_handshake(std::string_view line) {
  auto v = verify_version_line_strict(line, kDoveadmProtocolClientService, kDoveadmProtocolMajor);
  if (!v) return v.error();
  return ok_status();
}

Result<DoveadmCommand> parse_doveadm_command(std::string_view line) {
  if (line.empty()) return invalid("Empty command");
  auto f = split_tabescaped(line);
  const std::string& cmd = f[0];
  const std::size_t nargs = f.size() - 1;
  if (cmd == "STATUS") {
    if (nargs == 0) return DoveadmCommand{StatusOverviewCommand{}};
    return DoveadmCommand{StatusUsersCommand{std::move(f[1])}};
  }
  if (cmd == "STATUS-DSYNC") return DoveadmCommand{StatusDsyncCommand{}};
  if (cmd == "REPLICATE") {
    if (nargs != 3 || f[3].empty()) return invalid_params(cmd);
    ReplicateCommand c;
    c.priority = priority_parse(f[1]);
    c.priority_word = std::move(f[1]);
    c.full = f[2].find('f') != std::string::npos;
    c.mask = std::move(f[3]);
    return DoveadmCommand{std::move(c)};
  }
  if (cmd == "ADD") {
    if (nargs != 1 || f[1].empty()) return invalid_params(cmd);
    return DoveadmCommand{AddCommand{std::move(f[1])}};
  }
  if (cmd == "REMOVE") {
    if (nargs != 1 || f[1].empty()) return invalid_params(cmd);
    return DoveadmCommand{RemoveCommand{std::move(f[1])}};
  }
  if (cmd == "NOTIFY") {
    if (nargs < 3 || f[1].empty()) return invalid_params(cmd);
    NotifyCommand c;
    c.username = std::move(f[1]);
    c.full = !f[2].empty() && f[2][0] == 'f';
    c.state = std::move(f[3]);
    return DoveadmCommand{std::move(c)};
  }
  return invalid("Unknown command: " + quote(cmd));
}

std::string format_count_reply(std::size_t count) { return fmt::format("+{}\n", count); }

std::string format_error_reply(std::string_view error) {
  return "-" + sanitize_log_text(error, 1024) + "\n";
}

std::string format_status_overview(const ReplicatorQueue::Overview& o) {
  return fmt::format(
      "Queued 'sync' requests\t{}\n"
      "Queued 'high' requests\t{}\n"
      "Queued 'low' requests\t{}\n"
      "Queued 'failed' requests\t{}\n"
      "Queued 'full resync' requests\t{}\n"
      "Waiting 'failed' requests\t{}\n"
      "Total number of known users\t{}\n"
      "\n",
      o.queued_sync, o.queued_high, o.queued_low, o.queued_failed, o.queued_full_resync,
      o.waiting_failed, o.total_users);
}

std::string format_user_status_line(const ReplicatorUser& user, std::int64_t next_secs) {
  std::string out;
  tab_escape_append(out, user.username);
  out += fmt::format("\t{}\t{}\t{}\t{}\t{}\t{}\n", priority_to_string(user.priority),
                     user.last_fast_sync, user.last_full_sync,
                     user.last_sync_failed ? 1 : 0, user.last_successful_sync,
                     next_secs < 0 ? 0 : std::min(next_secs, kMaxStatusNextSecs));
  return out;
}

std::string format_dsync_status_line(std::string_view username, std::string_view type,
                                     std::string_view status) {
  std::string out;
  if (username.empty()) {
    out = "\t-\t";
  } else {
    tab_escape_append(out, username);
    out += '\t';
    out += type;
    out += '\t';
  }
  tab_escape_append(out, status);
  out += '\n';
  return out;
}

std::string format_dsync_status_connect_failed(std::string_view socket_path,
                                               std::int64_t secs_ago) {
  return fmt::format("Failed to connect to '{}' - last attempt {} secs ago", socket_path,
                     secs_ago);
}

std::string format_doveadm_request(std::initializer_list<std::string_view> fields) {
  std::string out;
  bool first = true;
  for (auto field : fields) {
    if (!first) out += '\t';
    first = false;
    tab_escape_append(out, field);
  }
  out += '\n';
  return out;
}

Result<UserStatusRow> parse_user_status_line(std::string_view line) {
  auto f = split_tabescaped(line);
  UserStatusRow r;
  if (f.size() < 6 || f[0].empty() || !parse_i64(f[2], &r.last_fast_sync) ||
      !parse_i64(f[3], &r.last_full_sync) || !parse_i64(f[5], &r.last_successful_sync)) {
    return invalid("Invalid status line: " + quote(line));
  }
  r.username = std::move(f[0]);
  r.priority = std::move(f[1]);
  r.failed = f[4] != "0";
  if (f.size() >= 7) {
    std::int64_t n = 0;
    if (!parse_i64(f[6], &n)) return invalid("Invalid status line: " + quote(line));
    r.next_secs = n;
  }
  return r;
}

}  // namespace drepl
