// src/doveadm/replicator-commands.h: what each `doveadm replicator ...` command does,
// without Dovecot: talk to the replicator-doveadm socket (replicator-doveadm-client.h)
// and hand the rows to a printer. doveadm-cmds/ maps CliPrinter onto
// doveadm_print_header()/doveadm_print(), so every doveadm formatter (table,
// tab, flow, json, ...) works, and maps CliResult onto doveadm's exit code.
//
// Stock commands (spec §8.3; same requests, columns, values and exit codes as
// Dovecot 2.3's doveadm-replicator.c):
//   status [<mask>]   STATUS / STATUS\tTE(mask)
//   dsync-status      STATUS-DSYNC
//   replicate         REPLICATE\tTE(prio|"low")\t<"f"|"">\tTE(mask)
//   add               ADD\tTE(mask)
//   remove            REMOVE\tTE(user)
// Ours:
//   detail [<mask>]   STATUS-DETAIL\tTE(mask) (doveadm-detail.h); falls back to
//                     STATUS against a replicator that does not know it.
//
// Deliberate differences from stock, all on inputs stock mishandles:
//   - a STATUS row with 6 fields (pre-2.3.20 server) prints next sync "-"
//     (stock 2.3.20+ dereferences NULL); next_secs beyond 32 bits (our
//     never_sync users) prints "never" (stock skips the row);
//   - negative time differences print as "-HH:MM:SS" (stock prints garbage);
//   - EOF before the end of the STATUS overview is an error (exit 75), as it
//     already is for STATUS <mask> in stock.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "clock.h"
#include "replicator-doveadm-client.h"
#include "result.h"

namespace drepl {

// sysexits.h / Dovecot exit codes used by the commands.
inline constexpr int kExitUsage = 64;       // EX_USAGE: "Replicator failed: ..."
inline constexpr int kExitTempFail = 75;    // EX_TEMPFAIL: disconnected unexpectedly
inline constexpr int kExitProtocol = 76;    // EX_PROTOCOL: not a replicator-doveadm socket
// Dovecot's FATAL_DEFAULT (i_fatal()); doveadm's failure-exit hook turns it
// into EX_TEMPFAIL (75), so the process exits 75 as stock does.
inline constexpr int kExitFatal = 89;

// Header flags: the values of Dovecot's enum doveadm_print_header_flags.
inline constexpr unsigned kCliHeaderHideTitle = 0x04;
inline constexpr unsigned kCliHeaderExpand = 0x08;

struct CliColumn {
  std::string_view key;    // also the JSON key
  std::string_view title;
  unsigned flags = 0;      // kCliHeader*
};

// Receives one command's output. begin() is called at most once, before any
// value(); commands that print nothing (add, remove) never call it.
class CliPrinter {
 public:
  virtual ~CliPrinter() = default;
  // `formatter`: what stock passes to doveadm_print_init() ("table" or
  // "flow"); doveadm's -f option overrides it.
  virtual void begin(std::string_view formatter, const std::vector<CliColumn>& columns) = 0;
  // The next cell, row-major (columns.size() values per row).
  virtual void value(std::string_view value) = 0;
};

struct CliResult {
  int exit_code = 0;     // 0 or one of the kExit* values
  bool fatal = false;    // stock used i_fatal(): log as Fatal and exit with exit_code
  std::string error;     // one line; empty on success
  std::string warning;   // one line for stderr (e.g. the STATUS-DETAIL fallback); may be set on success
};

// Opens a new connection (not yet handshaken), e.g.
//   [&] { return ReplicatorDoveadmClient::connect(path, clock); }
using ReplicatorDoveadmClientFactory = std::function<Result<ReplicatorDoveadmClient>()>;

// `doveadm replicator status [<mask>]`. Without a mask: columns field/value
// (titles hidden), each overview line split at its first TAB. With a mask:
// username (expand), priority, fast sync, full sync, success sync, failed,
// next sync secs. `now`: Unix seconds for the "ago" columns.
CliResult run_replicator_status(const ReplicatorDoveadmClientFactory& connect,
                                const std::optional<std::string>& mask, UnixTime now,
                                CliPrinter& printer);

// `doveadm replicator dsync-status`: username (expand), type, status; missing
// fields print empty.
CliResult run_replicator_dsync_status(const ReplicatorDoveadmClientFactory& connect, CliPrinter& printer);

// `doveadm replicator replicate [-f] [-p <priority>] <mask>`: flow formatter,
// one hidden-title column "result": "<n> users updated". A '-' reply:
// error "Replicator failed: <text>", exit 64. `priority` nullopt = "low".
CliResult run_replicator_replicate(const ReplicatorDoveadmClientFactory& connect,
                                   const std::optional<std::string>& priority, bool full_sync,
                                   std::string_view mask, CliPrinter& printer);

// `doveadm replicator add <mask>` / `remove <username>`: print nothing; a
// '-' reply: "Replicator failed: <text>", exit 64.
CliResult run_replicator_add(const ReplicatorDoveadmClientFactory& connect, std::string_view mask);
CliResult run_replicator_remove(const ReplicatorDoveadmClientFactory& connect, std::string_view username);

// `doveadm replicator detail [<mask>]` (mask default "*"): username (expand),
// priority, failed, failures, error kind, next sync, last success, last error.
CliResult run_replicator_detail(const ReplicatorDoveadmClientFactory& connect,
                                const std::optional<std::string>& mask, UnixTime now,
                                CliPrinter& printer);

// ---- value formatting (exposed for tests) ------------------------------------

// "%02d:%02d:%02d" of `secs` with hours not wrapped ("123:04:05");
// negative values get a leading '-'.
std::string format_hms(std::int64_t secs);
// Stock time_ago(): "-" when t == 0, else format_hms(now - t).
std::string format_time_ago(UnixTime t, UnixTime now);

}  // namespace drepl
