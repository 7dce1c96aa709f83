// tests/src/doveadm/fake-doveadm-server.h: a scripted replicator-doveadm peer for
// the client and command tests. Each connection is one end of a socketpair
// whose server side already holds the canned bytes (greeting + reply) and,
// unless told otherwise, is shut down for writing so the client sees EOF
// after them, as when a stock replicator closes. Nothing runs in a thread:
// the replies are small enough for the socket buffer.
#pragma once

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "replicator-doveadm-client.h"
#include "millis-clock.h"
#include "replicator-commands.h"

namespace drepl::test {

inline constexpr std::string_view kServerGreeting = "VERSION\treplicator-doveadm-server\t1\t0\n";
inline constexpr std::string_view kClientGreeting = "VERSION\treplicator-doveadm-client\t1\t0\n";

class FakeDoveadmServer {
 public:
  struct Script {
    std::string output;    // bytes the server has sent
    bool close = true;     // shut down the server's write side after them
  };

  ~FakeDoveadmServer() {
    for (int fd : server_fds_) ::close(fd);
  }

  // Queues the script for the next connection.
  void expect(std::string output, bool close = true) {
    scripts_.push_back(Script{std::move(output), close});
  }

  // A client factory for the commands; each call uses the next script.
  ReplicatorDoveadmClientFactory factory(const ReplicatorDoveadmClientOptions& options = {}) {
    return [this, options]() -> Result<ReplicatorDoveadmClient> { return connect(options); };
  }

  Result<ReplicatorDoveadmClient> connect(const ReplicatorDoveadmClientOptions& options = {}) {
    if (scripts_.empty()) {
      ADD_FAILURE() << "unexpected connection";
      return make_error(ErrorCode::kTemp, "net_connect_unix(fake) failed: Connection refused");
    }
    Script s = std::move(scripts_.front());
    scripts_.pop_front();
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    std::size_t off = 0;
    while (off < s.output.size()) {
      ssize_t n = ::write(sv[1], s.output.data() + off, s.output.size() - off);
      if (n <= 0) {
        ADD_FAILURE() << "write to socketpair failed";
        break;
      }
      off += static_cast<std::size_t>(n);
    }
    if (s.close) ::shutdown(sv[1], SHUT_WR);
    server_fds_.push_back(sv[1]);
    return ReplicatorDoveadmClient::adopt(sv[0], "/fake/replicator-doveadm", clock_, options);
  }

  // Everything the client of connection `i` sent so far (non-blocking read).
  std::string received(std::size_t i) {
    std::string out;
    if (i >= server_fds_.size()) return out;
    char buf[4096];
    for (;;) {
      ssize_t n = ::recv(server_fds_[i], buf, sizeof(buf), MSG_DONTWAIT);
      if (n <= 0) break;
      out.append(buf, static_cast<std::size_t>(n));
    }
    received_[i] += out;
    return received_[i];
  }

  std::size_t connections() const { return server_fds_.size(); }
  bool all_scripts_used() const { return scripts_.empty(); }

 private:
  SteadyMillisClock clock_;
  std::deque<Script> scripts_;
  std::vector<int> server_fds_;
  std::map<std::size_t, std::string> received_;
};

// Collects what a command printed.
class RecordingPrinter final : public CliPrinter {
 public:
  void begin(std::string_view formatter, const std::vector<CliColumn>& columns) override {
    begun++;
    this->formatter = std::string(formatter);
    for (const CliColumn& c : columns) {
      keys.emplace_back(c.key);
      titles.emplace_back(c.title);
      flags.push_back(c.flags);
    }
  }
  void value(std::string_view v) override { values.emplace_back(v); }

  // Values grouped into rows of keys.size() cells.
  std::vector<std::vector<std::string>> rows() const {
    std::vector<std::vector<std::string>> out;
    if (keys.empty()) return out;
    for (std::size_t i = 0; i < values.size(); i += keys.size()) {
      out.emplace_back(values.begin() + static_cast<std::ptrdiff_t>(i),
                       values.begin() + static_cast<std::ptrdiff_t>(
                                            std::min(values.size(), i + keys.size())));
    }
    return out;
  }

  int begun = 0;
  std::string formatter;
  std::vector<std::string> keys, titles, values;
  std::vector<unsigned> flags;
};

}  // namespace drepl::test
