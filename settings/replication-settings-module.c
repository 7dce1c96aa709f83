/* settings/replication-settings-module.c:
   modules/settings/libreplication_settings.so for Dovecot >= 2.4.

   Dovecot's config process loads every module in <moduledir>/settings/
   (config_parse_load_modules()) and looks up, for module name
   "replication_settings":
     replication_settings_version          ABI check (must equal the running
                                           Dovecot's DOVECOT_ABI_VERSION)
     replication_settings_set_infos        our settings become known keys
     replication_settings_services_array   our services, so dovecot.conf
                                           needs no service {} block: the
                                           replicator, and replicator-dsync
                                           (the doveadm-server our syncs run
                                           in, issue 11)
     replication_settings_config_import    default config text (see below)

   The replicator service on 2.4 owns all four 2.3 listener names itself;
   there is no aggregator service: 2.4 has no built-in replicator or
   aggregator whose listener names we must take over, and one process
   reading the plugin's FIFO and socket directly saves a hop, a reconnect
   path and a second process (docs/upgrading.md). */
#include "lib.h"
#include "array.h"
#include "settings-parser.h"
#include "service-settings.h"
#include "replication-settings.h"

#ifndef DREPL_REPLICATOR_EXECUTABLE
#  error "DREPL_REPLICATOR_EXECUTABLE (the installed replicator's path) must be defined"
#endif

/* The exported symbols; declared here because Dovecot has no header for
   them (it looks them up with dlsym). */
extern const char *replication_settings_version;
extern const struct setting_parser_info *const replication_settings_set_infos[];
extern const struct config_service replication_settings_services_array[];
extern const char *replication_settings_config_import;

const char *replication_settings_version = DOVECOT_ABI_VERSION;

const struct setting_parser_info *const replication_settings_set_infos[] = {
	&replication_setting_parser_info,
	&replicator_setting_parser_info,
	NULL
};

/* Like 2.3's built-in replicator: one root process (it connects to
   auth-userdb and the doveadm-server socket), started with the master and
   never idle-killed (it schedules full syncs on its own). */
static struct service_settings replicator_service_settings = {
	.name = "replicator",
	.protocol = "",
	.type = "",
	.executable = DREPL_REPLICATOR_EXECUTABLE,
	.user = "",
	.group = "",
	.privileged_group = "",
	.extra_groups = ARRAY_INIT,
	.chroot = "",

	.drop_priv_before_exec = FALSE,

	.process_min_avail = 1,
	.process_limit = 1,
	.idle_kill_interval = SET_TIME_INFINITE,

	.unix_listeners = ARRAY_INIT,
	.fifo_listeners = ARRAY_INIT,
	.inet_listeners = ARRAY_INIT,

	.process_limit_1 = TRUE
};

/* The 2.3 listener names. replication-notify(-fifo) are written by mail
   processes, which run as the users' uids (mail_uid or userdb uid). A
   service default cannot name mail_uid: the master expands only
   $SET:default_internal_user/_login_user/_internal_group in listener
   defaults (master-settings.c expand_user/expand_group), a literal
   "$SET:mail_uid" makes the master refuse to start. So they follow
   Dovecot's own socket for every mail process, stats-writer: mode 0660,
   group default_internal_group. Every 2.4 mail process is in that group
   (2.4.0-2.4.2: service_extra_groups of imap/pop3/lmtp/submission/doveadm;
   2.4.3+: mail_access_groups), nobody else is. */
