// replicator/service/service-runtime.h: what both modes share around the event
// loop: the master status pipe (available_count = client_limit - clients),
// master-death detection, and SIGTERM/SIGINT/SIGQUIT -> orderly shutdown.
#pragma once

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "listener.h"
#include "master-service.h"

namespace drepl {

class ServiceRuntime {
 public:
  // `on_shutdown(reason)` runs once on the loop when a stop signal arrives
  // or the master dies; it must eventually make io.run() return.
  ServiceRuntime(asio::io_context& io, std::optional<MasterEnv> master,
                 std::function<void(const std::string& reason)> on_shutdown);
  ~ServiceRuntime();

  // Sends the first master status and starts watching signals / fd 6.
  void start();
  ClientCounter& clients() { return clients_; }
  bool under_master() const { return master_status_ != nullptr; }
  const std::optional<MasterEnv>& master_env() const { return master_env_; }
  // Extra permanent "clients" (the aggregator's FIFO counts as one).
  void set_extra_clients(unsigned n);

 private:
  void update_status();
  void trigger(const std::string& reason);

  asio::io_context& io_;
  std::optional<MasterEnv> master_env_;
  std::function<void(const std::string&)> on_shutdown_;
  std::unique_ptr<MasterStatus> master_status_;
  asio::signal_set signals_;
  ClientCounter clients_;
  unsigned extra_clients_ = 0;
  bool triggered_ = false;
};

// Runs `io` until it is stopped, then leaves the process with _exit(0)
// (everything must be saved by then): destructors are skipped because
// pending handlers still own connections whose client tokens point into
// objects destroyed before the io_context.
//
// Exceptions: none on the data path. Errors are values (Result, Asio's
// error_code overloads); what still throws is a bug or exhaustion
// (std::bad_alloc, std::length_error from CompactString, Asio's
// std::system_error when a thread can't be created near vsz_limit). Such an
// exception is not caught: the handler that threw may have left an
// invariant half-updated (a dsync slot never released), so the daemon
// crashes loudly (abort_on_uncaught_exception) and the master or systemd
// starts a fresh one from replicator.db and its journal.
[[noreturn]] void run_until_stopped_then_exit(asio::io_context& io);

// Installs the process's std::terminate handler: one Fatal line
// "Internal error: uncaught exception <type>: <what()> - aborting" (framed
// for the log service under the master), then abort() (a core dump with the
// throwing frame on the stack: nothing catches on the way up). Call once
// after log_init().
void abort_on_uncaught_exception();

}  // namespace drepl
