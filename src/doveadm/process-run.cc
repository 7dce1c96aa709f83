// src/process-run.cc: see process-run.h.
#include "process-run.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fmt/format.h>

extern char** environ;

namespace drepl {
namespace {

constexpr std::size_t kMaxErrBytes = 64 * 1024;

struct Pipe {
  int fd[2] = {-1, -1};
  ~Pipe() {
    for (int f : fd) if (f >= 0) ::close(f);
  }
};

}  // namespace

Result<ProcessOutput> run_process(const std::vector<std::string>& argv, std::size_t max_out_bytes,
                                  int timeout_ms) {
  const std::string& prog = argv.at(0);
  Pipe out, err;
  if (::pipe2(out.fd, O_CLOEXEC) < 0 || ::pipe2(err.fd, O_CLOEXEC) < 0) {
    return make_error(ErrorCode::kTemp, fmt::format("pipe() failed: {}", std::strerror(errno)));
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out.fd[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err.fd[1], 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = prog.find('/') == std::string::npos
               ? ::posix_spawnp(&pid, prog.c_str(), &fa, nullptr, args.data(), environ)
               : ::posix_spawn(&pid, prog.c_str(), &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    return make_error(ErrorCode::kTemp, fmt::format("spawn({}) failed: {}", prog, std::strerror(rc)));
  }
  ::close(out.fd[1]);
  out.fd[1] = -1;
  ::close(err.fd[1]);
  err.fd[1] = -1;

  ProcessOutput result;
  std::string failure;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  bool out_open = true, err_open = true;
  char buf[65536];
  while ((out_open || err_open) && failure.empty()) {
    pollfd fds[2];
    nfds_t n = 0;
    if (out_open) fds[n++] = {out.fd[0], POLLIN, 0};
    if (err_open) fds[n++] = {err.fd[0], POLLIN, 0};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) {
      failure = fmt::format("{} timed out after {} ms", prog, timeout_ms);
      break;
    }
    int pr = ::poll(fds, n, static_cast<int>(left));
    if (pr < 0 && errno != EINTR) {
      failure = fmt::format("poll() failed: {}", std::strerror(errno));
      break;
    }
    for (nfds_t i = 0; i < n; ++i) {
      if (fds[i].revents == 0) continue;
      const bool is_out = fds[i].fd == out.fd[0];
      ssize_t r = ::read(fds[i].fd, buf, sizeof(buf));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) {
        (is_out ? out_open : err_open) = false;
        continue;
      }
      std::string& dst = is_out ? result.out : result.err;
      std::size_t limit = is_out ? max_out_bytes : kMaxErrBytes;
      if (dst.size() + static_cast<std::size_t>(r) > limit) {
        if (is_out) {
          failure = fmt::format("{} wrote more than {} bytes", prog, max_out_bytes);
          break;
        }
        dst.append(buf, limit - dst.size());
      } else {
        dst.append(buf, static_cast<std::size_t>(r));
      }
    }
  }
  if (!failure.empty()) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!failure.empty()) return make_error(ErrorCode::kTemp, failure);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

}  // namespace drepl
