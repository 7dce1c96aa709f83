// doveadm-cmds/doveadm-replicator-plugin.cc: lib10_doveadm_replicator_plugin.so,
// a doveadm module (loaded from <moduledir>/doveadm/) adding the
// `doveadm replicator ...` commands that talk to our replicator's
// replicator-doveadm socket.
//
//   2.3: only `replicator detail` (the built-in status/dsync-status/
//        replicate/add/remove already work against our daemon, and doveadm
//        runs the first registered command of a name: the built-in one).
//   2.4: the five stock commands (removed from 2.4) with the stock usage
//        strings and output, plus `replicator detail`.
//
// A thin adapter: the command logic lives in src/doveadm/replicator-commands.h; this
// file reads the doveadm parameters, maps CliPrinter onto doveadm_print
// (so -f table|tab|flow|json|... all work) and CliResult onto doveadm's exit
// code and log. Parameter tables are static arrays filled field by field at
// init (no C99 compound literals; 2.4 adds `key`).
#include <ctime>
#include <optional>
#include <string>
#include <vector>

#include "replicator-doveadm-client.h"
#include "millis-clock.h"
#include "replicator-commands.h"
#include "process-run.h"
#include "replica-verify-run.h"

// Dovecot headers last: their macros must not leak into the C++ headers above.
extern "C" {
#include "lib.h"
#include "doveadm.h"
#include "doveadm-print.h"
#include "master-service.h"
}
#include <unistd.h>

#if DOVECOT_VERSION_MAJOR > 2 || (DOVECOT_VERSION_MAJOR == 2 && DOVECOT_VERSION_MINOR >= 4)
#define DREPL_DOVECOT_24 1
#else
#define DREPL_DOVECOT_24 0
#endif

struct module;

