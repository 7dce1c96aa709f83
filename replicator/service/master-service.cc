// replicator/service/master-service.cc: see master-service.h.
#include "master-service.h"

#include <fcntl.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "logger.h"

namespace drepl {
namespace {

constexpr int kStatusFd = 5;      // MASTER_STATUS_FD
constexpr int kDeadFd = 6;        // MASTER_DEAD_FD

// The 12 bytes the master reads (struct master_status, identical in 2.3/2.4).
struct WireStatus {
  pid_t pid;
  unsigned uid;
  unsigned available_count;
};
static_assert(sizeof(WireStatus) == 12);

const char* env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : fallback;
}

unsigned env_uint(const char* name, unsigned fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  unsigned long n = std::strtoul(v, &end, 10);
  if (end == v || *end != '\0') return fallback;
  return static_cast<unsigned>(n);
}

bool fd_is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

void set_cloexec(int fd) {
  int flags = ::fcntl(fd, F_GETFD);
  if (flags != -1) ::fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
}

}  // namespace

int master_first_listener_fd(const std::string& dovecot_version) {
  unsigned major = 0, minor = 0;
  if (std::sscanf(dovecot_version.c_str(), "%u.%u", &major, &minor) == 2 &&
      (major > 2 || (major == 2 && minor >= 4))) {
    return 8;
  }
  return 7;
}

std::optional<MasterEnv> master_env_from_environment() {
  if (std::getenv("GENERATION") == nullptr || std::getenv("SOCKET_COUNT") == nullptr) {
    return std::nullopt;
  }
  if (!fd_is_open(kStatusFd)) return std::nullopt;
  MasterEnv env;
  env.service_name = env_or("SERVICE_NAME", "");
  env.dovecot_version = env_or("DOVECOT_VERSION", "");
  env.generation = env_uint("GENERATION", 0);
  env.client_limit = env_uint("CLIENT_LIMIT", 1000);
  if (env.client_limit == 0) env.client_limit = 1000;
  env.config_file = env_or("CONFIG_FILE", "");
  env.config_socket = env_or("CONFIG_FILE_SOCKET", "");
  env.log_debug = *env_or("LOG_DEBUG", "") != '\0';
  unsigned count = env_uint("SOCKET_COUNT", 0);
  int first = master_first_listener_fd(env.dovecot_version);
  for (unsigned i = 0; i < count; ++i) {
    std::string var = "SOCKET" + std::to_string(i) + "_SETTINGS";
    MasterListener l;
    l.fd = first + static_cast<int>(i);
    l.name = env_or(var.c_str(), "");
    // 2.4 may append settings after the name; the name is the first word.
    if (auto tab = l.name.find('\t'); tab != std::string::npos) l.name.resize(tab);
    // A closed one is kept: check_master_listener_fds() reports it.
    if (fd_is_open(l.fd)) set_cloexec(l.fd);
    env.listeners.push_back(std::move(l));
  }
  env.listener_fds = check_master_listener_fds(env);
  set_cloexec(kStatusFd);
  if (fd_is_open(kDeadFd)) set_cloexec(kDeadFd);
  // fd 3 is anvil, fd 4 may be the master's log pipe: not ours to pass on.
  for (int fd = 3; fd <= 4; ++fd) {
    if (fd_is_open(fd)) set_cloexec(fd);
  }
  return env;
}

Status check_master_listener_fds(const MasterEnv& env) {
  for (std::size_t i = 0; i < env.listeners.size(); ++i) {
    const MasterListener& l = env.listeners[i];
    if (fd_is_open(l.fd)) continue;
    // A wrong first fd (2.3: 7, 2.4: 8, from DOVECOT_VERSION) would make
    // listeners vanish without a trace.
    return make_error(
        ErrorCode::kInternal,
        fmt::format("Listener {} (SOCKET{}_SETTINGS) should be fd {}, which is not open "
                    "(SOCKET_COUNT={}, DOVECOT_VERSION={}: listeners start at fd 7 before 2.4, "
                    "at 8 from 2.4)",
                    l.name, i, l.fd, env.listeners.size(),
                    env.dovecot_version.empty() ? "unset" : env.dovecot_version));
  }
  return ok_status();
}

MasterStatus::MasterStatus(asio::io_context& io, const MasterEnv& env,
                           std::function<void()> on_master_dead)
    : io_(io),
      generation_(env.generation),
      client_limit_(env.client_limit),
      on_master_dead_(std::move(on_master_dead)),
      dead_fd_(io),
      retry_timer_(io) {
  int flags = ::fcntl(kStatusFd, F_GETFL);
  if (flags != -1) ::fcntl(kStatusFd, F_SETFL, flags | O_NONBLOCK);
}

MasterStatus::~MasterStatus() {
  asio::error_code ignored;
  if (dead_fd_.is_open()) dead_fd_.release();  // fd 6 stays open until exit
  retry_timer_.cancel();
}

void MasterStatus::start(unsigned available) {
  wanted_ = available;
  write_status();
  watch_dead_fd();
}

void MasterStatus::set_available(unsigned available) {
  wanted_ = available;
  if (sent_ && *sent_ == wanted_) return;
  if (!retry_armed_) write_status();
}

void MasterStatus::write_status() {
  WireStatus st{::getpid(), generation_, wanted_};
  ssize_t n;
  do {
    n = ::write(kStatusFd, &st, sizeof(st));
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(sizeof(st))) {
    sent_ = wanted_;
    return;
  }
  if (n < 0 && errno != EAGAIN) {
    // EPIPE: the master is gone; fd 6 reports that separately.
    if (errno != EPIPE) log_error("write(master status fd) failed: {}", errno_text(errno));
    return;
  }
  // Full pipe (or a short write, which a 12-byte pipe write never is): retry.
  retry_armed_ = true;
  retry_timer_.expires_after(std::chrono::milliseconds(100));
  retry_timer_.async_wait([this](const asio::error_code& ec) {
    retry_armed_ = false;
    if (ec) return;
    if (!sent_ || *sent_ != wanted_) write_status();
  });
}

void MasterStatus::watch_dead_fd() {
  if (!fd_is_open(kDeadFd)) return;
  asio::error_code ec;
  dead_fd_.assign(kDeadFd, ec);
  if (ec) {
    log_error("Can't watch the master-dead fd: {}", ec.message());
    return;
  }
  dead_fd_.async_wait(asio::posix::stream_descriptor::wait_read,
                      [this](const asio::error_code& err) {
                        if (err == asio::error::operation_aborted) return;
                        // Readable = EOF (the master never writes to it).
                        if (!dead_reported_) {
                          dead_reported_ = true;
                          if (on_master_dead_) on_master_dead_();
                        }
                      });
}

}  // namespace drepl
