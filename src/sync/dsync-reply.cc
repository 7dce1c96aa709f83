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
constexpr std::string_view kRemoteCommandError = "Remote command returned error ";

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

constexpr std::size_t kMaxPreBytes = 1024;  // VERSION line + "+"
constexpr std::size_t kLogLineMax = 300;

DsyncReplyParser::DsyncReplyParser(std::size_t max_line_bytes)
    : reader_(max_line_bytes, LineReader::OverflowMode::kFail) {}

void DsyncReplyParser::add_log(std::vector<DoveadmLogLine>& lines) {
  for (auto& l : lines) {
    if (l.type < DoveadmLogLine::Type::kWarning) continue;
    if (log_lines_.size() == kMaxLogLines) log_lines_.erase(log_lines_.begin());
    log_lines_.push_back(sanitize_log_text(l.text, kLogLineMax));
  }
  lines.clear();
}

void DsyncReplyParser::explain_from_log() {
  if (result_.error.kind != SyncErrorKind::kRemoteError &&
      result_.error.kind != SyncErrorKind::kProtocol) {
    return;
  }
  if (log_lines_.empty()) return;
  // ssh failed before the remote dsync-server said hello: not a connection
  // that broke in the middle of a sync (ssh exits 255 then too)
  bool no_hello = std::any_of(log_lines_.begin(), log_lines_.end(), [](const std::string& l) {
    return l.find("(version not received)") != std::string::npos;
  });
  for (const auto& l : log_lines_) {
    if (std::uint16_t port = ssh_failure_port(l); port != 0 && no_hello) {
      result_.ssh_failed_port = port;
    }
  }
  auto [kind, idx] = classify_dsync_log_lines(log_lines_);
  if (kind != SyncErrorKind::kNone) {
    result_.error.kind = kind;
    result_.error.text += ": " + log_lines_[idx];
  } else {
    // Unrecognised, but still the worker's own words: show the first error.
    result_.error.text += ": " + log_lines_.front();
  }
}

void DsyncReplyParser::feed_lines(std::string_view bytes) {
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
}

// Before "+": the optional VERSION reply and "+" come unframed.
void DsyncReplyParser::feed_pre(std::string_view bytes) {
  pre_.append(bytes);
  while (!in_stream_ && stage_ != Stage::kDone) {
    std::size_t nl = pre_.find('\n');
    // A handshake line over kMaxPreBytes fails whether or not its LF has
    // arrived yet: the outcome must not depend on how the bytes were split.
    const std::size_t line_len = nl == std::string::npos ? pre_.size() : nl;
    if (line_len > kMaxPreBytes) {
      fail(SyncErrorKind::kProtocol,
           "Unexpected handshake: " + quote(std::string_view(pre_).substr(0, line_len)));
      return;
    }
    if (nl == std::string::npos) return;
    std::string_view line(pre_.data(), nl);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!multiplexed_ && line.substr(0, 23) == "VERSION\tdoveadm-client\t") {
      multiplexed_ = true;
      pre_.erase(0, nl + 1);
      continue;
    }
    std::string line_copy(line);
    pre_.erase(0, nl + 1);
    handle_line(line_copy);  // "+" -> kStateLine, else failure
    if (stage_ == Stage::kStateLine) in_stream_ = true;
  }
  if (in_stream_ && stage_ != Stage::kDone) {
    std::string rest = std::move(pre_);
    pre_.clear();
    if (!rest.empty()) feed_stream(rest);
  }
}

void DsyncReplyParser::fail(SyncErrorKind kind, std::string text) {
  result_.ok = false;
  result_.state.clear();
  result_.error = SyncError{kind, std::move(text)};
  state_.clear();
  stage_ = Stage::kDone;
  explain_from_log();
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
        std::string code_copy(code);
        fail(kind, "doveadm-server replied -" + quote(code));
        result_.remote_code = std::move(code_copy);
      } else {
        fail(SyncErrorKind::kProtocol, "Invalid input: " + quote(line));
      }
      return;
    case Stage::kDone:
      return;
  }
}

void DsyncReplyParser::feed_stream(std::string_view bytes) {
  if (!multiplexed_) {
    feed_lines(bytes);
    return;
  }
  // Packet by packet, in the order sent: a log line explains the result only
  // if it came before it, whatever the read boundaries were.
  std::string main;
  std::vector<DoveadmLogLine> log;
  while (!bytes.empty() && stage_ != Stage::kDone) {
    bytes.remove_prefix(demux_.feed_packet(bytes, &main, &log));
    add_log(log);
    if (!main.empty()) {
      feed_lines(main);
      main.clear();
    }
  }
}

