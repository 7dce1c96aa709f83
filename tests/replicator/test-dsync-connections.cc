// DsyncClient with DsyncConnections (connection reuse and the socket
// fallback) against a fake doveadm-server on real UNIX sockets.
#include <gtest/gtest.h>

#include <cstdint>
#include <map>

#include "dsync-client.h"
#include "dsync-connections.h"
#include "dsync-request.h"
#include "millis-clock.h"
#include "test-util.h"

namespace drepl {
namespace {

using test::FakeConn;
using test::FakeServer;
using test::run_until;
using test::TempDir;

// A fake doveadm-server: to our minor-1 VERSION line it answers, once per
// connection, with its own VERSION line and "+", then one reply per command
// line, framed as a channel-0 packet of the multiplex stream
// (doveadm-multiplex.h). With `minor0` it answers "+" only and sends the
// replies unframed, as a server that speaks minor 0 does.
// `reply(conn_index, command_index_on_conn, user)` picks the reply text;
// default "STATE-<user>\t\n+\n".
struct FakeDoveadm {
  FakeDoveadm(asio::io_context& io, const std::string& path) : server(io, path) {
    server.on_data = [this](FakeConn& c) { on_data(c); };
  }
  void on_data(FakeConn& c) {
    std::size_t idx = 0;
    for (; idx < server.conns.size(); ++idx) {
      if (server.conns[idx].get() == &c) break;
    }
    auto lines = c.lines();
    std::size_t& done = answered[&c];
    if (done == 0 && !lines.empty() && lines[0].rfind("VERSION\t", 0) == 0 && !greeted[&c]) {
      greeted[&c] = true;
      c.send(minor0 ? "+\n" : "VERSION\tdoveadm-client\t1\t2\n+\n");
    }
    for (std::size_t i = 0; i < lines.size(); ++i) {
      if (lines[i].rfind("\t", 0) != 0) continue;  // the VERSION line
      std::size_t cmd = 0;
      for (std::size_t j = 0; j < i; ++j) cmd += lines[j].rfind("\t", 0) == 0 ? 1 : 0;
      if (cmd < done) continue;
      ++done;
      std::string user = lines[i].substr(1, lines[i].find('\t', 1) - 1);
      commands.push_back({idx, user, greeted[&c]});
      std::string r = reply ? reply(idx, cmd, user) : "STATE-" + user + "\t\n+\n";
      if (r == "CLOSE") {
        c.close();
        return;
      }
      c.send(minor0 ? r : frame(r));
    }
  }
  static std::string frame(const std::string& payload) {
    std::string out(1, '\0');
    auto n = static_cast<std::uint32_t>(payload.size());
    for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((n >> shift) & 0xff);
    return out + payload;
  }
  struct Command {
    std::size_t conn;
    std::string user;
    bool greeted;  // the connection had a VERSION handshake
  };
  FakeServer server;
  std::map<FakeConn*, std::size_t> answered;
  std::map<FakeConn*, bool> greeted;
  std::vector<Command> commands;
  std::function<std::string(std::size_t, std::size_t, const std::string&)> reply;
  bool minor0 = false;
};

std::string request_for(const std::string& user) {
  DsyncRequest r;
  r.username = user;
  r.destination = "tcp:b:1";
  return format_dsync_request(r, {"-N"});
}

struct Fixture {
  TempDir dir;
  asio::io_context io;
  ManualMillisClock clock;
  DsyncConnectionCounters counters;
  std::unique_ptr<DsyncConnections> conns;

