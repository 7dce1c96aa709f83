// src/sync/mail-replica.h: the mail_replica setting (global, or per user from
// userdb), i.e. where `doveadm sync` replicates to (spec §3.1, §3.4, §7.2):
//   tcp:host[:port]            doveadm-server over TCP
//   tcps:host[:port]           the same with TLS
//   remote:[login@]host        ssh through dsync_remote_cmd
//   remoteprefix:[login@]host  the same, writing "user\n" first
//   anything else              a local mail location (e.g. "maildir:~/Maildir")
// Hosts may be "[ipv6]" with a port, or a bare IPv6 address without one.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "result.h"

namespace drepl {

enum class ReplicaKind : unsigned char { kTcp, kTcps, kRemote, kRemotePrefix, kLocal };

struct MailReplica {
  ReplicaKind kind = ReplicaKind::kLocal;
  std::string host;       // kTcp/kTcps/kRemote/kRemotePrefix; brackets removed
  std::uint16_t port = 0;  // kTcp/kTcps only (explicit or doveadm_port)
  std::string login;      // kRemote/kRemotePrefix: part before '@', may be empty
  std::string location;   // kLocal: the whole value
  // True for kTcp/kTcps: host/port allow a cheap TCP connect probe.
  bool is_tcp() const { return kind == ReplicaKind::kTcp || kind == ReplicaKind::kTcps; }
};

// Parses a non-empty mail_replica value. doveadm_port (0 = unset) is the
// default port for tcp:/tcps: without ":port". Errors (kInvalid):
//   "mail_replica is empty"
//   "Port not known for <target>. Either set proxy_port or use <target>:port"
//      (stock doveadm's text; <target> is the value after "tcp:"/"tcps:")
//   "Invalid port in mail_replica: <value>"
//   "Missing host in mail_replica: <value>"
//   "Invalid host in mail_replica: <value>"    "[" without "]"
Result<MailReplica> parse_mail_replica(std::string_view value, std::uint16_t doveadm_port);

// `value` with the port made explicit: a tcp:/tcps: mail_replica without
// ":port" gets ":<doveadm_port>" ("[addr]:port" for a bare IPv6 address).
// Everything else (other kinds, an explicit port, doveadm_port 0, values
// that do not parse) is returned unchanged. The replicator sends this as
// dsync's destination, so that a doveadm-server run with doveadm_port=0
// (service replicator-dsync) reaches the same port the admin's would.
//   ("tcp:b", 12345) -> "tcp:b:12345"   ("tcps:b:4", 12345) -> "tcps:b:4"
std::string mail_replica_with_port(std::string_view value, std::uint16_t doveadm_port);

// Short safe text for logs and status ("tcp:host:port", "remote:host", "local").
std::string mail_replica_display(const MailReplica& replica);

}  // namespace drepl
