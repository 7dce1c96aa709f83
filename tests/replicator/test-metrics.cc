// Tests of the metrics endpoint: MetricsConnection over real UNIX and TCP
// sockets (responses, errors, limits, timeouts), the brain's counters and
// the collector behind a real /metrics fetch, and the replicator
// executable itself in standalone mode with --listen-metrics.
// Loopback TCP ports: picked by the OS (the mail_replica tcp:127.0.0.1:36019
// is only a name: the fake doveadm-server answers, nothing connects to it).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <asio/ip/tcp.hpp>

#include <cstdlib>
#include <map>
#include <set>
#include <sstream>

#include "brain.h"
#include "counting-notify-sink.h"
#include "doveadm-protocol.h"
#include "listener.h"
#include "metrics-collector.h"
#include "metrics-connection.h"
#include "metrics-format.h"
#include "test-util.h"

namespace drepl {
namespace {

using test::FakeConn;
using test::FakeServer;
using test::run_until;
using test::TempDir;

// A loopback TCP port the OS just handed out and that is free again, for a
// process that must be told its port before it binds it.
std::uint16_t free_loopback_port() {
  asio::io_context io;
  asio::ip::tcp::acceptor a(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return a.local_endpoint().port();
}

std::vector<std::string> split_tab(const std::string& line) {
  std::vector<std::string> out;
  std::string f;
  std::istringstream in(line);
  while (std::getline(in, f, '\t')) out.push_back(f);
  if (!line.empty() && line.back() == '\t') out.push_back("");
  return out;
}

// The value of the sample line `series` ("name{labels}") in `text`, or -1.
double sample(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 &&
        line[series.size()] == ' ') {
      return std::stod(line.substr(series.size() + 1));
    }
  }
  return -1;
}

// The body of an HTTP response (after the blank line).
std::string body_of(const std::string& response) {
  auto pos = response.find("\r\n\r\n");
  return pos == std::string::npos ? std::string() : response.substr(pos + 4);
}

// ---- MetricsConnection on a UNIX listener -----------------------------------

class MetricsConnectionTest : public ::testing::Test {
 protected:
  MetricsConnectionTest() : clients_([](std::size_t) {}) {}
  ~MetricsConnectionTest() override {
    if (listener_) listener_->stop();
  }

  void listen(MetricsConnectionOptions options = {}) {
    auto l = StreamListener::listen_unix(
        io_, path_, 0600, "replicator-metrics", [this, options](StreamListener::Socket s) {
          std::make_shared<MetricsConnection>(std::move(s), "replicator-metrics",
                                              [this] {
                                                ++renders_;
                                                return std::string("m 1\n");
                                              },
                                              clients_.acquire(), options)
              ->start();
        });
    ASSERT_TRUE(l.has_value()) << l.error().message;
    listener_ = l.value();
    listener_->start();
  }

  // Sends `request`, waits for the server to close, returns what came back.
  std::string exchange(const std::string& request) {
    auto c = test::connect_client(io_, path_);
    if (!request.empty()) c->send(request);
    EXPECT_TRUE(run_until(io_, [&] { return c->eof; })) << request;
    return c->received;
  }