  Fixture() {
    DsyncConnectionsOptions o;
    o.dsync_socket = dir.file("replicator-dsync");
    o.doveadm_socket = dir.file("doveadm-server");
    o.max_idle = 2;
    o.max_idle_ms = 20000;
    conns = std::make_unique<DsyncConnections>(io, clock, o, &counters);
  }
  DsyncResult run(const std::string& user) {
    DsyncClientOptions o;
    o.socket_path = dir.file("doveadm-server");
    o.inactivity_timeout_secs = 0;
    o.overall_timeout_secs = 0;
    o.connect_failure_delay = std::chrono::milliseconds(10);
    o.connections = conns.get();
    std::optional<DsyncResult> result;
    auto client = std::make_shared<DsyncClient>(io, o, request_for(user),
                                                [&](const DsyncResult& r) { result = r; });
    client->start();
    EXPECT_TRUE(run_until(io, [&] { return result.has_value(); })) << user;
    return result.value_or(DsyncResult{});
  }
};

TEST(DsyncConnectionsTest, SequentialSyncsShareOneConnection) {
  Fixture f;
  FakeDoveadm server(f.io, f.dir.file("replicator-dsync"));
  for (int i = 0; i < 5; ++i) {
    std::string user = "u" + std::to_string(i);
    DsyncResult r = f.run(user);
    ASSERT_TRUE(r.ok) << r.error.text;
    EXPECT_EQ(r.state, "STATE-" + user);  // every reply reaches its own run
  }
  EXPECT_EQ(server.server.conns.size(), 1u);
  ASSERT_EQ(server.commands.size(), 5u);
  for (const auto& c : server.commands) EXPECT_EQ(c.conn, 0u);
  // one VERSION line on the connection, then commands only
  auto lines = server.server.conns[0]->lines();
  ASSERT_EQ(lines.size(), 6u);
  EXPECT_EQ(lines[0], "VERSION\tdoveadm-server\t1\t1");
  EXPECT_EQ(lines[5], "\tu4\tsync\t-N\t-s\t\ttcp:b:1");
  EXPECT_EQ(f.counters.opened, 1u);
  EXPECT_EQ(f.counters.reused, 4u);
  EXPECT_EQ(f.counters.reuse_retries, 0u);
  EXPECT_FALSE(f.counters.socket_fallback);
  EXPECT_EQ(f.conns->idle(), 1u);
}

TEST(DsyncConnectionsTest, Minor0ServerGetsOneConnectionPerSync) {
  // Without the multiplex framing a later reply could not be told from
  // left-over bytes, so such connections are never kept.
  Fixture f;
  FakeDoveadm server(f.io, f.dir.file("replicator-dsync"));
  server.minor0 = true;
  for (const char* user : {"a", "b", "c"}) {
    DsyncResult r = f.run(user);
    ASSERT_TRUE(r.ok) << r.error.text;
    EXPECT_EQ(r.state, std::string("STATE-") + user);
  }
  EXPECT_EQ(server.server.conns.size(), 3u);
  EXPECT_EQ(f.counters.opened, 3u);
  EXPECT_EQ(f.counters.reused, 0u);
  EXPECT_EQ(f.conns->idle(), 0u);
}

TEST(DsyncConnectionsTest, LeftOverBytesAfterTheReplyCloseTheConnection) {
  Fixture f;
  FakeDoveadm server(f.io, f.dir.file("replicator-dsync"));
  server.reply = [](std::size_t, std::size_t, const std::string& user) {
    // a reply followed, in the same packet, by bytes that belong to nothing
    return user == "odd" ? std::string("S\t\n+\nextra") : "S\t\n+\n";
  };
  ASSERT_TRUE(f.run("odd").ok);
  EXPECT_EQ(f.conns->idle(), 0u);
  ASSERT_TRUE(f.run("next").ok);
  EXPECT_EQ(server.server.conns.size(), 2u);
  EXPECT_EQ(f.counters.reused, 0u);
}

TEST(DsyncConnectionsTest, FailedReplyClosesTheConnection) {
  Fixture f;
  FakeDoveadm server(f.io, f.dir.file("replicator-dsync"));
  server.reply = [](std::size_t, std::size_t, const std::string& user) {
    return user == "bad" ? std::string("\t\n-NOUSER\n") : "S\t\n+\n";
  };
  ASSERT_TRUE(f.run("a").ok);
  DsyncResult bad = f.run("bad");  // on the reused connection
  EXPECT_FALSE(bad.ok);
  EXPECT_EQ(bad.error.kind, SyncErrorKind::kNoUser);
  EXPECT_EQ(f.conns->idle(), 0u);
  ASSERT_TRUE(f.run("c").ok);  // a new connection
  EXPECT_EQ(server.server.conns.size(), 2u);
  EXPECT_EQ(server.commands.back().conn, 1u);
  EXPECT_EQ(f.counters.reuse_retries, 0u);  // -NOUSER is an answer about the user
}

TEST(DsyncConnectionsTest, TempfailOnReuseIsRetriedOnceOnAFreshConnection) {
  Fixture f;
  FakeDoveadm server(f.io, f.dir.file("replicator-dsync"));
  server.reply = [](std::size_t conn, std::size_t cmd, const std::string&) {
    // the first connection's second command fails like a stale process
    return conn == 0 && cmd == 1 ? std::string("\t\n-TEMPFAIL\n") : "S\t\n+\n";
  };
  ASSERT_TRUE(f.run("a").ok);
  DsyncResult r = f.run("b");
  EXPECT_TRUE(r.ok) << r.error.text;
  EXPECT_EQ(r.state, "S");
  ASSERT_EQ(server.commands.size(), 3u);
  EXPECT_EQ(server.commands[1].user, "b");
  EXPECT_EQ(server.commands[2].user, "b");
  EXPECT_EQ(server.commands[2].conn, 1u);
  EXPECT_EQ(f.counters.reuse_retries, 1u);
  EXPECT_EQ(f.counters.opened, 2u);
}

TEST(DsyncConnectionsTest, TempfailOnAFreshConnectionIsAFailure) {
  Fixture f;
  FakeDoveadm server(f.io, f.dir.file("replicator-dsync"));
  server.reply = [](std::size_t, std::size_t, const std::string&) {
    return std::string("\t\n-TEMPFAIL\n");
  };
  DsyncResult r = f.run("a");
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error.kind, SyncErrorKind::kRemoteError);
  EXPECT_EQ(server.commands.size(), 1u);
  EXPECT_EQ(f.counters.reuse_retries, 0u);
}

TEST(DsyncConnectionsTest, ConnectionClosedWhileIdleIsNotReused) {
  Fixture f;
  FakeDoveadm server(f.io, f.dir.file("replicator-dsync"));
  ASSERT_TRUE(f.run("a").ok);
  server.server.conns[0]->close();  // doveadm-server went away meanwhile
  ASSERT_TRUE(run_until(f.io, [&] { return f.conns->idle() == 1; }));
  DsyncResult r = f.run("b");
  EXPECT_TRUE(r.ok) << r.error.text;
  EXPECT_EQ(server.server.conns.size(), 2u);
  EXPECT_EQ(server.commands.back().conn, 1u);
  EXPECT_EQ(f.counters.opened, 2u);
  EXPECT_EQ(f.counters.reused, 0u);
}

TEST(DsyncConnectionsTest, DroppedRequestOnReuseIsRetried) {
  Fixture f;
  FakeDoveadm server(f.io, f.dir.file("replicator-dsync"));
  server.reply = [](std::size_t conn, std::size_t cmd, const std::string&) {
    return conn == 0 && cmd == 1 ? std::string("CLOSE") : "S\t\n+\n";
  };
  ASSERT_TRUE(f.run("a").ok);
  DsyncResult r = f.run("b");  // EOF before any reply byte on the reused one
  EXPECT_TRUE(r.ok) << r.error.text;
  EXPECT_EQ(f.counters.reuse_retries, 1u);
  EXPECT_EQ(server.commands.back().conn, 1u);
}

TEST(DsyncConnectionsTest, IdleConnectionsExpire) {
  Fixture f;
  FakeDoveadm server(f.io, f.dir.file("replicator-dsync"));
  ASSERT_TRUE(f.run("a").ok);
  EXPECT_EQ(f.conns->idle(), 1u);
  f.clock.advance(20000);  // max_idle_ms
  ASSERT_TRUE(f.run("b").ok);
  EXPECT_EQ(server.server.conns.size(), 2u);
  EXPECT_EQ(f.counters.reused, 0u);
}

TEST(DsyncConnectionsTest, ParallelRunsUseSeparateConnectionsAndKeepAtMostMaxIdle) {
  Fixture f;  // max_idle = 2
  FakeDoveadm server(f.io, f.dir.file("replicator-dsync"));
  DsyncClientOptions o;
  o.inactivity_timeout_secs = 0;
  o.overall_timeout_secs = 0;
  o.connections = f.conns.get();
  std::vector<std::shared_ptr<DsyncClient>> clients;
  int done = 0;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(std::make_shared<DsyncClient>(
        f.io, o, request_for("p" + std::to_string(i)), [&](const DsyncResult& r) {
          EXPECT_TRUE(r.ok);
          ++done;
        }));
  }
  for (auto& c : clients) c->start();
  ASSERT_TRUE(run_until(f.io, [&] { return done == 3; }));
  EXPECT_EQ(server.server.conns.size(), 3u);
  EXPECT_EQ(f.conns->idle(), 2u);
}

