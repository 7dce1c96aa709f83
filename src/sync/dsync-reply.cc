#include "dsync-reply.h"

#include <algorithm>
#include <array>
#include <cctype>

#include <fmt/format.h>

#include "log-line.h"
#include "tab-escape.h"

namespace drepl {
namespace {

constexpr std::size_t kQuoteMax = 200;

std::string quote(std::string_view text) { return sanitize_log_text(text, kQuoteMax); }

bool contains_icase(std::string_view haystack, std::string_view needle) {
  auto it = std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end(),
                        [](char a, char b) {
                          return std::tolower(static_cast<unsigned char>(a)) ==
                                 std::tolower(static_cast<unsigned char>(b));
                        });
  return it != haystack.end();
}

}  // namespace

DsyncReplyParser::DsyncReplyParser(std::size_t max_line_bytes)
    : reader_(max_line_bytes, LineReader::OverflowMode::kFail) {}

void DsyncReplyParser::fail(SyncErrorKind kind, std::string text) {
  result_.ok = false;
  result_.state.clear();
  result_.error = SyncError{kind, std::move(text)};
  state_.clear();
  stage_ = Stage::kDone;
}

void DsyncReplyParser::handle_line(std::string_view line) {
  switch (stage_) {
    case Stage::kHandshake:
      if (line == "+") {
        stage_ = Stage::kStateLine;
      } else if (line == "-") {
        fail(SyncErrorKind::kLocalDoveadm, "Unexpected handshake: -");
      } else {
        fail(SyncErrorKind::kProtocol, "Unexpected handshake: " + quote(line));
      }
      return;
    case Stage::kStateLine:
      // doveadm's server formatter prints TE(state) "\t"; the state is the
      // text before the first TAB.
      state_ = tab_unescape(line.substr(0, line.find('\t')));
      stage_ = Stage::kResultLine;
      return;
    case Stage::kResultLine:
      if (!line.empty() && line[0] == '+') {  // stock: first byte decides
        result_.ok = true;
        result_.state = std::move(state_);
        result_.error = SyncError{};
        state_.clear();
        stage_ = Stage::kDone;
      } else if (!line.empty() && line[0] == '-') {
        std::string_view code = line.substr(1);
        SyncErrorKind kind = code == "NOUSER"        ? SyncErrorKind::kNoUser
                             : code == "NOREPLICATE" ? SyncErrorKind::kNoReplicate
                                                     : SyncErrorKind::kRemoteError;
        fail(kind, "doveadm-server replied -" + quote(code));
      } else {
        fail(SyncErrorKind::kProtocol, "Invalid input: " + quote(line));
      }
      return;
    case Stage::kDone:
      return;
  }
}

bool DsyncReplyParser::feed(std::string_view bytes) {
  if (stage_ == Stage::kDone) return true;
  reader_.feed(bytes);
  std::string_view line;
  while (stage_ != Stage::kDone) {
    auto st = reader_.next(&line);
    if (st == LineReader::Status::kNeedMore) break;
    if (st == LineReader::Status::kTooLong) {
      fail(SyncErrorKind::kProtocol,
           fmt::format("doveadm-server sent a too long line (> {} bytes)",
                       reader_.max_line_bytes()));
      break;
    }
    handle_line(line);
  }
  return stage_ == Stage::kDone;
}

void DsyncReplyParser::finish_eof() {
  if (stage_ == Stage::kDone) return;
  if (stage_ == Stage::kHandshake) {
    fail(SyncErrorKind::kLocalDoveadm, "doveadm-server disconnected before handshake");
  } else {
    fail(SyncErrorKind::kRemoteError, "doveadm-server disconnected before reply");
  }
}

SyncErrorKind classify_dsync_log_text(std::string_view text) {
  struct Rule {
    std::string_view needle;
    SyncErrorKind kind;
  };
  static constexpr std::array kRules = {
      Rule{"Connection refused", SyncErrorKind::kConnectRefused},
      Rule{"No route to host", SyncErrorKind::kConnectRefused},
      Rule{"Network is unreachable", SyncErrorKind::kConnectRefused},
      Rule{"Host is unreachable", SyncErrorKind::kConnectRefused},
      Rule{"Connection timed out", SyncErrorKind::kConnectRefused},
      Rule{"DNS lookup", SyncErrorKind::kConnectRefused},
      Rule{"Host not found", SyncErrorKind::kConnectRefused},
      Rule{"Name or service not known", SyncErrorKind::kConnectRefused},
      Rule{"Authentication failed", SyncErrorKind::kAuthFailed},
      Rule{"Couldn't lock", SyncErrorKind::kLockTimeout},
      Rule{"lock timeout", SyncErrorKind::kLockTimeout},
      Rule{"timed out while waiting for lock", SyncErrorKind::kLockTimeout},
      Rule{"certificate", SyncErrorKind::kTlsVerifyFailed},
      Rule{"SSL", SyncErrorKind::kTlsVerifyFailed},
      Rule{"TLS", SyncErrorKind::kTlsVerifyFailed},
  };
  for (const auto& r : kRules) {
    if (contains_icase(text, r.needle)) return r.kind;
  }
  return SyncErrorKind::kNone;
}

bool refine_sync_error(SyncError& error, std::string_view text) {
  if (error.kind != SyncErrorKind::kRemoteError && error.kind != SyncErrorKind::kProtocol) {
    return false;
  }
  SyncErrorKind kind = classify_dsync_log_text(text);
  if (kind == SyncErrorKind::kNone) return false;
  error.kind = kind;
  error.text += " (" + sanitize_log_text(text, kQuoteMax) + ")";
  return true;
}

}  // namespace drepl
