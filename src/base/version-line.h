// src/base/version-line.h: the VERSION handshake line of Dovecot's line protocols
// (spec §2.3):   VERSION\t<service-name>\t<major>\t<minor>\n
// Used by replicator-notify (aggregator -> replicator), replicator-doveadm
// (both directions) and doveadm-server (replicator -> doveadm).
#pragma once

#include <string>
#include <string_view>

#include "result.h"

namespace drepl {

// "VERSION\t<service>\t<major>\t<minor>\n" (with the LF). The service name is
// written as given (Dovecot does not escape it).
std::string format_version_line(std::string_view service, unsigned major,
                                unsigned minor);

struct VersionLine {
  std::string service;
  unsigned major = 0;
  unsigned minor = 0;
};

// Dovecot's version_string_verify(line, service, major): `line` (without its
// LF) must start with exactly "VERSION\t<service>\t", then an equal major
// number, a TAB and a minor number: the rest of the line must parse as an
// unsigned integer (its value is returned, Dovecot ignores it).
// Errors (kInvalid), e.g.:
//   "Not a VERSION line: <line>"
//   "Wrong service: expected 'replicator-notify', got 'x'"
//   "Incompatible major version: expected 1, got 2"
//   "Invalid minor version: <line>"
// <line> is quoted through sanitize_log_text() (control bytes replaced, capped).
Result<VersionLine> verify_version_line(std::string_view line,
                                        std::string_view service, unsigned major);

// The connection-library rule (lib/connection.c, used by the
// replicator-doveadm server): as verify_version_line(), and the line must
// have exactly 4 TAB-separated fields. Error texts follow Dovecot's:
//   "Connected to wrong socket type. We want '<service>', but received '<got>'"
//   "Socket supports major version <got>, but we support only <major> (mixed old and new binaries?)"
//   "Invalid VERSION line: <line>"
Result<VersionLine> verify_version_line_strict(std::string_view line,
                                               std::string_view service,
                                               unsigned major);

}  // namespace drepl