TEST(DsyncConnectionsTest, MissingDedicatedSocketFallsBackWithoutReuse) {
  Fixture f;
  FakeDoveadm doveadm(f.io, f.dir.file("doveadm-server"));
  for (const char* u : {"a", "b"}) {
    DsyncResult r = f.run(u);
    EXPECT_TRUE(r.ok) << r.error.text;
  }
  EXPECT_TRUE(f.counters.socket_fallback);
  EXPECT_EQ(doveadm.server.conns.size(), 2u);  // one connection per sync there
  EXPECT_EQ(f.counters.reused, 0u);
  EXPECT_EQ(f.conns->idle(), 0u);
  // the service appears: used from the next sync on
  FakeDoveadm dedicated(f.io, f.dir.file("replicator-dsync"));
  EXPECT_TRUE(f.run("c").ok);
  EXPECT_FALSE(f.counters.socket_fallback);
  EXPECT_EQ(dedicated.commands.size(), 1u);
}

TEST(DsyncConnectionsTest, RefusingDedicatedSocketFallsBackAndIsRetriedLater) {
  Fixture f;
  FakeDoveadm doveadm(f.io, f.dir.file("doveadm-server"));
  {
    // a stale socket file: it exists, nobody listens, connects are refused
    asio::local::stream_protocol::acceptor stale(f.io);
    stale.open(asio::local::stream_protocol());
    stale.bind(asio::local::stream_protocol::endpoint(f.dir.file("replicator-dsync")));
  }
  EXPECT_TRUE(f.run("a").ok);
  EXPECT_TRUE(f.counters.socket_fallback);
  EXPECT_TRUE(f.run("b").ok);  // not tried again yet
  EXPECT_EQ(doveadm.commands.size(), 2u);
  // the service is back (a listener on the path) and the retry time passed
  ::unlink(f.dir.file("replicator-dsync").c_str());
  FakeDoveadm dedicated(f.io, f.dir.file("replicator-dsync"));
  f.clock.advance(DsyncConnections::kRetryDedicatedMs - 1);
  EXPECT_TRUE(f.run("c").ok);
  EXPECT_EQ(doveadm.commands.size(), 3u);
  f.clock.advance(1);
  EXPECT_TRUE(f.run("d").ok);
  EXPECT_EQ(dedicated.commands.size(), 1u);
  EXPECT_FALSE(f.counters.socket_fallback);
}

}  // namespace
}  // namespace drepl
