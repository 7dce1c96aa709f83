// replicator/service/privileges.cc: see privileges.h.
#include "privileges.h"

#include <grp.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "logger.h"

namespace drepl {
namespace {

Error sys_error(std::string_view what, std::string_view arg) {
  return syscall_failure(what, arg, errno, ErrorCode::kInternal);
}

bool parse_id(const char* text, unsigned long* id_r) {
  if (text == nullptr || *text == '\0') return false;
  char* end = nullptr;
  errno = 0;
  unsigned long v = std::strtoul(text, &end, 10);
  if (errno != 0 || *end != '\0') return false;
  *id_r = v;
  return true;
}

}  // namespace

Status drop_privileges_from_env() {
  const char* chroot_dir = std::getenv("RESTRICT_CHROOT");
  const char* gid_text = std::getenv("RESTRICT_SETGID");
  const char* groups_text = std::getenv("RESTRICT_SETEXTRAGROUPS");
  const char* uid_text = std::getenv("RESTRICT_SETUID");

  unsigned long gid = 0, uid = 0;
  bool have_gid = parse_id(gid_text, &gid);
  bool have_uid = parse_id(uid_text, &uid);
  if (gid_text != nullptr && *gid_text != '\0' && !have_gid) {
    return make_error(ErrorCode::kInternal, fmt::format("Invalid RESTRICT_SETGID: {}", gid_text));
  }
  if (uid_text != nullptr && *uid_text != '\0' && !have_uid) {
    return make_error(ErrorCode::kInternal, fmt::format("Invalid RESTRICT_SETUID: {}", uid_text));
  }

  if (chroot_dir != nullptr && *chroot_dir != '\0') {
    if (::chroot(chroot_dir) < 0) return sys_error("chroot", chroot_dir);
    if (::chdir("/") < 0) return sys_error("chdir", "/");
  }

  if (have_gid && ::getuid() == 0) {
    std::vector<gid_t> groups{static_cast<gid_t>(gid)};
    if (groups_text != nullptr) {
      std::string list(groups_text);
      for (char& c : list) {
        if (c == ',') c = ' ';
      }
      std::size_t pos = 0;
      while (pos < list.size()) {
        std::size_t end = list.find(' ', pos);
        if (end == std::string::npos) end = list.size();
        std::string word = list.substr(pos, end - pos);
        unsigned long extra = 0;
        if (!word.empty() && parse_id(word.c_str(), &extra)) {
          groups.push_back(static_cast<gid_t>(extra));
        }
        pos = end + 1;
      }
    }
    if (::setgroups(groups.size(), groups.data()) < 0) return sys_error("setgroups", gid_text);
    if (::setgid(static_cast<gid_t>(gid)) < 0) return sys_error("setgid", gid_text);
  }
  if (have_uid && ::getuid() != uid) {
    if (::setuid(static_cast<uid_t>(uid)) < 0) return sys_error("setuid", uid_text);
    // Make sure root can't be regained.
    if (uid != 0 && ::setuid(0) == 0) {
      return make_error(ErrorCode::kInternal, "setuid(0) succeeded after dropping privileges");
    }
  }
  for (const char* name : {"RESTRICT_CHROOT", "RESTRICT_SETGID", "RESTRICT_SETEXTRAGROUPS",
                           "RESTRICT_SETUID", "RESTRICT_SETGID_PRIV", "RESTRICT_GID_FIRST",
                           "RESTRICT_GID_LAST"}) {
    ::unsetenv(name);
  }
  return ok_status();
}

}  // namespace drepl
