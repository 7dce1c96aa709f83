// replicator/replicator-main.cc: replicator mode wiring (placeholder until
// the brain lands).
#include "daemon-main.h"
#include "logger.h"

namespace drepl {

int run_replicator(const CliOptions&, std::optional<MasterEnv>) {
  log_fatal("replicator mode not implemented yet");
  return 89;
}

}  // namespace drepl
