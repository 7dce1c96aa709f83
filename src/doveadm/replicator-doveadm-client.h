// src/doveadm/replicator-doveadm-client.h: the client side of the replicator-doveadm protocol
// (spec §8.1), as `doveadm replicator ...` uses it: connect, VERSION
// handshake, then one request and its reply lines.
//
//   connect    <path> containing '/': UNIX stream socket;
//              otherwise "host:port" or "[v6addr]:port" over TCP (doveadm_connect())
//   client  -> VERSION\treplicator-doveadm-client\t1\t0\n
//   server  -> VERSION\treplicator-doveadm-server\t1\t<minor>\n   (within 5 s)
//   then the caller's request (format_doveadm_request()) and reply lines.
//
// Blocking from the caller's view, but every step polls against a deadline
// taken from the injected clock; no signals (stock uses alarm()). Lines end at
// LF; one CR before it is stripped (Dovecot's line reader).
// Not thread-safe; one request at a time.
// (Not named doveadm-client.h: Dovecot 2.4 installs a header of that name,
// which would shadow this one in doveadm-cmds/, which sees both directories.)
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "line-reader.h"
#include "millis-clock.h"
#include "result.h"

namespace drepl {

struct ReplicatorDoveadmClientOptions {
  // TCP connect deadline, ms (stock: a 30 s alarm). A UNIX socket whose
  // listener backlog is full is retried until this deadline too.
  Millis connect_timeout_ms = 30'000;
  // Wait for the server's VERSION line, ms (stock: alarm(5)).
  Millis handshake_timeout_ms = 5'000;
  // Longest silence while sending a request or waiting for a reply line, ms;
  // 0 = wait forever (stock). The default outlasts a wildcard ADD's userdb
  // listing (auth-master waits up to 155 s).
  Millis reply_timeout_ms = 300'000;
  // Longest accepted reply line, bytes (without LF).
  std::size_t max_line_bytes = 1024 * 1024;
};

class ReplicatorDoveadmClient {
 public:
  // Connects to `socket_path` (the doveadm `-a` value). Errors (kTemp), in
  // Dovecot's shape: "net_connect_unix(<path>) failed: <strerror>",
  // "connect(<host:port>) failed: <strerror>", "connect(<host:port>) timed out",
  // "Port not known for <target>" / "Invalid address <target>: <gai error>"
  // (kInvalid for the last two).
  static Result<ReplicatorDoveadmClient> connect(const std::string& socket_path, const MillisClock& clock,
                                       const ReplicatorDoveadmClientOptions& options = {});
  // Adopts an already connected stream socket (tests: one end of a
  // socketpair); takes ownership of `fd`, sets it non-blocking. `name` is
  // used in messages like the socket path.
  static ReplicatorDoveadmClient adopt(int fd, std::string name, const MillisClock& clock,
                             const ReplicatorDoveadmClientOptions& options = {});

  ReplicatorDoveadmClient(ReplicatorDoveadmClient&& other) noexcept;
  ReplicatorDoveadmClient& operator=(ReplicatorDoveadmClient&& other) noexcept;
  ReplicatorDoveadmClient(const ReplicatorDoveadmClient&) = delete;
  ReplicatorDoveadmClient& operator=(const ReplicatorDoveadmClient&) = delete;
  ~ReplicatorDoveadmClient();  // closes the socket

  // Sends the client VERSION line and checks the server's one as Dovecot's
  // version_string_verify(line, "replicator-doveadm-server", 1) does.
  // Errors, stock texts:
  //   kTemp    "<name> disconnected" (EOF), "read(<name>) timed out",
  //            "read(<name>) failed: <strerror>", "write(<name>) failed: ..."
  //   kInvalid "<name> not a compatible replicator-doveadm socket"
  Status handshake();

  // Writes all of `bytes` (a request line with its LF).
  // Errors (kTemp): "write(<name>) failed: <strerror>", "write(<name>) timed out".
  Status send(std::string_view bytes);

  // The next reply line (without LF), or nullopt at EOF (a partial last line
  // is dropped, as Dovecot does). Errors: kTemp "read(<name>) failed: ...",
  // "read(<name>) timed out"; kInvalid "read(<name>) failed: Line too long".
  Result<std::optional<std::string>> read_line();

  // The path or host:port given to connect() (or adopt()'s name).
  const std::string& name() const { return name_; }

 private:
  ReplicatorDoveadmClient(int fd, std::string name, const MillisClock& clock,
                const ReplicatorDoveadmClientOptions& options);
  // Waits for `events` until `deadline_ms` (0 = no deadline). 1 ready, 0
  // timeout, -1 error (errno set).
  int wait(short events, Millis deadline_ms);
  Millis deadline_after(Millis timeout_ms) const;
  // Reads until a line, EOF or `deadline_ms` (0 = none); with
  // extend_on_data the deadline restarts at every received chunk.
  Result<std::optional<std::string>> read_line_until(Millis deadline_ms, bool extend_on_data);

  int fd_ = -1;
  std::string name_;
  const MillisClock* clock_;
  ReplicatorDoveadmClientOptions options_;
  LineReader reader_;
  bool eof_ = false;
};

}  // namespace drepl
