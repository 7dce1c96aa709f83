// replicator/clients/peer-process.cc: see peer-process.h.
#include "peer-process.h"

#include "syscall-error.h"
#include "unique-fd.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <sys/socket.h>
#include <sys/stat.h>
// struct tcp_info with tcpi_bytes_received (glibc's netinet/tcp.h may lack it)
#include <linux/tcp.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace drepl {
namespace {

bool all_digits(const char* s) {
  if (*s == '\0') return false;
  for (; *s != '\0'; ++s) {
    if (*s < '0' || *s > '9') return false;
  }
  return true;
}

// Socket inodes among /proc/<pid>/fd.
std::unordered_set<std::uint64_t> socket_inodes(pid_t pid) {
  std::unordered_set<std::uint64_t> out;
  std::string base = "/proc/" + std::to_string(pid) + "/fd";
  DIR* fds = ::opendir(base.c_str());
  if (fds == nullptr) return out;
  char target[64];
  constexpr std::string_view kPrefix = "socket:[";
  while (dirent* fe = ::readdir(fds)) {
    if (!all_digits(fe->d_name)) continue;
    std::string link = base + "/" + fe->d_name;
    ssize_t len = ::readlink(link.c_str(), target, sizeof(target) - 1);
    if (len <= 0) continue;
    std::string_view t(target, static_cast<std::size_t>(len));
    if (t.substr(0, kPrefix.size()) != kPrefix || t.back() != ']') continue;
    t.remove_prefix(kPrefix.size());
    t.remove_suffix(1);
    std::uint64_t ino = 0;
    bool okay = !t.empty();
    for (char c : t) {
      if (c < '0' || c > '9') {
        okay = false;
        break;
      }
      ino = ino * 10 + static_cast<std::uint64_t>(c - '0');
    }
    if (okay) out.insert(ino);
  }
  ::closedir(fds);
  return out;
}

constexpr unsigned char kTcpEstablished = 1;  // TCP_ESTABLISHED (include/net/tcp_states.h)

// Dumps the TCP sockets of `family` whose destination port is `port` and
// calls `each` for every one. `filter`: let the kernel select the port
// (else every TCP socket is returned and selected here). False when the
// dump failed.
template <typename Fn>
bool dump_tcp_by_dport(int family, std::uint16_t port, bool filter, Fn each) {
  UniqueFd nl(::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
  if (nl.get() < 0) return false;
  // Bytecode "dport == port" (as ss builds it): on a match jump to the end
  // (accept), else jump past it (reject).
  struct {
    inet_diag_bc_op eq;
    inet_diag_bc_op value;
  } bc{};
  bc.eq.code = INET_DIAG_BC_D_EQ;
  bc.eq.yes = sizeof(bc);
  bc.eq.no = sizeof(bc) + 4;
  bc.value.no = port;
  struct {
    nlmsghdr nlh;
    inet_diag_req_v2 req;
    rtattr rta;
    decltype(bc) code;
  } msg{};
  static_assert(sizeof(msg) == NLMSG_LENGTH(sizeof(inet_diag_req_v2)) + RTA_LENGTH(sizeof(bc)));
  msg.nlh.nlmsg_len = filter ? sizeof(msg) : NLMSG_LENGTH(sizeof(inet_diag_req_v2));
  msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  msg.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  msg.req.sdiag_family = static_cast<__u8>(family);
  msg.req.sdiag_protocol = IPPROTO_TCP;
  msg.req.idiag_states = ~0u;
  msg.req.idiag_ext = 1u << (INET_DIAG_INFO - 1);
  msg.rta.rta_type = INET_DIAG_REQ_BYTECODE;
  msg.rta.rta_len = RTA_LENGTH(sizeof(bc));
  msg.code = bc;

  sockaddr_nl nladdr{};
  nladdr.nl_family = AF_NETLINK;
  if (::sendto(nl.get(), &msg, msg.nlh.nlmsg_len, 0, reinterpret_cast<sockaddr*>(&nladdr),
               sizeof(nladdr)) < 0) {
    return false;
  }
  std::vector<std::uint64_t> storage(8192);  // 64 KiB, aligned for nlmsghdr
  char* buf = reinterpret_cast<char*>(storage.data());
  const std::size_t buf_size = storage.size() * sizeof(std::uint64_t);
  for (;;) {
    ssize_t n = ::recv(nl.get(), buf, buf_size, 0);
    if (n <= 0) return false;
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, static_cast<unsigned>(n));
         h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_type == NLMSG_DONE) return true;
      if (h->nlmsg_type == NLMSG_ERROR) return false;
      if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY) continue;
      auto* diag = static_cast<inet_diag_msg*>(NLMSG_DATA(h));
      TcpConnSample sample;
      sample.inode = diag->idiag_inode;
      sample.established = diag->idiag_state == kTcpEstablished;
      int len = static_cast<int>(h->nlmsg_len - NLMSG_LENGTH(sizeof(*diag)));
      for (auto* attr = reinterpret_cast<rtattr*>(diag + 1); RTA_OK(attr, len);
           attr = RTA_NEXT(attr, len)) {
        if (attr->rta_type != INET_DIAG_INFO) continue;
        // Older kernels send a shorter tcp_info: read only what is there.
        tcp_info info{};
        std::memcpy(&info, RTA_DATA(attr), std::min<std::size_t>(RTA_PAYLOAD(attr), sizeof(info)));
        if (RTA_PAYLOAD(attr) >= offsetof(tcp_info, tcpi_bytes_received) + sizeof(__u64)) {
          sample.bytes_received = info.tcpi_bytes_received;
        }
      }
      if (ntohs(diag->id.idiag_dport) == port) each(sample);
    }
  }
}

}  // namespace

