// replicator/app/config-reader.h: getting our settings out of Dovecot's
// configuration, as key=value pairs for replicator_settings_from_pairs()
// (src/sync/replicator-settings.h). Runs once at start-up, blocking (bounded by
// timeouts), before the event loop starts.
//
// Sources, in the order config_source_for() picks them:
//  1. `-c <dovecot.conf>` on our command line: run `doveconf -c <path> -n`.
//  2. Under a 2.3 master, env CONFIG_FILE is the config *socket*: speak the
//     2.3 config protocol (what every stock 2.3 service does; 2.4's config
//     protocol is binary and not spoken here):
//       -> "VERSION\tconfig\t2\t0\n" "REQ\tservice=<service>\n"
//       <- one flags line ("service=imap\t..." or empty), then "key=value"
//          lines (only settings that were set; section keys like
//          "plugin/mail_replica"), then an empty line.
//     The socket is mode 0600 root: read it before dropping privileges.
//  3. Env CONFIG_FILE naming a regular file (2.4 passes the real file,
//     and its socket separately in CONFIG_FILE_SOCKET): doveconf on that
//     file.
//  4. Otherwise `doveconf -n` with Dovecot's default config path.
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "result.h"

namespace drepl {

using ConfigPairs = std::vector<std::pair<std::string, std::string>>;

struct ConfigSource {
  enum class Kind : unsigned char { kSocket, kDoveconf } kind = Kind::kDoveconf;
  std::string path;  // socket path, or config file path ("" = doveconf's default)
};

// Chooses the source: explicit_config_path (from -c) wins; then CONFIG_FILE
// if it is a socket, else CONFIG_FILE_SOCKET if it is a socket; then
// CONFIG_FILE as a file; else doveconf's default.
ConfigSource config_source_for(const std::string& explicit_config_path);

// Reads the settings through the config socket (see above). `service` is
// the service name of the filter (e.g. "replicator"). Errors (kTemp):
// "net_connect_unix(<path>) failed: <reason>", "Config server timed out",
// "Config server sent an error: <text>", "Config server disconnected".
Result<ConfigPairs> read_config_socket(const std::string& socket_path,
                                       const std::string& service,
                                       std::chrono::milliseconds timeout);

// Runs `doveconf [-c path] -n` (found through PATH, else /usr/bin/doveconf)
// and flattens its output (parse_doveconf_output()). Errors: "doveconf
// failed (exit <n>): <first stderr line>" and the parser's errors.
Result<ConfigPairs> read_config_doveconf(const std::string& config_path,
                                         std::chrono::milliseconds timeout);

// Dispatches on the source kind. When the config socket fails, falls back to
// doveconf on the file the master was started with (-c in the master's
// /proc/<ppid>/cmdline, else doveconf's default) and logs a warning.
Result<ConfigPairs> read_config(const ConfigSource& source, const std::string& service);

// The `-c <path>` argument of our parent (Dovecot's master), or "".
std::string parent_config_path();

}  // namespace drepl
