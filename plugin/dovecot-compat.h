// plugin/dovecot-compat.h: the only place that knows which Dovecot version
// the plugin is built against (dovecot24-port.md §2). Everything else in
// plugin/ calls these helpers.
//
// Include this header LAST, after all C++ and src/ headers: Dovecot's headers
// define macros (likely, unlikely, MIN, MAX, TRUE, FALSE, ...) that must not
// leak into the standard library headers. Needs -DHAVE_CONFIG_H and a gnu++
// dialect (the headers use typeof).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

extern "C" {
#include "lib.h"
#include "ioloop.h"
#include "mail-namespace.h"
#include "mail-storage-hooks.h"
#include "mail-storage-private.h"
#include "mail-user.h"
#include "module-context.h"
#include "notify-plugin.h"
}

#if DOVECOT_VERSION_MAJOR > 2 || (DOVECOT_VERSION_MAJOR == 2 && DOVECOT_VERSION_MINOR >= 4)
#define DREPL_DOVECOT_24 1
#else
#define DREPL_DOVECOT_24 0
#endif

#if DREPL_DOVECOT_24
extern "C" {
#include "settings.h"
#include "replication-settings.h"  // settings/: the tables the settings module registers
}
#endif

namespace drepl::plugin {

// The plugin's settings for one mail user. Empty / unset = default.
struct RawUserSettings {
  std::string mail_replica;              // mail_replica
  // 2.3: replication_sync_timeout as configured (a bare number is seconds);
  // parsed by the caller.
  std::string replication_sync_timeout;
  // 2.4: replication_sync_timeout already parsed by Dovecot (SET_TIME_MSECS).
  std::optional<std::uint64_t> replication_sync_timeout_ms;
  bool noreplicate = false;              // noreplicate (2.4 only; see below)
  std::string error;                     // the settings could not be read
};

#if !DREPL_DOVECOT_24

// 2.3: plugin { } section or userdb extra fields, both through
// mail_user_plugin_getenv(). noreplicate stays false: like the stock 2.3
// plugin we notify anyway, and the replicator skips the user.
inline RawUserSettings read_user_settings(struct mail_user* user) {
  RawUserSettings set;
  if (const char* v = mail_user_plugin_getenv(user, "mail_replica"); v != nullptr) {
    set.mail_replica = v;
  }
  if (const char* v = mail_user_plugin_getenv(user, "replication_sync_timeout"); v != nullptr) {
    set.replication_sync_timeout = v;
  }
  return set;
}

// 2.3: notify_unregister(struct notify_context *).
inline void notify_unregister_compat(struct notify_context** ctx) {
  if (*ctx != nullptr) notify_unregister(*ctx);
  *ctx = nullptr;
}

#else  // 2.4

// 2.4: typed settings registered by modules/settings/libreplication_settings.so
// (settings/replication-settings.c), looked up per user through the user's
// event, so a userdb field of the same name overrides the global value. The
// settings_get() macro does not compile as C++ (void* -> const void**, int
// flags): call the function itself, its name in parentheses.
inline RawUserSettings read_user_settings(struct mail_user* user) {
  RawUserSettings out;
  const struct replication_settings* set = nullptr;
  const char* error = nullptr;
  if ((settings_get)(user->event, &replication_setting_parser_info,
                     static_cast<enum settings_get_flags>(0), __FILE__, __LINE__,
                     reinterpret_cast<const void**>(&set), &error) < 0) {
    out.error = error != nullptr ? error : "settings_get() failed";
    return out;
  }
  out.mail_replica = set->mail_replica != nullptr ? set->mail_replica : "";
  out.replication_sync_timeout_ms = set->replication_sync_timeout;
  out.noreplicate = set->noreplicate;
  settings_free(set);
  return out;
}

// 2.4: notify_unregister(struct notify_context **).
inline void notify_unregister_compat(struct notify_context** ctx) {
  if (*ctx != nullptr) notify_unregister(ctx);
  *ctx = nullptr;
}

#endif

// mail_user::base_dir ($base_dir), unchanged in 2.4.
inline const char* user_base_dir(struct mail_user* user) { return user->set->base_dir; }

// mail_user::dsyncing: set by doveadm for sync/backup/dsync-server users,
// after mail_user_created has run (so it must be read at notification time).
inline bool user_dsyncing(const struct mail_user* user) { return user->dsyncing; }

// MAILBOX_TRANSACTION_FLAG_SYNC: the transaction applies changes from the
// other replica (dsync).
inline bool transaction_is_sync(const struct mailbox_transaction_context* t) {
  return (t->flags & MAILBOX_TRANSACTION_FLAG_SYNC) != 0;
}

}  // namespace drepl::plugin