namespace {

using drepl::CliColumn;
using drepl::CliResult;

// ---- output -------------------------------------------------------------------

class DoveadmPrinter final : public drepl::CliPrinter {
 public:
  void begin(std::string_view formatter, const std::vector<CliColumn>& columns) override {
    // A no-op when `doveadm -f <formatter>` already chose one.
    doveadm_print_init(std::string(formatter).c_str());
    for (const CliColumn& c : columns) {
      doveadm_print_header(std::string(c.key).c_str(), std::string(c.title).c_str(),
                           static_cast<enum doveadm_print_header_flags>(c.flags));
    }
  }
  void value(std::string_view v) override { doveadm_print(std::string(v).c_str()); }
};

// Logs the outcome like stock and sets the exit code. A fatal outcome exits
// here, as stock's i_fatal() does; call it after every C++ object of the
// command is gone.
void finish(const CliResult& r) {
  if (!r.warning.empty()) i_warning("%s", r.warning.c_str());
  if (r.error.empty()) return;
  if (r.fatal) i_fatal_status(r.exit_code, "%s", r.error.c_str());
  i_error("%s", r.error.c_str());
  doveadm_exit_code = r.exit_code;
}

// ---- parameters ---------------------------------------------------------------

struct CommonArgs {
  std::string socket_path;           // -a, default <base_dir>/replicator-doveadm
  std::optional<std::string> mask;   // "user-mask" or "user" positional
};

CommonArgs read_common(struct doveadm_cmd_context* cctx, const char* positional) {
  CommonArgs args;
  const char* path = nullptr;
  if (doveadm_cmd_param_str(cctx, "socket-path", &path) && path != nullptr) {
    args.socket_path = path;
  } else {
    args.socket_path = std::string(doveadm_settings->base_dir) + "/replicator-doveadm";
  }
  const char* value = nullptr;
  if (positional != nullptr && doveadm_cmd_param_str(cctx, positional, &value) &&
      value != nullptr) {
    args.mask = value;
  }
  return args;
}

drepl::ReplicatorDoveadmClientFactory make_factory(const std::string& socket_path,
                                         const drepl::MillisClock& clock) {
  return [socket_path, &clock] { return drepl::ReplicatorDoveadmClient::connect(socket_path, clock); };
}

drepl::UnixTime now_secs() { return static_cast<drepl::UnixTime>(std::time(nullptr)); }

// ---- commands -------------------------------------------------------------------

CliResult run_detail(struct doveadm_cmd_context* cctx) {
  CommonArgs args = read_common(cctx, "user-mask");
  drepl::SteadyMillisClock clock;
  DoveadmPrinter printer;
  return drepl::run_replicator_detail(make_factory(args.socket_path, clock), args.mask,
                                      now_secs(), printer);
}

void cmd_replicator_detail(struct doveadm_cmd_context* cctx) {
  finish(run_detail(cctx));
}

// `replicator verify`: both replicas are asked through `doveadm` itself (this
// binary, same config): the local one directly, the replica with -S <host:port>
// through its doveadm server (doveadm_password from the config).
constexpr std::size_t kVerifyMaxOutput = 512u << 20;
constexpr int kVerifyCommandTimeoutMs = 300'000;

std::string self_binary(const char* fallback) {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string(fallback);
}

// One line of a failed command's stderr for the verdict (the last non-empty line).
std::string last_line(const std::string& text) {
  std::string_view v = text;
  while (!v.empty() && (v.back() == '\n' || v.back() == '\r')) v.remove_suffix(1);
  auto lf = v.rfind('\n');
  return std::string(lf == std::string_view::npos ? v : v.substr(lf + 1));
}

CliResult run_verify(struct doveadm_cmd_context* cctx, drepl::VerifySummary* summary_r) {
  CommonArgs args = read_common(cctx, "user-mask");
  const std::string doveadm_bin = self_binary("/usr/bin/doveadm");
  const std::string config = master_service_get_config_path(master_service);
  std::string replica;
  const char* r = nullptr;
  if (doveadm_cmd_param_str(cctx, "replica", &r) && r != nullptr) {
    replica = r;
  } else {
    std::string doveconf = doveadm_bin.substr(0, doveadm_bin.rfind('/') + 1) + "doveconf";
    auto out = drepl::run_process({doveconf, "-c", config, "-h", "plugin/mail_replica"}, 1 << 20,
                                  30'000);
    if (out && out->exit_code == 0) replica = last_line(out->out);
  }
  CliResult fail;
  fail.exit_code = drepl::kExitUsage;
  if (replica.empty()) {
    fail.error = "replicator verify: no mail_replica in the config: give the replica with -r tcp:<host>:<port>";
    return fail;
  }
  auto target = drepl::verify_doveadm_target(replica, doveadm_settings->doveadm_port);
  if (!target) {
    fail.error = "replicator verify: " + target.error().message;
    return fail;
  }
  drepl::SteadyMillisClock clock;
  drepl::VerifyBackend backend;
  backend.clock = &clock;
  backend.pause = [](drepl::Millis ms) { usleep(static_cast<useconds_t>(ms) * 1000); };
  auto factory = make_factory(args.socket_path, clock);
  backend.list_users = [&](const std::string& mask) {
    return drepl::list_replicator_users(factory, mask);
  };
  backend.doveadm = [&](drepl::VerifySide side, const std::string& user,
                        const std::vector<std::string>& cmd) -> drepl::Result<std::string> {
    std::vector<std::string> argv = {doveadm_bin, "-c", config, "-f", "tab"};
    const std::size_t words = cmd.at(0) == "mailbox" ? 2 : 1;
    argv.insert(argv.end(), cmd.begin(), cmd.begin() + static_cast<std::ptrdiff_t>(words));
    if (side == drepl::VerifySide::kReplica) {
      argv.push_back("-S");
      argv.push_back(*target);
    }
    argv.push_back("-u");
    argv.push_back(user);
    argv.insert(argv.end(), cmd.begin() + static_cast<std::ptrdiff_t>(words), cmd.end());
    auto out = drepl::run_process(argv, kVerifyMaxOutput, kVerifyCommandTimeoutMs);
    if (!out) return out.error();
    if (out->exit_code != 0) {
      return drepl::make_error(
          drepl::ErrorCode::kTemp,
          (side == drepl::VerifySide::kReplica ? "replica " + *target : std::string("local")) +
              ": doveadm " + cmd.at(0) + " exited " + std::to_string(out->exit_code) + ": " +
              last_line(out->err));
    }
    return std::move(out->out);
  };
  DoveadmPrinter printer;
  drepl::VerifyOutcome o = drepl::run_replicator_verify(backend, args.mask.value_or("*"), {}, printer);
  *summary_r = o.summary;
  return o.result;
}

void cmd_replicator_verify(struct doveadm_cmd_context* cctx) {
  drepl::VerifySummary summary;
  CliResult r = run_verify(cctx, &summary);
  if (r.error.empty()) {
    i_info("replicator verify: %s", summary.text().c_str());
    doveadm_exit_code = r.exit_code;
    return;
  }
  finish(r);
}

#if DREPL_DOVECOT_24

CliResult run_status(struct doveadm_cmd_context* cctx) {
  CommonArgs args = read_common(cctx, "user-mask");
  drepl::SteadyMillisClock clock;
  DoveadmPrinter printer;
  return drepl::run_replicator_status(make_factory(args.socket_path, clock), args.mask,
                                      now_secs(), printer);
}

CliResult run_dsync_status(struct doveadm_cmd_context* cctx) {
  CommonArgs args = read_common(cctx, nullptr);
  drepl::SteadyMillisClock clock;
  DoveadmPrinter printer;
  return drepl::run_replicator_dsync_status(make_factory(args.socket_path, clock), printer);
}

CliResult run_replicate(struct doveadm_cmd_context* cctx) {
  CommonArgs args = read_common(cctx, "user-mask");
  bool full_sync = false;
  (void)doveadm_cmd_param_bool(cctx, "full-sync", &full_sync);
  std::optional<std::string> priority;
  const char* p = nullptr;
  if (doveadm_cmd_param_str(cctx, "priority", &p) && p != nullptr) priority = p;
  drepl::SteadyMillisClock clock;
  DoveadmPrinter printer;
  return drepl::run_replicator_replicate(make_factory(args.socket_path, clock), priority,
                                         full_sync, *args.mask, printer);
}

CliResult run_add(struct doveadm_cmd_context* cctx) {
  CommonArgs args = read_common(cctx, "user-mask");
  drepl::SteadyMillisClock clock;
  return drepl::run_replicator_add(make_factory(args.socket_path, clock), *args.mask);
}

CliResult run_remove(struct doveadm_cmd_context* cctx) {
  CommonArgs args = read_common(cctx, "user");
  drepl::SteadyMillisClock clock;
  return drepl::run_replicator_remove(make_factory(args.socket_path, clock), *args.mask);
}

// Stock prints the usage (and exits) when the positional argument is missing.
bool has_positional(struct doveadm_cmd_context* cctx, const char* name) {
  const char* value = nullptr;
  return doveadm_cmd_param_str(cctx, name, &value) && value != nullptr;
}

void cmd_replicator_status(struct doveadm_cmd_context* cctx) { finish(run_status(cctx)); }
void cmd_replicator_dsync_status(struct doveadm_cmd_context* cctx) {
  finish(run_dsync_status(cctx));
}
void cmd_replicator_replicate(struct doveadm_cmd_context* cctx) {
  if (!has_positional(cctx, "user-mask")) help_ver2(cctx->cmd);
  finish(run_replicate(cctx));
}
void cmd_replicator_add(struct doveadm_cmd_context* cctx) {
  if (!has_positional(cctx, "user-mask")) help_ver2(cctx->cmd);
  finish(run_add(cctx));
}
void cmd_replicator_remove(struct doveadm_cmd_context* cctx) {
  if (!has_positional(cctx, "user")) help_ver2(cctx->cmd);
  finish(run_remove(cctx));
}

#endif  // DREPL_DOVECOT_24

// ---- registration -------------------------------------------------------------

constexpr std::size_t kMaxParams = 5;  // 4 parameters + the terminator

struct CommandSlot {
  struct doveadm_cmd_ver2 cmd;
  struct doveadm_cmd_param params[kMaxParams];
};

enum : std::size_t { kDetail, kVerify, kStatus, kDsyncStatus, kReplicate, kAdd, kRemove, kCommandCount };
CommandSlot slots[kCommandCount];
std::size_t registered_count = 0;

void set_param(struct doveadm_cmd_param& p, char short_opt, const char* name,
               doveadm_cmd_param_t type, doveadm_cmd_param_flag_t flags) {
  p.short_opt = short_opt;
  p.name = name;
#if DREPL_DOVECOT_24
  p.key = name;
#endif
  p.type = type;
  p.flags = flags;
}

// Fills slot `i`: name, usage, handler, and parameters terminated by an
// all-zero entry (name NULL).
struct ParamSpec {
  char short_opt;
  const char* name;
  doveadm_cmd_param_t type;
  doveadm_cmd_param_flag_t flags;
};
void define_command(std::size_t i, const char* name, const char* usage,
                    doveadm_command_ver2_t* handler, std::initializer_list<ParamSpec> params) {
  CommandSlot& s = slots[i];
  s.cmd = {};
  s.cmd.cmd = handler;
  s.cmd.name = name;
  s.cmd.usage = usage;
  s.cmd.flags = CMD_FLAG_NONE;
  std::size_t n = 0;
  for (const ParamSpec& p : params) {
    s.params[n] = {};
    set_param(s.params[n], p.short_opt, p.name, p.type, p.flags);
    n++;
  }
  for (; n < kMaxParams; n++) {
    s.params[n] = {};
    set_param(s.params[n], '\0', nullptr, CMD_PARAM_BOOL, CMD_PARAM_FLAG_NONE);
  }
  s.cmd.parameters = s.params;
}

constexpr ParamSpec kSocketParam{'a', "socket-path", CMD_PARAM_STR, CMD_PARAM_FLAG_NONE};
constexpr ParamSpec kMaskParam{'\0', "user-mask", CMD_PARAM_STR, CMD_PARAM_FLAG_POSITIONAL};

}  // namespace

extern "C" {

#define DREPL_EXPORT __attribute__((visibility("default")))

// Checked by module_dir_load() against the running doveadm (up to '(').
DREPL_EXPORT extern const char* doveadm_replicator_plugin_version;
DREPL_EXPORT const char* doveadm_replicator_plugin_version = DOVECOT_ABI_VERSION;

DREPL_EXPORT void doveadm_replicator_plugin_init(struct module* module);
DREPL_EXPORT void doveadm_replicator_plugin_deinit(void);

void doveadm_replicator_plugin_init(struct module* /*module*/) {
  define_command(kDetail, "replicator detail", "[-a <replicator socket path>] [<user mask>]",
                 cmd_replicator_detail, {kSocketParam, kMaskParam});
  define_command(kVerify, "replicator verify",
                 "[-a <replicator socket path>] [-r <mail_replica>] [<user mask>]",
                 cmd_replicator_verify,
                 {kSocketParam, {'r', "replica", CMD_PARAM_STR, CMD_PARAM_FLAG_NONE}, kMaskParam});
  std::size_t order[kCommandCount] = {kDetail, kVerify};
  registered_count = 2;
#if DREPL_DOVECOT_24
  define_command(kStatus, "replicator status", "[-a <replicator socket path>] [<user mask>]",
                 cmd_replicator_status, {kSocketParam, kMaskParam});
  define_command(kDsyncStatus, "replicator dsync-status", "[-a <replicator socket path>]",
                 cmd_replicator_dsync_status, {kSocketParam});
  define_command(kReplicate, "replicator replicate",
                 "[-a <replicator socket path>] [-f] [-p <priority>] <user mask>",
                 cmd_replicator_replicate,
                 {kSocketParam,
                  {'f', "full-sync", CMD_PARAM_BOOL, CMD_PARAM_FLAG_NONE},
                  {'p', "priority", CMD_PARAM_STR, CMD_PARAM_FLAG_NONE},
                  kMaskParam});
  define_command(kAdd, "replicator add", "[-a <replicator socket path>] <user mask>",
                 cmd_replicator_add, {kSocketParam, kMaskParam});
  define_command(kRemove, "replicator remove", "[-a <replicator socket path>] <username>",
                 cmd_replicator_remove,
                 {kSocketParam, {'\0', "user", CMD_PARAM_STR, CMD_PARAM_FLAG_POSITIONAL}});
  // Stock order first, ours last.
  const std::size_t order24[] = {kStatus, kDsyncStatus, kReplicate, kAdd, kRemove, kDetail, kVerify};
  registered_count = kCommandCount;
  for (std::size_t i = 0; i < kCommandCount; i++) order[i] = order24[i];
#endif
  for (std::size_t i = 0; i < registered_count; i++) doveadm_cmd_register_ver2(&slots[order[i]].cmd);
}

void doveadm_replicator_plugin_deinit(void) {
  // doveadm has no unregister: the command array is freed with doveadm
  // itself, after the modules are unloaded only at exit.
}

}  // extern "C"
