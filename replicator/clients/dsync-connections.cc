// replicator/clients/dsync-connections.cc: see dsync-connections.h.
#include "dsync-connections.h"

#include <sys/socket.h>
#include <sys/stat.h>

#include <cerrno>

#include "logger.h"

namespace drepl {
namespace {

bool is_socket(const std::string& path) {
  struct stat st {};
  return !path.empty() && ::stat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

// An idle connection is usable when nothing is readable on it: no EOF
// (the server closed it) and no stray bytes.
bool still_idle(DsyncConnections::Socket& socket) {
  if (!socket.is_open()) return false;
  char c;
  ssize_t n = ::recv(socket.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

}  // namespace

DsyncConnections::DsyncConnections(asio::io_context& io, const MillisClock& clock,
                                   DsyncConnectionsOptions options,
                                   DsyncConnectionCounters* counters)
    : io_(io),
      clock_(clock),
      options_(std::move(options)),
      counters_(counters),
      pool_(options_.max_idle, options_.max_idle_ms),
      expiry_timer_(io) {}

DsyncConnections::~DsyncConnections() { close_all(); }

void DsyncConnections::reconfigure(DsyncConnectionsOptions options) {
  options_ = std::move(options);
  pool_.clear();
  pool_.set_limits(options_.max_idle, options_.max_idle_ms);
}

void DsyncConnections::set_fallback(bool on, const std::string& why) {
  if (on == fallback_) return;
  fallback_ = on;
  if (counters_) counters_->socket_fallback = on;
  if (on) {
    pool_.clear();
    log_warning(
        "dsync: {}: sending dsync requests to {} instead, one doveadm process and "
        "connection per sync (several times more CPU per sync). Fix: add the "
        "`service replicator-dsync` of dovecot-replicator's conf.d snippet (man "
        "replicator) and reload Dovecot, or set replication_dsync_socket_path",
        why, options_.doveadm_socket);
  } else {
    log_info("dsync: {} is available again: dsync requests go there", options_.dsync_socket);
  }
}

std::string DsyncConnections::socket_for_next_sync() {
  const std::string& dedicated = options_.dsync_socket;
  if (dedicated.empty() || dedicated == options_.doveadm_socket) return options_.doveadm_socket;
  if (!is_socket(dedicated)) {
    set_fallback(true, dedicated + " (replication_dsync_socket_path) does not exist");
    return options_.doveadm_socket;
  }
  // It refused lately: try it again only after a while (not once per sync).
  if (fallback_ && clock_.now_ms() < retry_dedicated_at_) return options_.doveadm_socket;
  return dedicated;
}

bool DsyncConnections::reusable(const std::string& path) const {
  return !path.empty() && path == options_.dsync_socket && path != options_.doveadm_socket;
}

std::optional<std::string> DsyncConnections::connect_failed(const std::string& path,
                                                            const std::string& error) {
  if (!reusable(path)) return std::nullopt;
  retry_dedicated_at_ = clock_.now_ms() + kRetryDedicatedMs;
  set_fallback(true, error);
  return options_.doveadm_socket;
}

void DsyncConnections::connected(const std::string& path) {
  if (reusable(path)) set_fallback(false, "");
}

std::optional<DsyncConnections::Socket> DsyncConnections::take(const std::string& path) {
  if (!reusable(path)) return std::nullopt;
  for (;;) {
    auto s = pool_.take(path, clock_.now_ms());
    if (!s) return std::nullopt;
    if (still_idle(*s)) return s;
    log_debug("dsync: an idle connection to {} was closed by doveadm-server; not reused", path);
  }
}

void DsyncConnections::give_back(const std::string& path, Socket socket) {
  if (!reusable(path) || fallback_ || !socket.is_open()) return;  // closed by the destructor
  if (pool_.give_back(path, std::move(socket), clock_.now_ms())) arm_expiry();
}

void DsyncConnections::close_all() {
  pool_.clear();
  asio::error_code ignored;
  expiry_timer_.cancel();
  timer_armed_ = false;
}

void DsyncConnections::arm_expiry() {
  if (timer_armed_) return;
  auto at = pool_.next_expiry();
  if (!at) return;
  timer_armed_ = true;
  Millis wait = std::max<Millis>(*at - clock_.now_ms(), 0) + 1;
  expiry_timer_.expires_after(std::chrono::milliseconds(wait));
  expiry_timer_.async_wait([this](const asio::error_code& ec) {
    if (ec) return;
    timer_armed_ = false;
    pool_.expire(clock_.now_ms());
    arm_expiry();
  });
}

void DsyncConnections::count_opened() {
  if (counters_) ++counters_->opened;
}
void DsyncConnections::count_reused() {
  if (counters_) ++counters_->reused;
}
void DsyncConnections::count_retry() {
  if (counters_) ++counters_->reuse_retries;
}

}  // namespace drepl
