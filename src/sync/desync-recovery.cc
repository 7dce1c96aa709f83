#include "desync-recovery.h"

namespace drepl {

bool dsync_result_wants_rerun(const DsyncResult& result) {
  if (result.ok || result.error.kind != SyncErrorKind::kRemoteError) return false;
  return result.remote_code == "UNKNOWN" || result.remote_code == "CHANGED";
}

DesyncStep desync_next_step(std::uint32_t streak) {
  DesyncStep step;
  step.retry_now = streak <= 2;
  step.oneway = streak >= 2 && streak % 2 == 0;
  return step;
}

}  // namespace drepl
