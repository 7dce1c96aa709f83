// replicator/clients/user-listing.h: learning users from the userdb (spec §6.8)
// without blocking: the start-up listing (mask "*") and wildcard ADDs run
// as UserLister streams while the daemon keeps serving.
//  - Start-up: every listed user is added (priority none, last_update 0,
//    i.e. only the periodic full sync is due, or an immediate first sync
//    for a user never synced); after a complete successful listing, users
//    the userdb no longer lists are dropped (ListingReconciler rules). A
//    failed listing is retried every `retry_interval` until it succeeds.
//  - ADD <mask>: matching users are added with last_update = now.
#pragma once

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "clock.h"
#include "listing-reconciler.h"
#include "replicator-queue.h"
#include "result.h"
#include "userdb-client.h"

namespace drepl {

class UserListing {
 public:
  // `on_changed` runs after users were added/removed (to save the state).
  // `on_removed(name)` runs for each user dropped as stale.
  UserListing(asio::io_context& io, const Clock& clock, ReplicatorQueue& queue,
              std::string auth_socket, std::function<void()> on_changed,
              std::function<void(const std::string&)> on_removed);
  ~UserListing();

  // Starts the full listing (mask "*").
  void start_full_listing();
  // Lists `mask` and adds the users with last_update = now; `done` gets the outcome.
  void add_mask(const std::string& mask, std::function<void(Status)> done);
  void stop();

  // Calls `ready` once the first full listing has ended (successfully or
  // not), at once if it already has or the listing is stopped, and at the
  // latest `first_listing_max_wait` after the first such call. The
  // replicator-doveadm connections hold their commands on it: stock lists
  // the userdb before it serves anything, so its first `doveadm replicator
  // status` already counts every user.
  void when_first_listing_ended(std::function<void()> ready);
  std::chrono::milliseconds first_listing_max_wait{10000};

  bool full_listing_running() const { return full_ != nullptr; }
  bool full_listing_done() const { return full_done_; }
  // Users the running full listing returned so far, else the last complete one.
  std::uint64_t users_listed() const;
  // Failed full listings since start.
  std::uint64_t full_listing_failures() const { return full_failures_; }

  std::chrono::seconds retry_interval{60};

 private:
  void full_listing_finished(Status st);
  void end_first_wait();

  asio::io_context& io_;
  const Clock& clock_;
  ReplicatorQueue& queue_;
  std::string auth_socket_;
  std::function<void()> on_changed_;
  std::function<void(const std::string&)> on_removed_;
  std::shared_ptr<UserLister> full_;
  std::set<std::shared_ptr<UserLister>> adds_;
  ListingReconciler reconciler_;
  asio::steady_timer retry_timer_;
  asio::steady_timer first_wait_timer_;
  std::vector<std::function<void()>> first_waiters_;
  bool first_wait_armed_ = false;
  bool first_ended_ = false;
  bool full_done_ = false;
  std::uint64_t last_listed_ = 0;
  std::uint64_t full_failures_ = 0;
  bool stopped_ = false;
  std::chrono::steady_clock::time_point started_{};
};

}  // namespace drepl
