// src/replica-verify.h: the comparison behind `doveadm replicator verify`
// (issue 14): are a user's two replicas the same mail? Pure logic, no I/O.
//
// Input is what each replica's doveadm server reports, as doveadm's tab
// formatter prints it (`doveadm -f tab ...`, header line first):
//   mailbox status -u <user> "guid uidvalidity uidnext messages highestmodseq" "*"
//       -> columns mailbox, guid, uidvalidity, uidnext, messages, highestmodseq
//          (any order; other columns ignored)
//   fetch -u <user> "mailbox-guid uid guid flags" ALL
//       -> columns mailbox-guid, uid, guid, flags (flags: space-separated system
//          flags and keywords, e.g. "\Seen $Label1")
//
// Comparison: mailboxes are paired by name. A pair whose GUID, UIDVALIDITY,
// UIDNEXT, message count and HIGHESTMODSEQ all agree is taken as equal
// without looking at messages (the fast path: dsync keeps GUIDs, UIDs and
// flags, so a replica that changed since has a different HIGHESTMODSEQ). Every
// other pair needs its messages compared: paired by UID, each must have the
// same message GUID and the same flags and keywords (\Recent is per session
// and ignored).
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "result.h"

namespace drepl {

// One mailbox of one replica.
struct MailboxState {
  std::string name;                // e.g. "INBOX", "Archive/2024"
  std::string guid;                // mailbox GUID (hex)
  std::uint32_t uidvalidity = 0;
  std::uint32_t uidnext = 0;       // 0 when not reported
  std::uint32_t messages = 0;
  std::uint64_t highestmodseq = 0; // 0 when not reported
};

// One message of one mailbox.
struct MessageState {
  std::uint32_t uid = 0;
  std::string guid;                // message GUID
  std::vector<std::string> flags;  // system flags and keywords, sorted, without \Recent
};

// Messages per mailbox GUID.
using MessagesByMailbox = std::map<std::string, std::vector<MessageState>>;

// Parses `doveadm -f tab mailbox status` output (see the top). Errors
// (kInvalid): "mailbox status: missing column <name>", "mailbox status line
// <n>: <reason>" (never quoting message data).
Result<std::vector<MailboxState>> parse_mailbox_status_table(std::string_view text);

// Parses `doveadm -f tab fetch` output (see the top); messages are sorted by
// UID per mailbox. Errors (kInvalid): "fetch: missing column <name>",
// "fetch line <n>: <reason>".
Result<MessagesByMailbox> parse_fetch_table(std::string_view text);

// True when the two mailboxes agree on GUID, UIDVALIDITY, UIDNEXT, message
// count and HIGHESTMODSEQ: no need to compare their messages.
bool mailbox_fast_equal(const MailboxState& a, const MailboxState& b);

enum class DifferenceKind : unsigned char {
  kMailboxMissing,  // the mailbox exists on one replica only
  kMailboxGuid,     // same name, different mailbox GUID
  kUidValidity,     // same name and GUID, different UIDVALIDITY
  kMessageMissing,  // a UID exists on one replica only
  kMessageGuid,     // same UID, different message GUID
  kFlags,           // same UID and GUID, different flags/keywords
};

// "mailbox_missing", "mailbox_guid", "uidvalidity", "message_missing",
// "message_guid", "flags" (the JSON "kind").
std::string_view difference_kind_to_string(DifferenceKind kind);

struct Difference {
  DifferenceKind kind = DifferenceKind::kMailboxMissing;
  std::string mailbox;     // mailbox name
  std::uint32_t uid = 0;   // message differences only
  std::string detail;      // e.g. "only on A", "A: \Seen, B: (none)"
  // One line: "INBOX uid 5: message only on B".
  std::string text() const;
};

// Mailbox-level comparison of two replicas' lists (A = local, B = replica).
// Appends differences to `out`; appends the names of mailbox pairs whose
// messages must be compared (present on both, same GUID and UIDVALIDITY, not
// mailbox_fast_equal()) to `compare_messages_r`, in name order.
void compare_mailbox_lists(const std::vector<MailboxState>& a, const std::vector<MailboxState>& b,
                           std::vector<Difference>& out,
                           std::vector<std::string>& compare_messages_r);

// Message-level comparison of one mailbox (both lists sorted by UID).
// Appends differences to `out`.
void compare_mailbox_messages(std::string_view mailbox, const std::vector<MessageState>& a,
                              const std::vector<MessageState>& b, std::vector<Difference>& out);

// The per-user outcome.
enum class VerifyStatus : unsigned char {
  kInSync,       // no difference
  kDiffers,      // at least one difference
  kUnreachable,  // a replica (or the local doveadm) could not be asked
};

// "in sync", "differs", "replica unreachable".
std::string_view verify_status_to_string(VerifyStatus status);

struct UserVerdict {
  std::string username;
  VerifyStatus status = VerifyStatus::kInSync;
  std::vector<Difference> differences;  // at most kMaxReportedDifferences
  std::size_t difference_count = 0;     // all of them
  std::size_t mailboxes = 0;            // mailboxes compared (union of both sides)
  std::size_t mailboxes_fast = 0;       // ... of which equal by the fast path
  std::size_t messages = 0;             // messages compared one by one (pairs and singles)
  bool rechecked = false;               // a sync was running: compared again after it
  std::string error;                    // kUnreachable: why (one line, no secrets)
};

inline constexpr std::size_t kMaxReportedDifferences = 10;

// The full comparison of one user from both replicas' tables. `fetch_a` and
// `fetch_b` need to hold the mailboxes named by compare_mailbox_lists() (more
// is fine). Keeps the first kMaxReportedDifferences differences.
UserVerdict compare_user(std::string_view username, const std::vector<MailboxState>& a,
                         const std::vector<MailboxState>& b, const MessagesByMailbox& fetch_a,
                         const MessagesByMailbox& fetch_b);

// The one-line verdict: "in sync", "differs: <n> differences: <first>; <second>; ..."
// (the first 3), "replica unreachable: <error>".
std::string verdict_text(const UserVerdict& verdict);

// Counts over all users and the command's exit code.
struct VerifySummary {
  std::size_t users = 0, in_sync = 0, differ = 0, unreachable = 0, rechecked = 0;
  void add(const UserVerdict& verdict);
  // 0 all in sync; 2 some user differs; 75 (EX_TEMPFAIL) none differs but a
  // replica was unreachable. (1 is left to doveadm's own usage errors.)
  int exit_code() const;
  // "<users> users: <in_sync> in sync, <differ> differ, <unreachable> unreachable (<rechecked> re-checked after a running sync)"
  std::string text() const;
};

// One user as a JSON object (no trailing newline):
// {"user":"..","status":"in sync|differs|replica unreachable","differences":N,
//  "mailboxes":N,"mailboxes_fast":N,"messages":N,"rechecked":bool,
//  "error":"..","first_differences":[{"kind":"..","mailbox":"..","uid":N,"detail":".."}]}
std::string verdict_json(const UserVerdict& verdict);

}  // namespace drepl
