#include "replicator-settings.h"

#include <fmt/format.h>

#include "dovecot-time.h"
#include "log-line.h"

namespace drepl {
namespace {

Error bad_setting(std::string_view key, const Error& why) {
  return invalid(fmt::format("Invalid setting {}: {}", sanitize_log_text(key, 200), why.message));
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

// doveconf prints a value in double quotes, with '"', '\\' and '\'' escaped
// by a backslash, when it contains '#' or starts or ends with white space
// (2.3 and 2.4 config_dump_human_output(): value_need_quote()).
std::string unquote_doveconf_value(std::string_view v) {
  if (v.size() < 2 || v.front() != '"' || v.back() != '"') return std::string(v);
  v = v.substr(1, v.size() - 2);
  std::string out;
  out.reserve(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (v[i] == '\\' && i + 1 < v.size()) ++i;
    out += v[i];
  }
  return out;
}

}  // namespace

Status apply_replicator_setting(ReplicatorSettings& s, std::string_view key,
                                std::string_view value, bool* known_r) {
  if (known_r != nullptr) *known_r = true;
  constexpr std::string_view kPlugin = "plugin/";
  if (key.substr(0, kPlugin.size()) == kPlugin) key.remove_prefix(kPlugin.size());
  // doveadm (which runs our dsyncs) reads its ssl_client_ca_* inside
  // `protocol doveadm { }` when set there; doveconf prints that section after
  // the global values, so it overrides them here too.
  constexpr std::string_view kDoveadmFilter = "protocol/doveadm/";
  if (key.substr(0, kDoveadmFilter.size()) == kDoveadmFilter &&
      (key.substr(kDoveadmFilter.size()) == "ssl_client_ca_file" ||
       key.substr(kDoveadmFilter.size()) == "ssl_client_ca_dir")) {
    key.remove_prefix(kDoveadmFilter.size());
  }

  auto time_secs = [&](std::int64_t* out) -> Status {
    auto v = parse_dovecot_time_secs(value);
    if (!v) return bad_setting(key, v.error());
    if (*v > static_cast<std::uint64_t>(INT64_MAX)) {
      return bad_setting(key, invalid("value too large"));
    }
    *out = static_cast<std::int64_t>(*v);
    return ok_status();
  };
  auto port = [&](std::uint16_t* out) -> Status {
    auto v = parse_dovecot_uint(value, 65535);
    if (!v) return bad_setting(key, v.error());
    *out = static_cast<std::uint16_t>(*v);
    return ok_status();
  };

  if (key == "replication_full_sync_interval") return time_secs(&s.replication_full_sync_interval_secs);
  if (key == "replication_dsync_timeout") return time_secs(&s.replication_dsync_timeout_secs);
  if (key == "replication_dsync_handshake_timeout") {
    return time_secs(&s.replication_dsync_handshake_timeout_secs);
  }
  if (key == "replication_max_conns") {
    auto v = parse_dovecot_uint(value, kMaxReplicationMaxConns);
    if (!v) return bad_setting(key, v.error());
    s.replication_max_conns = static_cast<unsigned>(*v);
    return ok_status();
  }
  if (key == "replication_max_conns_per_replica") {
    auto v = parse_dovecot_uint(value, kMaxReplicationMaxConns);
    if (!v) return bad_setting(key, v.error());
    s.replication_max_conns_per_replica = static_cast<unsigned>(*v);
    return ok_status();
  }
  if (key == "replicator_port") return port(&s.replicator_port);
  if (key == "doveadm_port" || key == "doveadm_proxy_port") return port(&s.doveadm_port);

  std::string* str = nullptr;
  if (key == "replication_dsync_parameters") str = &s.replication_dsync_parameters;
  else if (key == "auth_socket_path") str = &s.auth_socket_path;
  else if (key == "doveadm_socket_path") str = &s.doveadm_socket_path;
  else if (key == "replication_dsync_socket_path") str = &s.replication_dsync_socket_path;
  else if (key == "replicator_host") str = &s.replicator_host;
  else if (key == "mail_replica") str = &s.mail_replica;
  else if (key == "base_dir") str = &s.base_dir;
  else if (key == "state_dir") str = &s.state_dir;
  else if (key == "ssl_client_ca_file") str = &s.ssl_client_ca_file;
  else if (key == "ssl_client_ca_dir") str = &s.ssl_client_ca_dir;
  else if (key == "dsync_remote_cmd") str = &s.dsync_remote_cmd;
  if (str == nullptr) {
    if (known_r != nullptr) *known_r = false;
    return ok_status();
  }
  *str = std::string(value);
  return ok_status();
}

Result<ReplicatorSettings> replicator_settings_from_pairs(
    const std::vector<std::pair<std::string, std::string>>& pairs) {
  ReplicatorSettings s;
  for (const auto& [key, value] : pairs) {
    if (Status st = apply_replicator_setting(s, key, value); !st) return st.error();
  }
  return s;
}

Result<std::vector<std::pair<std::string, std::string>>> parse_doveconf_output(
    std::string_view text) {
  std::vector<std::pair<std::string, std::string>> out;
  std::vector<std::string> sections;  // prefixes, each ending in '/'
  std::size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    std::size_t lf = text.find('\n');
    std::string_view line = trim(text.substr(0, lf));
    text.remove_prefix(lf == std::string_view::npos ? text.size() : lf + 1);
    if (line.empty() || line[0] == '#') continue;
    if (line == "}") {
      if (sections.empty()) {
        return invalid(fmt::format("doveconf output line {}: unexpected '}}'", line_no));
      }
      sections.pop_back();
      continue;
    }
    std::size_t eq = line.find(" = ");
    if (eq == std::string_view::npos && line.size() >= 2 && line.substr(line.size() - 2) == " =") {
      eq = line.size() - 2;  // "key =" (empty value)
    }
    if (eq != std::string_view::npos) {
      std::string key = sections.empty() ? std::string() : sections.back();
      key += trim(line.substr(0, eq));
      std::string_view value = eq + 3 <= line.size() ? line.substr(eq + 3) : std::string_view();
      out.emplace_back(std::move(key), unquote_doveconf_value(trim(value)));
      continue;
    }
    if (line.back() == '{') {
      std::string_view head = trim(line.substr(0, line.size() - 1));
      std::string prefix = sections.empty() ? std::string() : sections.back();
      while (!head.empty()) {
        std::size_t sp = head.find(' ');
        prefix += head.substr(0, sp);
        prefix += '/';
        if (sp == std::string_view::npos) break;
        head = trim(head.substr(sp + 1));
      }
      sections.push_back(std::move(prefix));
      continue;
    }
    return invalid(fmt::format("doveconf output line {}: not 'key = value': {}", line_no,
                               sanitize_log_text(line, 200)));
  }
  return out;
}

std::vector<std::string> replicator_settings_in_filters(
    const std::vector<std::pair<std::string, std::string>>& pairs) {
  std::vector<std::string> out;
  for (const auto& [key, value] : pairs) {
    std::size_t slash = key.rfind('/');
    if (slash == std::string::npos || key.compare(0, 7, "plugin/") == 0) continue;
    ReplicatorSettings scratch;
    bool known = false;
    (void)apply_replicator_setting(scratch, key, value, &known);
    if (known) continue;  // read from this filter (protocol/doveadm/ssl_client_ca_*)
    (void)apply_replicator_setting(scratch, std::string_view(key).substr(slash + 1), value, &known);
    if (known) out.push_back(key);
  }
  return out;
}

std::string resolve_base_dir_path(std::string_view base_dir, std::string_view path) {
  if (!path.empty() && path[0] == '/') return std::string(path);
  std::string out(base_dir);
  if (out.empty() || out.back() != '/') out += '/';
  out += path;
  return out;
}

std::string replicator_db_path(const ReplicatorSettings& s) {
  return resolve_base_dir_path(s.state_dir, "replicator.db");
}

}  // namespace drepl
