// src/replica-verify.cc: see replica-verify.h.
#include "replica-verify.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>
#include <optional>

#include "log-line.h"

namespace drepl {
namespace {

std::vector<std::string_view> split_tabs(std::string_view line) {
  std::vector<std::string_view> out;
  for (;;) {
    auto tab = line.find('\t');
    out.push_back(line.substr(0, tab));
    if (tab == std::string_view::npos) break;
    line.remove_prefix(tab + 1);
  }
  return out;
}

std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> out;
  while (!text.empty()) {
    auto lf = text.find('\n');
    std::string_view line = text.substr(0, lf);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    out.push_back(line);
    if (lf == std::string_view::npos) break;
    text.remove_prefix(lf + 1);
  }
  return out;
}

template <typename T>
std::optional<T> parse_uint(std::string_view s) {
  T v{};
  if (s.empty()) return std::nullopt;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

// Column index of `name` in the header, or -1.
int column(const std::vector<std::string_view>& header, std::string_view name) {
  for (std::size_t i = 0; i < header.size(); ++i) {
    if (header[i] == name) return static_cast<int>(i);
  }
  return -1;
}

std::vector<std::string> parse_flags(std::string_view text) {
  std::vector<std::string> flags;
  while (!text.empty()) {
    auto sp = text.find(' ');
    std::string_view f = text.substr(0, sp);
    if (!f.empty() && f != "\\Recent") flags.emplace_back(f);
    if (sp == std::string_view::npos) break;
    text.remove_prefix(sp + 1);
  }
  std::sort(flags.begin(), flags.end());
  flags.erase(std::unique(flags.begin(), flags.end()), flags.end());
  return flags;
}

std::string join_flags(const std::vector<std::string>& flags) {
  if (flags.empty()) return "(none)";
  std::string out;
  for (const auto& f : flags) {
    if (!out.empty()) out += ' ';
    out += f;
  }
  return out;
}

void add(std::vector<Difference>& out, DifferenceKind kind, std::string_view mailbox,
         std::uint32_t uid, std::string detail) {
  out.push_back(Difference{kind, std::string(mailbox), uid, std::move(detail)});
}

}  // namespace

Result<std::vector<MailboxState>> parse_mailbox_status_table(std::string_view text) {
  std::vector<std::string_view> lines = split_lines(text);
  std::vector<MailboxState> out;
  if (lines.empty()) return out;
  std::vector<std::string_view> header = split_tabs(lines[0]);
  const int c_name = column(header, "mailbox"), c_guid = column(header, "guid"),
            c_uidv = column(header, "uidvalidity"), c_next = column(header, "uidnext"),
            c_msgs = column(header, "messages"), c_hms = column(header, "highestmodseq");
  for (auto [c, name] : {std::pair{c_name, "mailbox"}, {c_guid, "guid"},
                         {c_uidv, "uidvalidity"}, {c_msgs, "messages"}}) {
    if (c < 0) return invalid(fmt::format("mailbox status: missing column {}", name));
  }
  for (std::size_t n = 1; n < lines.size(); ++n) {
    if (lines[n].empty()) continue;
    std::vector<std::string_view> f = split_tabs(lines[n]);
    if (f.size() != header.size()) {
      return invalid(fmt::format("mailbox status line {}: expected {} fields, got {}", n + 1,
                                 header.size(), f.size()));
    }
    MailboxState m;
    m.name = std::string(f[c_name]);
    m.guid = std::string(f[c_guid]);
    auto uidv = parse_uint<std::uint32_t>(f[c_uidv]);
    auto msgs = parse_uint<std::uint32_t>(f[c_msgs]);
    std::optional<std::uint32_t> next = c_next < 0 ? std::optional<std::uint32_t>(0)
                                                   : parse_uint<std::uint32_t>(f[c_next]);
    std::optional<std::uint64_t> hms = c_hms < 0 ? std::optional<std::uint64_t>(0)
                                                 : parse_uint<std::uint64_t>(f[c_hms]);
    if (m.name.empty() || !uidv || !msgs || !next || !hms) {
      return invalid(fmt::format("mailbox status line {}: invalid value", n + 1));
    }
    m.uidvalidity = *uidv;
    m.messages = *msgs;
    m.uidnext = *next;
    m.highestmodseq = *hms;
    out.push_back(std::move(m));
  }
  std::sort(out.begin(), out.end(),
            [](const MailboxState& x, const MailboxState& y) { return x.name < y.name; });
  return out;
}

Result<MessagesByMailbox> parse_fetch_table(std::string_view text) {
  std::vector<std::string_view> lines = split_lines(text);
  MessagesByMailbox out;
  if (lines.empty()) return out;
  std::vector<std::string_view> header = split_tabs(lines[0]);
  const int c_box = column(header, "mailbox-guid"), c_uid = column(header, "uid"),
            c_guid = column(header, "guid"), c_flags = column(header, "flags");
  for (auto [c, name] : {std::pair{c_box, "mailbox-guid"}, {c_uid, "uid"}, {c_guid, "guid"},
                         {c_flags, "flags"}}) {
    if (c < 0) return invalid(fmt::format("fetch: missing column {}", name));
  }
  for (std::size_t n = 1; n < lines.size(); ++n) {
    if (lines[n].empty()) continue;
    std::vector<std::string_view> f = split_tabs(lines[n]);
    if (f.size() != header.size()) {
      return invalid(fmt::format("fetch line {}: expected {} fields, got {}", n + 1,
                                 header.size(), f.size()));
    }
    auto uid = parse_uint<std::uint32_t>(f[c_uid]);
    if (!uid || f[c_box].empty()) return invalid(fmt::format("fetch line {}: invalid value", n + 1));
    out[std::string(f[c_box])].push_back(
        MessageState{*uid, std::string(f[c_guid]), parse_flags(f[c_flags])});
  }
  for (auto& [box, msgs] : out) {
    std::sort(msgs.begin(), msgs.end(),
              [](const MessageState& x, const MessageState& y) { return x.uid < y.uid; });
  }
  return out;
}

bool mailbox_fast_equal(const MailboxState& a, const MailboxState& b) {
  return a.guid == b.guid && a.uidvalidity == b.uidvalidity && a.uidnext == b.uidnext &&
         a.messages == b.messages && a.highestmodseq == b.highestmodseq;
}

std::string_view difference_kind_to_string(DifferenceKind kind) {
  switch (kind) {
    case DifferenceKind::kMailboxMissing: return "mailbox_missing";
    case DifferenceKind::kMailboxGuid: return "mailbox_guid";
    case DifferenceKind::kUidValidity: return "uidvalidity";
    case DifferenceKind::kMessageMissing: return "message_missing";
    case DifferenceKind::kMessageGuid: return "message_guid";
    case DifferenceKind::kFlags: return "flags";
  }
  return "unknown";
}

std::string Difference::text() const {
  std::string where = sanitize_log_text(mailbox);
  switch (kind) {
    case DifferenceKind::kMailboxMissing: return fmt::format("{}: mailbox {}", where, detail);
    case DifferenceKind::kMailboxGuid: return fmt::format("{}: mailbox GUID {}", where, detail);
    case DifferenceKind::kUidValidity: return fmt::format("{}: UIDVALIDITY {}", where, detail);
    case DifferenceKind::kMessageMissing:
      return fmt::format("{} uid {}: message {}", where, uid, detail);
    case DifferenceKind::kMessageGuid:
      return fmt::format("{} uid {}: message GUID {}", where, uid, detail);
    case DifferenceKind::kFlags:
      return fmt::format("{} uid {}: flags {}", where, uid, sanitize_log_text(detail));
  }
  return where;
}

void compare_mailbox_lists(const std::vector<MailboxState>& a, const std::vector<MailboxState>& b,
                           std::vector<Difference>& out,
                           std::vector<std::string>& compare_messages_r) {
  std::map<std::string_view, const MailboxState*> by_name_b;
  for (const auto& m : b) by_name_b[m.name] = &m;
  std::map<std::string_view, const MailboxState*> by_name_a;
  for (const auto& m : a) by_name_a[m.name] = &m;
  std::map<std::string_view, std::pair<const MailboxState*, const MailboxState*>> all;
  for (const auto& [n, m] : by_name_a) all[n].first = m;
  for (const auto& [n, m] : by_name_b) all[n].second = m;
  for (const auto& [name, pair] : all) {
    const auto [ma, mb] = pair;
    if (ma == nullptr || mb == nullptr) {
      const MailboxState* only = ma != nullptr ? ma : mb;
      add(out, DifferenceKind::kMailboxMissing, name, 0,
          fmt::format("only on {} ({} messages)", ma != nullptr ? "A" : "B", only->messages));
      continue;
    }
    if (ma->guid != mb->guid) {
      add(out, DifferenceKind::kMailboxGuid, name, 0,
          fmt::format("A: {}, B: {}", sanitize_log_text(ma->guid), sanitize_log_text(mb->guid)));
      continue;
    }
    if (ma->uidvalidity != mb->uidvalidity) {
      add(out, DifferenceKind::kUidValidity, name, 0,
          fmt::format("A: {}, B: {}", ma->uidvalidity, mb->uidvalidity));
      continue;
    }
    if (!mailbox_fast_equal(*ma, *mb)) compare_messages_r.emplace_back(name);
  }
}

void compare_mailbox_messages(std::string_view mailbox, const std::vector<MessageState>& a,
                              const std::vector<MessageState>& b, std::vector<Difference>& out) {
  std::size_t i = 0, j = 0;
  while (i < a.size() || j < b.size()) {
    if (j == b.size() || (i < a.size() && a[i].uid < b[j].uid)) {
      add(out, DifferenceKind::kMessageMissing, mailbox, a[i].uid, "only on A");
      ++i;
    } else if (i == a.size() || b[j].uid < a[i].uid) {
      add(out, DifferenceKind::kMessageMissing, mailbox, b[j].uid, "only on B");
      ++j;
    } else {
      if (a[i].guid != b[j].guid) {
        add(out, DifferenceKind::kMessageGuid, mailbox, a[i].uid,
            fmt::format("A: {}, B: {}", sanitize_log_text(a[i].guid),
                        sanitize_log_text(b[j].guid)));
      } else if (a[i].flags != b[j].flags) {
        add(out, DifferenceKind::kFlags, mailbox, a[i].uid,
            fmt::format("A: {}, B: {}", join_flags(a[i].flags), join_flags(b[j].flags)));
      }
      ++i;
      ++j;
    }
  }
}

UserVerdict compare_user(std::string_view username, const std::vector<MailboxState>& a,
                         const std::vector<MailboxState>& b, const MessagesByMailbox& fetch_a,
                         const MessagesByMailbox& fetch_b) {
  UserVerdict v;
  v.username = std::string(username);
  std::vector<Difference> diffs;
  std::vector<std::string> deep;
  compare_mailbox_lists(a, b, diffs, deep);
  {
    std::map<std::string_view, int> names;
    for (const auto& m : a) names[m.name] = 1;
    for (const auto& m : b) names[m.name] = 1;
    v.mailboxes = names.size();
  }
  std::size_t paired = 0;
  std::map<std::string_view, const MailboxState*> by_name_a;
  for (const auto& m : a) by_name_a[m.name] = &m;
  for (const auto& m : b) {
    auto it = by_name_a.find(m.name);
    if (it != by_name_a.end() && it->second->guid == m.guid &&
        it->second->uidvalidity == m.uidvalidity) {
      ++paired;
    }
  }
  v.mailboxes_fast = paired - deep.size();
  static const std::vector<MessageState> kNone;
  for (const std::string& name : deep) {
    const std::string& guid = by_name_a[name]->guid;
    auto ia = fetch_a.find(guid);
    auto ib = fetch_b.find(guid);
    const auto& ma = ia == fetch_a.end() ? kNone : ia->second;
    const auto& mb = ib == fetch_b.end() ? kNone : ib->second;
    v.messages += std::max(ma.size(), mb.size());
    compare_mailbox_messages(name, ma, mb, diffs);
  }
  v.difference_count = diffs.size();
  v.status = diffs.empty() ? VerifyStatus::kInSync : VerifyStatus::kDiffers;
  if (diffs.size() > kMaxReportedDifferences) diffs.resize(kMaxReportedDifferences);
  v.differences = std::move(diffs);
  return v;
}

std::string_view verify_status_to_string(VerifyStatus status) {
  switch (status) {
    case VerifyStatus::kInSync: return "in sync";
    case VerifyStatus::kDiffers: return "differs";
    case VerifyStatus::kUnreachable: return "replica unreachable";
  }
  return "unknown";
}

std::string verdict_text(const UserVerdict& v) {
  switch (v.status) {
    case VerifyStatus::kInSync: return "in sync";
    case VerifyStatus::kUnreachable:
      return fmt::format("replica unreachable: {}", sanitize_log_text(v.error));
    case VerifyStatus::kDiffers: break;
  }
  std::string out = fmt::format("differs: {} difference{}", v.difference_count,
                                v.difference_count == 1 ? "" : "s");
  for (std::size_t i = 0; i < v.differences.size() && i < 3; ++i) {
    out += i == 0 ? ": " : "; ";
    out += v.differences[i].text();
  }
  if (v.difference_count > 3) out += "; ...";
  return out;
}

void VerifySummary::add(const UserVerdict& v) {
  ++users;
  if (v.rechecked) ++rechecked;
  switch (v.status) {
    case VerifyStatus::kInSync: ++in_sync; break;
    case VerifyStatus::kDiffers: ++differ; break;
    case VerifyStatus::kUnreachable: ++unreachable; break;
  }
}

int VerifySummary::exit_code() const {
  if (differ > 0) return 2;
  if (unreachable > 0) return 75;
  return 0;
}

std::string VerifySummary::text() const {
  return fmt::format("{} users: {} in sync, {} differ, {} unreachable ({} re-checked after a running sync)",
                     users, in_sync, differ, unreachable, rechecked);
}

std::string verdict_json(const UserVerdict& v) {
  nlohmann::ordered_json j;
  j["user"] = v.username;
  j["status"] = verify_status_to_string(v.status);
  j["differences"] = v.difference_count;
  j["mailboxes"] = v.mailboxes;
  j["mailboxes_fast"] = v.mailboxes_fast;
  j["messages"] = v.messages;
  j["rechecked"] = v.rechecked;
  j["error"] = v.error;
  auto arr = nlohmann::ordered_json::array();
  for (const auto& d : v.differences) {
    arr.push_back({{"kind", difference_kind_to_string(d.kind)},
                   {"mailbox", d.mailbox},
                   {"uid", d.uid},
                   {"detail", d.detail}});
  }
  j["first_differences"] = std::move(arr);
  // Mailbox names and flags may hold bytes that are not UTF-8: replace them.
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace drepl
