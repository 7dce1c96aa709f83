// replicator/clients/dsync-client.h: one dsync run = one connection to the local
// doveadm-server socket (doveadm_socket_path), spec §6.10:
//   -> VERSION\tdoveadm-server\t1\t1\n \tTE(user)\tsync\t<params>[\t-f]\t-s\t<state>\t<dest>\n
//   <- VERSION\tdoveadm-client\t1\tN\n +\n then multiplexed: <state>\t\n +|-CODE\n and log lines
//      (src/sync/dsync-request.h, src/sync/dsync-reply.h)
// Without `connections` every run connects to socket_path anew and closes
// the connection after the reply. With `connections` (dsync-connections.h)
// the run goes to the socket it picks (the dedicated replicator-dsync
// socket, else doveadm_socket_path), takes an idle connection to it when
// there is one (then the VERSION handshake line is left out of `request`,
// no VERSION/"+" handshake is expected and the reply is read in the framing
// the connection's handshake chose), and gives the connection back after a
// "+" reply that ended exactly at a packet/line boundary. A run on a reused
// connection that fails before a usable reply (EOF or write error before
// any byte, or -TEMPFAIL) is run once more on a fresh connection: such a
// failure says nothing about the user. A connect to the dedicated socket
// that fails switches to doveadm_socket_path at once (dsync-connections.h
// logs it).
//
// Timeouts (stock had none, spec §10.15): a run that makes no progress for
// inactivity_timeout_secs (replication_dsync_timeout) is aborted, and any
// run is aborted after overall_timeout_secs. Progress = a reply byte, or
// I/O done by the doveadm-server process serving us (its /proc/<pid>/io
// counters; it is silent on our socket until the end). On expiry that
// process is terminated (below) and the run fails with kTimeout.
//
// Ending the doveadm-server of a run we give up on: the process serving our
// connection is found through peer-process.h (never the master) and a
// pidfd is opened on it at once (pidfd.h); right after opening, the process
// must still hold the peer of our socket, else the pid was reused and the
// handle is dropped. "Killing" it = ProcessTerminator::terminate()
// (process-terminator.h): SIGTERM, SIGKILL after kTerminateGrace (5 s),
// through the pidfd, so a reused pid is never signalled. The error text
// says "; killed doveadm-server pid <pid>" (or "; doveadm-server process
// not found, connection closed"); the SIGKILL, when needed, is logged. Used by
// the timeouts below and by abort().
//
// Handshakes (replication_dsync_handshake_timeout, handshake_timeout_secs):
//  - toward a tcp:/tcps: replica (replica_port != 0): the doveadm-server
//    process serving us connects to the replica itself. When that TCP
//    connection has been established for handshake_timeout_secs and the
//    replica has sent no byte (handshake-watch.h), the process is killed
//    and the run fails with kTimeout, "dsync timed out: no handshake from
//    <replica_name> within <N> s (replication_dsync_handshake_timeout); killed
//    doveadm-server pid <pid>". kTimeout is a destination-down kind: the
//    destination's circuit breaker opens (destination-breaker.h), so the
//    other users of that replica wait for its probe instead of each holding
//    a slot for the bound. Not for remote: (ssh runs in a child process).
//  - toward the local doveadm-server: a new connection that has not brought
//    its "+" within handshake_timeout_secs fails with kLocalDoveadm, "no
//    handshake from doveadm-server <path> within <N> s
//    (replication_dsync_handshake_timeout)" (the process is killed when it
//    was found). Not a destination failure: the breaker is not touched.
//    Once the replica was seen answering, every result of the run carries
//    DsyncResult::replica_answered, and an inactivity timeout says "after
//    <replica_name> answered": the brain does not count it as the
//    destination being down (see brain.h, quick retries).
// While a handshake is awaited the checks run every handshake_timeout / 4
// (at least 100 ms, at most 1 s), else every replication_dsync_timeout / 4
// (1..15 s).
#pragma once

#include <asio/io_context.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/steady_timer.hpp>

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dsync-connections.h"
#include "dsync-reply.h"
#include "handshake-watch.h"
#include "pidfd.h"
#include "process-terminator.h"

