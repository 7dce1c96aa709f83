// src/sync/replicator-settings.h: every setting our replicator reads, with
// Dovecot's names, defaults and units (spec §3.2-3.4), filled from key=value
// pairs as Dovecot's config gives them (doveconf output). Unknown keys are
// ignored, so the whole `doveconf` output can be fed in.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "result.h"

namespace drepl {

// The largest replication_max_conns accepted.
inline constexpr std::uint64_t kMaxReplicationMaxConns = 10000;

struct ReplicatorSettings {
  // ---- replicator (spec §3.2) ----
  // replication_full_sync_interval (time): seconds between full syncs of a
  // user. Default 86400 (1 day). 0 = every sync is full.
  std::int64_t replication_full_sync_interval_secs = 86400;
  // replication_max_conns (uint): parallel dsyncs. Default 10. 0 = never sync.
  // At most kMaxReplicationMaxConns: each slot holds buffers and a doveadm
  // process, and a larger value is a typo ("Invalid setting ...: ... too large").
  unsigned replication_max_conns = 10;
  // replication_max_conns_per_replica (uint, ours; 2.3: in plugin { }): how
  // many of the replication_max_conns slots one destination (mail_replica
  // value) may hold with running dsyncs, so that a slow replica does not
  // starve the users of the others; users over it wait (not failed) until
  // a slot of their replica frees. 0 (default) = automatic: half of
  // replication_max_conns (at least 1) while another replica has users to
  // sync, else all. N > 0: at most N, always (a load limit per replica).
  // At most kMaxReplicationMaxConns. See replicator/core/destination-share.h.
  unsigned replication_max_conns_per_replica = 0;
  // replication_dsync_parameters (string): options for `doveadm sync`,
  // space-separated. Default "-d -N -l 30 -U" (-d/-U are dropped, see
  // dsync-request.h).
  std::string replication_dsync_parameters = "-d -N -l 30 -U";
  // auth_socket_path (string): auth-master socket for userdb listing and
  // lookups; relative = under base_dir. Default "auth-userdb".
  std::string auth_socket_path = "auth-userdb";
  // doveadm_socket_path (string): the local doveadm-server socket; relative
  // = under base_dir. Default "doveadm-server".
  std::string doveadm_socket_path = "doveadm-server";
  // replication_dsync_socket_path (string, ours): the socket of the
  // dedicated `service replicator-dsync` (a doveadm-server kept for our
  // dsyncs: processes and connections reused); relative = under base_dir.
  // Default "replicator-dsync". When it does not exist (or refuses), dsync
  // requests go to doveadm_socket_path instead (logged once, metric
  // dovecot_replicator_dsync_socket_fallback).
  std::string replication_dsync_socket_path = "replicator-dsync";

  // ---- aggregator (spec §3.3); we listen instead of the aggregator ----
  // replicator_host (string): UNIX socket (when replicator_port is 0,
  // relative to base_dir) or host name of the replicator. Default "replicator".
  std::string replicator_host = "replicator";
  // replicator_port (in_port): 0 = UNIX socket. Default 0.
  std::uint16_t replicator_port = 0;

  // ---- doveadm / mail user settings we rely on (spec §3.1, §3.4) ----
  // doveadm_port (in_port; alias doveadm_proxy_port): default port for
  // tcp:/tcps: mail_replica values without ":port". Default 0 (unset).
  std::uint16_t doveadm_port = 0;
  // mail_replica (string): the global destination (2.3: plugin/mail_replica;
  // userdb may override it per user). Default "" (unset).
  std::string mail_replica;

