// src/doveadm/doveadm-detail.cc: see doveadm-detail.h.
#include "doveadm-detail.h"

#include <algorithm>
#include <charconv>

#include <fmt/format.h>

#include "log-line.h"
#include "sync-error.h"
#include "tab-escape.h"
#include "wildcard.h"

namespace drepl {
namespace {

constexpr std::size_t kDetailFields = 12;
constexpr std::size_t kQuoteMax = 200;

template <typename T>
bool parse_number(std::string_view s, T* out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

void add_flag(std::string& out, std::string_view flag) {
  if (!out.empty()) out += ',';
  out += flag;
}

}  // namespace

std::optional<StatusDetailCommand> parse_status_detail_command(std::string_view line) {
  // Cheap reject before splitting: every other command differs in its first field.
  if (line.substr(0, kStatusDetailCommand.size()) != kStatusDetailCommand) return std::nullopt;
  auto f = split_tabescaped(line);
  if (f[0] != kStatusDetailCommand) return std::nullopt;
  StatusDetailCommand c;
  c.mask = f.size() >= 2 && !f[1].empty() ? std::move(f[1]) : std::string("*");
  return c;
}

UnixTime detail_next_sync_time(const ReplicatorQueue& queue, const ReplicatorUser& user) {
  if (user.never_sync) return 0;
  if (user.priority != Priority::kNone) return std::max(user.last_update, user.not_before);
  return queue.next_sync_time(user);
}

std::string detail_flags(const ReplicatorUser& user, UnixTime now) {
  std::string out;
  if (user.popped) add_flag(out, kDetailFlagInFlight);
  if (user.popped && user.full_sync_running) add_flag(out, kDetailFlagFullSyncRunning);
  if (user.never_sync) add_flag(out, kDetailFlagNeverSync);
  if (user.force_full_sync) add_flag(out, kDetailFlagFullSyncPending);
  if (user.not_before > now) add_flag(out, kDetailFlagDeferred);
  if (user.retry_now) add_flag(out, kDetailFlagRetryNow);
  return out;
}

std::string format_status_detail_line(const ReplicatorQueue& queue, const ReplicatorUser& user) {
  std::string out = format_user_status_line(user, queue.next_secs(user));
  out.pop_back();  // its LF
  out += fmt::format("\t{}\t{}\t", user.consecutive_failures,
                     sync_error_kind_to_string(user.last_error.kind));
  tab_escape_append(out, user.last_error.text);
  out += fmt::format("\t{}\t", detail_next_sync_time(queue, user));
  out += detail_flags(user, queue.clock().now());
  out += '\n';
  return out;
}

std::vector<std::string> status_detail_usernames(const ReplicatorQueue& queue,
                                                 std::string_view mask) {
  std::vector<std::string> names;
  if (!has_wildcards(mask)) {
    if (queue.lookup(mask) != nullptr) names.emplace_back(mask);
    return names;
  }
  queue.for_each([&](const ReplicatorUser& u) {
    if (wildcard_match(u.username, mask)) names.push_back(u.username);
  });
  std::sort(names.begin(), names.end());
  return names;
}

std::string format_status_detail_reply(const ReplicatorQueue& queue, std::string_view mask) {
  std::string out;
  for (const std::string& name : status_detail_usernames(queue, mask)) {
    const ReplicatorUser* u = queue.lookup(name);
    if (u != nullptr) out += format_status_detail_line(queue, *u);
  }
  out += kEndOfListReply;
  return out;
}

std::string format_status_detail_request(std::string_view mask) {
  return format_doveadm_request({kStatusDetailCommand, mask});
}

Result<UserDetailRow> parse_status_detail_line(std::string_view line) {
  auto bad = [&] { return invalid("Invalid status detail line: " + sanitize_log_text(line, kQuoteMax)); };
  auto f = split_tabescaped(line);
  if (f.size() < kDetailFields) return bad();
  auto status = parse_user_status_line(line);
  if (!status || !status->next_secs) return bad();
  UserDetailRow r;
  r.status = std::move(*status);
  if (!parse_number(f[7], &r.consecutive_failures) || f[8].empty() ||
      !parse_number(f[10], &r.next_sync_time)) {
    return bad();
  }
  r.error_kind = std::move(f[8]);
  r.last_error = std::move(f[9]);
  std::string_view flags = f[11];
  while (!flags.empty()) {
    const std::size_t comma = flags.find(',');
    const std::string_view token = flags.substr(0, comma);
    if (token == kDetailFlagInFlight) r.in_flight = true;
    else if (token == kDetailFlagFullSyncRunning) r.full_sync_running = true;
    else if (token == kDetailFlagNeverSync) r.never_sync = true;
    else if (token == kDetailFlagFullSyncPending) r.full_sync_pending = true;
    else if (token == kDetailFlagDeferred) r.deferred = true;
    else if (token == kDetailFlagRetryNow) r.retry_now = true;
    if (comma == std::string_view::npos) break;
    flags.remove_prefix(comma + 1);
  }
  return r;
}

}  // namespace drepl
