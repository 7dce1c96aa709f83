// src/sync/auth-master.h: the client side of Dovecot's auth-master protocol on
// auth_socket_path (default "auth-userdb"), spec §6.8: listing users
// (userdb iteration) and looking one user up.
//
// Client -> server (no need to wait for the greeting):
//   VERSION\t1\t0\n
//   LIST\t<id>\tuser=<mask, raw>\tservice=replicator\n   (user= omitted for an empty mask)
//   USER\t<id>\tTE(user)\tservice=replicator\n
// Server -> client:
//   VERSION\t1\t<minor>\n   SPID\t<pid>\n                 (greeting)
//   LIST\t<id>\tTE(user)\n ... DONE\t<id>\t\n | DONE\t<id>\tfail\n
//   USER\t<id>\tTE(user)\tTE(key=value)...\n | NOTFOUND\t<id>\n | FAIL\t<id>\t<reason...>\n
// Lines are passed to the parser WITHOUT their LF.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "result.h"

namespace drepl {

inline constexpr unsigned kAuthMasterMajor = 1;

// "VERSION\t1\t0\n".
std::string format_auth_master_handshake();
// "LIST\t<id>\tuser=<mask>\tservice=replicator\n"; the mask is sent raw
// (not escaped, as stock); with an empty mask the user= field is left out.
std::string format_auth_list_request(std::uint32_t id, std::string_view mask);
// "USER\t<id>\tTE(user)\tservice=replicator\n".
std::string format_auth_user_request(std::uint32_t id, std::string_view username);

struct AuthVersion { unsigned major = 0, minor = 0; };            // VERSION\t<major>\t<minor>
struct AuthSpid { std::uint64_t pid = 0; };                       // SPID\t<pid>
struct AuthListEntry { std::uint32_t id = 0; std::string username; };  // LIST\t<id>\tTE(user)
struct AuthListDone { std::uint32_t id = 0; bool failed = false; };    // DONE\t<id>\t[fail]
// USER\t<id>\t<user>\t<fields>: each field "key=value" (unescaped), a field
// without '=' has an empty value.
struct AuthUserReply {
  std::uint32_t id = 0;
  std::string username;
  std::vector<std::pair<std::string, std::string>> fields;
};
struct AuthUserNotFound { std::uint32_t id = 0; };                // NOTFOUND\t<id>
// FAIL\t<id>[\t<fields>]: the reason is the "reason=" field if present,
// else the remaining fields joined with spaces.
struct AuthUserFail { std::uint32_t id = 0; std::string reason; };

using AuthMasterReply = std::variant<AuthVersion, AuthSpid, AuthListEntry, AuthListDone,
                                     AuthUserReply, AuthUserNotFound, AuthUserFail>;

// Parses one server line. Errors (kInvalid): "auth-master sent invalid
// input: <line>" for an unknown command, a missing field or a bad number
// (the line is sanitized and capped). The caller checks that a reply's id
// is one it asked for, and that AuthVersion::major == kAuthMasterMajor.
Result<AuthMasterReply> parse_auth_master_line(std::string_view line);

// The first field named `key`, or nullopt.
std::optional<std::string_view> auth_user_field(const AuthUserReply& reply,
                                                std::string_view key);

// Dovecot's truth rule for userdb flag fields such as "noreplicate"
// (spec §3.1): true unless the value starts with n, N, 0, f or F; an empty
// value (a bare field) is true.
bool userdb_flag_is_true(std::string_view value);

// What the replicator needs from a user lookup.
struct UserdbReplication {
  std::string mail_replica;  // empty = no replica: never sync this user
  bool noreplicate = false;  // field "noreplicate" present and true
};
// Reads "mail_replica" (or "plugin/mail_replica") and "noreplicate".
UserdbReplication userdb_replication_fields(const AuthUserReply& reply);

}  // namespace drepl