std::optional<TcpConnSample> process_tcp_connection(pid_t pid, std::uint16_t remote_port) {
  auto inodes = socket_inodes(pid);
  if (inodes.empty()) return std::nullopt;
  std::optional<TcpConnSample> found;
  auto take = [&](const TcpConnSample& s) {
    if (s.inode == 0 || inodes.count(s.inode) == 0) return;
    if (!found || s.inode > found->inode) found = s;
  };
  for (int family : {AF_INET, AF_INET6}) {
    // A kernel without INET_DIAG_BC_D_EQ (< 4.6?) rejects the filter.
    if (!dump_tcp_by_dport(family, remote_port, true, take)) {
      dump_tcp_by_dport(family, remote_port, false, take);
    }
  }
  return found;
}

std::optional<std::uint64_t> unix_peer_inode(int fd) {
  struct stat st;
  if (::fstat(fd, &st) < 0) return std::nullopt;
  UniqueFd nl(::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
  if (nl.get() < 0) return std::nullopt;

  struct {
    nlmsghdr nlh;
    unix_diag_req req;
  } msg{};
  msg.nlh.nlmsg_len = sizeof(msg);
  msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  msg.nlh.nlmsg_flags = NLM_F_REQUEST;
  msg.req.sdiag_family = AF_UNIX;
  msg.req.udiag_states = ~0u;
  msg.req.udiag_ino = static_cast<__u32>(st.st_ino);
  msg.req.udiag_show = UDIAG_SHOW_PEER;
  msg.req.udiag_cookie[0] = ~0u;  // INET_DIAG_NOCOOKIE
  msg.req.udiag_cookie[1] = ~0u;

  sockaddr_nl nladdr{};
  nladdr.nl_family = AF_NETLINK;
  if (::sendto(nl.get(), &msg, sizeof(msg), 0, reinterpret_cast<sockaddr*>(&nladdr),
               sizeof(nladdr)) < 0) {
    return std::nullopt;
  }
  alignas(nlmsghdr) char buf[8192];
  ssize_t n = ::recv(nl.get(), buf, sizeof(buf), 0);
  if (n <= 0) return std::nullopt;
  for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, static_cast<unsigned>(n));
       h = NLMSG_NEXT(h, n)) {
    if (h->nlmsg_type == NLMSG_ERROR || h->nlmsg_type == NLMSG_DONE) return std::nullopt;
    if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY) continue;
    auto* diag = static_cast<unix_diag_msg*>(NLMSG_DATA(h));
    int len = static_cast<int>(h->nlmsg_len - NLMSG_LENGTH(sizeof(*diag)));
    for (auto* attr = reinterpret_cast<rtattr*>(diag + 1); RTA_OK(attr, len);
         attr = RTA_NEXT(attr, len)) {
      if (attr->rta_type == UNIX_DIAG_PEER && RTA_PAYLOAD(attr) >= sizeof(__u32)) {
        __u32 peer;
        std::memcpy(&peer, RTA_DATA(attr), sizeof(peer));
        if (peer != 0) return peer;
      }
    }
  }
  return std::nullopt;
}

