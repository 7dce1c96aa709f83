#include "auth-master.h"

#include <charconv>

#include <fmt/format.h>

#include "log-line.h"
#include "tab-escape.h"

namespace drepl {
namespace {

constexpr std::size_t kQuoteMax = 200;

template <typename T>
bool parse_number(std::string_view s, T* out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

Error bad_line(std::string_view line) {
  return invalid("auth-master sent invalid input: " + sanitize_log_text(line, kQuoteMax));
}

std::pair<std::string, std::string> split_field(const std::string& field) {
  std::size_t eq = field.find('=');
  if (eq == std::string::npos) return {field, std::string()};
  return {field.substr(0, eq), field.substr(eq + 1)};
}

}  // namespace

std::string format_auth_master_handshake() { return "VERSION\t1\t0\n"; }

std::string format_auth_list_request(std::uint32_t id, std::string_view mask) {
  std::string out = fmt::format("LIST\t{}", id);
  if (!mask.empty()) {
    out += "\tuser=";
    out += mask;  // raw, as stock
  }
  out += "\tservice=replicator\n";
  return out;
}

std::string format_auth_user_request(std::uint32_t id, std::string_view username) {
  std::string out = fmt::format("USER\t{}\t", id);
  tab_escape_append(out, username);
  out += "\tservice=replicator\n";
  return out;
}

Result<AuthMasterReply> parse_auth_master_line(std::string_view line) {
  auto f = split_tabescaped(line);
  const std::string& cmd = f[0];
  if (cmd == "VERSION") {
    AuthVersion v;
    if (f.size() < 3 || !parse_number(f[1], &v.major) || !parse_number(f[2], &v.minor)) {
      return bad_line(line);
    }
    return AuthMasterReply{v};
  }
  if (cmd == "SPID") {
    AuthSpid s;
    if (f.size() < 2 || !parse_number(f[1], &s.pid)) return bad_line(line);
    return AuthMasterReply{s};
  }
  std::uint32_t id = 0;
  if (f.size() < 2 || !parse_number(f[1], &id)) return bad_line(line);
  if (cmd == "LIST") {
    if (f.size() < 3) return bad_line(line);
    return AuthMasterReply{AuthListEntry{id, std::move(f[2])}};
  }
  if (cmd == "DONE") {
    // "DONE\t<id>\t" = success; "DONE\t<id>\tfail" = failure.
    bool failed = f.size() >= 3 && f[2] == "fail";
    return AuthMasterReply{AuthListDone{id, failed}};
  }
  if (cmd == "USER") {
    if (f.size() < 3) return bad_line(line);
    AuthUserReply r;
    r.id = id;
    r.username = std::move(f[2]);
    for (std::size_t i = 3; i < f.size(); ++i) {
      if (f[i].empty()) continue;
      r.fields.push_back(split_field(f[i]));
    }
    return AuthMasterReply{std::move(r)};
  }
  if (cmd == "NOTFOUND") return AuthMasterReply{AuthUserNotFound{id}};
  if (cmd == "FAIL") {
    AuthUserFail fail;
    fail.id = id;
    std::string joined;
    for (std::size_t i = 2; i < f.size(); ++i) {
      auto [key, value] = split_field(f[i]);
      if (key == "reason") {
        fail.reason = value;
        return AuthMasterReply{std::move(fail)};
      }
      if (f[i].empty()) continue;
      if (!joined.empty()) joined += ' ';
      joined += f[i];
    }
    fail.reason = std::move(joined);
    return AuthMasterReply{std::move(fail)};
  }
  return bad_line(line);
}

std::optional<std::string_view> auth_user_field(const AuthUserReply& reply,
                                                std::string_view key) {
  for (const auto& [k, v] : reply.fields) {
    if (k == key) return std::string_view(v);
  }
  return std::nullopt;
}

bool userdb_flag_is_true(std::string_view value) {
  if (value.empty()) return true;
  switch (value[0]) {
    case 'n': case 'N': case '0': case 'f': case 'F':
      return false;
    default:
      return true;
  }
}

UserdbReplication userdb_replication_fields(const AuthUserReply& reply) {
  UserdbReplication out;
  auto replica = auth_user_field(reply, "mail_replica");
  if (!replica) replica = auth_user_field(reply, "plugin/mail_replica");
  if (replica) out.mail_replica = std::string(*replica);
  if (auto flag = auth_user_field(reply, "noreplicate")) {
    out.noreplicate = userdb_flag_is_true(*flag);
  }
  return out;
}

}  // namespace drepl
