// replicator/app/main.cc: dovecot-replicator's entry point. Parses the command
// line, sets up logging (Dovecot framing under the master, plain text
// standalone), creates the ReplicatorDaemon or (--aggregator) the
// AggregatorDaemon and runs its loop until it stops.
#include <malloc.h>

#include <cstdlib>
#include <string>

#include "aggregator-daemon.h"
#include "cli-options.h"
#include "listener-set.h"
#include "logger.h"
#include "master-service.h"
#include "replicator-daemon.h"
#include "service-runtime.h"

namespace {

// Dovecot's FATAL_DEFAULT: the master logs it and doesn't respawn at once.
constexpr int kFatalExit = 89;

// Creates the daemon (any error: one fatal line, exit 89), starts it and
// runs its loop; never returns otherwise.
template <typename Daemon>
int run(const drepl::CliOptions& options, std::optional<drepl::MasterEnv> master,
        drepl::InheritFrom inherit_from) {
  // Before anything opens an fd: a new fd would take a missing listener's number.
  auto inherited = drepl::inherited_listeners(master, inherit_from);
  if (!inherited) {
    drepl::log_fatal("{}", inherited.error().message);
    return kFatalExit;
  }
  auto daemon = Daemon::create(options, std::move(master), inherited.value());
  if (!daemon) {
    drepl::log_fatal("{}", daemon.error().message);
    return kFatalExit;
  }
  (*daemon)->start();
  drepl::run_until_stopped_then_exit((*daemon)->io());
}

}  // namespace

int main(int argc, char** argv) {
  // One malloc arena: glibc gives every thread that allocates (the state
  // writer's fsync worker, Asio's resolver) an arena that reserves 64 MiB
  // of address space, and the master's vsz_limit (RLIMIT_AS, default 256M)
  // counts reserved address space, not resident memory.
  mallopt(M_ARENA_MAX, 1);
  drepl::CliOptions options;
  int exit_code = 0;
  if (!drepl::parse_cli(argc, argv, &options, &exit_code)) return exit_code;

  std::optional<drepl::MasterEnv> master;
  if (!options.foreground) master = drepl::master_env_from_environment();
  // The role from the master's SERVICE_NAME (an aggregator `executable` line
  // without --aggregator must not run a second replicator).
  auto role = drepl::aggregator_role(options.aggregator, master ? master->service_name : "");
  if (!role) {
    drepl::log_init(master ? drepl::LogTarget::kMaster : drepl::LogTarget::kPlain, "replicator", false);
    drepl::log_fatal("{}", role.error().message);
    return kFatalExit;
  }
  options.aggregator = *role;
  const char* mode = options.aggregator ? "aggregator" : "replicator";
  bool debug = options.debug || (master && master->log_debug);
  drepl::log_init(master ? drepl::LogTarget::kMaster : drepl::LogTarget::kPlain, mode, debug);
  drepl::abort_on_uncaught_exception();

  if (options.aggregator) {
    return run<drepl::AggregatorDaemon>(options, std::move(master), drepl::InheritFrom::kMaster);
  }
  return run<drepl::ReplicatorDaemon>(options, std::move(master),
                                      drepl::InheritFrom::kMasterOrSystemd);
}
