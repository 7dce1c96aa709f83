#include "dsync-request.h"

#include "tab-escape.h"
#include "version-line.h"

namespace drepl {
namespace {

// Options we never pass, per Dovecot version (see the header).
bool dropped_option(std::string_view arg, DovecotVersion version) {
  switch (version) {
    case DovecotVersion::k23:
    case DovecotVersion::k24:
      return arg == "-d" || arg == "-U";
  }
  return false;
}

}  // namespace

std::vector<std::string> dsync_parameters_for(std::string_view replication_dsync_parameters,
                                              DovecotVersion version) {
  std::vector<std::string> out;
  std::string_view rest = replication_dsync_parameters;
  while (!rest.empty()) {
    std::size_t sp = rest.find(' ');
    std::string_view arg = rest.substr(0, sp);
    if (!arg.empty() && !dropped_option(arg, version)) out.emplace_back(arg);
    if (sp == std::string_view::npos) break;
    rest.remove_prefix(sp + 1);
  }
  return out;
}

std::string format_dsync_handshake() {
  return format_version_line(kDoveadmServerService, 1, 1);
}

std::string format_dsync_command(const DsyncRequest& request,
                                 const std::vector<std::string>& params) {
  std::string out;
  out.reserve(64 + request.username.size() + request.state.size() +
              request.destination.size());
  out += '\t';  // empty flags field
  tab_escape_append(out, request.username);
  out += "\tsync";
  for (const auto& p : params) {
    out += '\t';
    tab_escape_append(out, p);
  }
  if (request.oneway) out += "\t-1";
  if (request.full) out += "\t-f";
  out += "\t-s\t";
  tab_escape_append(out, request.state);
  if (!request.destination.empty()) {
    out += '\t';
    tab_escape_append(out, request.destination);
  }
  out += '\n';
  return out;
}

std::string format_dsync_request(const DsyncRequest& request,
                                 const std::vector<std::string>& params) {
  return format_dsync_handshake() + format_dsync_command(request, params);
}

std::string_view dsync_sync_type(bool full, std::string_view state) {
  if (full) return "full";
  return state.empty() ? "normal" : "incremental";
}

}  // namespace drepl
