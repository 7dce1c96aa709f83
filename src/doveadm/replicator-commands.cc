// src/doveadm/replicator-commands.cc: see replicator-commands.h.
#include "replicator-commands.h"

#include <fmt/format.h>

#include <limits>
#include <utility>

#include "doveadm-detail.h"
#include "doveadm-protocol.h"
#include "log-line.h"
#include "tab-escape.h"

namespace drepl {
namespace {

constexpr std::string_view kDisconnected = "Replicator disconnected unexpectedly";
constexpr std::size_t kErrorQuoteMax = 1000;

CliResult fatal(int code, std::string message) {
  CliResult r;
  r.exit_code = code;
  r.fatal = true;
  r.error = std::move(message);
  return r;
}

CliResult failure(int code, std::string message) {
  CliResult r;
  r.exit_code = code;
  r.error = std::move(message);
  return r;
}

// Connect + handshake with stock's exit codes: everything fatal, a wrong
// greeting EX_PROTOCOL.
Result<ReplicatorDoveadmClient> open_session(const ReplicatorDoveadmClientFactory& connect, CliResult* err) {
  auto client = connect();
  if (!client) {
    *err = fatal(kExitFatal, client.error().message);
    return client.error();
  }
  if (Status st = client->handshake(); !st) {
    *err = fatal(st.error().code == ErrorCode::kInvalid ? kExitProtocol : kExitFatal,
                 st.error().message);
    return st.error();
  }
  return client;
}

// A read or write failure after the handshake (stock: i_fatal("read(...) failed")).
CliResult io_failure(const Error& e) { return fatal(kExitFatal, e.message); }

// Reads lines until the empty terminator, calling `fn` on each. Returns
// success, EX_TEMPFAIL on EOF before the terminator, or a fatal I/O error.
template <typename Fn>
CliResult read_list(ReplicatorDoveadmClient& client, Fn&& fn) {
  for (;;) {
    auto line = client.read_line();
    if (!line) return io_failure(line.error());
    if (!line->has_value()) return failure(kExitTempFail, std::string(kDisconnected));
    if ((*line)->empty()) return CliResult{};
    fn(**line);
  }
}

// One-line reply of REPLICATE/ADD/REMOVE: nullopt after setting *err.
std::optional<std::string> read_single_reply(ReplicatorDoveadmClient& client, CliResult* err) {
  auto line = client.read_line();
  if (!line) {
    *err = io_failure(line.error());
    return std::nullopt;
  }
  if (!line->has_value()) {
    *err = failure(kExitTempFail, std::string(kDisconnected));
    return std::nullopt;
  }
  if ((*line)->empty() || (**line)[0] != '+') {
    std::string_view text = **line;
    if (!text.empty()) text.remove_prefix(1);
    *err = failure(kExitUsage, "Replicator failed: " + sanitize_log_text(text, kErrorQuoteMax));
    return std::nullopt;
  }
  return std::move(**line);
}

// "next sync secs" of STATUS: HH:MM:SS; "-" when absent (6-field server);
// "never" beyond 32 bits (our never_sync users).
std::string format_next_secs(const std::optional<std::int64_t>& next_secs) {
  if (!next_secs) return "-";
  if (*next_secs > std::numeric_limits<std::uint32_t>::max()) return "never";
  return format_hms(*next_secs);
}

// "next sync" of detail: "running", "never", "in HH:MM:SS" or "HH:MM:SS ago".
std::string format_next_sync(const UserDetailRow& row, UnixTime now) {
  if (row.in_flight) return "running";
  if (row.never_sync || row.next_sync_time == 0) return "never";
  if (row.next_sync_time > now) return "in " + format_hms(row.next_sync_time - now);
  return format_hms(now - row.next_sync_time) + " ago";
}

const std::vector<CliColumn>& detail_columns() {
  static const std::vector<CliColumn> columns = {
      {"username", "username", kCliHeaderExpand},
      {"priority", "priority", 0},
      {"failed", "failed", 0},
      {"failures", "failures", 0},
      {"error kind", "error kind", 0},
      {"next sync", "next sync", 0},
      {"last success", "last success", 0},
      {"last error", "last error", 0},
  };
  return columns;
}

// STATUS <mask> fallback for `detail` against a server without STATUS-DETAIL.
CliResult detail_fallback(const ReplicatorDoveadmClientFactory& connect, const std::string& mask,
                          UnixTime now, CliPrinter& printer) {
  CliResult err;
  auto client = open_session(connect, &err);
  if (!client) return err;
  if (Status st = client->send(format_doveadm_request({"STATUS", mask})); !st) {
    return io_failure(st.error());
  }
  printer.begin("table", detail_columns());
  CliResult r = read_list(*client, [&](const std::string& line) {
    auto row = parse_user_status_line(line);
    if (!row) return;
    printer.value(row->username);
    printer.value(row->priority);
    printer.value(row->failed ? "y" : "-");
    printer.value("");
    printer.value("");
    if (!row->next_secs) {
      printer.value("-");
    } else if (*row->next_secs > std::numeric_limits<std::uint32_t>::max()) {
      printer.value("never");
    } else if (*row->next_secs > 0) {
      printer.value("in " + format_hms(*row->next_secs));
    } else {
      printer.value("now");
    }
    printer.value(format_time_ago(row->last_successful_sync, now));
    printer.value("");
  });
  r.warning =
      "Replicator does not support STATUS-DETAIL (stock replicator?): "
      "showing the STATUS fields only";
  return r;
}

}  // namespace

std::string format_hms(std::int64_t secs) {
  const bool negative = secs < 0;
  // Magnitude as unsigned: -INT64_MIN does not fit in int64.
  const std::uint64_t s = negative ? 0 - static_cast<std::uint64_t>(secs)
                                   : static_cast<std::uint64_t>(secs);
  return fmt::format("{}{:02}:{:02}:{:02}", negative ? "-" : "", s / 3600, (s / 60) % 60, s % 60);
}

std::string format_time_ago(UnixTime t, UnixTime now) {
  if (t == 0) return "-";
  return format_hms(now - t);
}

CliResult run_replicator_status(const ReplicatorDoveadmClientFactory& connect,
                                const std::optional<std::string>& mask, UnixTime now,
                                CliPrinter& printer) {
  CliResult err;
  auto client = open_session(connect, &err);
  if (!client) return err;

  if (!mask) {
    printer.begin("table", {{"field", "field", kCliHeaderHideTitle},
                            {"value", "value", kCliHeaderHideTitle}});
    if (Status st = client->send("STATUS\n"); !st) return io_failure(st.error());
    return read_list(*client, [&](const std::string& line) {
      const std::size_t tab = line.find('\t');
      std::string_view view(line);
      printer.value(view.substr(0, tab));
      printer.value(tab == std::string::npos ? std::string_view() : view.substr(tab + 1));
    });
  }

  printer.begin("table", {{"username", "username", kCliHeaderExpand},
                          {"priority", "priority", 0},
                          {"fast sync", "fast sync", 0},
                          {"full sync", "full sync", 0},
                          {"success sync", "success sync", 0},
                          {"failed", "failed", 0},
                          {"next sync secs", "next sync secs", 0}});
  if (Status st = client->send(format_doveadm_request({"STATUS", *mask})); !st) {
    return io_failure(st.error());
  }
  return read_list(*client, [&](const std::string& line) {
    auto row = parse_user_status_line(line);
    if (!row) return;  // stock skips rows it cannot parse
    printer.value(row->username);
    printer.value(row->priority);
    printer.value(format_time_ago(row->last_fast_sync, now));
    printer.value(format_time_ago(row->last_full_sync, now));
    printer.value(format_time_ago(row->last_successful_sync, now));
    printer.value(row->failed ? "y" : "-");
    printer.value(format_next_secs(row->next_secs));
  });
}

CliResult run_replicator_dsync_status(const ReplicatorDoveadmClientFactory& connect, CliPrinter& printer) {
  CliResult err;
  auto client = open_session(connect, &err);
  if (!client) return err;
  printer.begin("table", {{"username", "username", kCliHeaderExpand},
                          {"type", "type", 0},
                          {"status", "status", 0}});
  if (Status st = client->send("STATUS-DSYNC\n"); !st) return io_failure(st.error());
  return read_list(*client, [&](const std::string& line) {
    auto fields = split_tabescaped(line);
    for (std::size_t i = 0; i < 3; i++) printer.value(i < fields.size() ? fields[i] : "");
  });
}

CliResult run_replicator_replicate(const ReplicatorDoveadmClientFactory& connect,
                                   const std::optional<std::string>& priority, bool full_sync,
                                   std::string_view mask, CliPrinter& printer) {
  CliResult err;
  auto client = open_session(connect, &err);
  if (!client) return err;
  const std::string request = format_doveadm_request(
      {"REPLICATE", priority ? std::string_view(*priority) : std::string_view("low"),
       full_sync ? "f" : "", mask});
  if (Status st = client->send(request); !st) return io_failure(st.error());
  printer.begin("flow", {{"result", "result", kCliHeaderHideTitle}});
  auto reply = read_single_reply(*client, &err);
  if (!reply) return err;
  printer.value(reply->substr(1) + " users updated");
  return CliResult{};
}

CliResult run_replicator_add(const ReplicatorDoveadmClientFactory& connect, std::string_view mask) {
  CliResult err;
  auto client = open_session(connect, &err);
  if (!client) return err;
  if (Status st = client->send(format_doveadm_request({"ADD", mask})); !st) {
    return io_failure(st.error());
  }
  if (!read_single_reply(*client, &err)) return err;
  return CliResult{};
}

CliResult run_replicator_remove(const ReplicatorDoveadmClientFactory& connect, std::string_view username) {
  CliResult err;
  auto client = open_session(connect, &err);
  if (!client) return err;
  if (Status st = client->send(format_doveadm_request({"REMOVE", username})); !st) {
    return io_failure(st.error());
  }
  if (!read_single_reply(*client, &err)) return err;
  return CliResult{};
}

CliResult run_replicator_detail(const ReplicatorDoveadmClientFactory& connect,
                                const std::optional<std::string>& mask, UnixTime now,
                                CliPrinter& printer) {
  const std::string user_mask = mask && !mask->empty() ? *mask : std::string("*");
  CliResult err;
  auto client = open_session(connect, &err);
  if (!client) return err;
  if (Status st = client->send(format_status_detail_request(user_mask)); !st) {
    return io_failure(st.error());
  }
  // A stock replicator logs "Unknown command" and closes without a reply:
  // EOF before the first line means "not supported".
  auto first = client->read_line();
  if (!first) return io_failure(first.error());
  if (!first->has_value()) return detail_fallback(connect, user_mask, now, printer);

  printer.begin("table", detail_columns());
  auto print_row = [&](const std::string& line) {
    auto row = parse_status_detail_line(line);
    if (!row) return;  // as stock STATUS: skip what cannot be parsed
    printer.value(row->status.username);
    printer.value(row->status.priority);
    printer.value(row->status.failed ? "y" : "-");
    printer.value(fmt::format("{}", row->consecutive_failures));
    printer.value(row->error_kind);
    printer.value(format_next_sync(*row, now));
    printer.value(format_time_ago(row->status.last_successful_sync, now));
    printer.value(row->last_error);
  };
  if ((*first)->empty()) return CliResult{};
  print_row(**first);
  return read_list(*client, print_row);
}

}  // namespace drepl