  TempDir dir_;
  std::string path_ = dir_.file("metrics");
  asio::io_context io_;
  ClientCounter clients_;
  std::shared_ptr<StreamListener> listener_;
  int renders_ = 0;
};

TEST_F(MetricsConnectionTest, GetMetricsExactResponse) {
  listen();
  EXPECT_EQ(exchange("GET /metrics HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n"),
            "HTTP/1.1 200 OK\r\n"
            "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
            "Content-Length: 4\r\n"
            "Connection: close\r\n"
            "\r\n"
            "m 1\n");
  EXPECT_EQ(renders_, 1);
  ASSERT_TRUE(run_until(io_, [&] { return clients_.count() == 0; }));
}

TEST_F(MetricsConnectionTest, HeadHasNoBody) {
  listen();
  std::string r = exchange("HEAD /metrics HTTP/1.0\r\n\r\n");
  EXPECT_EQ(r.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r;
  EXPECT_NE(r.find("Content-Length: 4\r\n"), std::string::npos);
  EXPECT_EQ(body_of(r), "");
}

TEST_F(MetricsConnectionTest, ErrorsGetTheirStatusAndNeverRender) {
  listen();
  struct Case {
    std::string request;
    std::string status_line;
  };
  const Case cases[] = {
      {"POST /metrics HTTP/1.1\r\nContent-Length: 2\r\n\r\nab", "HTTP/1.1 405 Method Not Allowed\r\n"},
      {"GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 404 Not Found\r\n"},
      {"hello\r\n\r\n", "HTTP/1.1 400 Bad Request\r\n"},
      {"GET /metrics HTTP/2.0\r\n\r\n", "HTTP/1.1 505 HTTP Version Not Supported\r\n"},
      {std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11),  // a TLS ClientHello
       "HTTP/1.1 400 Bad Request\r\n"},
  };
  for (const Case& c : cases) {
    std::string r = exchange(c.request);
    EXPECT_EQ(r.rfind(c.status_line, 0), 0u) << c.request << " -> " << r;
    EXPECT_NE(r.find("Connection: close\r\n"), std::string::npos);
  }
  EXPECT_EQ(renders_, 0);
  // The listener still serves.
  EXPECT_EQ(body_of(exchange("GET /metrics HTTP/1.1\r\n\r\n")), "m 1\n");
  ASSERT_TRUE(run_until(io_, [&] { return clients_.count() == 0; }));
}

TEST_F(MetricsConnectionTest, OversizedHeadIs431) {
  MetricsConnectionOptions o;
  o.max_head_bytes = 256;
  listen(o);
  std::string r = exchange("GET /metrics HTTP/1.1\r\nX-Big: " + std::string(100000, 'a') + "\r\n\r\n");
  EXPECT_EQ(r.rfind("HTTP/1.1 431 Request Header Fields Too Large\r\n", 0), 0u) << r.substr(0, 100);
  EXPECT_EQ(body_of(r), "Request head over 256 bytes\n");
}

TEST_F(MetricsConnectionTest, SilentOrSlowClientsAreDisconnectedAtTheDeadline) {
  MetricsConnectionOptions o;
  o.timeout = std::chrono::milliseconds(200);
  listen(o);
  auto silent = test::connect_client(io_, path_);
  auto partial = test::connect_client(io_, path_);
  partial->send("GET /metrics HTTP/1.1\r\nHost: x\r\n");  // never finished
  ASSERT_TRUE(run_until(io_, [&] { return silent->eof && partial->eof; }));
  EXPECT_EQ(silent->received, "");
  EXPECT_EQ(partial->received, "");
  EXPECT_EQ(renders_, 0);
  ASSERT_TRUE(run_until(io_, [&] { return clients_.count() == 0; }));
}

TEST_F(MetricsConnectionTest, ConnectAndCloseGetsNothing) {
  listen();
  {
    auto c = test::connect_client(io_, path_);
    c->close();
  }
  ASSERT_TRUE(run_until(io_, [&] { return clients_.count() == 0; }));
  // Half-closed after a complete request: still answered.
  auto c = test::connect_client(io_, path_);
  asio::write(c->socket, asio::buffer(std::string("GET /metrics HTTP/1.1\r\n\r\n")));
  c->socket.shutdown(asio::socket_base::shutdown_send);
  ASSERT_TRUE(run_until(io_, [&] { return c->eof; }));
  EXPECT_EQ(body_of(c->received), "m 1\n");
}

TEST(MetricsTcpListener, ServesOverTcp) {
  asio::io_context io;
  ClientCounter clients([](std::size_t) {});
  auto l = StreamListener::listen_tcp(io, "127.0.0.1", 0, "127.0.0.1:0",
                                      [&](StreamListener::Socket s) {
                                        std::make_shared<MetricsConnection>(
                                            std::move(s), "replicator-metrics",
                                            [] { return std::string("t 2\n"); }, clients.acquire())
                                            ->start();
                                      });
  ASSERT_TRUE(l.has_value()) << l.error().message;
  const std::uint16_t port = l.value()->local_tcp_port();  // the OS picked it
  ASSERT_NE(port, 0);
  l.value()->start();
  asio::ip::tcp::socket s(io);
  s.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  asio::write(s, asio::buffer(std::string("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")));
  std::string got;
  char buf[4096];
  bool eof = false;
  std::function<void()> read = [&] {
    s.async_read_some(asio::buffer(buf), [&](const asio::error_code& ec, std::size_t n) {
      got.append(buf, n);
      if (ec) {
        eof = true;
        return;
      }
      read();
    });
  };
  read();
  ASSERT_TRUE(run_until(io, [&] { return eof; }));
  EXPECT_EQ(got.rfind("HTTP/1.1 200 OK\r\n", 0), 0u);
  EXPECT_EQ(body_of(got), "t 2\n");
  l.value()->stop();
}

TEST(ListenAddress, Parse) {
  auto u = parse_listen_address("/run/dovecot/replicator-metrics");
  ASSERT_TRUE(u.has_value());
  EXPECT_TRUE(u->is_unix);
  EXPECT_EQ(u->path, "/run/dovecot/replicator-metrics");
  auto t = parse_listen_address("127.0.0.1:9900");
  ASSERT_TRUE(t.has_value());
  EXPECT_FALSE(t->is_unix);
  EXPECT_EQ(t->host, "127.0.0.1");
  EXPECT_EQ(t->port, 9900);
  auto v6 = parse_listen_address("[::1]:9900");
  ASSERT_TRUE(v6.has_value());
  EXPECT_EQ(v6->host, "::1");
  for (const char* bad : {"9900", ":9900", "host:", "host:x1", "host:65536", "::1:9900", "[::1:9900"}) {
    auto r = parse_listen_address(bad);
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_EQ(r.error().message,
              std::string("Invalid listen address (want PATH with a '/' or HOST:PORT): ") + bad);
  }
}

TEST(DestinationLabel, DisplayFormNeverRaw) {
  EXPECT_EQ(destination_label("tcp:replica.example.com", 12345), "tcp:replica.example.com:12345");
  EXPECT_EQ(destination_label("tcps:[::1]:4000", 0), "tcps:[::1]:4000");
  EXPECT_EQ(destination_label("remote:vmail@replica", 0), "remote:replica");
  EXPECT_EQ(destination_label("maildir:~/Maildir", 0), "local");
  EXPECT_EQ(destination_label("tcp:host", 0), "invalid");  // no port known
}

// ---- Brain counters + collector + a real /metrics fetch ----------------------

constexpr const char* kOk = "+\nSTATE2\t\n+\n";

class BrainMetricsTest : public ::testing::Test {
 protected:
  BrainMetricsTest()
      : auth_(io_, dir_.file("auth-userdb")),
        doveadm_(io_, dir_.file("doveadm-server")),
        queue_(clock_, QueueSettings{}),
        waiters_(clock_),
        breakers_(clock_),
        userdb_(io_, dir_.file("auth-userdb")),
        state_(io_, queue_, dir_.file("replicator.db"), std::chrono::milliseconds(10)),
        listing_(io_, clock_, queue_, dir_.file("auth-userdb"), [] {}, [](const std::string&) {}),
        clients_([](std::size_t) {}) {
    auth_.on_data = [this](FakeConn& c) {
      auto lines = c.lines();
      for (std::size_t i = auth_handled_[&c]; i < lines.size(); ++i) {
        auto f = split_tab(lines[i]);
        if (f[0] == "VERSION") c.send("VERSION\t1\t1\nSPID\t1\n");
        if (f[0] != "USER") continue;
        auto it = userdb_fields_.find(f[2]);
        if (it == userdb_fields_.end()) {
          c.send("NOTFOUND\t" + f[1] + "\n");
        } else {
          c.send("USER\t" + f[1] + "\t" + f[2] + "\t" + it->second + "\n");
        }
      }
      auth_handled_[&c] = lines.size();
    };
    doveadm_.on_data = [this](FakeConn& c) {
      auto lines = c.lines();
      if (lines.size() < 2 || handled_.count(&c)) return;
      handled_.insert(&c);
      std::string user = split_tab(lines[1])[1];
      running_[user] = c.shared_from_this();
      auto it = reply_for_.find(user);
      if (it != reply_for_.end()) c.send(it->second);
    };
    BrainSettings bs;
    bs.max_conns = 2;
    bs.dsync_params = {"-N"};
    bs.global_mail_replica = "tcp:global:1";
    bs.dsync.socket_path = dir_.file("doveadm-server");
    bs.dsync.inactivity_timeout_secs = 0;
    bs.dsync.overall_timeout_secs = 0;
    brain_ = std::make_unique<Brain>(io_, clock_, queue_, waiters_, breakers_, userdb_, listing_,
                                      state_, bs);
    brain_->set_metrics(&metrics_.syncs, &millis_);
    sink_ = std::make_unique<CountingNotifySink>(*brain_, metrics_.notifications,
                                                 NotifyInput::kReplicatorNotify);
    sources_.clock = &clock_;
    sources_.queue = &queue_;
    sources_.brain = brain_.get();
    sources_.waiters = &waiters_;
    sources_.breakers = &breakers_;
    sources_.state = &state_;
    sources_.listing = &listing_;
    sources_.counters = &metrics_;
    sources_.version = "test";
    sources_.start_time = 1'699'999'000;
    sources_.global_mail_replica = bs.global_mail_replica;
  }
  ~BrainMetricsTest() override {
    if (listener_) listener_->stop();
    brain_->shutdown();
    userdb_.close();
    state_.stop();
  }

