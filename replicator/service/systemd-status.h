// replicator/systemd-status.h: the one-line STATUS= text systemd shows in
// `systemctl status dovecot-replicator` (systemd-notify.h).
#pragma once

#include <string>

#include "replicator-queue.h"

namespace drepl {

// "Queued: <sync> sync, <high> high, <low> low, <failed> failed,
// <full> full resync; <running> of <max_conns> syncs running; <total>
// users". The queue counts are those of `doveadm replicator status`
// (ReplicatorQueue::overview()); `running` counts dsync slots in use
// (Brain::running()), `max_conns` is replication_max_conns.
std::string systemd_status(const ReplicatorQueue::Overview& overview, unsigned running,
                           unsigned max_conns);

}  // namespace drepl
