// replicator/clients/user-listing.cc: see user-listing.h.
#include "user-listing.h"

#include "logger.h"

namespace drepl {

UserListing::UserListing(asio::io_context& io, const Clock& clock, ReplicatorQueue& queue,
                         std::string auth_socket, std::function<void()> on_changed,
                         std::function<void(const std::string&)> on_removed)
    : io_(io),
      clock_(clock),
      queue_(queue),
      auth_socket_(std::move(auth_socket)),
      on_changed_(std::move(on_changed)),
      on_removed_(std::move(on_removed)),
      retry_timer_(io),
      first_wait_timer_(io) {}

UserListing::~UserListing() { stop(); }

void UserListing::stop() {
  stopped_ = true;
  retry_timer_.cancel();
  end_first_wait();
  if (full_) full_->cancel();
  full_.reset();
  for (auto& l : adds_) l->cancel();
  adds_.clear();
  reconciler_.abandon();
}

void UserListing::start_full_listing() {
  if (stopped_ || full_) return;
  started_ = std::chrono::steady_clock::now();
  reconciler_.begin(clock_.now(), queue_.size());
  full_ = std::make_shared<UserLister>(
      io_, auth_socket_, "*",
      [this](std::vector<std::string>& names) {
        for (const std::string& name : names) {
          reconciler_.saw(name);
          queue_.get_listed(name, 0);
        }
        if (on_changed_) on_changed_();
      },
      [this](Status st) { full_listing_finished(std::move(st)); });
  full_->start();
}

void UserListing::when_first_listing_ended(std::function<void()> ready) {
  if (first_ended_ || stopped_) {
    ready();
    return;
  }
  first_waiters_.push_back(std::move(ready));
  if (first_wait_armed_) return;
  first_wait_armed_ = true;
  first_wait_timer_.expires_after(first_listing_max_wait);
  first_wait_timer_.async_wait([this](const asio::error_code& ec) {
    if (ec || first_ended_) return;
    log_warning("The userdb listing is still running after {:.1f} secs: answering doveadm "
                "commands with the users known so far",
                static_cast<double>(first_listing_max_wait.count()) / 1000.0);
    end_first_wait();
  });
}

void UserListing::end_first_wait() {
  if (first_ended_) return;
  first_ended_ = true;
  first_wait_timer_.cancel();
  std::vector<std::function<void()>> waiters;
  waiters.swap(first_waiters_);
  for (auto& w : waiters) w();
}

void UserListing::full_listing_finished(Status st) {
  std::uint64_t listed = full_ ? full_->listed() : 0;
  full_.reset();
  auto secs = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::steady_clock::now() - started_)
                  .count() /
              1000.0;
  if (!st) {
    ++full_failures_;
    reconciler_.abandon();
    log_error("Listing users failed, can't replicate existing data: {} (retrying in {} secs)",
              st.error().message, retry_interval.count());
    retry_timer_.expires_after(retry_interval);
    retry_timer_.async_wait([this](const asio::error_code& ec) {
      if (!ec && !stopped_) start_full_listing();
    });
    end_first_wait();  // as stock: serve doveadm without the users
    return;
  }
  full_done_ = true;
  last_listed_ = listed;
  std::vector<std::string> stale = reconciler_.finish(queue_);
  for (const std::string& name : stale) {
    if (queue_.remove(name) && on_removed_) on_removed_(name);
  }
  if (listed == 0) {
    log_warning("The userdb listing returned no users (does the userdb support iteration?); "
                "users are learnt from notifications only");
  }
  log_info("Listed {} users from the userdb in {:.1f} secs{}", listed, secs,
           stale.empty() ? std::string()
                         : fmt::format("; dropped {} users no longer in the userdb", stale.size()));
  if (on_changed_) on_changed_();
  end_first_wait();
}

std::uint64_t UserListing::users_listed() const {
  return full_ ? full_->listed() : last_listed_;
}

void UserListing::add_mask(const std::string& mask, std::function<void(Status)> done) {
  if (stopped_) return;
  auto holder = std::make_shared<std::shared_ptr<UserLister>>();
  auto lister = std::make_shared<UserLister>(
      io_, auth_socket_, mask,
      [this](std::vector<std::string>& names) {
        UnixTime now = clock_.now();
        for (const std::string& name : names) {
          ReplicatorUser& u = queue_.get_listed(name, now);
          if (u.never_sync) {
            // An explicit ADD re-checks users earlier found without a replica.
            queue_.modify(u, [](ReplicatorUser& x) { x.never_sync = false; });
          }
        }
        if (on_changed_) on_changed_();
      },
      [this, holder, done = std::move(done), mask](Status st) {
        if (*holder) adds_.erase(*holder);
        holder->reset();
        if (!st) log_error("ADD {}: listing users failed: {}", mask, st.error().message);
        done(std::move(st));
      });
  *holder = lister;
  adds_.insert(lister);
  lister->start();
}

}  // namespace drepl
