#include "mail-replica.h"

#include <charconv>

#include <fmt/format.h>

#include "log-line.h"

namespace drepl {
namespace {

constexpr std::size_t kQuoteMax = 200;

std::string quote(std::string_view text) { return sanitize_log_text(text, kQuoteMax); }

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// Dovecot net_str2port(): 1..65535, digits only.
bool parse_port(std::string_view s, std::uint16_t* port) {
  unsigned v = 0;
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v == 0 || v > 65535) return false;
  *port = static_cast<std::uint16_t>(v);
  return true;
}

// Dovecot net_str2hostport(): "host", "host:port", "[ipv6]", "[ipv6]:port",
// or a bare IPv6 address (more than one ':') without port.
Status parse_tcp_target(std::string_view value, std::string_view target,
                        std::uint16_t default_port, MailReplica* r) {
  std::string_view host, port_str;
  bool has_port = false;
  if (starts_with(target, "[")) {
    std::size_t close = target.find(']');
    if (close == std::string_view::npos) {
      return invalid("Invalid host in mail_replica: " + quote(value));
    }
    host = target.substr(1, close - 1);
    std::string_view rest = target.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return invalid("Invalid port in mail_replica: " + quote(value));
      port_str = rest.substr(1);
      has_port = true;
    }
  } else {
    std::size_t colon = target.find(':');
    if (colon == std::string_view::npos ||
        target.find(':', colon + 1) != std::string_view::npos) {
      host = target;
    } else {
      host = target.substr(0, colon);
      port_str = target.substr(colon + 1);
      has_port = true;
    }
  }
  if (host.empty()) return invalid("Missing host in mail_replica: " + quote(value));
  r->host = std::string(host);
  if (has_port) {
    if (!parse_port(port_str, &r->port)) {
      return invalid("Invalid port in mail_replica: " + quote(value));
    }
  } else if (default_port != 0) {
    r->port = default_port;
  } else {
    std::string t = quote(target);
    return invalid(
        fmt::format("Port not known for {}. Either set proxy_port or use {}:port", t, t));
  }
  return ok_status();
}

}  // namespace

Result<MailReplica> parse_mail_replica(std::string_view value, std::uint16_t doveadm_port) {
  if (value.empty()) return invalid("mail_replica is empty");
  MailReplica r;
  struct Prefix {
    std::string_view text;
    ReplicaKind kind;
  };
  // remoteprefix: before remote: (the latter is a prefix of nothing else,
  // but keep the longer one first for clarity).
  static constexpr Prefix kPrefixes[] = {
      {"tcps:", ReplicaKind::kTcps},
      {"tcp:", ReplicaKind::kTcp},
      {"remoteprefix:", ReplicaKind::kRemotePrefix},
      {"remote:", ReplicaKind::kRemote},
  };
  for (const auto& p : kPrefixes) {
    if (!starts_with(value, p.text)) continue;
    r.kind = p.kind;
    std::string_view target = value.substr(p.text.size());
    if (r.is_tcp()) {
      if (Status st = parse_tcp_target(value, target, doveadm_port, &r); !st) return st.error();
    } else {
      std::size_t at = target.find('@');
      if (at != std::string_view::npos) {
        r.login = std::string(target.substr(0, at));
        target.remove_prefix(at + 1);
      }
      if (target.empty()) return invalid("Missing host in mail_replica: " + quote(value));
      r.host = std::string(target);
    }
    return r;
  }
  r.kind = ReplicaKind::kLocal;
  r.location = std::string(value);
  return r;
}

std::string mail_replica_display(const MailReplica& r) {
  auto host = [&] {
    return r.host.find(':') != std::string::npos ? "[" + r.host + "]" : r.host;
  };
  switch (r.kind) {
    case ReplicaKind::kTcp: return fmt::format("tcp:{}:{}", host(), r.port);
    case ReplicaKind::kTcps: return fmt::format("tcps:{}:{}", host(), r.port);
    case ReplicaKind::kRemote: return "remote:" + r.host;
    case ReplicaKind::kRemotePrefix: return "remoteprefix:" + r.host;
    case ReplicaKind::kLocal: return "local";
  }
  return "local";
}

std::string mail_replica_with_port(std::string_view value, std::uint16_t doveadm_port) {
  if (doveadm_port == 0) return std::string(value);
  auto explicit_port = parse_mail_replica(value, 0);
  if (explicit_port) return std::string(value);  // has its port (or is not tcp)
  auto with_default = parse_mail_replica(value, doveadm_port);
  if (!with_default || !with_default->is_tcp()) return std::string(value);
  std::string_view prefix = with_default->kind == ReplicaKind::kTcps ? "tcps:" : "tcp:";
  std::string_view target = value.substr(prefix.size());
  bool bare_ipv6 = target.find(':') != std::string_view::npos && !starts_with(target, "[");
  return fmt::format("{}{}{}{}:{}", prefix, bare_ipv6 ? "[" : "", target, bare_ipv6 ? "]" : "",
                     doveadm_port);
}

}  // namespace drepl
