// fuzz/fuzz-doveadm-command.cc: the replicator-doveadm protocol as the
// replicator reads it from `doveadm replicator ...` and from the replica's
// dsync (src/doveadm-protocol.h, src/doveadm-detail.h): the client's VERSION
// line, command lines, and, on the client side, the STATUS and STATUS-DETAIL
// reply rows our doveadm commands parse.
//
// Invariants: errors are one line, and the error reply built from them is one
// "-...\n" line; accepted commands carry the non-empty mask/user they promise.
#include <cstddef>
#include <cstdint>
#include <string>
#include <variant>

#include "doveadm-detail.h"
#include "doveadm-protocol.h"
#include "fuzz-common.h"
#include "version-line.h"

namespace {

using drepl::fuzz::fuzz_check;
using drepl::fuzz::is_one_line;

void check_error(const drepl::Error& error, const char* what) {
  fuzz_check(is_one_line(error.message), what);
  std::string reply = drepl::format_error_reply(error.message);
  fuzz_check(reply.size() >= 2 && reply.front() == '-' && reply.back() == '\n',
             "error reply shape");
  fuzz_check(is_one_line(std::string_view(reply).substr(0, reply.size() - 1)),
             "error reply not one line");
}

struct CommandCheck {
  void operator()(const drepl::StatusOverviewCommand&) const {}
  void operator()(const drepl::StatusUsersCommand&) const {}
  void operator()(const drepl::StatusDsyncCommand&) const {}
  void operator()(const drepl::ReplicateCommand& c) const {
    fuzz_check(!c.mask.empty(), "REPLICATE with an empty mask");
    if (c.priority) {
      fuzz_check(drepl::priority_to_string(*c.priority) == c.priority_word,
                 "REPLICATE priority word mismatch");
    }
  }
  void operator()(const drepl::AddCommand& c) const {
    fuzz_check(!c.mask.empty(), "ADD with an empty mask");
  }
  void operator()(const drepl::RemoveCommand& c) const {
    fuzz_check(!c.username.empty(), "REMOVE with an empty user");
  }
  void operator()(const drepl::NotifyCommand& c) const {
    fuzz_check(!c.username.empty(), "NOTIFY with an empty user");
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  bool first = true;
  drepl::fuzz::for_each_line(drepl::fuzz::as_text(data, size), [&](std::string_view line) {
    if (first) {
      first = false;
      auto st = drepl::check_doveadm_client_handshake(line);
      if (!st) check_error(st.error(), "handshake error not one line");
      auto v = drepl::verify_version_line(line, "replicator-doveadm-server", 1);
      if (!v) check_error(v.error(), "version error not one line");
    }
    if (auto detail = drepl::parse_status_detail_command(line)) {
      fuzz_check(!detail->mask.empty(), "STATUS-DETAIL with an empty mask");
    } else {
      auto cmd = drepl::parse_doveadm_command(line);
      if (cmd) {
        std::visit(CommandCheck{}, *cmd);
      } else {
        check_error(cmd.error(), "command error not one line");
      }
    }
    auto row = drepl::parse_user_status_line(line);
    if (!row) check_error(row.error(), "status row error not one line");
    auto drow = drepl::parse_status_detail_line(line);
    if (!drow) check_error(drow.error(), "detail row error not one line");
  });
  return 0;
}
