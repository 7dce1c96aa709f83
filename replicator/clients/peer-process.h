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
#include <vector>

namespace drepl {

// The inode of the socket connected to our socket `fd`, or nullopt.
std::optional<std::uint64_t> unix_peer_inode(int fd);

// The pid of a process (other than us) that has socket inode `inode` open,
// looking only at processes whose /proc/<pid>/comm starts with
// `comm_prefix` (empty = all). nullopt when none.
std::optional<pid_t> find_socket_owner(std::uint64_t inode, const std::string& comm_prefix);

// True while `pid` has socket inode `inode` open (/proc/<pid>/fd). Used
// right after opening a pidfd on a pid found by find_socket_owner(): the
// pid was not reused meanwhile when it still holds our socket.
bool process_holds_socket(pid_t pid, std::uint64_t inode);

// The inodes of the server ends of connections accepted on the listening
// UNIX socket bound at `listener_path` whose client end has been closed
// (NETLINK_SOCK_DIAG dump of AF_UNIX: same UNIX_DIAG_NAME as the listener,
// connected, UNIX_DIAG_PEER 0 - the kernel reports the inode of a closed
// peer as 0). A doveadm-server still holding one runs a command for a
// client that is gone: after a kill -9 of the replicator, the dsync it
// had asked for (orphan-reaper.h). Empty when there is none or the dump
// failed (`error` then says why, when given).
std::vector<std::uint64_t> orphaned_unix_connections(const std::string& listener_path,
                                                     std::string* error = nullptr);

// Bytes read + written by `pid` so far (/proc/<pid>/io rchar + wchar), or
// nullopt when unreadable / gone. Used as a progress signal for a dsync.
std::optional<std::uint64_t> process_io_bytes(pid_t pid);

// True while /proc/<pid> exists.
bool process_exists(pid_t pid);

// One TCP connection of a process, as the kernel sees it.
struct TcpConnSample {
  std::uint64_t inode = 0;
  bool established = false;          // TCP_ESTABLISHED (else SYN_SENT etc.)
  std::uint64_t bytes_received = 0;  // tcp_info.tcpi_bytes_received (payload)
};

// The TCP connection (IPv4 or IPv6) to remote port `remote_port` that
// `pid` holds open, found through NETLINK_SOCK_DIAG (INET_DIAG_INFO, the
// kernel filtering on the port) and matched by inode against
// /proc/<pid>/fd. Used to see whether a replica's doveadm-server has sent
// its handshake to the doveadm-server process serving our dsync. With more
// than one such connection the newest (highest inode) is returned. nullopt
// when there is none or the lookup failed (no error detail: the caller
// only stops watching).
std::optional<TcpConnSample> process_tcp_connection(pid_t pid, std::uint16_t remote_port);

}  // namespace drepl