bool DsyncReplyParser::feed(std::string_view bytes) {
  if (stage_ == Stage::kDone) return true;
  if (!in_stream_) {
    feed_pre(bytes);
  } else {
    feed_stream(bytes);
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
  // Real 2.3.19.1 worker lines (doveadm-server log channel or Dovecot log):
  //   "doveadm(alice): doveadm authentication failed ()"
  //   "doveadm(alice)<pid><id>: Couldn't lock /home/alice/.dovecot-sync.lock:
  //    fcntl(...) locking failed: Timed out after 2 seconds (WRITE lock held by pid 8489)"
  //   "doveadm(alice): Fatal: Lookup of host nonexistent.invalid failed: Name or
  //    service not known"                                     (Dovecot log only)
  //   "doveadm(alice): Fatal: connect(127.0.0.1:1) failed: Connection refused"
  if (text.find(kRemoteCommandError) != std::string_view::npos) return SyncErrorKind::kNone;
  if (contains_icase(text, "authentication failed")) return SyncErrorKind::kAuthFailed;
  if ((contains_icase(text, "Couldn't lock") && contains_icase(text, "Timed out")) ||
      contains_icase(text, "lock timeout") ||
      contains_icase(text, "timed out while waiting for lock")) {
    return SyncErrorKind::kLockTimeout;
  }
  struct Rule {
    std::string_view needle;
    SyncErrorKind kind;
  };
  static constexpr std::array kRules = {
      Rule{"Lookup of host", SyncErrorKind::kHostNotFound},
      Rule{"Name or service not known", SyncErrorKind::kHostNotFound},
      Rule{"Host not found", SyncErrorKind::kHostNotFound},
      Rule{"DNS lookup", SyncErrorKind::kHostNotFound},
      Rule{"No address associated", SyncErrorKind::kHostNotFound},
      Rule{"Temporary failure in name resolution", SyncErrorKind::kHostNotFound},
      Rule{"Permission denied (publickey", SyncErrorKind::kSshAuthFailed},
      Rule{"Host key verification failed", SyncErrorKind::kSshAuthFailed},
      Rule{"Connection refused", SyncErrorKind::kConnectRefused},
      Rule{"No route to host", SyncErrorKind::kConnectRefused},
      Rule{"Network is unreachable", SyncErrorKind::kConnectRefused},
      Rule{"Host is unreachable", SyncErrorKind::kConnectRefused},
      Rule{"Connection timed out", SyncErrorKind::kConnectRefused},
      Rule{"certificate", SyncErrorKind::kTlsVerifyFailed},
      Rule{"SSL", SyncErrorKind::kTlsVerifyFailed},
      Rule{"TLS", SyncErrorKind::kTlsVerifyFailed},
  };
  for (const auto& r : kRules) {
    if (contains_icase(text, r.needle)) return r.kind;
  }
  return SyncErrorKind::kNone;
}

std::uint16_t ssh_failure_port(std::string_view log_line) {
  // "doveadm(u)<pid><id>: Remote command returned error 255: ssh -p 2222 -lvmail b ..."
  std::size_t at = log_line.find(kRemoteCommandError);
  if (at == std::string_view::npos) return 0;
  std::string_view rest = log_line.substr(at + kRemoteCommandError.size());
  constexpr std::string_view kExit255 = "255: ";
  if (rest.substr(0, kExit255.size()) != kExit255) return 0;
  rest.remove_prefix(kExit255.size());
  return ssh_command_port(rest, 22);
}

std::uint16_t ssh_command_port(std::string_view command, std::uint16_t default_port) {
  std::string_view rest = command;
  std::vector<std::string_view> args;
  while (!rest.empty()) {
    std::size_t sp = rest.find(' ');
    std::string_view arg = rest.substr(0, sp);
    if (!arg.empty()) args.push_back(arg);
    if (sp == std::string_view::npos) break;
    rest.remove_prefix(sp + 1);
  }
  return ssh_args_port(args, default_port);
}

std::uint16_t ssh_args_port(const std::vector<std::string_view>& args, std::uint16_t default_port) {
  auto parse_port = [](std::string_view v) -> std::uint16_t {
    if (v.empty() || v.size() > 5) return 0;
    unsigned n = 0;
    for (char c : v) {
      if (c < '0' || c > '9') return 0;
      n = n * 10 + static_cast<unsigned>(c - '0');
    }
    return n >= 1 && n <= 65535 ? static_cast<std::uint16_t>(n) : 0;
  };
  if (args.empty()) return 0;
  std::string_view prog = args[0].substr(args[0].rfind('/') + 1);
  if (prog != "ssh") return 0;  // a wrapper's exit 255 may mean anything
  std::uint16_t port = default_port;
  // ssh's options end at the destination; the remote command after it may
  // have its own "-p" (only the first -p/Port counts for ssh, as in ssh).
  for (std::size_t i = 1; i < args.size(); ++i) {
    std::string_view a = args[i];
    std::string_view value;
    if (a == "-p" || a == "-o") {
      if (i + 1 >= args.size()) break;
      value = args[++i];
      if (a == "-o") {
        if (!contains_icase(value.substr(0, 5), "Port=") || value.size() < 5) continue;
        value.remove_prefix(5);
      }
    } else if (a.substr(0, 2) == "-p") {
      value = a.substr(2);
    } else if (a.substr(0, 2) == "-o" && a.size() > 7 && contains_icase(a.substr(2, 5), "Port=")) {
      value = a.substr(7);
    } else if (a.size() == 2 && a[0] == '-' &&
               std::string_view("bcDEeFIiJLlmOoQRSWw").find(a[1]) != std::string_view::npos) {
      ++i;  // an ssh option that takes an argument: skip it
      continue;
    } else if (!a.empty() && a[0] == '-') {
      continue;  // a flag ("-4", "-T") or an option with its argument attached ("-lvmail")
    } else {
      break;  // the destination: the rest is the remote command
    }
    return parse_port(value);
  }
  return port;
}

std::pair<SyncErrorKind, std::size_t> classify_dsync_log_lines(
    const std::vector<std::string>& lines) {
  for (std::size_t i = 0; i < lines.size(); ++i) {
    SyncErrorKind kind = classify_dsync_log_text(lines[i]);
    if (kind != SyncErrorKind::kNone) return {kind, i};
  }
  return {SyncErrorKind::kNone, lines.size()};
}

}  // namespace drepl
