// replicator/app/config-reader.cc: see config-reader.h.
#include "config-reader.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>

#include <fmt/format.h>

#include "logger.h"
#include "replicator-settings.h"
#include "unique-fd.h"

extern char** environ;

namespace drepl {
namespace {

using Clock = std::chrono::steady_clock;

bool is_socket(const std::string& path) {
  struct stat st;
  return !path.empty() && ::stat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

bool is_file(const std::string& path) {
  struct stat st;
  return !path.empty() && ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

int remaining_ms(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

// The config protocol's value encoding: a newline inside a value is sent as
// SETTING_STREAM_LF_CHAR (0x03).
std::string decode_config_value(std::string_view v) {
  std::string out(v);
  for (char& c : out) {
    if (c == '\x03') c = '\n';
  }
  return out;
}

}  // namespace

ConfigSource config_source_for(const std::string& explicit_config_path) {
  if (!explicit_config_path.empty()) {
    return {ConfigSource::Kind::kDoveconf, explicit_config_path};
  }
  const char* cf = std::getenv("CONFIG_FILE");
  const char* cfs = std::getenv("CONFIG_FILE_SOCKET");
  std::string config_file = cf != nullptr ? cf : "";
  std::string config_socket = cfs != nullptr ? cfs : "";
  if (is_socket(config_file)) return {ConfigSource::Kind::kSocket, config_file};
  // 2.4's config protocol (v3) differs; prefer doveconf on its real file.
  if (is_file(config_file)) return {ConfigSource::Kind::kDoveconf, config_file};
  if (is_socket(config_socket) && config_file.empty()) {
    return {ConfigSource::Kind::kSocket, config_socket};
  }
  return {ConfigSource::Kind::kDoveconf, ""};
}

Result<ConfigPairs> read_config_socket(const std::string& socket_path,
                                       const std::string& service,
                                       std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  UniqueFd sock(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!sock) return syscall_failure("socket", "", errno);
  const int fd = sock.get();

  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof(addr.sun_path)) {
    return make_error(ErrorCode::kTemp, fmt::format("Config socket path too long: {}", socket_path));
  }
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) < 0) {
    return make_error(ErrorCode::kTemp, fmt::format("net_connect_unix({}) failed: {}",
                                                    socket_path, errno_text(errno)));
  }
  std::string request = fmt::format("VERSION\tconfig\t2\t0\nREQ\tservice={}\n", service);
  std::string_view out = request;
  while (!out.empty()) {
    ssize_t n = ::write(fd, out.data(), out.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return make_error(ErrorCode::kTemp, fmt::format("write({}) failed: {}", socket_path,
                                                      errno_text(errno)));
    }
    out.remove_prefix(static_cast<std::size_t>(n));
  }

  std::string buf;
  ConfigPairs pairs;
  bool flags_line_seen = false;
  std::size_t pos = 0;
  for (;;) {
    // Consume complete lines.
    for (;;) {
      std::size_t lf = buf.find('\n', pos);
      if (lf == std::string::npos) break;
      std::string_view line(buf.data() + pos, lf - pos);
      pos = lf + 1;
      if (!flags_line_seen) {
        // The first line lists filter flags ("service=imap\t", "used-local\t"
        // or nothing); it is always sent before the settings.
        flags_line_seen = true;
        continue;
      }
      if (line.empty()) return pairs;  // end of the reply
      if (line.substr(0, 6) == "ERROR ") {
        return make_error(ErrorCode::kTemp,
                          fmt::format("Config server sent an error: {}", line.substr(6)));
      }
      std::size_t eq = line.find('=');
      if (eq == std::string_view::npos) continue;
      pairs.emplace_back(std::string(line.substr(0, eq)), decode_config_value(line.substr(eq + 1)));
    }
    if (pos > 0) {
      buf.erase(0, pos);
      pos = 0;
    }
    pollfd pfd{fd, POLLIN, 0};
    int ms = remaining_ms(deadline);
    if (ms == 0) return make_error(ErrorCode::kTemp, "Config server timed out");
    int r = ::poll(&pfd, 1, ms);
    if (r < 0) {
      if (errno == EINTR) continue;
      return make_error(ErrorCode::kTemp, fmt::format("poll() failed: {}", errno_text(errno)));
    }
    if (r == 0) return make_error(ErrorCode::kTemp, "Config server timed out");
    char chunk[16384];
    ssize_t n = ::read(fd, chunk, sizeof(chunk));
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return make_error(ErrorCode::kTemp, fmt::format("read({}) failed: {}", socket_path,
                                                      errno_text(errno)));
    }
    if (n == 0) return make_error(ErrorCode::kTemp, "Config server disconnected");
    buf.append(chunk, static_cast<std::size_t>(n));
    if (buf.size() > 64u * 1024 * 1024) {
      return make_error(ErrorCode::kTemp, "Config server sent too much data");
    }
  }
}

