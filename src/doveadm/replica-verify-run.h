// src/replica-verify-run.h: `doveadm replicator verify [<user mask>]`, without
// Dovecot: for each user of the mask known to the replicator, ask both
// replicas (A = this node's doveadm, B = the user's replica through its
// doveadm server) for their mailbox status and, where the fast path
// doesn't settle it, their messages, and compare (replica-verify.h).
//
// Users whose sync is running or pending (STATUS-DETAIL flag in_flight, or a
// priority other than none) are compared after it: the command waits (polling
// the replicator, up to recheck_timeout_ms) for the user to become idle, and
// a user found different while a sync started meanwhile is compared once
// more after that sync. Users the replicator never syncs (never_sync) are
// skipped. Cost: one `mailbox status` per side per user, plus one `fetch`
// of GUIDs/UIDs/flags (never bodies) per differing mailbox; one user at a time.
#pragma once
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "doveadm-detail.h"
#include "millis-clock.h"
#include "replica-verify.h"
#include "replicator-commands.h"
#include "result.h"

namespace drepl {

enum class VerifySide : unsigned char { kLocal, kReplica };

// What the command needs from the outside world (tests inject fakes).
struct VerifyBackend {
  // The replicator's STATUS-DETAIL rows for a mask (sorted by user name).
  std::function<Result<std::vector<UserDetailRow>>(const std::string& mask)> list_users;
  // Runs one doveadm mail command for `user` on `side` with `-f tab` and
  // returns its output; args start with the command name, e.g.
  // {"mailbox", "status", "guid ...", "*"} (the -u <user> is the backend's).
  // Errors: the side could not be asked (-> "replica unreachable").
  std::function<Result<std::string>(VerifySide side, const std::string& user,
                                     const std::vector<std::string>& args)>
      doveadm;
  // Waits before the next poll of a running sync (real: sleep; tests: advance a fake clock).
  std::function<void(Millis)> pause;
  const MillisClock* clock = nullptr;
};

struct VerifyOptions {
  Millis recheck_timeout_ms = 120'000;  // longest wait for a running sync
  Millis poll_interval_ms = 500;
  bool json = false;                    // one JSON object per user instead of columns
};

// Compares one user. `row` is the user's STATUS-DETAIL row.
UserVerdict verify_user(const VerifyBackend& backend, const UserDetailRow& row,
                        const VerifyOptions& options);

struct VerifyOutcome {
  CliResult result;       // exit_code = summary.exit_code() (or a replicator error)
  VerifySummary summary;
};

// The whole command: lists the users of `mask` ("*" when empty), verifies
// each and prints per user the columns user, status, differences, detail
// (verdict_text()), or with options.json one column "json" holding
// verdict_json(). Replicator errors (socket, protocol) end the command with
// CliResult's error as the other replicator commands do.
VerifyOutcome run_replicator_verify(const VerifyBackend& backend, const std::string& mask,
                                    const VerifyOptions& options, CliPrinter& printer);

// VerifyBackend::list_users over the replicator-doveadm socket: STATUS-DETAIL
// <mask>. Errors: the client's (connect, handshake, read), and kInvalid
// "the replicator does not support STATUS-DETAIL (not dovecot-replicator?)".
Result<std::vector<UserDetailRow>> list_replicator_users(const ReplicatorDoveadmClientFactory& connect,
                                                         const std::string& mask);

// The fields `mailbox status` is asked for, and `fetch`'s.
inline constexpr std::string_view kVerifyStatusFields =
    "guid uidvalidity uidnext messages highestmodseq";
inline constexpr std::string_view kVerifyFetchFields = "mailbox-guid uid guid flags";

// `-S` target of `doveadm` for a mail_replica value: "tcp:host[:port]" ->
// "host:port" (port defaults to `doveadm_port`). Errors (kInvalid): remote:,
// remoteprefix: (ssh, no doveadm server to ask) and tcps: ("verify does not
// support <scheme> replicas yet") and what parse_mail_replica() rejects.
Result<std::string> verify_doveadm_target(std::string_view mail_replica, std::uint16_t doveadm_port);

}  // namespace drepl
