// plugin/dovecot-compat.h: the only place that knows which Dovecot version
// the plugin is built against (dovecot24-port.md §2). Everything else in
// plugin/ calls these helpers.
//
// Include this header LAST, after all C++ and src/ headers: Dovecot's headers
// define macros (likely, unlikely, MIN, MAX, TRUE, FALSE, ...) that must not
// leak into the standard library headers. Needs -DHAVE_CONFIG_H and a gnu++
// dialect (the headers use typeof).
#pragma once

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

namespace drepl::plugin {

// The plugin's settings for one mail user, as raw strings. Empty = unset.
struct RawUserSettings {
  std::string mail_replica;              // mail_replica
  std::string replication_sync_timeout;  // replication_sync_timeout
};

#if !DREPL_DOVECOT_24

// 2.3: plugin { } section or userdb extra fields, both through
// mail_user_plugin_getenv().
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

// 2.4 has no plugin { } section: the settings must be registered by a
// settings module (modules/settings/libreplication_settings.so, a C
// setting_parser_info table) and read with
//   (settings_get)(user->event, &replication_setting_parser_info,
//                  (enum settings_get_flags)0, __FILE__, __LINE__,
//                  (const void **)&set, &error)
// (dovecot24-port.md §2.4). Not written yet.
#error "Dovecot 2.4: read_user_settings() needs the settings module (dovecot24-port.md 2.4)"

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
