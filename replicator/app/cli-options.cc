// replicator/app/cli-options.cc: see cli-options.h.
#include "cli-options.h"

#include <CLI/CLI.hpp>

#include <iostream>

namespace drepl {

bool parse_cli(int argc, char** argv, CliOptions* o, int* exit_code_r) {
  CLI::App app{
      "dovecot-replicator: the replicator daemon for Dovecot replication.\n"
      "Run by Dovecot's master as `service replicator { executable = ... }` (no arguments)\n"
      "and `service aggregator { executable = ... --aggregator; chroot = }`.\n"
      "Without the master's environment it runs standalone (tests, benchmarks)."};
  app.set_version_flag("--version", std::string("dovecot-replicator 0.1.0"));
  app.add_flag("--aggregator", o->aggregator,
               "Run as the aggregator: take the plugin's replication-notify(-fifo) and forward "
               "to the replicator socket");
  app.add_flag("--foreground", o->foreground,
               "Standalone mode even when started with a Dovecot master environment");
  app.add_flag("--debug", o->debug, "Log debug messages");
  app.add_option("-c,--config", o->config_path,
                 "dovecot.conf to read settings from (through doveconf)");
  app.add_flag("--no-config", o->no_config,
               "Don't read Dovecot's configuration: built-in defaults and -o only");
  std::vector<std::string> overrides;
  app.add_option("-o,--set", overrides, "Override a setting: key=value (repeatable)");
  app.add_option("--base-dir", o->base_dir, "Override base_dir");
  app.add_option("--state-dir", o->state_dir, "Override state_dir (replicator.db location)");
  app.add_option("--listen-notify", o->listen_notify,
                 "Standalone: UNIX socket for the replicator-notify protocol (repeatable)");
  app.add_option("--listen-doveadm", o->listen_doveadm,
                 "Standalone: UNIX socket for the replicator-doveadm protocol (repeatable)");
  app.add_option("--listen-plugin", o->listen_plugin,
                 "Standalone: UNIX socket for the plugin's sync requests (replication-notify)");
  app.add_option("--listen-fifo", o->listen_fifo,
                 "Standalone: FIFO for the plugin's async notifications (replication-notify-fifo)");
  app.add_option("--listen-metrics", o->listen_metrics,
                 "Standalone: Prometheus metrics over HTTP (GET /metrics) on a UNIX socket PATH "
                 "(containing '/') or HOST:PORT (repeatable; none by default)");
  app.add_flag("--no-default-listeners", o->no_default_listeners,
               "Standalone: only the --listen-* listeners (default: the stock names under "
               "base_dir)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    *exit_code_r = app.exit(e) == 0 ? 0 : 64;
    return false;
  }
  for (const std::string& kv : overrides) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::cerr << "Invalid -o value (want key=value): " << kv << "\n";
      *exit_code_r = 64;
      return false;
    }
    o->overrides.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
  }
  return true;
}

Result<bool> aggregator_role(bool aggregator_flag, std::string_view service_name) {
  if (service_name == "aggregator") return true;
  if (aggregator_flag && service_name == "replicator") {
    return invalid("--aggregator given, but the master started this process as service "
                   "replicator: remove --aggregator from `service replicator { executable }`");
  }
  return aggregator_flag;
}

}  // namespace drepl
