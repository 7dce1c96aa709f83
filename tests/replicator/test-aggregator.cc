// Tests of the aggregator's ReplicatorForwarder against a fake replicator.
#include <gtest/gtest.h>

#include "aggregator.h"
#include "test-util.h"

namespace drepl {
namespace {

using test::FakeConn;
using test::FakeServer;
using test::run_until;
using test::TempDir;

ForwarderSettings settings_for(const TempDir& dir) {
  ForwarderSettings s;
  s.unix_path = dir.file("replicator");
  s.retry_interval = std::chrono::milliseconds(50);
  s.resend_window = std::chrono::milliseconds(60000);
  return s;
}

TEST(Forwarder, SendsHandshakeThenNotifications) {
  TempDir dir;
  asio::io_context io;
  FakeServer server(io, dir.file("replicator"));
  ReplicatorForwarder fwd(io, settings_for(dir));
  fwd.start();
  fwd.notify("alice", Priority::kHigh);
  fwd.notify("bob", Priority::kLow);
  ASSERT_TRUE(run_until(io, [&] {
    return !server.conns.empty() && server.conns[0]->lines().size() >= 3;
  }));
  auto lines = server.conns[0]->lines();
  EXPECT_EQ(lines[0], "VERSION\treplicator-notify\t1\t0");
  EXPECT_EQ(lines[1], "U\talice\thigh");
  EXPECT_EQ(lines[2], "U\tbob\tlow");
}

TEST(Forwarder, SyncRequestIsAnsweredById) {
  TempDir dir;
  asio::io_context io;
  FakeServer server(io, dir.file("replicator"));
  server.on_data = [](FakeConn& c) {
    for (const auto& l : c.lines()) {
      if (l.rfind("U\tcarol\tsync\t", 0) == 0 && c.received.find("answered") == std::string::npos) {
        c.received += "answered\n";
        c.send("+\t" + l.substr(std::string("U\tcarol\tsync\t").size()) + "\n");
      }
    }
  };
  ReplicatorForwarder fwd(io, settings_for(dir));
  fwd.start();
  int result = -1;
  fwd.notify_sync("carol", [&](bool ok) { result = ok ? 1 : 0; });
  ASSERT_TRUE(run_until(io, [&] { return result != -1; }));
  EXPECT_EQ(result, 1);
  EXPECT_EQ(fwd.pending_sync_count(), 0u);
}

TEST(Forwarder, QueuesWhileReplicatorIsDownAndFlushesOnConnect) {
  TempDir dir;
  asio::io_context io;
  ReplicatorForwarder fwd(io, settings_for(dir));
  fwd.start();
  for (int i = 0; i < 100; ++i) fwd.notify("user" + std::to_string(i), Priority::kLow);
  fwd.notify("user7", Priority::kHigh);  // merged: user7 becomes high
  // Let it fail to connect a few times.
  run_until(io, [] { return false; }, std::chrono::milliseconds(150));
  EXPECT_FALSE(fwd.connected());
  EXPECT_EQ(fwd.backlog_size(), 100u);
  // A sync request while the replicator is away fails at once.
  int sync_result = -1;
  fwd.notify_sync("x", [&](bool ok) { sync_result = ok; });
  run_until(io, [&] { return sync_result != -1; }, std::chrono::milliseconds(500));
  EXPECT_EQ(sync_result, 0);

  FakeServer server(io, dir.file("replicator"));
  ASSERT_TRUE(run_until(io, [&] {
    return !server.conns.empty() && server.conns[0]->lines().size() >= 101;
  }));
  auto lines = server.conns[0]->lines();
  EXPECT_EQ(lines[0], "VERSION\treplicator-notify\t1\t0");
  EXPECT_EQ(lines[1], "U\tuser7\thigh");  // high before low
  EXPECT_EQ(lines.size(), 101u);
  EXPECT_EQ(fwd.backlog_size(), 0u);
}

TEST(Forwarder, LostConnectionFailsPendingSyncsAndResendsRecent) {
  TempDir dir;
  asio::io_context io;
  auto server = std::make_unique<FakeServer>(io, dir.file("replicator"));
  ReplicatorForwarder fwd(io, settings_for(dir));
  fwd.start();
  fwd.notify("dave", Priority::kHigh);
  int result = -1;
  fwd.notify_sync("erin", [&](bool ok) { result = ok; });
  ASSERT_TRUE(run_until(io, [&] {
    return !server->conns.empty() && server->conns[0]->lines().size() >= 3;
  }));
  // The replicator dies without answering.
  server.reset();
  ASSERT_TRUE(run_until(io, [&] { return result != -1; }));
  EXPECT_EQ(result, 0);
  // It comes back: the recent async notification is sent again.
  FakeServer server2(io, dir.file("replicator"));
  ASSERT_TRUE(run_until(io, [&] {
    return !server2.conns.empty() && server2.conns[0]->lines().size() >= 2;
  }));
  auto lines = server2.conns[0]->lines();
  EXPECT_EQ(lines[0], "VERSION\treplicator-notify\t1\t0");
  EXPECT_EQ(lines[1], "U\tdave\thigh");
}

// Field report: lines sent long ago were replayed on every reconnect
// (103000 of them after a burst), because the resend list was only pruned
// when a later write completed. Only lines younger than resend_window are
// sent again.
TEST(Forwarder, LostConnectionDoesNotResendLinesOlderThanTheWindow) {
  TempDir dir;
  asio::io_context io;
  auto server = std::make_unique<FakeServer>(io, dir.file("replicator"));
  ForwarderSettings s = settings_for(dir);
  s.resend_window = std::chrono::milliseconds(0);
  ReplicatorForwarder fwd(io, s);
  fwd.start();
  fwd.notify("gina", Priority::kHigh);
  ASSERT_TRUE(run_until(io, [&] {
    return !server->conns.empty() && server->conns[0]->lines().size() >= 2;
  }));
  server.reset();
  FakeServer server2(io, dir.file("replicator"));
  ASSERT_TRUE(run_until(io, [&] { return !server2.conns.empty(); }));
  // A fresh notification goes out after the handshake; gina's old line must not.
  fwd.notify("hank", Priority::kLow);
  ASSERT_TRUE(run_until(io, [&] { return server2.conns[0]->lines().size() >= 2; }));
  auto lines = server2.conns[0]->lines();
  EXPECT_EQ(lines[0], "VERSION\treplicator-notify\t1\t0");
  EXPECT_EQ(lines[1], "U\thank\tlow");
  EXPECT_EQ(fwd.backlog_size(), 0u);
}

TEST(Forwarder, ShutdownFlushesBacklogThenCallsDone) {
  TempDir dir;
  asio::io_context io;
  FakeServer server(io, dir.file("replicator"));
  ReplicatorForwarder fwd(io, settings_for(dir));
  fwd.start();
  fwd.notify("frank", Priority::kLow);
  bool done = false;
  fwd.shutdown(std::chrono::seconds(5), [&] { done = true; });
  ASSERT_TRUE(run_until(io, [&] { return done; }));
  ASSERT_TRUE(run_until(io, [&] {
    return !server.conns.empty() && server.conns[0]->lines().size() >= 2;
  }));
  EXPECT_EQ(server.conns[0]->lines()[1], "U\tfrank\tlow");
}

TEST(Forwarder, ShutdownGivesUpAfterTimeoutWhenReplicatorIsAway) {
  TempDir dir;
  asio::io_context io;
  ReplicatorForwarder fwd(io, settings_for(dir));
  fwd.start();
  fwd.notify("gina", Priority::kLow);
  bool done = false;
  fwd.shutdown(std::chrono::milliseconds(200), [&] { done = true; });
  ASSERT_TRUE(run_until(io, [&] { return done; }, std::chrono::seconds(3)));
}

TEST(Forwarder, InvalidRepliesAreIgnored) {
  TempDir dir;
  asio::io_context io;
  FakeServer server(io, dir.file("replicator"));
  ReplicatorForwarder fwd(io, settings_for(dir));
  fwd.start();
  int result = -1;
  fwd.notify_sync("hank", [&](bool ok) { result = ok; });
  ASSERT_TRUE(run_until(io, [&] {
    return !server.conns.empty() && server.conns[0]->lines().size() >= 2;
  }));
  server.conns[0]->send("garbage\n+\t999\n-\t1\n");
  ASSERT_TRUE(run_until(io, [&] { return result != -1; }));
  EXPECT_EQ(result, 0);  // "-\t1" answered it; the junk before was skipped
  EXPECT_TRUE(fwd.connected());
}

}  // namespace
}  // namespace drepl
