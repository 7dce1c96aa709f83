// bench/bench-replicator-queue.cc: ReplicatorQueue at 1M (and optionally
// 10M) synthetic users: insert, update, pop/begin/finish throughput,
// resident memory per user, the STATUS overview and the STATUS '*' listing,
// and replicator.db export/import.
//
// Usage: bench-replicator-queue [--users N] [--10m] [--state-bytes B] [--dir D]
//   --users N        users for the main run (default 1000000)
//   --10m            also run with 10,000,000 users (needs ~3 GB and minutes)
//   --state-bytes B  dsync state size per user, bytes (default 0: measures
//                    our overhead only; real states are ~50 bytes per folder)
//   --dir D          where to write the replicator.db copy (default $TMPDIR or /tmp)
// Targets: <= 300 bytes/user resident (state excluded), overview < 2 s at 1M.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "clock.h"
#include "queue-file.h"
#include "replicator-queue.h"
#include "tab-escape.h"

namespace {

using drepl::ManualClock;
using drepl::Priority;
using drepl::ReplicatorQueue;
using drepl::ReplicatorUser;

long resident_bytes() {
  std::ifstream in("/proc/self/statm");
  long size = 0, resident = 0;
  in >> size >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

struct Row {
  std::string what;
  std::size_t ops;
  double secs;
};

void print_table(std::size_t users, const std::vector<Row>& rows, double bytes_per_user,
                 std::size_t state_bytes) {
  fmt::print("\nReplicatorQueue, {} users (state {} bytes/user)\n", users, state_bytes);
  fmt::print("{:<34} {:>11} {:>11} {:>10} {:>14}\n", "operation", "count", "total ms", "ns/op",
             "ops/s");
  fmt::print("{:-<84}\n", "");
  for (const Row& r : rows) {
    fmt::print("{:<34} {:>11} {:>11.1f} {:>10.1f} {:>14.0f}\n", r.what, r.ops, r.secs * 1e3,
               r.ops ? r.secs * 1e9 / static_cast<double>(r.ops) : 0.0,
               r.secs > 0 ? static_cast<double>(r.ops) / r.secs : 0.0);
  }
  fmt::print("{:-<84}\n", "");
  fmt::print("resident memory per user: {:.0f} bytes (target <= 300 + state)\n", bytes_per_user);
}

std::string username(std::size_t i) { return fmt::format("user{:08}@example.com", i); }

int run(std::size_t users, std::size_t state_bytes, const std::string& dir) {
  ManualClock clock(1'700'000'000);
  std::vector<Row> rows;
  const std::string state(state_bytes, 'Q');
  const long rss_before = resident_bytes();
  auto* q = new ReplicatorQueue(clock, drepl::QueueSettings{});

  // Insert (as the start-up userdb listing does).
  auto t = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < users; i++) {
    ReplicatorUser& u = q->get_listed(username(i), 0);
    if (state_bytes > 0) u.state = state;  // not an ordering field
  }
  rows.push_back({"insert (get_listed)", users, seconds_since(t)});
  const double bytes_per_user =
      static_cast<double>(resident_bytes() - rss_before) / static_cast<double>(users);

  // Lookups.
  std::mt19937_64 rng(1);
  std::vector<std::string> names;
  const std::size_t kOps = std::min<std::size_t>(users, 1'000'000);
  names.reserve(kOps);
  for (std::size_t i = 0; i < kOps; i++) names.push_back(username(rng() % users));
  t = std::chrono::steady_clock::now();
  std::size_t found = 0;
  for (const std::string& n : names) found += q->lookup(n) != nullptr;
  rows.push_back({"lookup (hit)", kOps, seconds_since(t)});
  if (found != kOps) std::abort();

  // One sync cycle per user: pop + begin_sync + finish_sync (push).
  t = std::chrono::steady_clock::now();
  std::size_t cycles = 0;
  while (ReplicatorUser* u = q->pop()) {
    q->begin_sync(*u);
    q->finish_sync(*u, true, "", drepl::SyncError{});
    cycles++;
  }
  rows.push_back({"pop+begin_sync+finish_sync", cycles, seconds_since(t)});

  // Notifications: update() to a random priority of random users.
  clock.advance(60);
  t = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < kOps; i++) {
    q->update(q->get(names[i]), static_cast<Priority>(1 + rng() % 3));
  }
  rows.push_back({"get+update (notification)", kOps, seconds_since(t)});

  // pop/push churn on the hot end of the heap (slots busy: stock path).
  t = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < kOps; i++) {
    ReplicatorUser* u = q->pop();
    if (u == nullptr) break;
    q->push(*u);
  }
  rows.push_back({"pop+push", kOps, seconds_since(t)});

