// src/sync/dsync-request.h: what our replicator sends to the local doveadm-server
// socket (doveadm_socket_path) to sync one user (spec §6.10.2, §7.1, §7.2):
//
//   VERSION\tdoveadm-server\t1\t1\n
//   \tTE(user)\tsync\t<param>...[\t-f]\t-s\t<state>\t<destination>\n
//
// The first, empty field is doveadm's flags field (no D/v). Minor 1 (stock
// sends 0) makes doveadm-server answer with its VERSION line and multiplex
// the reply, streaming the worker's log lines to us (dsync-reply.h), so a
// failure says its cause. Unlike stock 2.3 we never pass -d (use
// mail_replica) or -U (replicator notify): Dovecot 2.4 removed both, so the
// user's mail_replica is passed as the explicit destination, the last
// positional argument. What -U did (the replica's replicator learning that a
// dsync ran, so it does not sync again from a stale state) our plugin does
// for every dsync (src/notify/dsync-done-notify.h). Every field is tab-escaped; for the usual values
// (base64 state, plain options) that is byte-identical to stock.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace drepl {

enum class DovecotVersion : unsigned char { k23, k24 };

inline constexpr std::string_view kDoveadmServerService = "doveadm-server";

// Stock default of replication_dsync_parameters.
inline constexpr std::string_view kDefaultDsyncParameters = "-d -N -l 30 -U";

// Translates replication_dsync_parameters (split on spaces; empty tokens
// from repeated spaces are dropped) into the option list we send:
//  - always drops "-d" and "-U" (see above);
//  - k24: nothing else is known to be rejected by 2.4's `doveadm sync`
//    (its synopsis is [-1fPR] [-l secs] [-r rawlog] [-m] [-g] [-n|-N] [-x]
//    [-a] [-s] [-T] [-t] [-e] [-O] [-I] [-p]), so the rest passes through.
// Default "-d -N -l 30 -U" -> {"-N", "-l", "30"} for both versions.
std::vector<std::string> dsync_parameters_for(std::string_view replication_dsync_parameters,
                                              DovecotVersion version);

struct DsyncRequest {
  std::string username;     // the user to sync
  std::string state;        // last dsync state (opaque base64); empty = none
  bool full = false;        // add -f (full sync)
  // The user's mail_replica, e.g. "tcp:replica:12345". Empty = no
  // destination field at all (only valid together with -d, i.e. the stock
  // 2.3 command, which this then reproduces byte for byte).
  std::string destination;
  // Add -1 (one-way sync: only this side's changes go to the replica, the
  // replica's own changes are kept, not copied back). The brain's desync
  // recovery (desync-recovery.h) uses it once to break a mailbox GUID
  // conflict that two-way dsync of Dovecot < 2.3.20 never resolves.
  bool oneway = false;
};

// "VERSION\tdoveadm-server\t1\t1\n".
std::string format_dsync_handshake();

// The command line (with LF):
// "\tTE(user)\tsync\t" + TE(params) joined by TAB + ["\t-1"] + ["\t-f"]
// + "\t-s\t" + TE(state) + ["\t" + TE(destination)] + "\n".
// With params {"-N","-l","30"}, user alice, no state, destination "tcp:b":
//   "\talice\tsync\t-N\t-l\t30\t-s\t\ttcp:b\n"
std::string format_dsync_command(const DsyncRequest& request,
                                 const std::vector<std::string>& params);

// format_dsync_handshake() + format_dsync_command(): everything we write on
// a fresh doveadm-server connection, in one write.
std::string format_dsync_request(const DsyncRequest& request,
                                 const std::vector<std::string>& params);

// The "type" shown by `doveadm replicator dsync-status` (spec §6.10.4):
// "full" if full, else "incremental" if state is non-empty, else "normal".
std::string_view dsync_sync_type(bool full, std::string_view state);

}  // namespace drepl
