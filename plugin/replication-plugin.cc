// plugin/replication-plugin.cc: entry points of lib20_replication_plugin.so
// and the notify hooks (spec §4.2). Enable with
//   2.3: mail_plugins = $mail_plugins notify replication
//        plugin { mail_replica = tcp:replica:12345 }
//   2.4: mail_plugins { notify = yes  replication = yes }
//        mail_replica = tcp:replica:12345
//        (keys registered by modules/settings/libreplication_settings.so)
// The hooks only collect facts; src/notify/change-priority.h decides the priority
// and plugin/replication-user.cc sends it.
#include <cstdint>

#include "change-priority.h"
#include "priority.h"
#include "replication-user.h"
// Dovecot headers last (macros).
#include "dovecot-compat.h"

namespace drepl::plugin {

namespace {

static_assert(change_bits::kAppend == MAIL_INDEX_TRANSACTION_CHANGE_APPEND);
static_assert(change_bits::kExpunge == MAIL_INDEX_TRANSACTION_CHANGE_EXPUNGE);
static_assert(change_bits::kFlags == MAIL_INDEX_TRANSACTION_CHANGE_FLAGS);
static_assert(change_bits::kKeywords == MAIL_INDEX_TRANSACTION_CHANGE_KEYWORDS);
static_assert(change_bits::kModseq == MAIL_INDEX_TRANSACTION_CHANGE_MODSEQ);
static_assert(change_bits::kAttribute == MAIL_INDEX_TRANSACTION_CHANGE_ATTRIBUTE);
static_assert(change_bits::kOthers == MAIL_INDEX_TRANSACTION_CHANGE_OTHERS);

// One mailbox transaction, from mail_transaction_begin to commit/rollback.
struct TransactionContext {
  struct mail_user* user = nullptr;  // ns->user of the transaction's mailbox
  bool sync_transaction = false;     // MAILBOX_TRANSACTION_FLAG_SYNC (dsync)
  bool has_new_mail = false;         // mail_save, or mail_copy across storages
};

struct mail_user* mailbox_user(struct mailbox* box) {
  return mailbox_get_namespace(box)->user;
}

void* hook_transaction_begin(struct mailbox_transaction_context* t) noexcept {
  auto* ctx = new TransactionContext;
  ctx->user = mailbox_user(mailbox_transaction_get_mailbox(t));
  ctx->sync_transaction = transaction_is_sync(t);
  return ctx;
}

void hook_mail_save(void* txn, struct mail* /*mail*/) noexcept {
  static_cast<TransactionContext*>(txn)->has_new_mail = true;
}

void hook_mail_copy(void* txn, struct mail* src, struct mail* dst) noexcept {
  const bool same_storage = mailbox_get_storage(src->box) == mailbox_get_storage(dst->box);
  if (copy_is_new_mail(same_storage)) static_cast<TransactionContext*>(txn)->has_new_mail = true;
}

void hook_transaction_commit(void* txn, struct mail_transaction_commit_changes* changes) noexcept {
  auto* ctx = static_cast<TransactionContext*>(txn);
  TransactionFacts facts;
  facts.has_new_mail = ctx->has_new_mail;
  facts.changes_mask = static_cast<std::uint32_t>(changes->changes_mask);
  facts.sync_transaction = ctx->sync_transaction;
  facts.dsyncing = user_dsyncing(ctx->user);  // at notification time, not at login
  facts.sync_wait_enabled = user_sync_wait_enabled(ctx->user);
  struct mail_user* user = ctx->user;
  delete ctx;
  if (dsync_applied_change(facts)) user_dsync_changed(user);
  user_notify(user, transaction_priority(facts));
}

void hook_transaction_rollback(void* txn) noexcept {
  delete static_cast<TransactionContext*>(txn);
}

void notify_mailbox_change(struct mail_user* user) {
  if (user_dsyncing(user)) user_dsync_changed(user);
  user_notify(user, mailbox_change_priority(user_dsyncing(user)));
}

void hook_mailbox_create(struct mailbox* box) noexcept { notify_mailbox_change(mailbox_user(box)); }

void* hook_mailbox_delete_begin(struct mailbox* box) noexcept {
  return box;  // any non-NULL marker; delete_commit gets the box again
}

void hook_mailbox_delete_commit(void* /*txn*/, struct mailbox* box) noexcept {
  notify_mailbox_change(mailbox_user(box));
}

void hook_mailbox_delete_rollback(void* /*txn*/) noexcept {}

void hook_mailbox_rename(struct mailbox* /*src*/, struct mailbox* dest) noexcept {
  notify_mailbox_change(mailbox_user(dest));
}

void hook_mailbox_set_subscribed(struct mailbox* box, bool /*subscribed*/) noexcept {
  notify_mailbox_change(mailbox_user(box));
}

void hook_mail_user_created(struct mail_user* user) noexcept { user_created(user); }

struct notify_vfuncs g_notify_vfuncs;
struct mail_storage_hooks g_storage_hooks;
struct notify_context* g_notify_ctx = nullptr;

}  // namespace

// replication_plugin_init(): registers the notify hooks and the
// mail_user_created hook.
void plugin_init(struct module* module) {
  g_notify_vfuncs = {};
  g_notify_vfuncs.mail_transaction_begin = hook_transaction_begin;
  g_notify_vfuncs.mail_save = hook_mail_save;
  g_notify_vfuncs.mail_copy = hook_mail_copy;
  g_notify_vfuncs.mail_transaction_commit = hook_transaction_commit;
  g_notify_vfuncs.mail_transaction_rollback = hook_transaction_rollback;
  g_notify_vfuncs.mailbox_create = hook_mailbox_create;
  g_notify_vfuncs.mailbox_delete_begin = hook_mailbox_delete_begin;
  g_notify_vfuncs.mailbox_delete_commit = hook_mailbox_delete_commit;
  g_notify_vfuncs.mailbox_delete_rollback = hook_mailbox_delete_rollback;
  g_notify_vfuncs.mailbox_rename = hook_mailbox_rename;
  g_notify_vfuncs.mailbox_set_subscribed = hook_mailbox_set_subscribed;
  g_storage_hooks = {};
  g_storage_hooks.mail_user_created = hook_mail_user_created;

  g_notify_ctx = notify_register(&g_notify_vfuncs);
  mail_storage_hooks_add(module, &g_storage_hooks);
}

// replication_plugin_deinit(): undoes plugin_init() and closes the FIFO.
void plugin_deinit() {
  mail_storage_hooks_remove(&g_storage_hooks);
  notify_unregister_compat(&g_notify_ctx);
  users_global_deinit();
}

}  // namespace drepl::plugin

extern "C" {

// Dovecot's module loader checks this against its own ABI version and refuses
// a plugin built for another release.
__attribute__((visibility("default"))) const char* replication_plugin_version =
    DOVECOT_ABI_VERSION;
__attribute__((visibility("default"))) const char* replication_plugin_dependencies[] = {
    "notify", nullptr};

__attribute__((visibility("default"))) void replication_plugin_init(struct module* module);
__attribute__((visibility("default"))) void replication_plugin_deinit(void);

void replication_plugin_init(struct module* module) { drepl::plugin::plugin_init(module); }

void replication_plugin_deinit(void) { drepl::plugin::plugin_deinit(); }

}  // extern "C"
