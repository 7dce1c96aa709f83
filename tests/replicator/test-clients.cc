// Tests of the daemon's client sides against in-process fakes: the dsync
// client (doveadm-server), userdb lookups and listing (auth-master), the
// config socket reader, and the atomic state file writer.
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/un.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "config-reader.h"
#include "dsync-client.h"
#include "queue-file.h"
#include "state-writer.h"
#include "test-util.h"
#include "user-listing.h"
#include "userdb-client.h"

namespace drepl {
namespace {

using test::FakeConn;
using test::FakeServer;
using test::run_until;
using test::TempDir;

// ---- dsync client ---------------------------------------------------------------

DsyncClientOptions dsync_options(const TempDir& dir) {
  DsyncClientOptions o;
  o.socket_path = dir.file("doveadm-server");
  o.inactivity_timeout_secs = 0;
  o.overall_timeout_secs = 0;
  o.connect_failure_delay = std::chrono::milliseconds(10);
  return o;
}

TEST(DsyncClientTest, SendsRequestAndParsesSuccess) {
  TempDir dir;
  asio::io_context io;
  FakeServer server(io, dir.file("doveadm-server"));
  server.on_data = [](FakeConn& c) {
    if (c.lines().size() == 2 && c.received.find("sent") == std::string::npos) {
      c.received += "sent";
      c.send("+\nNEWSTATE\t\n+\n");
    }
  };
  std::optional<DsyncResult> result;
  auto client = std::make_shared<DsyncClient>(
      io, dsync_options(dir), "VERSION\tdoveadm-server\t1\t0\n\talice\tsync\t-N\t-s\t\ttcp:b\n",
      [&](const DsyncResult& r) { result = r; });
  client->start();
  ASSERT_TRUE(run_until(io, [&] { return result.has_value(); }));
  EXPECT_TRUE(result->ok);
  EXPECT_EQ(result->state, "NEWSTATE");
  auto lines = server.conns[0]->lines();
  EXPECT_EQ(lines[0], "VERSION\tdoveadm-server\t1\t0");
  EXPECT_EQ(lines[1], "\talice\tsync\t-N\t-s\t\ttcp:b");
}

TEST(DsyncClientTest, NoUserAndTempfail) {
  for (auto [reply, kind] : {std::pair{"+\n\n-NOUSER\n", SyncErrorKind::kNoUser},
                             std::pair{"+\nX\t\n-TEMPFAIL\n", SyncErrorKind::kRemoteError},
                             std::pair{"-\n", SyncErrorKind::kLocalDoveadm}}) {
    TempDir dir;
    asio::io_context io;
    FakeServer server(io, dir.file("doveadm-server"));
    std::string r = reply;
    server.on_data = [r](FakeConn& c) {
      if (c.received.find("sent") == std::string::npos) {
        c.received += "sent";
        c.send(r);
      }
    };
    std::optional<DsyncResult> result;
    auto client = std::make_shared<DsyncClient>(io, dsync_options(dir), "x\n",
                                                [&](const DsyncResult& res) { result = res; });
    client->start();
    ASSERT_TRUE(run_until(io, [&] { return result.has_value(); })) << reply;
    EXPECT_FALSE(result->ok);
    EXPECT_EQ(result->error.kind, kind) << reply;
    EXPECT_TRUE(result->state.empty());
  }
}

TEST(DsyncClientTest, EofBeforeReplyFails) {
  TempDir dir;
  asio::io_context io;
  FakeServer server(io, dir.file("doveadm-server"));
  server.on_data = [](FakeConn& c) {
    c.send("+\n");
    c.socket.shutdown(asio::socket_base::shutdown_both);
  };
  std::optional<DsyncResult> result;
  auto client = std::make_shared<DsyncClient>(io, dsync_options(dir), "x\n",
                                              [&](const DsyncResult& r) { result = r; });
  client->start();
  ASSERT_TRUE(run_until(io, [&] { return result.has_value(); }));
  EXPECT_FALSE(result->ok);
  EXPECT_EQ(result->error.kind, SyncErrorKind::kRemoteError);
}

TEST(DsyncClientTest, ConnectFailureIsLocalDoveadmError) {
  TempDir dir;
  asio::io_context io;
  std::optional<DsyncResult> result;
  auto client = std::make_shared<DsyncClient>(io, dsync_options(dir), "x\n",
                                              [&](const DsyncResult& r) { result = r; });
  client->start();
  ASSERT_TRUE(run_until(io, [&] { return result.has_value(); }));
  EXPECT_EQ(result->error.kind, SyncErrorKind::kLocalDoveadm);
  EXPECT_NE(result->error.text.find("net_connect_unix("), std::string::npos);
}

TEST(DsyncClientTest, HungServerTimesOut) {
  TempDir dir;
  asio::io_context io;
  FakeServer server(io, dir.file("doveadm-server"));
  server.on_data = [](FakeConn& c) {
    if (c.received.find("sent") == std::string::npos) {
      c.received += "sent";
      c.send("+\n");  // then nothing: a hung dsync
    }
  };
  auto opts = dsync_options(dir);
  opts.inactivity_timeout_secs = 1;
  std::optional<DsyncResult> result;
  auto started = std::chrono::steady_clock::now();
  auto client = std::make_shared<DsyncClient>(io, opts, "x\n",
                                              [&](const DsyncResult& r) { result = r; });
  client->start();
  ASSERT_TRUE(run_until(io, [&] { return result.has_value(); }, std::chrono::seconds(10)));
  EXPECT_EQ(result->error.kind, SyncErrorKind::kTimeout);
  // The serving "process" is this test itself: never killed.
  EXPECT_NE(result->error.text.find("not found"), std::string::npos) << result->error.text;
  EXPECT_GE(std::chrono::steady_clock::now() - started, std::chrono::seconds(1));
}

TEST(DsyncClientTest, AbortNeverCallsBack) {
  TempDir dir;
  asio::io_context io;
  FakeServer server(io, dir.file("doveadm-server"));
  bool called = false;
  auto client = std::make_shared<DsyncClient>(io, dsync_options(dir), "x\n",
                                              [&](const DsyncResult&) { called = true; });
  client->start();
  ASSERT_TRUE(run_until(io, [&] { return !server.conns.empty(); }));
  client->abort();
  run_until(io, [] { return false; }, std::chrono::milliseconds(50));
  EXPECT_FALSE(called);
}

// ---- auth-master --------------------------------------------------------------------

// Answers USER for "alice" (with fields), NOTFOUND for "nobody", FAIL for
// "broken"; LIST streams `list_count` users in two writes.
void serve_auth(FakeServer& server, int list_count) {
  server.on_data = [list_count](FakeConn& c) {
    auto lines = c.lines();
    std::size_t handled = 0;
    for (char ch : c.received) handled += ch == '\r';  // count handled lines as CRs (hack)
    for (std::size_t i = 0; i < lines.size(); ++i) {
      if (i < handled) continue;
      c.received += '\r';
      std::istringstream in(lines[i]);
      std::string cmd, id, arg;
      std::getline(in, cmd, '\t');
      std::getline(in, id, '\t');
      std::getline(in, arg, '\t');
      if (cmd == "VERSION") {
        c.send("VERSION\t1\t1\nSPID\t123\n");
      } else if (cmd == "USER") {
        if (arg == "alice") c.send("USER\t" + id + "\talice\thome=/h\tmail_replica=tcp:x:1\n");
        else if (arg == "nobody") c.send("NOTFOUND\t" + id + "\n");
        else c.send("FAIL\t" + id + "\treason=backend down\n");
      } else if (cmd == "LIST") {
        std::string first, second;
        for (int u = 0; u < list_count; ++u) {
          (u < list_count / 2 ? first : second) += "LIST\t" + id + "\tu" + std::to_string(u) + "\n";
        }
        c.send(first);
        c.send(second + "DONE\t" + id + "\t\n");
      }
    }
  };
}

TEST(UserdbTest, LookupsFoundNotFoundFailed) {
  TempDir dir;
  asio::io_context io;
  FakeServer server(io, dir.file("auth-userdb"));
  serve_auth(server, 0);
  UserdbLookups lookups(io, dir.file("auth-userdb"));
  std::vector<UserdbLookup> results(3);
  int done = 0;
  const char* names[] = {"alice", "nobody", "broken"};
  for (int i = 0; i < 3; ++i) {
    lookups.lookup(names[i], [&, i](UserdbLookup r) {
      results[i] = std::move(r);
      ++done;
    });
  }
  ASSERT_TRUE(run_until(io, [&] { return done == 3; }));
  EXPECT_EQ(results[0].kind, UserdbLookup::Kind::kFound);
  EXPECT_EQ(auth_user_field(results[0].reply, "mail_replica").value_or(""), "tcp:x:1");
  EXPECT_EQ(results[1].kind, UserdbLookup::Kind::kNotFound);
  EXPECT_EQ(results[2].kind, UserdbLookup::Kind::kFailed);
  EXPECT_NE(results[2].error.find("backend down"), std::string::npos);
  // One connection served all three.
  EXPECT_EQ(server.conns.size(), 1u);
}

TEST(UserdbTest, LookupFailsWhenAuthIsDown) {
  TempDir dir;
  asio::io_context io;
  UserdbLookups lookups(io, dir.file("auth-userdb"));
  std::optional<UserdbLookup> r;
  lookups.lookup("alice", [&](UserdbLookup x) { r = std::move(x); });
  ASSERT_TRUE(run_until(io, [&] { return r.has_value(); }));
  EXPECT_EQ(r->kind, UserdbLookup::Kind::kFailed);
  EXPECT_NE(r->error.find("net_connect_unix"), std::string::npos);
}

TEST(UserdbTest, ListingStreamsInChunks) {
  TempDir dir;
  asio::io_context io;
  FakeServer server(io, dir.file("auth-userdb"));
  serve_auth(server, 50000);
  std::vector<std::string> names;
  int chunks = 0;
  std::optional<Status> status;
  auto lister = std::make_shared<UserLister>(
      io, dir.file("auth-userdb"), "*",
      [&](std::vector<std::string>& batch) {
        ++chunks;
        names.insert(names.end(), batch.begin(), batch.end());
      },
      [&](Status st) { status = std::move(st); });
  lister->start();
  ASSERT_TRUE(run_until(io, [&] { return status.has_value(); }));
  EXPECT_TRUE(status->has_value());
  ASSERT_EQ(names.size(), 50000u);
  EXPECT_EQ(names.front(), "u0");
  EXPECT_EQ(names.back(), "u49999");
  EXPECT_GT(chunks, 1);
  EXPECT_EQ(lister->listed(), 50000u);
  EXPECT_NE(server.conns[0]->received.find("LIST\t1\tuser=*\tservice=replicator\n"),
            std::string::npos);
}

TEST(UserdbTest, ListingKeepsOnlyUsersMatchingTheMask) {
  // The fake auth server, like Dovecot 2.3's with passwd-file, ignores the
  // user= mask and lists everyone (u0..u29).
  TempDir dir;
  asio::io_context io;
  FakeServer server(io, dir.file("auth-userdb"));
  serve_auth(server, 30);
  std::vector<std::string> names;
  std::optional<Status> status;
  auto lister = std::make_shared<UserLister>(
      io, dir.file("auth-userdb"), "u1?",
      [&](std::vector<std::string>& batch) { names.insert(names.end(), batch.begin(), batch.end()); },
      [&](Status st) { status = std::move(st); });
  lister->start();
  ASSERT_TRUE(run_until(io, [&] { return status.has_value(); }));
  EXPECT_TRUE(status->has_value());
  std::vector<std::string> expected;
  for (int u = 10; u < 20; ++u) expected.push_back("u" + std::to_string(u));
  EXPECT_EQ(names, expected);
  EXPECT_EQ(lister->listed(), 10u);
  EXPECT_NE(server.conns[0]->received.find("LIST\t1\tuser=u1?\tservice=replicator\n"),
            std::string::npos);
}

// ---- start-up listing: doveadm commands wait for it ------------------------------

TEST(UserListingTest, FirstListingEndReleasesWaitersAndLaterOnesRunAtOnce) {
  TempDir dir;
  asio::io_context io;
  FakeServer server(io, dir.file("auth-userdb"));
  // The LIST is answered only when the test says so.
  std::shared_ptr<FakeConn> list_conn;
  server.on_data = [&](FakeConn& c) {
    if (c.received.find("LIST\t") != std::string::npos) list_conn = c.shared_from_this();
  };
  ManualClock clock{1'700'000'000};
  ReplicatorQueue queue(clock, QueueSettings{});
  UserListing listing(io, clock, queue, dir.file("auth-userdb"), [] {}, [](const std::string&) {});
  listing.start_full_listing();
  std::vector<std::size_t> known_when_ready;
  listing.when_first_listing_ended([&] { known_when_ready.push_back(queue.size()); });
  listing.when_first_listing_ended([&] { known_when_ready.push_back(queue.size()); });
  ASSERT_TRUE(run_until(io, [&] { return list_conn != nullptr; }));
  run_until(io, [] { return false; }, std::chrono::milliseconds(50));
  EXPECT_TRUE(known_when_ready.empty());
  list_conn->send("VERSION\t1\t1\nLIST\t1\talice\nLIST\t1\tbob\nDONE\t1\t\n");
  ASSERT_TRUE(run_until(io, [&] { return known_when_ready.size() == 2; }));
  EXPECT_EQ(known_when_ready, (std::vector<std::size_t>{2, 2}));  // every user known by then
  bool now = false;
  listing.when_first_listing_ended([&] { now = true; });
  EXPECT_TRUE(now);
  listing.stop();
}

TEST(UserListingTest, FailedFirstListingReleasesWaiters) {
  TempDir dir;
  asio::io_context io;  // no auth server at all: the listing fails at once
  ManualClock clock{1'700'000'000};
  ReplicatorQueue queue(clock, QueueSettings{});
  UserListing listing(io, clock, queue, dir.file("auth-userdb"), [] {}, [](const std::string&) {});
  listing.start_full_listing();
  bool ready = false;
  listing.when_first_listing_ended([&] { ready = true; });
  ASSERT_TRUE(run_until(io, [&] { return ready; }));
  EXPECT_EQ(listing.full_listing_failures(), 1u);
  listing.stop();
}

TEST(UserListingTest, WaitersAreReleasedAfterTheMaximumWait) {
  TempDir dir;
  asio::io_context io;
  FakeServer server(io, dir.file("auth-userdb"));  // accepts, never answers
  ManualClock clock{1'700'000'000};
  ReplicatorQueue queue(clock, QueueSettings{});
  UserListing listing(io, clock, queue, dir.file("auth-userdb"), [] {}, [](const std::string&) {});
  listing.first_listing_max_wait = std::chrono::milliseconds(100);
  listing.start_full_listing();
  auto t0 = std::chrono::steady_clock::now();
  bool ready = false;
  listing.when_first_listing_ended([&] { ready = true; });
  ASSERT_TRUE(run_until(io, [&] { return ready; }));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(100));
  EXPECT_TRUE(listing.full_listing_running());
  listing.stop();
}

TEST(UserdbTest, ListingFailureIsReported) {
  TempDir dir;
  asio::io_context io;
  FakeServer server(io, dir.file("auth-userdb"));
  server.on_data = [](FakeConn& c) {
    if (c.received.find("LIST") != std::string::npos && c.received.find("sent") == std::string::npos) {
      c.received += "sent";
      c.send("VERSION\t1\t1\nLIST\t1\tpartial\nDONE\t1\tfail\n");
    }
  };
  std::optional<Status> status;
  auto lister = std::make_shared<UserLister>(
      io, dir.file("auth-userdb"), "*", [](std::vector<std::string>&) {},
      [&](Status st) { status = std::move(st); });
  lister->start();
  ASSERT_TRUE(run_until(io, [&] { return status.has_value(); }));
  EXPECT_FALSE(status->has_value());
}

// ---- config socket ------------------------------------------------------------------

TEST(ConfigReaderTest, ReadsConfigSocketReply) {
  TempDir dir;
  std::string path = dir.file("config");
  int ls = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
  ASSERT_EQ(::bind(ls, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(ls, 1), 0);
  std::string request;
  std::thread server([&] {
    int c = ::accept(ls, nullptr, nullptr);
    char buf[4096];
    while (request.find("REQ") == std::string::npos ||
           request.find('\n', request.find("REQ")) == std::string::npos) {
      ssize_t n = ::read(c, buf, sizeof(buf));
      if (n <= 0) break;
      request.append(buf, n);
    }
    std::string reply =
        "service=imap\t\nbase_dir=/run/x\nreplication_max_conns=3\n"
        "plugin/mail_replica=tcp:peer:1\nmulti=line1\x03line2\n\n";
    (void)!::write(c, reply.data(), reply.size());
    ::sleep(1);  // keep the connection open like the real server
    ::close(c);
  });
  auto r = read_config_socket(path, "replicator", std::chrono::seconds(5));
  server.join();
  ::close(ls);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(request, "VERSION\tconfig\t2\t0\nREQ\tservice=replicator\n");
  ASSERT_EQ(r->size(), 4u);
  EXPECT_EQ((*r)[0], std::make_pair(std::string("base_dir"), std::string("/run/x")));
  EXPECT_EQ((*r)[2], std::make_pair(std::string("plugin/mail_replica"), std::string("tcp:peer:1")));
  EXPECT_EQ((*r)[3].second, "line1\nline2");
}

TEST(ConfigReaderTest, MissingSocketIsAnError) {
  TempDir dir;
  auto r = read_config_socket(dir.file("nope"), "replicator", std::chrono::seconds(1));
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("net_connect_unix"), std::string::npos);
}

// ---- state file ---------------------------------------------------------------------

TEST(StateWriterTest, DebouncedWriteCapturesChangesAndReimports) {
  TempDir dir;
  asio::io_context io;
  ManualClock clock;
  ReplicatorQueue queue(clock, QueueSettings{});
  std::string path = dir.file("replicator.db");
  StateWriter writer(io, queue, path, std::chrono::milliseconds(20));
  for (int i = 0; i < 30000; ++i) queue.get("user" + std::to_string(i));
  queue.update(*queue.lookup("user5"), Priority::kHigh);
  writer.mark_dirty();
  writer.mark_dirty();
  ASSERT_TRUE(run_until(io, [&] { return writer.writes_done() == 1 && writer.idle(); }));
  ReplicatorQueue again(clock, QueueSettings{});
  auto stats = import_queue_file(again, path);
  ASSERT_TRUE(stats.has_value());
  EXPECT_EQ(again.size(), 30000u);
  EXPECT_EQ(again.lookup("user5")->priority, Priority::kHigh);
  // A later change is written again; removed users disappear.
  queue.remove("user7");
  writer.mark_dirty();
  ASSERT_TRUE(run_until(io, [&] { return writer.writes_done() == 2 && writer.idle(); }));
  ReplicatorQueue third(clock, QueueSettings{});
  ASSERT_TRUE(import_queue_file(third, path).has_value());
  EXPECT_EQ(third.size(), 29999u);
  EXPECT_EQ(third.lookup("user7"), nullptr);
  EXPECT_TRUE(writer.flush_now());
  EXPECT_EQ(writer.writes_done(), 3u);
}

}  // namespace
}  // namespace drepl
