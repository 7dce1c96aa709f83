// replicator/app/cli-options.h: the command line (CLI11).
//
// Under Dovecot's master the executable runs with no arguments (replicator)
// or with --aggregator; everything else comes from the Dovecot config.
// The other options exist for tests and benchmarks that run the daemon
// outside a master ("standalone": detected when the master's environment is
// absent, or forced with --foreground).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "result.h"

namespace drepl {

struct CliOptions {
  bool aggregator = false;        // --aggregator: run as the aggregator service
  bool foreground = false;        // --foreground: standalone even if the master env exists
  bool debug = false;             // --debug: log debug lines
  std::string config_path;        // -c: dovecot.conf to read through doveconf
  bool no_config = false;         // --no-config: built-in defaults + -o only
  std::vector<std::pair<std::string, std::string>> overrides;  // -o key=value
  std::string base_dir;           // --base-dir (overrides base_dir)
  std::string state_dir;          // --state-dir (overrides state_dir)
  // Standalone listeners (created by us; empty = the default name under base_dir).
  std::vector<std::string> listen_notify;   // replicator-notify protocol
  std::vector<std::string> listen_doveadm;  // replicator-doveadm protocol
  std::vector<std::string> listen_plugin;   // replication-notify (plugin socket)
  std::vector<std::string> listen_fifo;     // replication-notify-fifo
  // HTTP GET /metrics (docs/metrics.md): a UNIX socket PATH (with a '/')
  // or HOST:PORT for TCP. None by default.
  std::vector<std::string> listen_metrics;
  bool no_default_listeners = false;        // --no-default-listeners
};

// The role under Dovecot's master: the aggregator when --aggregator is given
// or the master started us as service "aggregator" (SERVICE_NAME), so an
// `executable` line without the flag still works. Error (kInvalid), one line:
// --aggregator under service "replicator" (that process would take the
// aggregator's sockets and leave the replicator's unserved).
// `service_name` is empty outside a master.
Result<bool> aggregator_role(bool aggregator_flag, std::string_view service_name);

// Parses argv. On --help/--version or an error, prints (usage to stdout,
// errors to stderr) and sets *exit_code_r (0 or 64); returns false then.
bool parse_cli(int argc, char** argv, CliOptions* options_r, int* exit_code_r);

}  // namespace drepl
