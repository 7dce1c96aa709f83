// fuzz/fuzz-auth-master.cc: the auth-master server's replies as the
// replicator reads them while listing users and looking one up
// (src/auth-master.h), and the userdb fields it takes from a USER reply.
//
// Invariants: errors are one line and bounded (at most 1 KiB); reading the
// replication fields of a USER reply never crashes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <variant>

#include "auth-master.h"
#include "fuzz-common.h"
#include "mail-replica.h"

namespace {

using drepl::fuzz::fuzz_check;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  drepl::fuzz::for_each_line(drepl::fuzz::as_text(data, size), [](std::string_view line) {
    auto reply = drepl::parse_auth_master_line(line);
    if (!reply) {
      fuzz_check(drepl::fuzz::is_one_line(reply.error().message), "error not one line");
      fuzz_check(reply.error().message.size() <= 1024, "error text unbounded");
      return;
    }
    if (const auto* user = std::get_if<drepl::AuthUserReply>(&*reply)) {
      drepl::UserdbReplication repl = drepl::userdb_replication_fields(*user);
      if (!repl.mail_replica.empty()) (void)drepl::parse_mail_replica(repl.mail_replica, 0);
      for (const auto& [key, value] : user->fields) {
        (void)drepl::userdb_flag_is_true(value);
        (void)drepl::auth_user_field(*user, key);
      }
    }
  });
  return 0;
}
