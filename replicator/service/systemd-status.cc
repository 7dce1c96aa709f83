// replicator/systemd-status.cc: see systemd-status.h.
#include "systemd-status.h"

#include <fmt/format.h>

namespace drepl {

std::string systemd_status(const ReplicatorQueue::Overview& o, unsigned running,
                           unsigned max_conns) {
  return fmt::format(
      "Queued: {} sync, {} high, {} low, {} failed, {} full resync; {} of {} syncs running; "
      "{} users",
      o.queued_sync, o.queued_high, o.queued_low, o.queued_failed, o.queued_full_resync, running,
      max_conns, o.total_users);
}

}  // namespace drepl