static const struct setting_keyvalue replicator_service_settings_defaults[] = {
	{ "unix_listener", "replicator replicator-doveadm replication-notify" },
	{ "fifo_listener", "replication-notify-fifo" },

	{ "unix_listener/replicator/path", "replicator" },
	{ "unix_listener/replicator/mode", "0600" },
	{ "unix_listener/replicator/user", "$SET:default_internal_user" },

	/* 0660 for the mail processes' group: the replication plugin in every
	   doveadm process that ran a dsync sends NOTIFY here (as the mail user),
	   so the replicator drops the user's stale dsync state (2.4 has no
	   dsync-server -U). The same reach as 2.3, where our conf.d gives
	   this listener to $mail_uid. */
	{ "unix_listener/replicator-doveadm/path", "replicator-doveadm" },
	{ "unix_listener/replicator-doveadm/mode", "0660" },
	{ "unix_listener/replicator-doveadm/group", "$SET:default_internal_group" },

	{ "unix_listener/replication-notify/path", "replication-notify" },
	{ "unix_listener/replication-notify/mode", "0660" },
	{ "unix_listener/replication-notify/group", "$SET:default_internal_group" },

	{ "fifo_listener/replication-notify-fifo/path", "replication-notify-fifo" },
	{ "fifo_listener/replication-notify-fifo/mode", "0660" },
	{ "fifo_listener/replication-notify-fifo/group", "$SET:default_internal_group" },

	{ NULL, NULL }
};

/* The replicator's own doveadm-server (replication_dsync_socket_path =
   replicator-dsync), as conf.d/dovecot-replicator-dsync.conf ships it for
   2.3: processes stay for many syncs (restart_request_count 0 = no limit)
   and the replicator sends one user's sync after another on the same
   connection. -o doveadm_port=0: these processes never proxy, so they skip
   the per-user "is this user proxied" passdb lookup. process_limit covers
   replication_max_conns of this server and the peer's dsyncs when the
   admin adds an inet_listener. The admin's `service doveadm` is untouched;
   without this service the replicator falls back to doveadm_socket_path. */
static struct service_settings replicator_dsync_service_settings = {
	.name = "replicator-dsync",
	.protocol = "",
	.type = "",
	.executable = "doveadm-server -o doveadm_port=0",
	.user = "",
	.group = "",
	.privileged_group = "",
	.extra_groups = ARRAY_INIT,
	.chroot = "",

	.drop_priv_before_exec = FALSE,

	.process_limit = 24,
	.client_limit = 1,
	.restart_request_count = 0,
	.idle_kill_interval = 60,

	.unix_listeners = ARRAY_INIT,
	.fifo_listeners = ARRAY_INIT,
	.inet_listeners = ARRAY_INIT,
};

static const struct setting_keyvalue replicator_dsync_service_settings_defaults[] = {
	{ "unix_listener", "replicator-dsync" },

	{ "unix_listener/replicator-dsync/path", "replicator-dsync" },
	{ "unix_listener/replicator-dsync/type", "tcp" },
	{ "unix_listener/replicator-dsync/mode", "0600" },

	/* as Dovecot's own service doveadm (stats-writer and friends) */
	{ "service_extra_groups", "$SET:default_internal_group" },

	{ NULL, NULL }
};

/* config_parse_load_modules() takes this array instead of a single
   <name>_service_settings when the module exports it. */
const struct config_service replication_settings_services_array[] = {
	{ &replicator_service_settings, replicator_service_settings_defaults },
	{ &replicator_dsync_service_settings, replicator_dsync_service_settings_defaults },
	{ NULL, NULL }
};

/* Dovecot 2.4.0-2.4.2's default dsync_remote_cmd still ends in the removed
   dsync-server option -U, so every `remote:`/`remoteprefix:` replica fails
   with "invalid option -- 'U'" (fixed upstream in 2.4.3). This module is
   built for exactly one Dovecot release; for the broken ones it ships the
   fixed default. Parsed as a default: a dsync_remote_cmd in dovecot.conf
   still wins. */
#if DOVECOT_VERSION_MAJOR == 2 && DOVECOT_VERSION_MINOR == 4 && DOVECOT_VERSION_MICRO < 3
const char *replication_settings_config_import =
	"dsync_remote_cmd = ssh -l%{login} %{host} doveadm dsync-server -u%{user}";
#else
const char *replication_settings_config_import = "";
#endif
