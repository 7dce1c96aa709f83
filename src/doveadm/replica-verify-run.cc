// src/replica-verify-run.cc: see replica-verify-run.h.
#include "replica-verify-run.h"

#include <fmt/format.h>

#include "mail-replica.h"

namespace drepl {
namespace {

bool busy(const UserDetailRow& row) {
  return row.in_flight || (row.status.priority != "none" && !row.never_sync);
}

// Polls the replicator until `user` is idle or the timeout passes. Returns
// whether it had to wait.
bool wait_until_idle(const VerifyBackend& backend, const std::string& user, bool busy_now,
                     const VerifyOptions& options) {
  if (!busy_now) return false;
  const Millis deadline = backend.clock->now_ms() + options.recheck_timeout_ms;
  while (backend.clock->now_ms() < deadline) {
    backend.pause(options.poll_interval_ms);
    auto rows = backend.list_users(user);
    if (!rows) break;
    bool still = false;
    for (const auto& r : *rows) {
      if (r.status.username == user) still = busy(r);
    }
    if (!still) break;
  }
  return true;
}

UserVerdict unreachable(const std::string& user, const Error& e) {
  UserVerdict v;
  v.username = user;
  v.status = VerifyStatus::kUnreachable;
  v.error = e.message;
  return v;
}

UserVerdict compare_once(const VerifyBackend& backend, const std::string& user) {
  const std::vector<std::string> status_args = {"mailbox", "status",
                                                std::string(kVerifyStatusFields), "*"};
  auto ta = backend.doveadm(VerifySide::kLocal, user, status_args);
  if (!ta) return unreachable(user, ta.error());
  auto tb = backend.doveadm(VerifySide::kReplica, user, status_args);
  if (!tb) return unreachable(user, tb.error());
  auto a = parse_mailbox_status_table(*ta);
  if (!a) return unreachable(user, a.error());
  auto b = parse_mailbox_status_table(*tb);
  if (!b) return unreachable(user, b.error());

  std::vector<Difference> scratch;
  std::vector<std::string> deep;
  compare_mailbox_lists(*a, *b, scratch, deep);
  MessagesByMailbox fa, fb;
  for (const std::string& name : deep) {
    std::string guid;
    for (const auto& m : *a) {
      if (m.name == name) guid = m.guid;
    }
    const std::vector<std::string> fetch_args = {"fetch", std::string(kVerifyFetchFields),
                                                 "mailbox-guid", guid};
    for (auto [side, dst] : {std::pair{VerifySide::kLocal, &fa}, {VerifySide::kReplica, &fb}}) {
      auto text = backend.doveadm(side, user, fetch_args);
      if (!text) return unreachable(user, text.error());
      auto parsed = parse_fetch_table(*text);
      if (!parsed) return unreachable(user, parsed.error());
      for (auto& [box, msgs] : *parsed) (*dst)[box] = std::move(msgs);
    }
  }
  return compare_user(user, *a, *b, fa, fb);
}

}  // namespace

UserVerdict verify_user(const VerifyBackend& backend, const UserDetailRow& row,
                        const VerifyOptions& options) {
  const std::string& user = row.status.username;
  bool rechecked = wait_until_idle(backend, user, busy(row), options);
  UserVerdict v = compare_once(backend, user);
  if (v.status == VerifyStatus::kDiffers) {
    // A change may have arrived while we compared: if a sync is running or
    // pending now, compare again after it.
    auto rows = backend.list_users(user);
    bool busy_now = false;
    if (rows) {
      for (const auto& r : *rows) {
        if (r.status.username == user) busy_now = busy(r);
      }
    }
    if (wait_until_idle(backend, user, busy_now, options)) {
      rechecked = true;
      v = compare_once(backend, user);
    }
  }
  v.rechecked = rechecked;
  return v;
}

VerifyOutcome run_replicator_verify(const VerifyBackend& backend, const std::string& mask,
                                    const VerifyOptions& options, CliPrinter& printer) {
  VerifyOutcome outcome;
  auto rows = backend.list_users(mask.empty() ? std::string("*") : mask);
  if (!rows) {
    outcome.result.exit_code = rows.error().code == ErrorCode::kInvalid ? kExitProtocol : kExitTempFail;
    outcome.result.error = fmt::format("Replicator failed: {}", rows.error().message);
    return outcome;
  }
  static const std::vector<CliColumn> kColumns = {
      {"user", "username", 0}, {"status", "status", 0},
      {"differences", "differences", 0}, {"detail", "detail", kCliHeaderExpand}};
  static const std::vector<CliColumn> kJsonColumns = {{"json", "json", kCliHeaderHideTitle}};
  printer.begin(options.json ? "flow" : "table", options.json ? kJsonColumns : kColumns);
  for (const UserDetailRow& row : *rows) {
    if (row.never_sync) continue;
    UserVerdict v = verify_user(backend, row, options);
    outcome.summary.add(v);
    if (options.json) {
      printer.value(verdict_json(v));
    } else {
      printer.value(v.username);
      printer.value(verify_status_to_string(v.status));
      printer.value(fmt::format("{}", v.difference_count));
      printer.value(verdict_text(v));
    }
  }
  outcome.result.exit_code = outcome.summary.exit_code();
  return outcome;
}

Result<std::vector<UserDetailRow>> list_replicator_users(const ReplicatorDoveadmClientFactory& connect,
                                                         const std::string& mask) {
  auto client = connect();
  if (!client) return client.error();
  if (Status st = client->handshake(); !st) return st.error();
  if (Status st = client->send(format_status_detail_request(mask)); !st) return st.error();
  std::vector<UserDetailRow> rows;
  for (bool first = true;; first = false) {
    auto line = client->read_line();
    if (!line) return line.error();
    if (!line->has_value()) {
      if (first) return invalid("the replicator does not support STATUS-DETAIL (not dovecot-replicator?)");
      return make_error(ErrorCode::kTemp, fmt::format("{} disconnected", client->name()));
    }
    if ((*line)->empty()) break;
    auto row = parse_status_detail_line(**line);
    if (row) rows.push_back(std::move(*row));
  }
  return rows;
}

Result<std::string> verify_doveadm_target(std::string_view mail_replica, std::uint16_t doveadm_port) {
  auto r = parse_mail_replica(mail_replica, doveadm_port);
  if (!r) return r.error();
  switch (r->kind) {
    case ReplicaKind::kTcp:
      return r->host.find(':') != std::string::npos ? fmt::format("[{}]:{}", r->host, r->port)
                                                    : fmt::format("{}:{}", r->host, r->port);
    case ReplicaKind::kTcps: return invalid("verify does not support tcps: replicas yet");
    case ReplicaKind::kRemote: return invalid("verify does not support remote: replicas yet");
    case ReplicaKind::kRemotePrefix:
      return invalid("verify does not support remoteprefix: replicas yet");
    default: return invalid(fmt::format("verify does not support the mail_replica {}", mail_replica));
  }
}

}  // namespace drepl
