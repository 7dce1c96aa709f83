// replicator/systemd-notify.cc: see systemd-notify.h.
#include "systemd-notify.h"

#include <fcntl.h>
#include <systemd/sd-daemon.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include <fmt/format.h>

#include "logger.h"

namespace drepl {

Result<std::vector<MasterListener>> systemd_listeners() {
  const char* promised = std::getenv("LISTEN_FDS");
  std::string promised_text = promised != nullptr ? promised : "";
  char** names = nullptr;
  int n = ::sd_listen_fds_with_names(1, &names);
  std::vector<MasterListener> out;
  if (n < 0) {
    return make_error(ErrorCode::kInternal,
                      fmt::format("Can't take the sockets systemd passed (LISTEN_FDS={}): {}",
                                  promised_text, std::strerror(-n)));
  }
  for (int i = 0; i < n; ++i) {
    int fd = SD_LISTEN_FDS_START + i;
    ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    out.push_back({fd, names != nullptr && names[i] != nullptr ? names[i] : "unknown"});
  }
  if (names != nullptr) {
    for (int i = 0; i < n; ++i) std::free(names[i]);
    std::free(names);
  }
  return out;
}

SystemdNotifier::SystemdNotifier(asio::io_context& io, std::function<std::string()> status)
    : io_(io), status_(std::move(status)), timer_(io) {
  const char* sock = std::getenv("NOTIFY_SOCKET");
  enabled_ = sock != nullptr && *sock != '\0';
  std::uint64_t usec = 0;
  if (enabled_ && ::sd_watchdog_enabled(0, &usec) > 0) watchdog_ = std::chrono::microseconds(usec);
}

SystemdNotifier::~SystemdNotifier() = default;

void SystemdNotifier::send(const std::string& message) {
  int r = ::sd_notify(0, message.c_str());
  if (r < 0) log_warning("sd_notify({}) failed: {}", message.substr(0, message.find('=')),
                         std::strerror(-r));
}

void SystemdNotifier::ready(std::chrono::milliseconds status_interval) {
  if (!enabled_) return;
  interval_ = status_interval;
  if (watchdog_.count() > 0) {
    auto half = std::chrono::duration_cast<std::chrono::milliseconds>(watchdog_ / 2);
    if (half.count() < 1) half = std::chrono::milliseconds(1);
    if (half < interval_) interval_ = half;
  }
  last_status_ = status_ ? status_() : std::string();
  send("READY=1\nSTATUS=" + last_status_);
  log_debug("systemd: READY=1 sent (status every {} ms, watchdog {} us)", interval_.count(),
            watchdog_.count());
  arm();
}

void SystemdNotifier::reloading() {
  if (!enabled_ || stopped_) return;
  send("RELOADING=1\nSTATUS=Reloading settings");
  last_status_.clear();
}

void SystemdNotifier::reloaded() {
  if (!enabled_ || stopped_) return;
  last_status_ = status_ ? status_() : std::string();
  send("READY=1\nSTATUS=" + last_status_);
}

void SystemdNotifier::stopping() {
  if (!enabled_ || stopped_) return;
  stopped_ = true;
  timer_.cancel();
  send("STOPPING=1\nSTATUS=Stopping");
}

void SystemdNotifier::arm() {
  timer_.expires_after(interval_);
  timer_.async_wait([this](const asio::error_code& ec) {
    if (ec || stopped_) return;
    tick();
    arm();
  });
}

void SystemdNotifier::tick() {
  std::string message;
  if (watchdog_.count() > 0) message = "WATCHDOG=1";
  std::string status = status_ ? status_() : std::string();
  if (status != last_status_) {
    if (!message.empty()) message += '\n';
    message += "STATUS=" + status;
    last_status_ = std::move(status);
  }
  if (!message.empty()) send(message);
}

}  // namespace drepl
