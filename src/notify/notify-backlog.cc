// src/notify/notify-backlog.cc: see notify-backlog.h.
#include "notify-backlog.h"

#include "notify-line.h"

namespace drepl {

std::deque<NotifyBacklog::Entry>& NotifyBacklog::list_for(Priority p) {
  switch (p) {
    case Priority::kSync: return sync_;
    case Priority::kHigh: return high_;
    default: return low_;
  }
}

std::string NotifyBacklog::format(const Entry& e) {
  ReplicatorNotify n;
  n.username = e.username;
  n.priority = e.priority;
  if (e.priority == Priority::kSync) n.sync_id = e.id;
  return format_replicator_notify_line(n);
}

void NotifyBacklog::add(std::string_view username, Priority priority) {
  if (priority != Priority::kLow && priority != Priority::kHigh) return;
  std::string key(username);
  auto it = async_by_user_.find(key);
  if (it != async_by_user_.end()) {
    Entry* old = it->second;
    if (priority <= old->priority) return;  // already covered
    old->live = false;                      // superseded; skipped by take()
    --live_;
    async_by_user_.erase(it);
  }
  auto& list = list_for(priority);
  list.push_back(Entry{key, priority, 0, true});
  async_by_user_.emplace(std::move(key), &list.back());
  ++live_;
}

void NotifyBacklog::add_sync(std::string_view username, std::uint32_t id) {
  sync_.push_back(Entry{std::string(username), Priority::kSync, id, true});
  ++live_;
}

std::string NotifyBacklog::take(std::size_t max_bytes,
                                std::vector<std::pair<std::string, Priority>>* taken_r) {
  std::string out;
  for (auto* list : {&sync_, &high_, &low_}) {
    while (!list->empty()) {
      Entry& e = list->front();
      if (!e.live) {
        list->pop_front();
        continue;
      }
      std::string line = format(e);
      if (!out.empty() && out.size() + line.size() > max_bytes) return out;
      out += line;
      if (e.priority != Priority::kSync) {
        async_by_user_.erase(e.username);
        if (taken_r != nullptr) taken_r->emplace_back(std::move(e.username), e.priority);
      }
      --live_;
      list->pop_front();
    }
  }
  return out;
}

std::vector<std::uint32_t> NotifyBacklog::take_sync_ids() {
  std::vector<std::uint32_t> ids;
  for (Entry& e : sync_) {
    if (e.live) {
      ids.push_back(e.id);
      --live_;
    }
  }
  sync_.clear();
  return ids;
}

}  // namespace drepl
