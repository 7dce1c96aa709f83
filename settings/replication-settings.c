/* settings/replication-settings.c: see replication-settings.h. Linked into
   both the settings module and the mail plugin, so both agree on the
   struct layout. */
#include "lib.h"
#include "settings-parser.h"
#include "replication-settings.h"

#include <stddef.h>

#undef DEF
#define DEF(type, name) \
	SETTING_DEFINE_STRUCT_##type(#name, name, struct replication_settings)

static const struct setting_define replication_setting_defines[] = {
	DEF(STR, mail_replica),
	DEF(TIME_MSECS, replication_sync_timeout),
	DEF(BOOL, noreplicate),
	SETTING_DEFINE_LIST_END
};

static const struct replication_settings replication_default_settings = {
	.mail_replica = "",
	.replication_sync_timeout = 0,
	.noreplicate = FALSE,
};

const struct setting_parser_info replication_setting_parser_info = {
	.name = "replication",
	.defines = replication_setting_defines,
	.defaults = &replication_default_settings,
	.struct_size = sizeof(struct replication_settings),
	.pool_offset1 = 1 + offsetof(struct replication_settings, pool),
};

#undef DEF
#define DEF(type, name) \
	SETTING_DEFINE_STRUCT_##type(#name, name, struct replicator_settings)

static const struct setting_define replicator_setting_defines[] = {
	DEF(UINT, replication_max_conns),
	DEF(UINT, replication_max_conns_per_replica),
	DEF(TIME, replication_full_sync_interval),
	DEF(STR, replication_dsync_parameters),
	DEF(TIME, replication_dsync_timeout),
	DEF(TIME, replication_dsync_handshake_timeout),
	DEF(STR, replication_dsync_socket_path),
	DEF(STR, replicator_host),
	DEF(IN_PORT, replicator_port),
	SETTING_DEFINE_LIST_END
};

/* The daemon's defaults (src/replicator-settings.h); `doveconf -n` only
   prints values that differ from these, and the daemon fills in the rest. */
static const struct replicator_settings replicator_default_settings = {
	.replication_max_conns = 10,
	.replication_max_conns_per_replica = 0,
	.replication_full_sync_interval = 60 * 60 * 24,
	.replication_dsync_parameters = "-d -N -l 30 -U",
	.replication_dsync_timeout = 600,
	.replication_dsync_handshake_timeout = 30,
	.replication_dsync_socket_path = "replicator-dsync",
	.replicator_host = "replicator",
	.replicator_port = 0,
};

const struct setting_parser_info replicator_setting_parser_info = {
	.name = "replicator",
	.defines = replicator_setting_defines,
	.defaults = &replicator_default_settings,
	.struct_size = sizeof(struct replicator_settings),
	.pool_offset1 = 1 + offsetof(struct replicator_settings, pool),
};
