#include "sync-waiters.h"

#include <algorithm>

namespace drepl {

SyncWaiters::SyncWaiters(const Clock& clock) : clock_(clock) {}

void SyncWaiters::add(std::string_view username, const SyncWaiter& waiter) {
  auto it = by_user_.find(username);
  if (it == by_user_.end()) it = by_user_.emplace(std::string(username), std::vector<Entry>()).first;
  it->second.push_back(Entry{waiter, next_seq_, clock_.now()});
  per_client_[waiter.client]++;
  count_++;
}

void SyncWaiters::uncount(const SyncWaiter& w) {
  auto it = per_client_.find(w.client);
  if (it != per_client_.end() && --it->second == 0) per_client_.erase(it);
  count_--;
}

void SyncWaiters::deliver(std::vector<SyncWaiter>& answered, bool success,
                          const SyncAnswerFn& answer) {
  if (!answer) return;
  for (const SyncWaiter& w : answered) answer(w, success);
}

std::size_t SyncWaiters::finish_sync(std::string_view username, std::uint64_t seq, bool success,
                                     const SyncAnswerFn& answer) {
  auto it = by_user_.find(username);
  if (it == by_user_.end()) return 0;
  std::vector<Entry>& entries = it->second;
  std::vector<SyncWaiter> answered;
  auto keep_end = std::stable_partition(entries.begin(), entries.end(),
                                        [seq](const Entry& e) { return e.min_seq > seq; });
  for (auto e = keep_end; e != entries.end(); ++e) {
    answered.push_back(e->waiter);
    uncount(e->waiter);
  }
  entries.erase(keep_end, entries.end());
  if (entries.empty()) {
    by_user_.erase(it);
  }
  deliver(answered, success, answer);
  return answered.size();
}

std::size_t SyncWaiters::answer_all(std::string_view username, bool success,
                                    const SyncAnswerFn& answer) {
  auto it = by_user_.find(username);
  if (it == by_user_.end()) return 0;
  std::vector<SyncWaiter> answered;
  answered.reserve(it->second.size());
  for (const Entry& e : it->second) {
    answered.push_back(e.waiter);
    uncount(e.waiter);
  }
  by_user_.erase(it);
  deliver(answered, success, answer);
  return answered.size();
}

std::size_t SyncWaiters::answer_everyone(bool success, const SyncAnswerFn& answer) {
  std::vector<SyncWaiter> answered;
  answered.reserve(count_);
  for (auto& [name, entries] : by_user_) {
    for (const Entry& e : entries) answered.push_back(e.waiter);
  }
  by_user_.clear();
  per_client_.clear();
  count_ = 0;
  deliver(answered, success, answer);
  return answered.size();
}

std::size_t SyncWaiters::drop_client(std::uint64_t client) {
  auto pc = per_client_.find(client);
  if (pc == per_client_.end()) return 0;
  std::size_t dropped = 0;
  for (auto it = by_user_.begin(); it != by_user_.end();) {
    std::vector<Entry>& entries = it->second;
    const std::size_t before = entries.size();
    std::erase_if(entries, [client](const Entry& e) { return e.waiter.client == client; });
    dropped += before - entries.size();
    it = entries.empty() ? by_user_.erase(it) : std::next(it);
  }
  per_client_.erase(client);
  count_ -= dropped;
  return dropped;
}

std::size_t SyncWaiters::expire(std::int64_t max_age_secs, const SyncAnswerFn& answer) {
  const UnixTime cutoff = clock_.now() - max_age_secs;
  std::vector<SyncWaiter> answered;
  for (auto it = by_user_.begin(); it != by_user_.end();) {
    std::vector<Entry>& entries = it->second;
    auto keep_end = std::stable_partition(entries.begin(), entries.end(),
                                          [cutoff](const Entry& e) { return e.added_at >= cutoff; });
    for (auto e = keep_end; e != entries.end(); ++e) {
      answered.push_back(e->waiter);
      uncount(e->waiter);
    }
    entries.erase(keep_end, entries.end());
    it = entries.empty() ? by_user_.erase(it) : std::next(it);
  }
  deliver(answered, false, answer);
  return answered.size();
}

std::size_t SyncWaiters::count_for(std::string_view username) const {
  auto it = by_user_.find(username);
  return it == by_user_.end() ? 0 : it->second.size();
}

}  // namespace drepl