  // STATUS overview.
  t = std::chrono::steady_clock::now();
  ReplicatorQueue::Overview ov = q->overview();
  rows.push_back({"overview() [STATUS]", 1, seconds_since(t)});

  // STATUS '*': one line per user, formatted as replicator-doveadm sends it.
  t = std::chrono::steady_clock::now();
  std::string out;
  std::size_t total_bytes = 0, lines = 0;
  q->for_each([&](const ReplicatorUser& u) {
    drepl::tab_escape_append(out, u.username);
    fmt::format_to(std::back_inserter(out), "\t{}\t{}\t{}\t{}\t{}\t{}\n",
                   drepl::priority_to_string(u.priority), u.last_fast_sync, u.last_full_sync,
                   u.last_sync_failed ? 1 : 0, u.last_successful_sync, q->next_secs(u));
    lines++;
    if (out.size() > (1u << 16)) {
      total_bytes += out.size();
      out.clear();
    }
  });
  total_bytes += out.size();
  rows.push_back({"STATUS '*' lines (format only)", lines, seconds_since(t)});

  // replicator.db export and import.
  const std::string db = dir + "/bench-replicator-queue.db";
  t = std::chrono::steady_clock::now();
  auto exported = drepl::export_queue_file(*q, db);
  rows.push_back({"export replicator.db", users, seconds_since(t)});
  if (!exported.has_value()) {
    fmt::print(stderr, "export failed: {}\n", exported.error().message);
  } else {
    ReplicatorQueue q2(clock, drepl::QueueSettings{});
    t = std::chrono::steady_clock::now();
    auto imported = drepl::import_queue_file(q2, db);
    rows.push_back({"import replicator.db (empty queue)", users, seconds_since(t)});
    if (!imported.has_value() || imported->applied != users) {
      fmt::print(stderr, "import failed\n");
    }
  }
  std::remove(db.c_str());

  // Removal.
  t = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < users; i += 10) q->remove(username(i));
  rows.push_back({"remove (every 10th)", (users + 9) / 10, seconds_since(t)});

  print_table(users, rows, bytes_per_user, state_bytes);
  fmt::print("overview: sync {} high {} low {} failed {} full-resync {} waiting-failed {} total {}\n",
             ov.queued_sync, ov.queued_high, ov.queued_low, ov.queued_failed,
             ov.queued_full_resync, ov.waiting_failed, ov.total_users);
  fmt::print("STATUS '*' output: {} lines, {} bytes\n", lines, total_bytes);
  delete q;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t users = 1'000'000;
  std::size_t state_bytes = 0;
  bool ten_million = false;
  const char* tmp = std::getenv("TMPDIR");
  std::string dir = tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
  for (int i = 1; i < argc; i++) {
    const std::string a = argv[i];
    if (a == "--users" && i + 1 < argc) {
      users = std::strtoull(argv[++i], nullptr, 10);
    } else if (a == "--state-bytes" && i + 1 < argc) {
      state_bytes = std::strtoull(argv[++i], nullptr, 10);
    } else if (a == "--dir" && i + 1 < argc) {
      dir = argv[++i];
    } else if (a == "--10m") {
      ten_million = true;
    } else {
      fmt::print(stderr,
                 "usage: {} [--users N] [--10m] [--state-bytes B] [--dir D]\n", argv[0]);
      return 64;
    }
  }
  if (users == 0) users = 1;
  run(users, state_bytes, dir);
  if (ten_million) run(10'000'000, state_bytes, dir);
  return 0;
}