std::optional<pid_t> find_socket_owner(std::uint64_t inode, const std::string& comm_prefix) {
  const std::string want = "socket:[" + std::to_string(inode) + "]";
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return std::nullopt;
  std::optional<pid_t> found;
  pid_t self = ::getpid();
  while (dirent* de = ::readdir(proc)) {
    if (!all_digits(de->d_name)) continue;
    pid_t pid = static_cast<pid_t>(std::atol(de->d_name));
    if (pid == self) continue;
    std::string base = std::string("/proc/") + de->d_name;
    if (!comm_prefix.empty()) {
      std::ifstream comm(base + "/comm");
      std::string name;
      if (!std::getline(comm, name) || name.compare(0, comm_prefix.size(), comm_prefix) != 0) {
        continue;
      }
    }
    DIR* fds = ::opendir((base + "/fd").c_str());
    if (fds == nullptr) continue;
    char target[64];
    while (dirent* fe = ::readdir(fds)) {
      if (!all_digits(fe->d_name)) continue;
      std::string link = base + "/fd/" + fe->d_name;
      ssize_t len = ::readlink(link.c_str(), target, sizeof(target) - 1);
      if (len <= 0) continue;
      if (std::string_view(target, static_cast<std::size_t>(len)) == want) {
        found = pid;
        break;
      }
    }
    ::closedir(fds);
    if (found) break;
  }
  ::closedir(proc);
  return found;
}

bool process_holds_socket(pid_t pid, std::uint64_t inode) {
  return socket_inodes(pid).count(inode) != 0;
}

std::vector<std::uint64_t> orphaned_unix_connections(const std::string& listener_path,
                                                     std::string* error) {
  std::vector<std::uint64_t> out;
  auto fail = [&](const char* call) {
    if (error != nullptr) *error = syscall_error(call, "NETLINK_SOCK_DIAG", errno);
    return std::vector<std::uint64_t>{};
  };
  UniqueFd nl(::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
  if (nl.get() < 0) return fail("socket");
  struct {
    nlmsghdr nlh;
    unix_diag_req req;
  } msg{};
  msg.nlh.nlmsg_len = sizeof(msg);
  msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  msg.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  msg.req.sdiag_family = AF_UNIX;
  msg.req.udiag_states = 1u << kTcpEstablished;  // connected sockets only
  msg.req.udiag_show = UDIAG_SHOW_NAME | UDIAG_SHOW_PEER;
  sockaddr_nl nladdr{};
  nladdr.nl_family = AF_NETLINK;
  if (::sendto(nl.get(), &msg, sizeof(msg), 0, reinterpret_cast<sockaddr*>(&nladdr),
               sizeof(nladdr)) < 0) {
    return fail("sendto");
  }
  std::vector<std::uint64_t> storage(8192);  // 64 KiB, aligned for nlmsghdr
  char* buf = reinterpret_cast<char*>(storage.data());
  const std::size_t buf_size = storage.size() * sizeof(std::uint64_t);
  for (;;) {
    ssize_t n = ::recv(nl.get(), buf, buf_size, 0);
    if (n < 0) return fail("recv");
    if (n == 0) return out;
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, static_cast<unsigned>(n));
         h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_type == NLMSG_DONE) return out;
      if (h->nlmsg_type == NLMSG_ERROR) {
        auto* err = static_cast<nlmsgerr*>(NLMSG_DATA(h));
        errno = -err->error;
        return fail("recv");
      }
      if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY) continue;
      auto* diag = static_cast<unix_diag_msg*>(NLMSG_DATA(h));
      if (diag->udiag_type != SOCK_STREAM || diag->udiag_state != kTcpEstablished) continue;
      int len = static_cast<int>(h->nlmsg_len - NLMSG_LENGTH(sizeof(*diag)));
      bool name_matches = false;
      std::uint32_t peer = 0;
      for (auto* attr = reinterpret_cast<rtattr*>(diag + 1); RTA_OK(attr, len);
           attr = RTA_NEXT(attr, len)) {
        if (attr->rta_type == UNIX_DIAG_NAME) {
          std::string_view name(static_cast<const char*>(RTA_DATA(attr)), RTA_PAYLOAD(attr));
          while (!name.empty() && name.back() == '\0') name.remove_suffix(1);
          name_matches = name == listener_path;
        } else if (attr->rta_type == UNIX_DIAG_PEER && RTA_PAYLOAD(attr) >= sizeof(__u32)) {
          std::memcpy(&peer, RTA_DATA(attr), sizeof(peer));
        }
      }
      if (name_matches && peer == 0) out.push_back(diag->udiag_ino);
    }
  }
}

std::optional<std::uint64_t> process_io_bytes(pid_t pid) {
  std::ifstream io("/proc/" + std::to_string(pid) + "/io");
  if (!io) return std::nullopt;
  std::string key;
  std::uint64_t value = 0, total = 0;
  bool any = false;
  while (io >> key >> value) {
    if (key == "rchar:" || key == "wchar:") {
      total += value;
      any = true;
    }
  }
  if (!any) return std::nullopt;
  return total;
}

bool process_exists(pid_t pid) {
  struct stat st;
  return ::stat(("/proc/" + std::to_string(pid)).c_str(), &st) == 0;
}

}  // namespace drepl
