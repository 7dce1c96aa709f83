// replicator/systemd-notify.h: running as a systemd service
// (dovecot-replicator.service, Type=notify) instead of a Dovecot child.
//
// Two things systemd hands a service, both through libsystemd:
//  - socket activation (sd_listen_fds_with_names(3)): LISTEN_PID,
//    LISTEN_FDS and LISTEN_FDNAMES; fds from 3 (SD_LISTEN_FDS_START), each
//    named by its .socket unit's FileDescriptorName=, which is the Dovecot
//    listener name ("replicator", "replicator-doveadm", "replication-notify",
//    "replication-notify-fifo", "replicator-metrics"). They are served
//    exactly like the listeners Dovecot's master passes.
//  - the notify protocol (sd_notify(3)) on $NOTIFY_SOCKET: READY=1 once the
//    listeners serve, STATUS=<queue depth and syncs in flight> (what
//    `systemctl status` shows), WATCHDOG=1 every half of $WATCHDOG_USEC
//    (WatchdogSec=), RELOADING=1 / READY=1 around a SIGHUP reload and
//    STOPPING=1 on shutdown.
// Without NOTIFY_SOCKET (under Dovecot's master, tests) every call is a
// no-op.
#pragma once

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "master-service.h"
#include "result.h"

namespace drepl {

// The listeners systemd passed (socket activation), in fd order, named by
// FileDescriptorName= ("unknown" when a .socket unit sets none). Empty when
// the process was not socket-activated (no LISTEN_FDS, or LISTEN_PID is
// another process). Removes LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES from the
// environment and marks the fds close-on-exec, so dsync children inherit
// neither. Error (kInternal), when LISTEN_FDS promises fds that are not
// there or is malformed: "Can't take the sockets systemd passed
// (LISTEN_FDS=<n>): <reason>".
Result<std::vector<MasterListener>> systemd_listeners();

class SystemdNotifier {
 public:
  // `status` renders the STATUS= text (one line, no newline); it is called
  // on the loop at ready() and then every status interval.
  SystemdNotifier(asio::io_context& io, std::function<std::string()> status);
  ~SystemdNotifier();
  SystemdNotifier(const SystemdNotifier&) = delete;
  SystemdNotifier& operator=(const SystemdNotifier&) = delete;

  // True when $NOTIFY_SOCKET is set (we run under systemd, Type=notify).
  bool enabled() const { return enabled_; }
  // The watchdog interval systemd asked for (WATCHDOG_USEC), 0 = none.
  std::chrono::microseconds watchdog_interval() const { return watchdog_; }

  // Sends READY=1 with the first STATUS= and starts the periodic updates:
  // every `status_interval`, or half the watchdog interval when that is
  // shorter, STATUS= (when its text changed) and WATCHDOG=1 (when the
  // watchdog is enabled).
  void ready(std::chrono::milliseconds status_interval = std::chrono::seconds(5));
  // RELOADING=1 (before re-reading settings) and READY=1 (after).
  void reloading();
  void reloaded();
  // STOPPING=1 and no further updates.
  void stopping();

 private:
  void send(const std::string& message);
  void arm();
  void tick();

  asio::io_context& io_;
  std::function<std::string()> status_;
  asio::steady_timer timer_;
  bool enabled_ = false;
  bool stopped_ = false;
  std::chrono::microseconds watchdog_{0};
  std::chrono::milliseconds interval_{5000};
  std::string last_status_;
};

}  // namespace drepl
