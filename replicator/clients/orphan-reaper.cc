// replicator/clients/orphan-reaper.cc: see orphan-reaper.h.
#include "orphan-reaper.h"

#include <fmt/format.h>

#include "logger.h"
#include "peer-process.h"
#include "pidfd.h"

namespace drepl {

std::size_t reap_orphaned_dsyncs(const std::string& socket_path, pid_t protected_pid,
                                 ProcessTerminator& terminator) {
  if (socket_path.empty()) return 0;
  std::string error;
  auto inodes = orphaned_unix_connections(socket_path, &error);
  if (!error.empty()) {
    log_warning("Looking for dsyncs left behind on {}: {}", socket_path, error);
    return 0;
  }
  std::size_t started = 0;
  for (std::uint64_t inode : inodes) {
    auto pid = find_socket_owner(inode, "doveadm");
    if (!pid || *pid <= 1 || *pid == protected_pid) continue;
    auto handle = PidFd::open(*pid);
    if (!handle) {
      log_debug("Orphaned dsync connection on {}: {}", socket_path, handle.error().message);
      continue;
    }
    if (!process_holds_socket(*pid, inode)) continue;  // exited, pid reused
    log_info("Terminating doveadm-server pid {}: it still runs a dsync for a replicator that "
             "is gone (its connection to {} was closed by the client)",
             *pid, socket_path);
    terminator.terminate(std::move(*handle),
                         fmt::format("orphaned doveadm-server pid {} ({})", *pid, socket_path));
    ++started;
  }
  return started;
}

}  // namespace drepl