  // GET /metrics over a UNIX socket; returns the body.
  std::string scrape() {
    if (!listener_) {
      auto l = StreamListener::listen_unix(
          io_, dir_.file("metrics"), 0600, "replicator-metrics", [this](StreamListener::Socket s) {
            std::make_shared<MetricsConnection>(
                std::move(s), "replicator-metrics",
                [this] { return format_metrics(collect_metrics(sources_)); }, clients_.acquire())
                ->start();
          });
      EXPECT_TRUE(l.has_value());
      listener_ = l.value();
      listener_->start();
    }
    auto c = test::connect_client(io_, dir_.file("metrics"));
    c->send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_TRUE(run_until(io_, [&] { return c->eof; }));
    EXPECT_EQ(c->received.rfind("HTTP/1.1 200 OK\r\n", 0), 0u);
    return body_of(c->received);
  }

  void answer(const std::string& user, const std::string& reply) {
    ASSERT_TRUE(run_until(io_, [&] { return running_.count(user) != 0; })) << user;
    running_[user]->send(reply);
    running_.erase(user);
  }

  TempDir dir_;
  asio::io_context io_;
  ManualClock clock_{1'700'000'000};
  ManualMillisClock millis_;
  FakeServer auth_;
  FakeServer doveadm_;
  ReplicatorQueue queue_;
  SyncWaiters waiters_;
  DestinationBreakers breakers_;
  UserdbLookups userdb_;
  StateWriter state_;
  UserListing listing_;
  ClientCounter clients_;
  ReplicatorMetrics metrics_;
  std::unique_ptr<Brain> brain_;
  std::unique_ptr<CountingNotifySink> sink_;
  MetricsSources sources_;
  std::shared_ptr<StreamListener> listener_;

  std::map<std::string, std::string> userdb_fields_;
  std::map<std::string, std::string> reply_for_;
  std::map<FakeConn*, std::size_t> auth_handled_;
  std::set<FakeConn*> handled_;
  std::map<std::string, std::shared_ptr<FakeConn>> running_;
};

TEST_F(BrainMetricsTest, CountersMoveAndQueueGaugesEqualTheStatusOverview) {
  // maildir: destinations: no TCP probe after a failure.
  userdb_fields_["alice"] = "home=/h\tmail_replica=maildir:/r/alice";
  userdb_fields_["bob"] = "home=/h\tmail_replica=maildir:/r/bob";
  userdb_fields_["carol"] = "home=/h\tnoreplicate";
  reply_for_["bob"] = "+\nX\t\n-TEMPFAIL\n";
  brain_->start();

  std::string before = scrape();
  EXPECT_EQ(sample(before, "dovecot_replicator_users"), 0);
  EXPECT_EQ(sample(before, "dovecot_replicator_dsync_slots"), 2);
  EXPECT_EQ(sample(before, "dovecot_replicator_start_time_seconds"), 1'699'999'000);
  EXPECT_EQ(sample(before, "dovecot_replicator_destination_breaker_open{destination=\"tcp:global:1\"}"), 0);

  for (const char* u : {"alice", "bob", "carol", "ghost"}) sink_->notify(u, Priority::kHigh);
  // alice's dsync is held: it shows as in flight.
  ASSERT_TRUE(run_until(io_, [&] { return running_.count("alice") != 0; }));
  ASSERT_TRUE(run_until(io_, [&] {
    return queue_.lookup("bob")->last_sync_failed && queue_.lookup("carol")->never_sync &&
           queue_.lookup("ghost") == nullptr;
  }));
  std::string during = scrape();
  EXPECT_EQ(sample(during, "dovecot_replicator_users_in_flight{stage=\"dsync\"}"), 1);
  EXPECT_EQ(sample(during, "dovecot_replicator_dsync_slots_busy"), 1);
  EXPECT_EQ(sample(during, "dovecot_replicator_syncs_started_total{type=\"full\"}"), 2);

  millis_.advance(1500);
  answer("alice", kOk);
  ASSERT_TRUE(run_until(io_, [&] { return queue_.lookup("alice")->last_successful_sync != 0; }));

  // A sync request: answered "+" by the next (incremental) dsync.
  int result = -1;
  sink_->notify_sync("alice", [&](bool ok) { result = ok; });
  EXPECT_EQ(sample(scrape(), "dovecot_replicator_sync_requests_pending"), 1);
  answer("alice", kOk);
  ASSERT_TRUE(run_until(io_, [&] { return result != -1; }));
  EXPECT_EQ(result, 1);
  ASSERT_TRUE(run_until(io_, [&] { return brain_->running() == 0; }));

  std::string m = scrape();
  EXPECT_EQ(sample(m, "dovecot_replicator_syncs_started_total{type=\"full\"}"), 2);  // alice, bob
  EXPECT_EQ(sample(m, "dovecot_replicator_syncs_started_total{type=\"incremental\"}"), 1);
  EXPECT_EQ(sample(m, "dovecot_replicator_syncs_succeeded_total{type=\"full\"}"), 1);
  EXPECT_EQ(sample(m, "dovecot_replicator_syncs_succeeded_total{type=\"incremental\"}"), 1);
  EXPECT_EQ(sample(m, "dovecot_replicator_syncs_failed_total{kind=\"remote_error\"}"), 1);
  EXPECT_EQ(sample(m, "dovecot_replicator_syncs_skipped_total{reason=\"noreplicate\"}"), 1);
  EXPECT_EQ(sample(m, "dovecot_replicator_syncs_skipped_total{reason=\"user_not_found\"}"), 1);
  // Durations from the injected clock: 1.5 s and 0 s (both successes), 0 s (bob).
  EXPECT_EQ(sample(m, "dovecot_replicator_sync_duration_seconds_bucket{result=\"success\",le=\"0.05\"}"), 1);
  EXPECT_EQ(sample(m, "dovecot_replicator_sync_duration_seconds_bucket{result=\"success\",le=\"1\"}"), 1);
  EXPECT_EQ(sample(m, "dovecot_replicator_sync_duration_seconds_bucket{result=\"success\",le=\"2.5\"}"), 2);
  EXPECT_EQ(sample(m, "dovecot_replicator_sync_duration_seconds_sum{result=\"success\"}"), 1.5);
  EXPECT_EQ(sample(m, "dovecot_replicator_sync_duration_seconds_count{result=\"failure\"}"), 1);
  EXPECT_EQ(sample(m, "dovecot_replicator_notifications_total{source=\"replicator-notify\",priority=\"high\"}"), 4);
  EXPECT_EQ(sample(m, "dovecot_replicator_notifications_total{source=\"replicator-notify\",priority=\"sync\"}"), 1);
  EXPECT_EQ(sample(m, "dovecot_replicator_sync_requests_answered_total{result=\"success\"}"), 1);
  EXPECT_EQ(sample(m, "dovecot_replicator_sync_requests_answered_total{result=\"failure\"}"), 0);
  EXPECT_EQ(sample(m, "dovecot_replicator_sync_requests_pending"), 0);
  EXPECT_EQ(sample(m, "dovecot_replicator_dsync_slots_busy"), 0);
  EXPECT_EQ(sample(m, "dovecot_replicator_users_not_replicated"), 1);  // carol
  EXPECT_EQ(sample(m, "dovecot_replicator_users_synced_within_seconds{le=\"60\"}"), 1);  // alice
  EXPECT_EQ(sample(m, "dovecot_replicator_users_never_synced"), 2);  // bob, carol
  // No raw destination ever appears.
  EXPECT_EQ(m.find("maildir:"), std::string::npos);

  // The 7 queue gauges equal the 7 lines of `doveadm replicator status`.
  std::istringstream overview(format_status_overview(queue_.overview()));
  const char* gauges[] = {"dovecot_replicator_queued_requests{priority=\"sync\"}",
                          "dovecot_replicator_queued_requests{priority=\"high\"}",
                          "dovecot_replicator_queued_requests{priority=\"low\"}",
                          "dovecot_replicator_queued_failed_requests",
                          "dovecot_replicator_queued_full_resync_requests",
                          "dovecot_replicator_waiting_failed_requests",
                          "dovecot_replicator_users"};
  std::string line;
  for (const char* g : gauges) {
    ASSERT_TRUE(std::getline(overview, line));
    EXPECT_EQ(sample(m, g), std::stod(split_tab(line)[1])) << g << " vs " << line;
  }
  EXPECT_EQ(sample(m, "dovecot_replicator_users"), 3);  // alice, bob, carol (ghost removed)
  EXPECT_EQ(sample(m, "dovecot_replicator_waiting_failed_requests"), 1);  // bob
}

TEST_F(BrainMetricsTest, OpenBreakerShowsPerDestinationAndSkipsCount) {
  breakers_.record_failure("tcp:down.example:1", SyncErrorKind::kConnectRefused, false);
  userdb_fields_["dan"] = "home=/h\tmail_replica=tcp:down.example:1";
  brain_->start();
  clock_.advance(1);  // inside the first probe interval (2 s): rejected
  sink_->notify("dan", Priority::kLow);
  ASSERT_TRUE(run_until(io_, [&] {
    return metrics_.syncs.skipped[static_cast<std::size_t>(SyncSkipReason::kBreakerOpen)] == 1;
  }));
  std::string m = scrape();
  EXPECT_EQ(sample(m, "dovecot_replicator_destination_breaker_open{destination=\"tcp:down.example:1\"}"), 1);
  EXPECT_EQ(sample(m, "dovecot_replicator_destination_consecutive_failures{destination=\"tcp:down.example:1\"}"), 1);
  EXPECT_EQ(sample(m, "dovecot_replicator_destination_probe_interval_seconds{destination=\"tcp:down.example:1\"}"), 2);
  EXPECT_EQ(sample(m, "dovecot_replicator_destination_breaker_open{destination=\"tcp:global:1\"}"), 0);
  EXPECT_EQ(sample(m, "dovecot_replicator_syncs_skipped_total{reason=\"breaker_open\"}"), 1);
  EXPECT_EQ(sample(m, "dovecot_replicator_syncs_started_total{type=\"full\"}"), 0);
}

// ---- the executable, standalone -------------------------------------------------

#ifdef DREPL_REPLICATOR_BIN
TEST(ReplicatorProcess, ListenMetricsServesUnixAndTcp) {
  TempDir dir;
  asio::io_context io;
  // Fake auth-userdb (listing: alice) and doveadm-server (every dsync OK).
  FakeServer auth(io, dir.file("auth-userdb"));
  std::map<FakeConn*, std::size_t> handled;
  auth.on_data = [&](FakeConn& c) {
    auto lines = c.lines();
    for (std::size_t i = handled[&c]; i < lines.size(); ++i) {
      auto f = split_tab(lines[i]);
      if (f[0] == "VERSION") c.send("VERSION\t1\t1\nSPID\t1\n");
      if (f[0] == "LIST") c.send("LIST\t" + f[1] + "\talice\nDONE\t" + f[1] + "\t\n");
      if (f[0] == "USER") c.send("USER\t" + f[1] + "\t" + f[2] + "\thome=/h\n");
    }
    handled[&c] = lines.size();
  };
  FakeServer doveadm(io, dir.file("doveadm-server"));
  std::set<FakeConn*> answered;
  doveadm.on_data = [&](FakeConn& c) {
    if (c.lines().size() < 2 || answered.count(&c)) return;
    answered.insert(&c);
    c.send(kOk);
  };

  const std::uint16_t metrics_port = free_loopback_port();
  const std::string metrics_tcp = "127.0.0.1:" + std::to_string(metrics_port);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::string d = dir.path();
    ::execl(DREPL_REPLICATOR_BIN, DREPL_REPLICATOR_BIN, "--foreground", "--no-config",
            "--base-dir", d.c_str(), "--state-dir", d.c_str(), "-o",
            "mail_replica=tcp:127.0.0.1:36019", "--no-default-listeners", "--listen-notify",
            (d + "/replicator").c_str(), "--listen-metrics", (d + "/metrics").c_str(),
            "--listen-metrics", metrics_tcp.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  auto fetch_unix = [&]() -> std::string {
    asio::local::stream_protocol::socket s(io);
    asio::error_code ec;
    s.connect(asio::local::stream_protocol::endpoint(dir.file("metrics")), ec);
    if (ec) return "";
    asio::write(s, asio::buffer(std::string("GET /metrics HTTP/1.1\r\n\r\n")), ec);
    std::string got;
    char buf[8192];
    for (;;) {
      std::size_t n = s.read_some(asio::buffer(buf), ec);
      got.append(buf, n);
      if (ec) break;
    }
    return body_of(got);
  };
  // Wait for the listing (alice known) and alice's first sync.
  std::string m;
  EXPECT_TRUE(run_until(io, [&] {
    m = fetch_unix();
    return sample(m, "dovecot_replicator_syncs_succeeded_total{type=\"full\"}") == 1;
  })) << m;
  EXPECT_EQ(sample(m, "dovecot_replicator_userdb_listing_complete"), 1);
  EXPECT_EQ(sample(m, "dovecot_replicator_userdb_listed_users"), 1);
  EXPECT_EQ(sample(m, "dovecot_replicator_users"), 1);
  EXPECT_EQ(sample(m, "dovecot_replicator_destination_breaker_open{destination=\"tcp:127.0.0.1:36019\"}"), 0);

  // A notification through the replicator socket is counted by input.
  auto notify = test::connect_client(io, dir.file("replicator"));
  notify->send("VERSION\treplicator-notify\t1\t0\nU\talice\thigh\nU\talice\tsync\t7\n");
  ASSERT_TRUE(run_until(io, [&] { return notify->received.find("+\t7\n") != std::string::npos; }))
      << notify->received;
  // replicator.db is rewritten shortly after the changes.
  EXPECT_TRUE(run_until(io, [&] {
    m = fetch_unix();
    return sample(m, "dovecot_replicator_state_writes_total{result=\"success\"}") >= 1;
  })) << m;
  EXPECT_GT(sample(m, "dovecot_replicator_state_last_write_timestamp_seconds"), 0);
  EXPECT_EQ(sample(m, "dovecot_replicator_state_last_write_users"), 1);
  EXPECT_EQ(sample(m, "dovecot_replicator_notifications_total{source=\"replicator-notify\",priority=\"high\"}"), 1);
  EXPECT_EQ(sample(m, "dovecot_replicator_notifications_total{source=\"replicator-notify\",priority=\"sync\"}"), 1);
  EXPECT_EQ(sample(m, "dovecot_replicator_sync_requests_answered_total{result=\"success\"}"), 1);
  notify->close();

  // The TCP listener answers too.
  asio::ip::tcp::socket t(io);
  asio::error_code ec;
  t.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), metrics_port), ec);
  ASSERT_FALSE(ec) << ec.message();
  asio::write(t, asio::buffer(std::string("GET /nothing HTTP/1.1\r\n\r\n")));
  std::string got;
  char buf[1024];
  for (;;) {
    std::size_t n = t.read_some(asio::buffer(buf), ec);
    got.append(buf, n);
    if (ec) break;
  }
  EXPECT_EQ(got.rfind("HTTP/1.1 404 Not Found\r\n", 0), 0u) << got;

  ::kill(pid, SIGTERM);
  int status = 0;
  bool exited = run_until(io, [&] { return ::waitpid(pid, &status, WNOHANG) == pid; });
  if (!exited) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
  EXPECT_TRUE(exited);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}
#endif

}  // namespace
}  // namespace drepl
