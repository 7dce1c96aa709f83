// replicator/app/listener-set.h: a daemon's listeners behind one interface,
// wherever they come from:
//   - Dovecot's master: SOCKET<n>_SETTINGS listeners on fds from 7 (2.3) or
//     8 (2.4), each promised fd checked (master-service.h);
//   - systemd socket activation: LISTEN_FDS / LISTEN_FDNAMES from fd 3
//     (systemd-notify.h);
//   - standalone: UNIX sockets, FIFOs and (/metrics only) TCP sockets the
//     daemon creates itself from its command line.
// Inherited listeners are served by their Dovecot listener name; a FIFO fd
// is always read as the plugin's FIFO lines. Every listener that can't be
// taken or opened is an error for the caller to make fatal: a daemon that
// runs without a listener it was given would silently drop that traffic.
#pragma once

#include <asio/io_context.hpp>

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fifo-reader.h"
#include "listener.h"
#include "master-service.h"
#include "notify-sink.h"
#include "result.h"

namespace drepl {

// What a listener serves.
enum class ListenerRole : unsigned char {
  kNotify,   // "replicator": replicator-notify lines (from the aggregator)
  kDoveadm,  // "replicator-doveadm": doveadm replicator ..., NOTIFY
  kPlugin,   // "replication-notify": the plugin's socket lines
  kFifo,     // "replication-notify-fifo": the plugin's FIFO lines
  kMetrics,  // "replicator-metrics": HTTP GET /metrics (docs/metrics.md)
};

// The replicator's role for a Dovecot listener name: the four names above
// (kMetricsListenerName for kMetrics); any other name is kNotify, as stock
// treats unknown replicator listeners.
ListenerRole replicator_listener_role(const std::string& name);

// A listener to create (standalone): `address` is a path (UNIX socket or
// FIFO); for kMetrics a PATH with a '/' or HOST:PORT (parse_listen_address).
struct ListenerWant {
  ListenerRole role = ListenerRole::kNotify;
  std::string address;
};

// Where inherited listeners may come from.
enum class InheritFrom : unsigned char { kMaster, kMasterOrSystemd };

// The listeners this process was given: the master's when `master` is set
// (error: a promised fd was not open, MasterEnv::listener_fds), else with
// kMasterOrSystemd systemd's (error: LISTEN_FDS promised fds that are not
// there). Empty: nothing was passed, the daemon opens its own. Call it in
// main() before anything opens an fd: a new fd would take the number of a
// missing one.
Result<std::vector<MasterListener>> inherited_listeners(const std::optional<MasterEnv>& master,
                                                        InheritFrom from);

class ListenerSet {
 public:
  // Called on the loop for each accepted connection, with the listener's
  // role and name (the Dovecot listener name, or the path / address).
  using AcceptFn =
      std::function<void(ListenerRole role, const std::string& name, StreamListener::Socket)>;

  // FIFO lines go to `fifo_sink`; socket connections to `on_accept`.
  ListenerSet(asio::io_context& io, NotifySink& fifo_sink, AcceptFn on_accept);
  ListenerSet(const ListenerSet&) = delete;
  ListenerSet& operator=(const ListenerSet&) = delete;

  // Takes over inherited listeners: a FIFO fd is a kFifo reader whatever
  // its name; a socket is served as role_for(name), where kFifo becomes
  // kPlugin (a FIFO name on a socket carries socket lines). Error: the
  // first fd that is neither a FIFO nor a listening stream socket
  // (StreamListener::adopt's message).
  Status adopt(const std::vector<MasterListener>& inherited,
               const std::function<ListenerRole(const std::string&)>& role_for);
  // Creates the wanted listeners, mode 0600. Error: the first that fails
  // ("bind(<path>) failed: ...", "mkfifo(<path>) failed: ...",
  // "--listen-metrics: Invalid listen address ...").
  Status open(const std::vector<ListenerWant>& wants);

  // Starts accepting and reading; stop() ends both (idempotent).
  void start();
  void stop();

  std::size_t fifo_count() const { return fifos_.size(); }
  std::size_t socket_count() const { return sockets_.size(); }

 private:
  StreamListener::AcceptFn accept_fn(ListenerRole role, const std::string& name);
  Status open_one(const ListenerWant& want);

  asio::io_context& io_;
  NotifySink& fifo_sink_;
  AcceptFn on_accept_;
  std::vector<std::shared_ptr<StreamListener>> sockets_;
  std::vector<std::shared_ptr<FifoReader>> fifos_;
};

}  // namespace drepl