Result<ConfigPairs> read_config_doveconf(const std::string& config_path,
                                         std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) < 0) return syscall_failure("pipe", "", errno);
  if (::pipe2(err_pipe, O_CLOEXEC) < 0) {
    Error e = syscall_failure("pipe", "", errno);
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    return e;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], STDERR_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);

  std::vector<std::string> args{"doveconf"};
  if (!config_path.empty()) {
    args.push_back("-c");
    args.push_back(config_path);
  }
  args.push_back("-n");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  // Under a 2.3 master CONFIG_FILE names the config socket, which doveconf
  // would try (and fail) to parse as a file: run it without that variable.
  std::vector<std::string> env_store;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view kv(*e);
    if (kv.substr(0, 12) == "CONFIG_FILE=" || kv.substr(0, 19) == "CONFIG_FILE_SOCKET=") continue;
    env_store.emplace_back(kv);
  }
  std::vector<char*> envp;
  for (auto& e : env_store) envp.push_back(e.data());
  envp.push_back(nullptr);

  pid_t pid = -1;
  int rc = ::posix_spawnp(&pid, "doveconf", &actions, nullptr, argv.data(), envp.data());
  if (rc != 0) rc = ::posix_spawn(&pid, "/usr/bin/doveconf", &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (rc != 0) {
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    return make_error(ErrorCode::kTemp, fmt::format("Can't run doveconf: {}", errno_text(rc)));
  }

  std::string out, err;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  int open_count = 2;
  bool timed_out = false;
  while (open_count > 0) {
    int ms = remaining_ms(deadline);
    if (ms == 0) {
      timed_out = true;
      break;
    }
    int r = ::poll(fds, 2, ms);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      timed_out = r == 0;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char chunk[16384];
      ssize_t n = ::read(fds[i].fd, chunk, sizeof(chunk));
      if (n > 0) {
        (i == 0 ? out : err).append(chunk, static_cast<std::size_t>(n));
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_count;
      }
    }
  }
  for (auto& p : fds) {
    if (p.fd >= 0) ::close(p.fd);
  }
  if (timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) return make_error(ErrorCode::kTemp, "doveconf timed out");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string first = err.substr(0, err.find('\n'));
    return make_error(ErrorCode::kTemp,
                      fmt::format("doveconf failed (exit {}): {}",
                                  WIFEXITED(status) ? WEXITSTATUS(status) : -1, first));
  }
  auto parsed = parse_doveconf_output(out);
  if (!parsed) return parsed.error();
  return std::move(parsed.value());
}

std::string parent_config_path() {
  std::ifstream in("/proc/" + std::to_string(::getppid()) + "/cmdline");
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> args;
  std::size_t pos = 0;
  while (pos < all.size()) {
    std::size_t nul = all.find('\0', pos);
    if (nul == std::string::npos) nul = all.size();
    args.push_back(all.substr(pos, nul - pos));
    pos = nul + 1;
  }
  for (std::size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == "-c") return args[i + 1];
  }
  return "";
}

Result<ConfigPairs> read_config(const ConfigSource& source, const std::string& service) {
  if (source.kind == ConfigSource::Kind::kSocket) {
    auto r = read_config_socket(source.path, service, std::chrono::seconds(10));
    if (r) return r;
    // The config service should always answer; if it does not, ask doveconf
    // about the file the master was started with.
    std::string path = parent_config_path();
    log_warning("Reading settings from the config socket {} failed: {}; trying doveconf{}{}",
                source.path, r.error().message, path.empty() ? "" : " -c ", path);
    auto fallback = read_config_doveconf(path, std::chrono::seconds(20));
    if (fallback) return fallback;
    return r.error();
  }
  return read_config_doveconf(source.path, std::chrono::seconds(20));
}

}  // namespace drepl
