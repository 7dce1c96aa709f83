// Tests for src/metrics-format.{h,cc} and src/replicator-metrics.{h,cc}:
// the exact Prometheus exposition text for a given snapshot, escaping,
// number formatting, histogram buckets and counter bookkeeping.
#include "metrics-format.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <set>
#include <sstream>
#include <string>

#include "replicator-metrics.h"

namespace drepl {
namespace {

// A snapshot with a distinct value everywhere, so a field wired to the
// wrong line shows up.
MetricsSnapshot sample_snapshot() {
  MetricsSnapshot s;
  s.version = "1.2.3";
  s.start_time = 1'700'000'000;
  s.queue.queued_sync = 1;
  s.queue.queued_high = 2;
  s.queue.queued_low = 3;
  s.queue.queued_failed = 4;
  s.queue.queued_full_resync = 5;
  s.queue.waiting_failed = 6;
  s.queue.total_users = 42;
  s.users_not_replicated = 7;
  s.slots_max = 10;
  s.slots_lookup = 1;
  s.slots_dsync = 2;
  s.sync_requests_pending = 3;

  SyncCounters& sc = s.counters.syncs;
  for (int i = 0; i < 2; ++i) sc.record_started(SyncType::kFull);
  for (int i = 0; i < 5; ++i) sc.record_started(SyncType::kIncremental);
  // Binary-exact durations: the sum prints exactly.
  sc.record_finished(SyncType::kFull, true, SyncErrorKind::kNone, 0.03125);
  sc.record_finished(SyncType::kIncremental, true, SyncErrorKind::kNone, 0.1875);
  sc.record_finished(SyncType::kIncremental, true, SyncErrorKind::kNone, 3);
  sc.record_finished(SyncType::kIncremental, true, SyncErrorKind::kNone, 3);
  sc.record_finished(SyncType::kIncremental, true, SyncErrorKind::kNone, 7000);
  sc.record_finished(SyncType::kFull, false, SyncErrorKind::kConnectRefused, 10);
  sc.record_finished(SyncType::kIncremental, false, SyncErrorKind::kTimeout, 600);
  sc.record_skipped(SyncSkipReason::kBreakerOpen);
  sc.record_skipped(SyncSkipReason::kBreakerOpen);
  for (int i = 0; i < 7; ++i) sc.record_skipped(SyncSkipReason::kNoReplica);
  for (int i = 0; i < 8; ++i) sc.record_probe(true, SyncErrorKind::kNone);
  for (int i = 0; i < 3; ++i) sc.record_probe(false, SyncErrorKind::kTlsVerifyFailed);
  sc.record_probe(false, SyncErrorKind::kNone);  // counts as protocol

  DsyncConnectionCounters& dc = s.counters.dsync_connections;
  dc.opened = 3;
  dc.reused = 40;
  dc.reuse_retries = 1;
  dc.socket_fallback = true;
  NotifyCounters& nc = s.counters.notifications;
  for (int i = 0; i < 9; ++i) nc.record(NotifyInput::kFifo, Priority::kHigh);
  for (int i = 0; i < 4; ++i) nc.record(NotifyInput::kReplicatorNotify, Priority::kLow);
  nc.record(NotifyInput::kReplicatorNotify, Priority::kSync);
  nc.record(NotifyInput::kReplicatorNotify, Priority::kSync);
  nc.record(NotifyInput::kSocket, Priority::kNone);  // impossible, but counted: shown
  nc.record_answer(true);
  nc.record_answer(false);

  s.breakers.push_back({"tcp:b:2", true, 3, 8});
  s.breakers.push_back({"remote:a\"x", false, 0, 0});

  s.state.writes_ok = 12;
  s.state.writes_failed = 1;
  s.state.last_write_secs = 0.125;
  s.state.last_success_time = 1'700'000'100;
  s.state.last_write_users = 42;

  s.listing.in_progress = false;
  s.listing.complete = true;
  s.listing.users_listed = 40;
  s.listing.failures = 1;

  s.sync_age.present = true;
  s.sync_age.within = {1, 2, 3, 4, 5, 6, 7, 8};
  s.sync_age.ever = 9;
  s.sync_age.never = 33;
  return s;
}

constexpr const char* kExpected = R"(# HELP dovecot_replicator_build_info dovecot-replicator version (always 1).
# TYPE dovecot_replicator_build_info gauge
dovecot_replicator_build_info{version="1.2.3"} 1
# HELP dovecot_replicator_start_time_seconds Start time of the replicator process, Unix seconds.
# TYPE dovecot_replicator_start_time_seconds gauge
dovecot_replicator_start_time_seconds 1700000000
# HELP dovecot_replicator_queued_requests Users queued with a pending request, by priority (doveadm replicator status: Queued 'sync'/'high'/'low' requests).
# TYPE dovecot_replicator_queued_requests gauge
dovecot_replicator_queued_requests{priority="sync"} 1
dovecot_replicator_queued_requests{priority="high"} 2
dovecot_replicator_queued_requests{priority="low"} 3
# HELP dovecot_replicator_queued_failed_requests Users whose last sync failed and that are due again (doveadm replicator status: Queued 'failed' requests).
# TYPE dovecot_replicator_queued_failed_requests gauge
dovecot_replicator_queued_failed_requests 4
# HELP dovecot_replicator_queued_full_resync_requests Users due for their periodic full sync (doveadm replicator status: Queued 'full resync' requests).
# TYPE dovecot_replicator_queued_full_resync_requests gauge
dovecot_replicator_queued_full_resync_requests 5
# HELP dovecot_replicator_waiting_failed_requests Users whose last sync failed, waiting for the retry time (doveadm replicator status: Waiting 'failed' requests).
# TYPE dovecot_replicator_waiting_failed_requests gauge
dovecot_replicator_waiting_failed_requests 6
# HELP dovecot_replicator_users Users the replicator knows (doveadm replicator status: Total number of known users).
# TYPE dovecot_replicator_users gauge
dovecot_replicator_users 42
# HELP dovecot_replicator_users_not_replicated Known users never synced because they have no mail_replica or have noreplicate.
# TYPE dovecot_replicator_users_not_replicated gauge
dovecot_replicator_users_not_replicated 7
# HELP dovecot_replicator_dsync_slots Parallel dsync slots (replication_max_conns).
# TYPE dovecot_replicator_dsync_slots gauge
dovecot_replicator_dsync_slots 10
# HELP dovecot_replicator_dsync_slots_busy Dsync slots in use (a userdb lookup or a dsync).
# TYPE dovecot_replicator_dsync_slots_busy gauge
dovecot_replicator_dsync_slots_busy 3
# HELP dovecot_replicator_users_in_flight Users taken out of the queue for a sync, by stage (userdb lookup, dsync).
# TYPE dovecot_replicator_users_in_flight gauge
dovecot_replicator_users_in_flight{stage="userdb_lookup"} 1
dovecot_replicator_users_in_flight{stage="dsync"} 2
# HELP dovecot_replicator_syncs_started_total Dsync runs started, by type.
# TYPE dovecot_replicator_syncs_started_total counter
dovecot_replicator_syncs_started_total{type="full"} 2
dovecot_replicator_syncs_started_total{type="normal"} 0
dovecot_replicator_syncs_started_total{type="incremental"} 5
# HELP dovecot_replicator_syncs_succeeded_total Dsync runs that succeeded, by type.
# TYPE dovecot_replicator_syncs_succeeded_total counter
dovecot_replicator_syncs_succeeded_total{type="full"} 1
dovecot_replicator_syncs_succeeded_total{type="normal"} 0
dovecot_replicator_syncs_succeeded_total{type="incremental"} 4
# HELP dovecot_replicator_syncs_failed_total Dsync runs that failed, by error kind.
# TYPE dovecot_replicator_syncs_failed_total counter
dovecot_replicator_syncs_failed_total{kind="connect_refused"} 1
dovecot_replicator_syncs_failed_total{kind="auth_failed"} 0
dovecot_replicator_syncs_failed_total{kind="tls_verify_failed"} 0
dovecot_replicator_syncs_failed_total{kind="lock_timeout"} 0
dovecot_replicator_syncs_failed_total{kind="remote_error"} 0
dovecot_replicator_syncs_failed_total{kind="timeout"} 1
dovecot_replicator_syncs_failed_total{kind="nouser"} 0
dovecot_replicator_syncs_failed_total{kind="noreplicate"} 0
dovecot_replicator_syncs_failed_total{kind="no_replica"} 0
dovecot_replicator_syncs_failed_total{kind="local_doveadm"} 0
dovecot_replicator_syncs_failed_total{kind="protocol"} 0
dovecot_replicator_syncs_failed_total{kind="host_not_found"} 0
dovecot_replicator_syncs_failed_total{kind="ssh_auth_failed"} 0
dovecot_replicator_syncs_failed_total{kind="userdb_failed"} 0
# HELP dovecot_replicator_syncs_skipped_total Users taken out of the queue that got no dsync, by reason.
# TYPE dovecot_replicator_syncs_skipped_total counter
dovecot_replicator_syncs_skipped_total{reason="user_not_found"} 0
dovecot_replicator_syncs_skipped_total{reason="userdb_failed"} 0
dovecot_replicator_syncs_skipped_total{reason="noreplicate"} 0
dovecot_replicator_syncs_skipped_total{reason="no_replica"} 7
dovecot_replicator_syncs_skipped_total{reason="breaker_open"} 2
# HELP dovecot_replicator_replica_probes_reachable_total Replica probes (before a circuit breaker trial, or after a dsync failed without a reason) that reached the replica.
# TYPE dovecot_replicator_replica_probes_reachable_total counter
dovecot_replicator_replica_probes_reachable_total 8
# HELP dovecot_replicator_replica_probes_failed_total Replica probes that failed, by error kind (a failure before a trial started no dsync).
# TYPE dovecot_replicator_replica_probes_failed_total counter
dovecot_replicator_replica_probes_failed_total{kind="connect_refused"} 0
dovecot_replicator_replica_probes_failed_total{kind="auth_failed"} 0
dovecot_replicator_replica_probes_failed_total{kind="tls_verify_failed"} 3
dovecot_replicator_replica_probes_failed_total{kind="lock_timeout"} 0
dovecot_replicator_replica_probes_failed_total{kind="remote_error"} 0
dovecot_replicator_replica_probes_failed_total{kind="timeout"} 0
dovecot_replicator_replica_probes_failed_total{kind="nouser"} 0
dovecot_replicator_replica_probes_failed_total{kind="noreplicate"} 0
dovecot_replicator_replica_probes_failed_total{kind="no_replica"} 0
dovecot_replicator_replica_probes_failed_total{kind="local_doveadm"} 0
dovecot_replicator_replica_probes_failed_total{kind="protocol"} 1
dovecot_replicator_replica_probes_failed_total{kind="host_not_found"} 0
dovecot_replicator_replica_probes_failed_total{kind="ssh_auth_failed"} 0
dovecot_replicator_replica_probes_failed_total{kind="userdb_failed"} 0
# HELP dovecot_replicator_sync_duration_seconds Duration of finished dsync runs, seconds.
# TYPE dovecot_replicator_sync_duration_seconds histogram
dovecot_replicator_sync_duration_seconds_bucket{result="success",le="0.05"} 1
dovecot_replicator_sync_duration_seconds_bucket{result="success",le="0.1"} 1
dovecot_replicator_sync_duration_seconds_bucket{result="success",le="0.25"} 2
dovecot_replicator_sync_duration_seconds_bucket{result="success",le="0.5"} 2
dovecot_replicator_sync_duration_seconds_bucket{result="success",le="1"} 2
dovecot_replicator_sync_duration_seconds_bucket{result="success",le="2.5"} 2
dovecot_replicator_sync_duration_seconds_bucket{result="success",le="5"} 4
dovecot_replicator_sync_duration_seconds_bucket{result="success",le="10"} 4
dovecot_replicator_sync_duration_seconds_bucket{result="success",le="30"} 4
dovecot_replicator_sync_duration_seconds_bucket{result="success",le="60"} 4
dovecot_replicator_sync_duration_seconds_bucket{result="success",le="300"} 4
dovecot_replicator_sync_duration_seconds_bucket{result="success",le="900"} 4
dovecot_replicator_sync_duration_seconds_bucket{result="success",le="3600"} 4
dovecot_replicator_sync_duration_seconds_bucket{result="success",le="+Inf"} 5
dovecot_replicator_sync_duration_seconds_sum{result="success"} 7006.21875
dovecot_replicator_sync_duration_seconds_count{result="success"} 5
dovecot_replicator_sync_duration_seconds_bucket{result="failure",le="0.05"} 0
dovecot_replicator_sync_duration_seconds_bucket{result="failure",le="0.1"} 0
dovecot_replicator_sync_duration_seconds_bucket{result="failure",le="0.25"} 0
dovecot_replicator_sync_duration_seconds_bucket{result="failure",le="0.5"} 0
dovecot_replicator_sync_duration_seconds_bucket{result="failure",le="1"} 0
dovecot_replicator_sync_duration_seconds_bucket{result="failure",le="2.5"} 0
dovecot_replicator_sync_duration_seconds_bucket{result="failure",le="5"} 0
dovecot_replicator_sync_duration_seconds_bucket{result="failure",le="10"} 1
dovecot_replicator_sync_duration_seconds_bucket{result="failure",le="30"} 1
dovecot_replicator_sync_duration_seconds_bucket{result="failure",le="60"} 1
dovecot_replicator_sync_duration_seconds_bucket{result="failure",le="300"} 1
dovecot_replicator_sync_duration_seconds_bucket{result="failure",le="900"} 2
dovecot_replicator_sync_duration_seconds_bucket{result="failure",le="3600"} 2
dovecot_replicator_sync_duration_seconds_bucket{result="failure",le="+Inf"} 2
dovecot_replicator_sync_duration_seconds_sum{result="failure"} 610
dovecot_replicator_sync_duration_seconds_count{result="failure"} 2
# HELP dovecot_replicator_dsync_connections_total Dsync runs by connection to doveadm-server: new = connected for this run, reused = sent on a kept idle connection.
# TYPE dovecot_replicator_dsync_connections_total counter
dovecot_replicator_dsync_connections_total{connection="new"} 3
dovecot_replicator_dsync_connections_total{connection="reused"} 40
# HELP dovecot_replicator_dsync_connection_retries_total Dsync runs whose reused connection failed before a usable reply (closed by doveadm-server, -TEMPFAIL) and that ran again on a new connection.
# TYPE dovecot_replicator_dsync_connection_retries_total counter
dovecot_replicator_dsync_connection_retries_total 1
# HELP dovecot_replicator_dsync_socket_fallback 1 while replication_dsync_socket_path (service replicator-dsync) is missing and dsyncs go to doveadm_socket_path, one connection each.
# TYPE dovecot_replicator_dsync_socket_fallback gauge
dovecot_replicator_dsync_socket_fallback 1
# HELP dovecot_replicator_users_synced_within_seconds Users whose last successful sync ended at most le seconds ago (le="+Inf": users synced at least once).
# TYPE dovecot_replicator_users_synced_within_seconds gauge
dovecot_replicator_users_synced_within_seconds{le="60"} 1
dovecot_replicator_users_synced_within_seconds{le="300"} 2
dovecot_replicator_users_synced_within_seconds{le="900"} 3
dovecot_replicator_users_synced_within_seconds{le="3600"} 4
dovecot_replicator_users_synced_within_seconds{le="21600"} 5
dovecot_replicator_users_synced_within_seconds{le="86400"} 6
dovecot_replicator_users_synced_within_seconds{le="604800"} 7
dovecot_replicator_users_synced_within_seconds{le="2592000"} 8
dovecot_replicator_users_synced_within_seconds{le="+Inf"} 9
# HELP dovecot_replicator_users_never_synced Known users without any successful sync.
# TYPE dovecot_replicator_users_never_synced gauge
dovecot_replicator_users_never_synced 33
# HELP dovecot_replicator_notifications_total Notifications received, by input (fifo, socket, replicator-notify) and priority.
# TYPE dovecot_replicator_notifications_total counter
dovecot_replicator_notifications_total{source="fifo",priority="low"} 0
dovecot_replicator_notifications_total{source="fifo",priority="high"} 9
dovecot_replicator_notifications_total{source="socket",priority="none"} 1
dovecot_replicator_notifications_total{source="socket",priority="low"} 0
dovecot_replicator_notifications_total{source="socket",priority="high"} 0
dovecot_replicator_notifications_total{source="socket",priority="sync"} 0
dovecot_replicator_notifications_total{source="replicator-notify",priority="none"} 0
dovecot_replicator_notifications_total{source="replicator-notify",priority="low"} 4
dovecot_replicator_notifications_total{source="replicator-notify",priority="high"} 0
dovecot_replicator_notifications_total{source="replicator-notify",priority="sync"} 2
# HELP dovecot_replicator_sync_requests_pending Sync requests (priority sync) waiting for a dsync of their user.
# TYPE dovecot_replicator_sync_requests_pending gauge
dovecot_replicator_sync_requests_pending 3
# HELP dovecot_replicator_sync_requests_answered_total Sync requests answered: success = "+", failure = "-".
# TYPE dovecot_replicator_sync_requests_answered_total counter
dovecot_replicator_sync_requests_answered_total{result="success"} 1
dovecot_replicator_sync_requests_answered_total{result="failure"} 1
# HELP dovecot_replicator_destination_breaker_open 1 while the destination's circuit breaker is open (replica looks down, syncs to it paused), else 0.
# TYPE dovecot_replicator_destination_breaker_open gauge
dovecot_replicator_destination_breaker_open{destination="remote:a\"x"} 0
dovecot_replicator_destination_breaker_open{destination="tcp:b:2"} 1
# HELP dovecot_replicator_destination_consecutive_failures Destination-down failures in a row (connect refused, timeout, TLS verify).
# TYPE dovecot_replicator_destination_consecutive_failures gauge
dovecot_replicator_destination_consecutive_failures{destination="remote:a\"x"} 0
dovecot_replicator_destination_consecutive_failures{destination="tcp:b:2"} 3
# HELP dovecot_replicator_destination_probe_interval_seconds Seconds between trial syncs while the breaker is open; 0 when closed.
# TYPE dovecot_replicator_destination_probe_interval_seconds gauge
dovecot_replicator_destination_probe_interval_seconds{destination="remote:a\"x"} 0
dovecot_replicator_destination_probe_interval_seconds{destination="tcp:b:2"} 8
# HELP dovecot_replicator_state_writes_total replicator.db rewrites, by result.
# TYPE dovecot_replicator_state_writes_total counter
dovecot_replicator_state_writes_total{result="success"} 12
dovecot_replicator_state_writes_total{result="failure"} 1
# HELP dovecot_replicator_state_last_write_duration_seconds Duration of the last replicator.db rewrite (snapshot and write), seconds.
# TYPE dovecot_replicator_state_last_write_duration_seconds gauge
dovecot_replicator_state_last_write_duration_seconds 0.125
# HELP dovecot_replicator_state_last_write_timestamp_seconds Unix time of the last successful replicator.db rewrite; 0 = none yet.
# TYPE dovecot_replicator_state_last_write_timestamp_seconds gauge
dovecot_replicator_state_last_write_timestamp_seconds 1700000100
# HELP dovecot_replicator_state_last_write_users Users in the last successful replicator.db rewrite.
# TYPE dovecot_replicator_state_last_write_users gauge
dovecot_replicator_state_last_write_users 42
# HELP dovecot_replicator_userdb_listing_in_progress 1 while the userdb listing of all users is running.
# TYPE dovecot_replicator_userdb_listing_in_progress gauge
dovecot_replicator_userdb_listing_in_progress 0
# HELP dovecot_replicator_userdb_listing_complete 1 once a complete userdb listing has finished since start.
# TYPE dovecot_replicator_userdb_listing_complete gauge
dovecot_replicator_userdb_listing_complete 1
# HELP dovecot_replicator_userdb_listed_users Users returned by the running userdb listing, else by the last complete one.
# TYPE dovecot_replicator_userdb_listed_users gauge
dovecot_replicator_userdb_listed_users 40
# HELP dovecot_replicator_userdb_listing_failures_total Failed userdb listings of all users.
# TYPE dovecot_replicator_userdb_listing_failures_total counter
dovecot_replicator_userdb_listing_failures_total 1
)";

TEST(MetricsFormat, ExactTextForASnapshot) {
  EXPECT_EQ(format_metrics(sample_snapshot()), kExpected);
}

TEST(MetricsFormat, SameSnapshotSameBytesWhateverTheBreakerOrder) {
  MetricsSnapshot a = sample_snapshot();
  MetricsSnapshot b = sample_snapshot();
  std::swap(b.breakers[0], b.breakers[1]);
  EXPECT_EQ(format_metrics(a), format_metrics(b));
}

TEST(MetricsFormat, EveryFamilyHasHelpAndTypeOnceAndEverySampleBelongsToOne) {
  std::istringstream in(format_metrics(sample_snapshot()));
  std::string line;
  std::set<std::string> helped, typed;
  std::string current;
  int samples = 0;
  while (std::getline(in, line)) {
    ASSERT_FALSE(line.empty());
    if (line.rfind("# HELP ", 0) == 0) {
      std::string name = line.substr(7, line.find(' ', 7) - 7);
      EXPECT_TRUE(helped.insert(name).second) << "HELP twice: " << name;
      current = name;
      continue;
    }
    if (line.rfind("# TYPE ", 0) == 0) {
      std::string name = line.substr(7, line.find(' ', 7) - 7);
      EXPECT_EQ(name, current);
      EXPECT_TRUE(typed.insert(name).second) << "TYPE twice: " << name;
      continue;
    }
    ++samples;
    std::string name = line.substr(0, line.find_first_of("{ "));
    EXPECT_EQ(name.rfind(current, 0), 0u) << line;
    EXPECT_EQ(name.rfind("dovecot_replicator_", 0), 0u) << line;
  }
  EXPECT_EQ(helped, typed);
  EXPECT_GT(samples, 100);
}

TEST(MetricsFormat, WithoutSyncAgeTheFamiliesAreLeftOut) {
  MetricsSnapshot s = sample_snapshot();
  s.sync_age.present = false;
  std::string text = format_metrics(s);
  EXPECT_EQ(text.find("users_synced_within_seconds"), std::string::npos);
  EXPECT_EQ(text.find("users_never_synced"), std::string::npos);
  EXPECT_NE(text.find("dovecot_replicator_users 42\n"), std::string::npos);
}

TEST(MetricsFormat, EmptySnapshotHasNoDestinationSamplesButAllCounters) {
  MetricsSnapshot s;
  std::string text = format_metrics(s);
  EXPECT_EQ(text.find("{destination="), std::string::npos);
  EXPECT_NE(text.find("# TYPE dovecot_replicator_destination_breaker_open gauge\n"),
            std::string::npos);
  EXPECT_NE(text.find("dovecot_replicator_syncs_failed_total{kind=\"protocol\"} 0\n"),
            std::string::npos);
  // kind "none" is never a failure kind.
  EXPECT_EQ(text.find("kind=\"none\""), std::string::npos);
  // Impossible input/priority pairs with no count are not shown.
  EXPECT_EQ(text.find("source=\"fifo\",priority=\"sync\""), std::string::npos);
  EXPECT_EQ(text.find("source=\"socket\",priority=\"none\""), std::string::npos);
  EXPECT_EQ(text.back(), '\n');
}

TEST(MetricsFormat, LabelValuesAreEscaped) {
  EXPECT_EQ(escape_label_value("plain:host:1"), "plain:host:1");
  EXPECT_EQ(escape_label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  EXPECT_EQ(escape_label_value(""), "");
}

TEST(MetricsFormat, SampleValues) {
  EXPECT_EQ(format_sample_value(0), "0");
  EXPECT_EQ(format_sample_value(3), "3");
  EXPECT_EQ(format_sample_value(-2), "-2");
  EXPECT_EQ(format_sample_value(1'700'000'000), "1700000000");
  EXPECT_EQ(format_sample_value(0.25), "0.25");
  EXPECT_EQ(format_sample_value(0.1), "0.1");
  EXPECT_EQ(format_sample_value(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(format_sample_value(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(format_sample_value(std::nan("")), "NaN");
}

TEST(DurationHistogram, BucketsAreCumulativeAndBoundsInclusive) {
  DurationHistogram h;
  h.observe(0.05);   // exactly the first bound: in it
  h.observe(0.051);  // the next one
  h.observe(-1);     // counts as 0
  h.observe(5000);   // above every bound: +Inf only
  EXPECT_EQ(h.cumulative(0), 2u);
  EXPECT_EQ(h.cumulative(1), 3u);
  EXPECT_EQ(h.cumulative(DurationHistogram::kBounds.size() - 1), 3u);
  EXPECT_EQ(h.count(), 4u);
  EXPECT_DOUBLE_EQ(h.sum(), 0.05 + 0.051 + 0 + 5000);
}

TEST(SyncCounters, FailureWithoutKindCountsAsProtocol) {
  SyncCounters c;
  c.record_finished(SyncType::kNormal, false, SyncErrorKind::kNone, 1);
  EXPECT_EQ(c.failed[static_cast<std::size_t>(SyncErrorKind::kProtocol)], 1u);
  EXPECT_EQ(c.failed[0], 0u);
  EXPECT_EQ(c.duration_failed.count(), 1u);
  EXPECT_EQ(c.duration_ok.count(), 0u);
}

TEST(ReplicatorMetrics, Names) {
  EXPECT_EQ(sync_type_for(true, "state"), SyncType::kFull);
  EXPECT_EQ(sync_type_for(false, ""), SyncType::kNormal);
  EXPECT_EQ(sync_type_for(false, "state"), SyncType::kIncremental);
  EXPECT_EQ(sync_type_to_string(SyncType::kIncremental), "incremental");
  EXPECT_EQ(sync_skip_reason_to_string(SyncSkipReason::kUserNotFound), "user_not_found");
  EXPECT_EQ(notify_input_to_string(NotifyInput::kReplicatorNotify), "replicator-notify");
}

}  // namespace
}  // namespace drepl
