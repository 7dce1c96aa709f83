// replicator/service/master-service.h: being a child of Dovecot's master process
// without libdovecot (dovecot24-port.md §2.6).
//
// What the master hands us:
//   env SERVICE_NAME, GENERATION (the master "uid" echoed in status
//   updates), CLIENT_LIMIT, SOCKET_COUNT, SOCKET<n>_SETTINGS = listener
//   name (n = 0..SOCKET_COUNT-1), DOVECOT_VERSION, CONFIG_FILE (2.3: the
//   config *socket* path), RESTRICT_SETUID/SETGID/... (privileges to drop);
//   fd 5 = status pipe (we write), fd 6 = "master dead" pipe (EOF when the
//   master dies), listener fds from 7 (2.3) or 8 (2.4), in SOCKET<n> order.
// What we must do: write struct master_status {pid_t pid; unsigned uid;
// unsigned available_count} (12 bytes) to fd 5 within 30 s of start (or the
// master SIGKILLs us), and again whenever available_count changes.
#pragma once

#include <asio/io_context.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/steady_timer.hpp>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "result.h"

namespace drepl {

// One listener passed by the master (or by systemd, systemd-notify.h).
struct MasterListener {
  int fd = -1;
  std::string name;  // SOCKET<n>_SETTINGS, e.g. "replicator-doveadm"
};

struct MasterEnv {
  std::string service_name;     // SERVICE_NAME
  std::string dovecot_version;  // DOVECOT_VERSION, e.g. "2.3.19.1"
  unsigned generation = 0;      // GENERATION
  unsigned client_limit = 1000; // CLIENT_LIMIT (0/absent -> 1000)
  std::string config_file;      // CONFIG_FILE (2.3: config socket; 2.4: file)
  std::string config_socket;    // CONFIG_FILE_SOCKET (2.4 only)
  bool log_debug = false;       // LOG_DEBUG non-empty
  std::vector<MasterListener> listeners;
  // check_master_listener_fds() when the environment was read, before this
  // process opened any fd of its own (which would take a missing
  // listener's number).
  Status listener_fds;
};

// Reads the environment. nullopt when we were not started by a Dovecot
// master (no GENERATION/SOCKET_COUNT, or fd 5 is not open). The listener
// fds are numbered from 7, or from 8 when DOVECOT_VERSION is 2.4 or later;
// every one of the SOCKET_COUNT is listed, open or not, and
// MasterEnv::listener_fds says whether all are open. Call it first thing in
// main(). Marks fds 5, 6 and the listeners close-on-exec.
std::optional<MasterEnv> master_env_from_environment();

// Checks that every listener the master promised (SOCKET<n>_SETTINGS) is an
// open fd now. A missing one means a wrong first fd (DOVECOT_VERSION) or a
// broken master and would leave the daemon deaf on that listener, so the
// caller treats it as fatal. Error (kInternal), one line: "Listener <name>
// (SOCKET<n>_SETTINGS) should be fd <fd>, which is not open
// (SOCKET_COUNT=<n>, DOVECOT_VERSION=<v>: listeners start at fd 7 before
// 2.4, at 8 from 2.4)".
Status check_master_listener_fds(const MasterEnv& env);

// First listener fd for a DOVECOT_VERSION string: 7 for 2.3 and older, 8
// for 2.4 and newer (2.4 inserted MASTER_CONFIG_FD = 7).
int master_first_listener_fd(const std::string& dovecot_version);

// The status pipe (fd 5) and the master-death pipe (fd 6).
class MasterStatus {
 public:
  // on_master_dead runs once, on the loop, when fd 6 reports EOF/error.
  MasterStatus(asio::io_context& io, const MasterEnv& env,
               std::function<void()> on_master_dead);
  ~MasterStatus();
  MasterStatus(const MasterStatus&) = delete;
  MasterStatus& operator=(const MasterStatus&) = delete;

  // Sends the first status (available_count = `available`) and starts
  // watching fd 6.
  void start(unsigned available);
  // Sends a new status when `available` differs from the last one sent.
  // A full pipe (EAGAIN) is retried from a short timer.
  void set_available(unsigned available);
  unsigned client_limit() const { return client_limit_; }

 private:
  void write_status();
  void watch_dead_fd();

  asio::io_context& io_;
  unsigned generation_;
  unsigned client_limit_;
  std::function<void()> on_master_dead_;
  asio::posix::stream_descriptor dead_fd_;
  asio::steady_timer retry_timer_;
  unsigned wanted_ = 0;
  std::optional<unsigned> sent_;
  bool retry_armed_ = false;
  bool dead_reported_ = false;
};

}  // namespace drepl
