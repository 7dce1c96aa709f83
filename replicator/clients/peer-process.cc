// replicator/clients/peer-process.cc: see peer-process.h.
#include "peer-process.h"

#include "unique-fd.h"

#include <dirent.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string_view>

namespace drepl {
namespace {

bool all_digits(const char* s) {
  if (*s == '\0') return false;
  for (; *s != '\0'; ++s) {
    if (*s < '0' || *s > '9') return false;
  }
  return true;
}

}  // namespace

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