  // ---- read for the replica probe (replicator/clients/replica-probe.h) ----
  // ssl_client_ca_file / ssl_client_ca_dir (string): the CAs doveadm trusts
  // for a tcps: replica (2.3 and 2.4, top level); the probe verifies with
  // the same. Default "" (Dovecot's own default comes with its config).
  // A value in `protocol doveadm { }` (key "protocol/doveadm/ssl_client_ca_file")
  // overrides the global one, as it does for doveadm.
  std::string ssl_client_ca_file;
  std::string ssl_client_ca_dir;
  // dsync_remote_cmd (string): the command dsync runs for remote: replicas;
  // only its ssh port is used (ssh_command_port()). Default: 2.3's.
  std::string dsync_remote_cmd = "ssh -l%{login} %{host} doveadm dsync-server -u%u -U";

  // ---- ours ----
  // replication_dsync_timeout (time): a running dsync that shows no progress
  // (no reply byte) for this long is aborted and counted as kTimeout.
  // Seconds; default 600 (dsync's own -T I/O timeout). 0 = no timeout.
  std::int64_t replication_dsync_timeout_secs = 600;
  // replication_dsync_handshake_timeout (time): a dsync to a tcp:/tcps:
  // replica whose doveadm-server sends no byte (its "+"/"-" handshake line,
  // or TLS) within this long after the TCP connection is up is aborted as
  // kTimeout (the destination's circuit breaker opens), instead of holding a
  // replication_max_conns slot until replication_dsync_timeout. Also bounds
  // the wait for the local doveadm-server's own "+" on a new connection
  // (then kLocalDoveadm). Seconds; default 30. 0 = no bound.
  std::int64_t replication_dsync_handshake_timeout_secs = 30;
  // base_dir (string): Dovecot's runtime directory; relative socket paths
  // resolve against it. Default "/var/run/dovecot".
  std::string base_dir = "/var/run/dovecot";
  // state_dir (string): where replicator.db lives. Default "/var/lib/dovecot".
  std::string state_dir = "/var/lib/dovecot";
};

// Sets one setting from its config text. Keys: the names above; also
// "plugin/<name>" (2.3 prints plugin { } settings that way, e.g.
// "plugin/mail_replica") and "doveadm_proxy_port". Returns ok and sets
// *known_r = false for unknown keys (ignored). Errors (kInvalid):
//   "Invalid setting <key>: <reason>", e.g.
//   "Invalid setting replication_max_conns: Invalid number: ten"
Status apply_replicator_setting(ReplicatorSettings& settings, std::string_view key,
                                std::string_view value, bool* known_r = nullptr);

// Defaults, then apply_replicator_setting() for every pair in order (a
// later pair overrides an earlier one). Returns the first error.
Result<ReplicatorSettings> replicator_settings_from_pairs(
    const std::vector<std::pair<std::string, std::string>>& pairs);

// Flattens doveconf output ("key = value" lines, "name [name] {" ... "}"
// sections) into pairs; keys inside sections get the section words joined
// by '/' as prefix: "plugin {\n  mail_replica = tcp:b\n}" ->
// {"plugin/mail_replica", "tcp:b"}. Lines starting with '#' and blank lines
// are skipped. A value doveconf printed in double quotes (it does so for
// values containing '#' or with leading/trailing white space) is unquoted:
// the line `key = "a \"b\" # c"` gives the value `a "b" # c`. Errors (kInvalid): "doveconf output line
// <n>: <reason>" for an unbalanced '}' or a line that is neither.
Result<std::vector<std::pair<std::string, std::string>>> parse_doveconf_output(
    std::string_view text);

// Keys of `pairs` that are one of our settings inside a filter or section
// (e.g. "protocol/imap/mail_replica", "remote/10.0.0.0/24/replication_max_conns"),
// "plugin/..." excepted. The replicator is in no such filter and ignores
// them; the caller warns (per-user values belong in userdb).
std::vector<std::string> replicator_settings_in_filters(
    const std::vector<std::pair<std::string, std::string>>& pairs);

// `path` when absolute, else base_dir + "/" + path (socket paths, as Dovecot
// resolves them from the master's working directory base_dir).
std::string resolve_base_dir_path(std::string_view base_dir, std::string_view path);

// state_dir + "/replicator.db".
std::string replicator_db_path(const ReplicatorSettings& settings);

}  // namespace drepl
