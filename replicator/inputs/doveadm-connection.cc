// replicator/inputs/doveadm-connection.cc: see doveadm-connection.h.
#include "doveadm-connection.h"

#include <algorithm>
#include <variant>

#include <fmt/format.h>

#include "doveadm-detail.h"
#include "doveadm-protocol.h"
#include "logger.h"
#include "wildcard.h"

namespace drepl {
namespace {
constexpr std::size_t kStatusChunkUsers = 2000;
constexpr std::size_t kSortedListingMax = 200000;
}  // namespace

DoveadmConnection::DoveadmConnection(Socket socket, std::string listener_name,
                                     DoveadmBackend& backend,
                                     std::unique_ptr<ClientCounter::Token> token)
    : LineConnection(std::move(socket), kDoveadmMaxLineBytes, std::move(listener_name)),
      backend_(backend),
      token_(std::move(token)) {}

void DoveadmConnection::on_start() { send(format_doveadm_server_greeting()); }

LineConnection::LineAction DoveadmConnection::on_line(std::string_view line) {
  if (!handshaked_) {
    auto st = check_doveadm_client_handshake(line);
    if (!st) {
      log_error("{}: {}{}", name(), st.error().message, peer_text());
      close();
      return LineAction::kPause;
    }
    handshaked_ = true;
    // Commands wait until the replicator knows the userdb's users.
    waiting_ready_ = true;
    auto self = std::static_pointer_cast<DoveadmConnection>(shared_from_this());
    backend_.when_ready([self] {
      self->waiting_ready_ = false;
      if (self->paused_for_ready_) {
        self->paused_for_ready_ = false;
        self->resume_input();
      }
    });
    if (!waiting_ready_) return LineAction::kContinue;
    paused_for_ready_ = true;
    return LineAction::kPause;
  }
  if (auto detail = parse_status_detail_command(line)) {
    return start_status_listing(detail->mask, true);
  }
  auto parsed = parse_doveadm_command(line);
  if (!parsed) {
    // Stock logs and disconnects without a word; we also tell the client
    // why ("-Unknown command: FOO"), then disconnect as stock does. The
    // stock CLI never sends such lines, so it sees no difference.
    log_error("{}: {}{}", name(), parsed.error().message, peer_text());
    send(format_error_reply(parsed.error().message));
    close_after_output();
    return LineAction::kPause;
  }
  DoveadmCommand& cmd = parsed.value();
  if (std::holds_alternative<StatusOverviewCommand>(cmd)) {
    send(format_status_overview(backend_.queue().overview()));
    return LineAction::kContinue;
  }
  if (auto* c = std::get_if<StatusUsersCommand>(&cmd)) return start_status_listing(c->mask, false);
  if (std::holds_alternative<StatusDsyncCommand>(cmd)) {
    std::string out;
    for (const DsyncSlotStatus& s : backend_.dsync_status()) {
      out += format_dsync_status_line(s.username, s.type, s.status);
    }
    out += kEndOfListReply;
    send(out);
    return LineAction::kContinue;
  }
  if (auto* c = std::get_if<ReplicateCommand>(&cmd)) {
    if (!c->priority) {
      send(kInvalidPriorityReply);
      return LineAction::kContinue;
    }
    std::size_t count = backend_.replicate(*c->priority, c->full, c->mask);
    send(format_count_reply(count));
    return LineAction::kContinue;
  }
  if (auto* c = std::get_if<AddCommand>(&cmd)) {
    if (!has_wildcards(c->mask)) {
      backend_.add(c->mask, [](Status) {});
      send(kOkReply);
      return LineAction::kContinue;
    }
    // A userdb listing: answer when it is done; later commands wait. While
    // paused nothing else references this connection, so the callback
    // keeps it alive.
    auto self = std::static_pointer_cast<DoveadmConnection>(shared_from_this());
    backend_.add(c->mask, [self](Status st) {
      DoveadmConnection* conn = self.get();
      if (conn->is_closed()) return;
      conn->send(st ? std::string(kOkReply) : format_error_reply(st.error().message));
      conn->resume_input();
    });
    return LineAction::kPause;
  }
  if (auto* c = std::get_if<RemoveCommand>(&cmd)) {
    send(backend_.remove(c->username) ? kOkReply : kUserNotFoundReply);
    return LineAction::kContinue;
  }
  if (auto* c = std::get_if<NotifyCommand>(&cmd)) {
    backend_.notify_synced(c->username, c->full, c->state);
    send(kOkReply);
    return LineAction::kContinue;
  }
  return LineAction::kContinue;
}

void DoveadmConnection::on_line_too_long() {
  if (!handshaked_) {
    LineConnection::on_line_too_long();
    return;
  }
  log_error("{}: Client sent too long line (limit {} bytes){}", name(), kDoveadmMaxLineBytes,
            peer_text());
  send(format_error_reply(fmt::format("Command line too long (limit {} bytes)",
                                      kDoveadmMaxLineBytes)));
  close_after_output();
}

LineConnection::LineAction DoveadmConnection::start_status_listing(const std::string& mask,
                                                                    bool detail) {
  listing_.clear();
  listing_pos_ = 0;
  listing_detail_ = detail;
  const ReplicatorQueue& q = backend_.queue();
  if (!has_wildcards(mask)) {
    if (q.lookup(mask) != nullptr) listing_.push_back(mask);
  } else {
    q.for_each([&](const ReplicatorUser& u) {
      if (wildcard_match(u.username, mask)) listing_.push_back(u.username);
    });
    // Sorted output is friendlier, but sorting a huge listing would stall
    // the event loop; beyond this size the order is the queue's.
    if (listing_.size() <= kSortedListingMax) std::sort(listing_.begin(), listing_.end());
  }
  listing_active_ = true;
  write_status_chunk();
  return listing_active_ ? LineAction::kPause : LineAction::kContinue;
}

void DoveadmConnection::write_status_chunk() {
  if (!listing_active_ || is_closed()) return;
  const ReplicatorQueue& q = backend_.queue();
  std::string out;
  std::size_t end = std::min(listing_.size(), listing_pos_ + kStatusChunkUsers);
  for (; listing_pos_ < end; ++listing_pos_) {
    // Users removed since the listing started are skipped.
    const ReplicatorUser* u = q.lookup(listing_[listing_pos_]);
    if (u == nullptr) continue;
    out += listing_detail_ ? format_status_detail_line(q, *u)
                           : format_user_status_line(*u, q.next_secs(*u));
  }
  if (listing_pos_ >= listing_.size()) {
    out += kEndOfListReply;
    listing_active_ = false;
    std::vector<std::string>().swap(listing_);
    send(out);
    resume_input();
    return;
  }
  send(out);
  // More follows from on_output_drained() once the client has read this.
}

void DoveadmConnection::on_output_drained() { write_status_chunk(); }

}  // namespace drepl
