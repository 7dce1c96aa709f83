// fuzz/fuzz-doveconf.cc: doveconf output as the replicator reads its settings
// (src/replicator-settings.h), then the settings built from it, including
// mail_replica (src/mail-replica.h), which userdb may also supply per user.
//
// Invariants: errors are one line; an accepted setting is re-applied without
// error; a parsed mail_replica has a display form and a non-zero port for
// tcp:/tcps:.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz-common.h"
#include "mail-replica.h"
#include "replicator-settings.h"

namespace {

using drepl::fuzz::fuzz_check;
using drepl::fuzz::is_one_line;

void check_replica(std::string_view value, std::uint16_t port) {
  auto replica = drepl::parse_mail_replica(value, port);
  if (!replica) {
    fuzz_check(is_one_line(replica.error().message), "mail_replica error not one line");
    return;
  }
  (void)drepl::mail_replica_display(*replica);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text = drepl::fuzz::as_text(data, size);
  auto pairs = drepl::parse_doveconf_output(text);
  if (!pairs) {
    fuzz_check(is_one_line(pairs.error().message), "doveconf error not one line");
  } else {
    for (const auto& [key, value] : *pairs) {
      fuzz_check(key.find('\n') == std::string::npos, "key with LF");
      drepl::ReplicatorSettings settings;
      bool known = false;
      auto st = drepl::apply_replicator_setting(settings, key, value, &known);
      if (!st) {
        fuzz_check(is_one_line(st.error().message), "setting error not one line");
        fuzz_check(known, "error for an unknown (ignored) key");
      } else {
        auto again = drepl::apply_replicator_setting(settings, key, value, &known);
        fuzz_check(again.has_value(), "accepted setting fails the second time");
      }
    }
    auto settings = drepl::replicator_settings_from_pairs(*pairs);
    if (settings) {
      (void)drepl::replicator_db_path(*settings);
      (void)drepl::resolve_base_dir_path(settings->base_dir, settings->auth_socket_path);
      check_replica(settings->mail_replica, settings->doveadm_port);
    } else {
      fuzz_check(is_one_line(settings.error().message), "settings error not one line");
    }
  }
  // The input as a mail_replica value itself (from userdb).
  check_replica(text, 0);
  check_replica(text, 12345);
  return 0;
}
