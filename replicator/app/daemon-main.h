// replicator/app/daemon-main.h: the two modes' entry points, called by main().
#pragma once

#include <optional>

#include "cli-options.h"
#include "master-service.h"

namespace drepl {

// Aggregator mode (--aggregator). Returns the process exit code.
int run_aggregator(const CliOptions& options, std::optional<MasterEnv> master);
// Replicator mode (default). Returns the process exit code.
int run_replicator(const CliOptions& options, std::optional<MasterEnv> master);

}  // namespace drepl
