/* settings/replication-settings.h: our settings as Dovecot 2.4 settings
   structs (plain C; built only against Dovecot >= 2.4 headers).

   Two setting_parser_info tables, both registered with Dovecot's config
   process by modules/settings/libreplication_settings.so
   (replication-settings-module.c) and linked into lib20_replication_plugin.so:

   - replication_setting_parser_info ("replication"): what every mail
     process reads per user with settings_get(user->event, ...). A userdb
     field of the same name overrides the global value for that user (2.4's
     form of 2.3's userdb mail_replica / noreplicate).
   - replicator_setting_parser_info ("replicator"): the daemon's settings.
     The daemon itself does not link libdovecot: it reads them from
     `doveconf -n` output; these entries exist so Dovecot accepts the keys
     and documents them (`doveconf -d`). Defaults equal the daemon's
     (src/replicator-settings.h).

   Only our own keys are defined here. Core keys the replicator also reads
   (base_dir, state_dir, auth_socket_path, doveadm_socket_path,
   doveadm_port) belong to Dovecot and are never redefined. */
#ifndef REPLICATION_SETTINGS_H
#define REPLICATION_SETTINGS_H

#include "lib.h"
#include "settings-parser.h"

struct replication_settings {
	pool_t pool;
	/* mail_replica: where this user's mail is replicated to, e.g.
	   "tcp:peer:12345", "tcps:peer", "remote:login@host",
	   "remoteprefix:login@host". Empty = replication off for the user. */
	const char *mail_replica;
	/* replication_sync_timeout (time, milliseconds): how long a mail
	   process waits for the replica after saving new mail. 0 = never wait
	   (asynchronous only). */
	unsigned int replication_sync_timeout;
	/* noreplicate (boolean): the user is never replicated (a userdb field
	   in 2.3; 2.4 dropped it from core, we keep it). */
	bool noreplicate;
};

struct replicator_settings {
	pool_t pool;
	/* replication_max_conns: parallel dsyncs. 0 = never sync. */
	unsigned int replication_max_conns;
	/* replication_max_conns_per_replica: how many of those one
	   destination (mail_replica value) may hold, so that a slow replica
	   does not starve the others; users over it wait, not failed. 0 =
	   automatic: half (at least 1) while another replica has users to
	   sync, else all. N > 0: at most N, always. Ours. */
	unsigned int replication_max_conns_per_replica;
	/* replication_full_sync_interval (time, seconds) between full syncs. */
	unsigned int replication_full_sync_interval;
	/* replication_dsync_parameters: options for `doveadm sync`; -d and -U
	   (removed in 2.4) are dropped by the daemon. */
	const char *replication_dsync_parameters;
	/* replication_dsync_timeout (time, seconds): a dsync without progress
	   for this long is aborted. 0 = no limit. Ours. */
	unsigned int replication_dsync_timeout;
	/* replication_dsync_handshake_timeout (time, seconds): a dsync to a
	   tcp:/tcps: replica that sends no byte within this long after the TCP
	   connection is up is aborted (kind timeout). 0 = no limit. Ours. */
	unsigned int replication_dsync_handshake_timeout;
	/* replication_dsync_socket_path: the dedicated doveadm-server socket
	   the daemon sends its dsync requests to (service replicator-dsync);
	   relative = under base_dir. Falls back to doveadm_socket_path when it
	   does not exist. Ours. */
	const char *replication_dsync_socket_path;
	/* replicator_host / replicator_port: where an aggregator forwards
	   notifications (UNIX socket name under base_dir when port is 0). */
	const char *replicator_host;
	in_port_t replicator_port;
};

extern const struct setting_parser_info replication_setting_parser_info;
extern const struct setting_parser_info replicator_setting_parser_info;

#endif
