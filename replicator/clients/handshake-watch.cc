// replicator/clients/handshake-watch.cc: see handshake-watch.h.
#include "handshake-watch.h"

namespace drepl {

HandshakeWatch::Verdict HandshakeWatch::observe(TimePoint now,
                                                const std::optional<TcpConnSample>& sample) {
  if (!active()) return Verdict::kOff;
  if (!sample) {
    if (seen_) ended_ = true;  // closed: doveadm-server fails (or ends) by itself
    return ended_ ? Verdict::kOff : Verdict::kWaiting;
  }
  if (sample->bytes_received > 0) {
    ended_ = true;
    return Verdict::kAnswered;
  }
  if (!sample->established) {
    // Still connecting (a new connection), or closing (the one we watched:
    // doveadm-server fails or ends by itself).
    if (seen_ && sample->inode == inode_) ended_ = true;
    return ended_ ? Verdict::kOff : Verdict::kWaiting;
  }
  if (!seen_ || sample->inode != inode_) {
    seen_ = true;
    inode_ = sample->inode;
    since_ = now;
  }
  if (now - since_ >= timeout_) {
    ended_ = true;
    return Verdict::kExpired;
  }
  return Verdict::kWaiting;
}

std::chrono::milliseconds HandshakeWatch::waited(TimePoint now) const {
  if (!seen_) return std::chrono::milliseconds(0);
  return std::chrono::duration_cast<std::chrono::milliseconds>(now - since_);
}

}  // namespace drepl
