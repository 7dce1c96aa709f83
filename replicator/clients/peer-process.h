// replicator/clients/peer-process.h: which process is on the other end of a UNIX
// socket we connected, and whether it still does I/O.
//
// SO_PEERCRED does not help for a socket we connected to a master-owned
// listener: it reports whoever called listen(), i.e. Dovecot's master
// (verified on 2.3.19.1). Instead we ask the kernel for the peer socket's
// inode (NETLINK_SOCK_DIAG, UNIX_DIAG_PEER) and look for the process that
// holds that inode among /proc/<pid>/fd. Needs root (we are).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

namespace drepl {

// The inode of the socket connected to our socket `fd`, or nullopt.
std::optional<std::uint64_t> unix_peer_inode(int fd);

// The pid of a process (other than us) that has socket inode `inode` open,
// looking only at processes whose /proc/<pid>/comm starts with
// `comm_prefix` (empty = all). nullopt when none.
std::optional<pid_t> find_socket_owner(std::uint64_t inode, const std::string& comm_prefix);

// Bytes read + written by `pid` so far (/proc/<pid>/io rchar + wchar), or
// nullopt when unreadable / gone. Used as a progress signal for a dsync.
std::optional<std::uint64_t> process_io_bytes(pid_t pid);

// True while /proc/<pid> exists.
bool process_exists(pid_t pid);

}  // namespace drepl
