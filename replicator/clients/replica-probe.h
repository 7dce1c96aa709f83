// replicator/clients/replica-probe.h: checks that a replica is reachable the
// way its transport needs it, without running a dsync.
//
// Used by the brain (brain.h) twice:
//  - before a circuit-breaker trial (destination-breaker.h): a destination
//    that is still down fails here, with the reason, and no dsync (no
//    doveadm-server process, no ssh, no slot held for a dsync timeout) is
//    spent on it;
//  - after a dsync failed without a specific reason: on 2.3 a doveadm-server
//    (or ssh) that cannot reach the replica logs its error to Dovecot's log
//    and we only see EOF / exit 255, so the probe says what is wrong.
//
// What each transport is probed with (ProbeTransport):
//  - tcp:host:port       TCP connect.
//  - tcps:host:port      TCP connect + TLS handshake (OpenSSL), verifying the
//                        certificate chain against ssl_client_ca_file /
//                        ssl_client_ca_dir (the settings doveadm's client side
//                        uses; both empty: OpenSSL's default paths) and the
//                        name: the host of mail_replica must be in the
//                        certificate (subjectAltName DNS, or IP for an
//                        address), as doveadm checks it. doveadm verifies
//                        unconditionally, so does the probe.
//  - remote:/remoteprefix: TCP connect to the ssh port (the "-p N" / "-o
//                        Port=N" of dsync_remote_cmd, default 22) and read
//                        the server's identification line "SSH-2.0-...".
//                        A plain banner read, not libssh: the banner is all
//                        we need to tell "sshd is up" from "down/firewalled"
//                        (authentication is dsync's ssh's job, with the
//                        admin's key, known_hosts and ssh_config, which a
//                        library would not share), and one line of text is
//                        not worth a new library dependency.
//
// Failures (ReplicaProbeResult::kind, all of them "destination down" for the
// circuit breaker, sync_error_is_destination_down(), except kProtocol):
//   kHostNotFound    the host name does not resolve
//                    "DNS lookup of <host> failed: <resolver error>"
//   kConnectRefused  refused, unreachable, no TCP answer within the timeout,
//                    or (ssh) closed before the banner
//                    "connect(<host>:<port>) failed: Connection refused"
//                    "ssh: <host>:<port> closed the connection before its banner"
//   kTlsVerifyFailed the TLS handshake failed: certificate not trusted by
//                    the CA settings, or not for this host name (OpenSSL's
//                    verify text), or no TLS at all on the port
//                    "TLS handshake with <host>:<port> failed: certificate verify
//                     failed: unable to get local issuer certificate"
//                    "... certificate verify failed: hostname mismatch (expected <host>)"
//   kTimeout         connected, but no TLS handshake / ssh banner within
//                    the timeout (a hung or wrong service)
//                    "TLS handshake with <host>:<port> failed: no answer within 3000 ms"
//                    "ssh: no banner from <host>:<port> within 3000 ms"
//                    "... within 3000 ms (it sent: '* OK Dovecot ready.')" (lines
//                    before the banner are allowed, RFC 4253 4.2: ssh waits too)
//   kProtocol        the port answers, but not as expected - not "down" (the
//                    brain lets the trial dsync run and tell):
//                    (ssh) other lines, then the connection closed (or more
//                    than 8 KiB without a banner)
//                    "ssh: <host>:<port> sent no ssh banner: '<line>'"
//                    (tls) the server sent a TLS alert although its certificate
//                    passed our checks: it most likely wants a client certificate
//                    (ssl_client_cert), which the probe does not send (TLS 1.2;
//                    with TLS 1.3 that check comes after the handshake, which then
//                    succeeds)
//                    "TLS handshake with <host>:<port> failed: the server refused
//                     it: sslv3 alert handshake failure (SSL routines)"
// Error texts are one line, sanitized (safe to log and show in status).
#pragma once

#include <asio/io_context.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "mail-replica.h"
#include "sync-error.h"

namespace drepl {

enum class ProbeTransport : unsigned char {
  kTcp,  // tcp: TCP connect
  kTls,  // tcps: TCP connect + verified TLS handshake
  kSsh,  // remote:/remoteprefix: TCP connect + ssh identification line
};

// "tcp", "tls" or "ssh" (logs, metrics).
std::string_view probe_transport_to_string(ProbeTransport transport);

// The CA settings a tcps: probe verifies the replica's certificate with.
// Dovecot's ssl_client_ca_file / ssl_client_ca_dir (2.3 and 2.4 use the same
// names, at top level): a PEM file of trusted CAs, and an OpenSSL hashed CA
// directory (c_rehash). Either, both, or neither (then OpenSSL's default
// verify paths, as Dovecot's ssl-iostream does for a client context).
// A leading '<' (Dovecot's "read the file" syntax) is ignored.
struct ProbeTlsSettings {
  std::string ca_file;
  std::string ca_dir;
};

struct ReplicaProbeTarget {
  ProbeTransport transport = ProbeTransport::kTcp;
  std::string host;        // name or address (IPv6 without brackets)
  std::uint16_t port = 0;  // the doveadm port (tcp/tls) or the ssh port
};

// What to probe for mail_replica `replica`: tcp:/tcps: with their port (none
// when the port is 0, i.e. unknown); remote:/remoteprefix: the ssh port
// `ssh_port` (none when 0: dsync_remote_cmd is not a plain ssh, so we do not
// know where it connects); other kinds (local paths): none.
std::optional<ReplicaProbeTarget> replica_probe_target(const MailReplica& replica,
                                                       std::uint16_t ssh_port);

struct ReplicaProbeResult {
  bool reachable = false;
  SyncErrorKind kind = SyncErrorKind::kNone;  // kNone when reachable; see above
  std::string error;                          // empty when reachable; see above
  std::string banner;  // kSsh, reachable: the server's identification line (sanitized)
};

// Probes `target`: resolves, connects and (kTls) handshakes / (kSsh) reads
// the banner, then closes. `timeout` bounds all of it together
// (milliseconds; the brain passes whole seconds). `done` runs exactly once,
// from `io`'s loop (never inside this call), unless `io` is stopped first.
// `tls` is only used for kTls.
void probe_replica(asio::io_context& io, const ReplicaProbeTarget& target,
                   const ProbeTlsSettings& tls, std::chrono::milliseconds timeout,
                   std::function<void(ReplicaProbeResult)> done);

}  // namespace drepl
