// Tests of the server-side connections (replicator-notify, plugin socket,
// FIFO, replicator-doveadm) over real UNIX sockets with fake backends.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include "doveadm-connection.h"
#include "fifo-reader.h"
#include "listener.h"
#include "notify-connection.h"
#include "plugin-notify-connection.h"
#include "test-util.h"

namespace drepl {
namespace {

using test::connect_client;
using test::run_until;
using test::TempDir;

struct RecordingSink : NotifySink {
  std::vector<std::pair<std::string, Priority>> notes;
  std::vector<std::pair<std::string, SyncDone>> syncs;
  void notify(std::string_view u, Priority p) override { notes.emplace_back(std::string(u), p); }
  void notify_sync(std::string_view u, SyncDone done) override {
    syncs.emplace_back(std::string(u), std::move(done));
  }
};

class ConnectionsTest : public ::testing::Test {
 protected:
  template <typename Conn, typename Backend>
  void listen(const std::string& name, Backend& backend) {
    auto l = StreamListener::listen_unix(io_, dir_.file(name), 0600, name,
                                         [this, name, &backend](LineConnection::Socket s) {
                                           auto c = std::make_shared<Conn>(std::move(s), name, backend,
                                                                           clients_.acquire());
                                           c->start();
                                         });
    ASSERT_TRUE(l.has_value());
    listener_ = l.value();
    listener_->start();
  }
  TempDir dir_;
  asio::io_context io_;
  ClientCounter clients_{nullptr};
  std::shared_ptr<StreamListener> listener_;
};

TEST_F(ConnectionsTest, NotifyProtocolDeliversAndAnswersSync) {
  RecordingSink sink;
  listen<NotifyConnection>("replicator", sink);
  auto c = connect_client(io_, dir_.file("replicator"));
  c->send("VERSION\treplicator-notify\t1\t0\nU\talice\thigh\nU\tb\x01tob\tlow\nU\tcarol\tsync\t42\n");
  ASSERT_TRUE(run_until(io_, [&] { return sink.notes.size() == 2 && sink.syncs.size() == 1; }));
  EXPECT_EQ(sink.notes[0], std::make_pair(std::string("alice"), Priority::kHigh));
  EXPECT_EQ(sink.notes[1], std::make_pair(std::string("b\tob"), Priority::kLow));
  EXPECT_EQ(sink.syncs[0].first, "carol");
  EXPECT_EQ(clients_.count(), 1u);
  sink.syncs[0].second(true);
  ASSERT_TRUE(run_until(io_, [&] { return c->received == "+\t42\n"; }));
}

TEST_F(ConnectionsTest, NotifyProtocolBadVersionDropsOnlyThatClient) {
  RecordingSink sink;
  listen<NotifyConnection>("replicator", sink);
  auto bad = connect_client(io_, dir_.file("replicator"));
  auto good = connect_client(io_, dir_.file("replicator"));
  bad->send("VERSION\treplicator-notify\t2\t0\nU\tx\thigh\n");
  good->send("VERSION\treplicator-notify\t1\t0\nU\ty\thigh\n");
  ASSERT_TRUE(run_until(io_, [&] { return bad->eof && sink.notes.size() == 1; }));
  EXPECT_EQ(sink.notes[0].first, "y");
  EXPECT_FALSE(good->eof);
}

TEST_F(ConnectionsTest, NotifyProtocolMalformedLinesDisconnect) {
  RecordingSink sink;
  listen<NotifyConnection>("replicator", sink);
  for (const char* line : {"U\tonly-two\n", "X\ta\thigh\n", "U\ta\turgent\n", "U\ta\tsync\tnotanumber\n"}) {
    auto c = connect_client(io_, dir_.file("replicator"));
    c->send(std::string("VERSION\treplicator-notify\t1\t0\n") + line + "U\tafter\thigh\n");
    ASSERT_TRUE(run_until(io_, [&] { return c->eof; })) << line;
  }
  EXPECT_TRUE(sink.notes.empty());
  ASSERT_TRUE(run_until(io_, [&] { return clients_.count() == 0; }));
}

TEST_F(ConnectionsTest, NotifyProtocolTooLongLineDisconnects) {
  RecordingSink sink;
  listen<NotifyConnection>("replicator", sink);
  auto c = connect_client(io_, dir_.file("replicator"));
  c->send("VERSION\treplicator-notify\t1\t0\nU\t" + std::string(70000, 'a') + "\thigh\n");
  ASSERT_TRUE(run_until(io_, [&] { return c->eof; }));
  EXPECT_TRUE(sink.notes.empty());
}

TEST_F(ConnectionsTest, PluginSocketSyncAndAsync) {
  RecordingSink sink;
  listen<PluginNotifyConnection>("replication-notify", sink);
  auto c = connect_client(io_, dir_.file("replication-notify"));
  c->send("dave\tlow\nerin\tsync\n");
  ASSERT_TRUE(run_until(io_, [&] { return sink.notes.size() == 1 && sink.syncs.size() == 1; }));
  sink.syncs[0].second(false);
  ASSERT_TRUE(run_until(io_, [&] { return c->received == "-\n"; }));
  c->send("frank\tsync\n");
  ASSERT_TRUE(run_until(io_, [&] { return sink.syncs.size() == 2; }));
  sink.syncs[1].second(true);
  ASSERT_TRUE(run_until(io_, [&] { return c->received == "-\n+\n"; }));
}

TEST_F(ConnectionsTest, PluginSocketAnswersAfterClientHalfClose) {
  RecordingSink sink;
  listen<PluginNotifyConnection>("replication-notify", sink);
  auto c = connect_client(io_, dir_.file("replication-notify"));
  c->send("gina\tsync\n");
  ASSERT_TRUE(run_until(io_, [&] { return sink.syncs.size() == 1; }));
  c->socket.shutdown(asio::socket_base::shutdown_send);
  run_until(io_, [] { return false; }, std::chrono::milliseconds(50));
  sink.syncs[0].second(true);
  ASSERT_TRUE(run_until(io_, [&] { return c->received == "+\n" && c->eof; }));
}

TEST_F(ConnectionsTest, PluginSocketRejectsNone) {
  RecordingSink sink;
  listen<PluginNotifyConnection>("replication-notify", sink);
  auto c = connect_client(io_, dir_.file("replication-notify"));
  c->send("hank\tnone\n");
  ASSERT_TRUE(run_until(io_, [&] { return c->eof; }));
  EXPECT_TRUE(sink.notes.empty());
}

TEST_F(ConnectionsTest, FifoSkipsBadLinesAndKeepsReading) {
  RecordingSink sink;
  auto fd = open_fifo(dir_.file("fifo"), 0600);
  ASSERT_TRUE(fd.has_value());
  auto reader = std::make_shared<FifoReader>(io_, fd.value(), "fifo", sink);
  reader->start();
  int w = ::open(dir_.file("fifo").c_str(), O_WRONLY | O_NONBLOCK);
  ASSERT_GE(w, 0);
  std::string data = "ivy\thigh\nbroken\nkim\tsync\n" + std::string(9000, 'x') +
                     "\tlow\nlee\tlow\nmay\tnone\nned\tlow";
  ASSERT_EQ(::write(w, data.data(), data.size()), static_cast<ssize_t>(data.size()));
  ASSERT_TRUE(run_until(io_, [&] { return sink.notes.size() == 2; }));
  EXPECT_EQ(sink.notes[0].first, "ivy");
  EXPECT_EQ(sink.notes[1].first, "lee");
  // The unterminated "ned" line completes with the next write.
  ASSERT_EQ(::write(w, "\n", 1), 1);
  ASSERT_TRUE(run_until(io_, [&] { return sink.notes.size() == 3; }));
  EXPECT_EQ(sink.notes[2], std::make_pair(std::string("ned"), Priority::kLow));
  EXPECT_EQ(reader->lines_bad(), 4u);
  ::close(w);
  reader->stop();
}

// ---- replicator-doveadm --------------------------------------------------------

struct FakeBackend : DoveadmBackend {
  ManualClock clock{1'700'000'000};
  ReplicatorQueue q{clock, QueueSettings{}};
  std::vector<std::string> log;
  std::function<void(Status)> pending_add;
  bool hold_ready = false;            // when_ready() keeps the callback
  std::function<void()> pending_ready;
  const ReplicatorQueue& queue() const override { return q; }
  void when_ready(std::function<void()> ready) override {
    if (hold_ready) {
      pending_ready = std::move(ready);
    } else {
      ready();
    }
  }
  std::vector<DsyncSlotStatus> dsync_status() override {
    return {{"alice", "incremental", "Waiting for dsync to finish"}, {"", "", "Not connected"}};
  }
  std::size_t replicate(Priority p, bool full, std::string_view mask) override {
    log.push_back(fmt::format("replicate {} {} {}", priority_to_string(p), full, mask));
    return 3;
  }
  void add(std::string_view mask, std::function<void(Status)> done) override {
    log.push_back(fmt::format("add {}", mask));
    pending_add = std::move(done);
  }
  bool remove(std::string_view user) override {
    log.push_back(fmt::format("remove {}", user));
    return user == "known";
  }
  void notify_synced(std::string_view user, bool full, std::string_view state) override {
    log.push_back(fmt::format("notify {} {} {}", user, full, state));
  }
};

constexpr const char* kGreeting = "VERSION\treplicator-doveadm-server\t1\t0\n";
constexpr const char* kHello = "VERSION\treplicator-doveadm-client\t1\t0\n";

TEST_F(ConnectionsTest, DoveadmGreetsAndServesSeveralCommandsPerConnection) {
  FakeBackend b;
  b.q.get("u1");
  listen<DoveadmConnection>("replicator-doveadm", b);
  auto c = connect_client(io_, dir_.file("replicator-doveadm"));
  c->send(std::string(kHello) + "STATUS\nSTATUS-DSYNC\nREPLICATE\thigh\tf\tu*\nREMOVE\tknown\n"
          "REMOVE\tnope\nREPLICATE\turgent\t\tx\n");
  std::string expected = std::string(kGreeting) +
                         "Queued 'sync' requests\t0\nQueued 'high' requests\t0\n"
                         "Queued 'low' requests\t0\nQueued 'failed' requests\t0\n"
                         "Queued 'full resync' requests\t1\nWaiting 'failed' requests\t0\n"
                         "Total number of known users\t1\n\n"
                         "alice\tincremental\tWaiting for dsync to finish\n\t-\tNot connected\n\n"
                         "+3\n+\n-User not found\n-Invalid priority\n";
  ASSERT_TRUE(run_until(io_, [&] { return c->received.size() >= expected.size(); }));
  EXPECT_EQ(c->received, expected);
  EXPECT_FALSE(c->eof);
  ASSERT_EQ(b.log.size(), 3u);
  EXPECT_EQ(b.log[0], "replicate high true u*");
}

TEST_F(ConnectionsTest, DoveadmCommandsWaitUntilTheUsersAreKnown) {
  FakeBackend b;
  b.hold_ready = true;  // the start-up userdb listing is still running
  listen<DoveadmConnection>("replicator-doveadm", b);
  auto c = connect_client(io_, dir_.file("replicator-doveadm"));
  c->send(std::string(kHello) + "STATUS\nREMOVE\tknown\n");
  ASSERT_TRUE(run_until(io_, [&] { return static_cast<bool>(b.pending_ready); }));
  run_until(io_, [] { return false; }, std::chrono::milliseconds(50));
  EXPECT_EQ(c->received, kGreeting);  // greeted at once, commands held
  EXPECT_TRUE(b.log.empty());
  b.q.get("u1");  // the listing found a user
  b.pending_ready();
  ASSERT_TRUE(run_until(io_, [&] { return c->received.find("+\n") != std::string::npos; }));
  EXPECT_NE(c->received.find("Total number of known users\t1\n\n+\n"), std::string::npos);
  ASSERT_EQ(b.log.size(), 1u);
  EXPECT_EQ(b.log[0], "remove known");
}

TEST_F(ConnectionsTest, DoveadmStatusMaskListsUsersSorted) {
  FakeBackend b;
  for (const char* u : {"bob", "alice", "carl", "other"}) b.q.get(u);
  listen<DoveadmConnection>("replicator-doveadm", b);
  auto c = connect_client(io_, dir_.file("replicator-doveadm"));
  c->send(std::string(kHello) + "STATUS\t?o*\nSTATUS\talice\nSTATUS\tnobody\n");
  std::string expected = std::string(kGreeting) + "bob\tnone\t0\t0\t0\t0\t0\n" +
                         "\n" + "alice\tnone\t0\t0\t0\t0\t0\n" + "\n" + "\n";
  ASSERT_TRUE(run_until(io_, [&] { return c->received.size() >= expected.size(); }));
  EXPECT_EQ(c->received, expected);
}

TEST_F(ConnectionsTest, DoveadmLargeStatusListingIsComplete) {
  FakeBackend b;
  for (int i = 0; i < 25000; ++i) b.q.get("user" + std::to_string(i));
  listen<DoveadmConnection>("replicator-doveadm", b);
  auto c = connect_client(io_, dir_.file("replicator-doveadm"));
  c->send(std::string(kHello) + "STATUS\t*\nSTATUS-DETAIL\tuser1\n");
  ASSERT_TRUE(run_until(io_, [&] {
    auto lines = c->lines();
    return lines.size() >= 1 + 25000 + 1 + 2;
  }));
  auto lines = c->lines();
  EXPECT_EQ(lines[25001], "");  // end of the STATUS listing
  EXPECT_EQ(lines[25002].rfind("user1\tnone\t", 0), 0u);
  EXPECT_EQ(lines[25003], "");
}

TEST_F(ConnectionsTest, DoveadmWildcardAddRepliesWhenListingEnds) {
  FakeBackend b;
  listen<DoveadmConnection>("replicator-doveadm", b);
  auto c = connect_client(io_, dir_.file("replicator-doveadm"));
  c->send(std::string(kHello) + "ADD\tu*\nSTATUS\n");
  ASSERT_TRUE(run_until(io_, [&] { return static_cast<bool>(b.pending_add); }));
  run_until(io_, [] { return false; }, std::chrono::milliseconds(50));
  EXPECT_EQ(c->received, kGreeting);  // STATUS waits behind ADD
  b.pending_add(ok_status());
  ASSERT_TRUE(run_until(io_, [&] { return c->received.find("Total number") != std::string::npos; }));
  EXPECT_EQ(c->received.substr(std::string(kGreeting).size(), 2), "+\n");
}

TEST_F(ConnectionsTest, DoveadmHandshakeErrorsDisconnectWithoutReply) {
  FakeBackend b;
  listen<DoveadmConnection>("replicator-doveadm", b);
  for (const char* input : {"VERSION\treplicator-notify\t1\t0\nSTATUS\n",
                            "VERSION\treplicator-doveadm-client\t2\t0\nSTATUS\n",
                            "STATUS\n"}) {
    auto c = connect_client(io_, dir_.file("replicator-doveadm"));
    c->send(input);
    ASSERT_TRUE(run_until(io_, [&] { return c->eof; })) << input;
    EXPECT_EQ(c->received, kGreeting) << input;
  }
}

TEST_F(ConnectionsTest, DoveadmCommandErrorsGetAReplyThenDisconnect) {
  FakeBackend b;
  b.q.get("u1");
  listen<DoveadmConnection>("replicator-doveadm", b);
  // A well-behaved client stays connected throughout.
  auto good = connect_client(io_, dir_.file("replicator-doveadm"));
  good->send(kHello);
  const std::pair<std::string, std::string> cases[] = {
      {"FOO\tbar\n", "-Unknown command: FOO\n"},
      {"status\n", "-Unknown command: status\n"},
      {"\n", "-Empty command\n"},
      {"REPLICATE\tlow\tu1\n", "-REPLICATE: Invalid parameters\n"},
      {"ADD\ta\tb\n", "-ADD: Invalid parameters\n"},
      {"REMOVE\n", "-REMOVE: Invalid parameters\n"},
      {"NOTIFY\tx\tf\n", "-NOTIFY: Invalid parameters\n"},
      {"X\x01\x02\n", "-Unknown command: X?\n"},  // control bytes never echoed
      {std::string(kDoveadmMaxLineBytes + 10, 'x') + "\n",
       fmt::format("-Command line too long (limit {} bytes)\n", kDoveadmMaxLineBytes)},
  };
  for (const auto& [input, reply] : cases) {
    auto c = connect_client(io_, dir_.file("replicator-doveadm"));
    c->send(std::string(kHello) + input + "STATUS\n");  // STATUS is never answered
    ASSERT_TRUE(run_until(io_, [&] { return c->eof; })) << input.substr(0, 20);
    EXPECT_EQ(c->received, kGreeting + reply) << input.substr(0, 20);
    std::size_t before = good->received.size();
    good->send("STATUS\n");
    ASSERT_TRUE(run_until(io_, [&] {
      return good->received.find("known users\t1\n\n", before) != std::string::npos;
    })) << input.substr(0, 20);
  }
  EXPECT_FALSE(good->eof);
  EXPECT_TRUE(b.log.empty());
}

TEST_F(ConnectionsTest, DoveadmFireAndForgetNotifyIsHandled) {
  FakeBackend b;
  listen<DoveadmConnection>("replicator-doveadm", b);
  {
    // The replica's dsync-server writes everything and closes at once.
    auto c = connect_client(io_, dir_.file("replicator-doveadm"));
    asio::write(c->socket, asio::buffer(std::string(kHello) + "NOTIFY\tpat\tf\tSTATE\n"));
    c->close();
  }
  ASSERT_TRUE(run_until(io_, [&] { return !b.log.empty(); }));
  EXPECT_EQ(b.log[0], "notify pat true STATE");
}

}  // namespace
}  // namespace drepl