namespace drepl {

struct DsyncClientOptions {
  std::string socket_path;                 // absolute doveadm-server socket path
  std::int64_t inactivity_timeout_secs = 600;  // 0 = none
  std::int64_t overall_timeout_secs = 7200;    // 0 = none
  // replication_dsync_handshake_timeout: seconds; 0 = none.
  std::int64_t handshake_timeout_secs = 30;
  // Per run: the port of a tcp:/tcps: replica (0 = not a TCP replica: no
  // replica handshake watch) and its name for the error text
  // ("tcp:10.0.0.2:12345").
  std::uint16_t replica_port = 0;
  std::string replica_name;
  // A failed connect completes only after this delay (stock: 5 s), so that
  // an unreachable doveadm-server does not make the brain spin.
  std::chrono::milliseconds connect_failure_delay{5000};
  // Never signal this pid (the master); 0 = none.
  pid_t protected_pid = 0;
  // Ends the doveadm-server processes we give up on; must outlive the
  // client. Null: the client uses one of its own (SIGTERM is sent at once,
  // but the SIGKILL after the grace period only happens while the client
  // lives - tests only).
  ProcessTerminator* terminator = nullptr;
  // Socket choice and connection reuse; null = socket_path, one connection
  // per run. Must outlive the client.
  DsyncConnections* connections = nullptr;
};

class DsyncClient : public std::enable_shared_from_this<DsyncClient> {
 public:
  using Done = std::function<void(const DsyncResult&)>;

  // `request` is the complete bytes to send on a fresh connection
  // (format_dsync_request(): handshake line + command line).
  DsyncClient(asio::io_context& io, DsyncClientOptions options, std::string request, Done done);
  ~DsyncClient();

  void start();
  // Stops without calling `done` (daemon shutdown, `doveadm replicator
  // remove` of the user) and terminates the doveadm-server running the
  // dsync (SIGTERM, SIGKILL after the grace period; see above): nobody
  // would take its result, and left running it would hold the user's dsync
  // lock (~/.dovecot-sync.lock) so that the next dsync of that user fails
  // with lock_timeout. `why` goes to the log ("daemon shutdown"). Returns
  // the "; killed doveadm-server pid N" / "not found" text.
  std::string abort(std::string_view why = "dsync aborted");

  // The stage as `doveadm replicator dsync-status` shows it.
  std::string status_text() const;
  // The doveadm-server process serving this run, once found.
  std::optional<pid_t> server_pid() const { return server_pid_; }

 private:
  void read_more();
  void arm_check();
  void check_progress();
  // The handshake checks of check_progress(); true when the run failed.
  bool check_handshakes(std::chrono::steady_clock::time_point now);
  // Waiting for the local "+" on a fresh connection, or for the replica's
  // first byte: checks run more often.
  bool handshake_pending() const;
  // Terminates the doveadm-server serving us (locating it first if not
  // yet done); returns the "; killed ..." text. `why` is for the log.
  std::string kill_server(std::string_view why);
  ProcessTerminator& terminator();
  void finish(const DsyncResult& result);
  void fail(SyncErrorKind kind, std::string text);
  void locate_server();
  void connect_fresh();
  void on_connected();
  void send(std::string_view bytes);
  // A reused connection failed before a usable reply: true when a fresh
  // attempt was started instead of finishing.
  bool retry_fresh(const DsyncResult& result);

  asio::io_context& io_;
  DsyncClientOptions options_;
  std::string request_;
  Done done_;
  asio::local::stream_protocol::socket socket_;
  asio::steady_timer check_timer_;
  asio::steady_timer delay_timer_;
  DsyncReplyParser parser_;
  std::vector<char> buf_;
  std::chrono::steady_clock::time_point started_{};
  std::chrono::steady_clock::time_point last_progress_{};
  std::chrono::steady_clock::time_point connected_at_{};  // the current connection
  HandshakeWatch replica_watch_;
  bool connected_ = false;
  bool got_bytes_since_check_ = false;
  bool finished_ = false;
  // The replica sent bytes to the doveadm-server serving us (DsyncResult::replica_answered).
  bool replica_answered_ = false;
  std::optional<pid_t> server_pid_;
  PidFd server_;  // on server_pid_, opened when it was found
  std::unique_ptr<ProcessTerminator> own_terminator_;  // without options_.terminator
  std::optional<std::uint64_t> last_io_;
  unsigned locate_attempts_ = 0;
  std::string path_;         // the socket this run uses
  bool reused_ = false;      // the current connection was taken from the pool
  bool retried_ = false;     // already retried once on a fresh connection
  bool got_any_byte_ = false;  // on the current connection
  unsigned conn_gen_ = 0;    // bumped per connection: late handlers of a closed one are ignored
};

}  // namespace drepl
