// replicator/user-listing.cc: see user-listing.h.
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
      retry_timer_(io) {}

UserListing::~UserListing() { stop(); }

void UserListing::stop() {
  stopped_ = true;
  retry_timer_.cancel();
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
