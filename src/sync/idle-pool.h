// src/sync/idle-pool.h: idle connections kept for reuse, keyed by where they
// lead (the replicator keys its doveadm-server connections by socket path,
// replicator/clients/dsync-connections.h). Pure bookkeeping: the caller
// passes the monotonic time (milliseconds, millis-clock.h), so tests move
// time by hand.
//
// Rules:
//  - at most `max_idle_per_key` idle connections per key; give_back() of one
//    more drops it (the caller's connection is destroyed = closed);
//  - a connection idle for `max_idle_ms` or longer is never handed out
//    again: take() and expire() drop it;
//  - take() hands out the most recently returned one (LIFO: it is the
//    least likely to have been closed by the server meanwhile).
// `Conn` must be movable; dropping = destroying it.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "millis-clock.h"

namespace drepl {

template <class Conn>
class IdlePool {
 public:
  IdlePool(std::size_t max_idle_per_key, Millis max_idle_ms)
      : max_idle_per_key_(max_idle_per_key), max_idle_ms_(max_idle_ms) {}

  // An idle connection for `key` returned less than max_idle_ms ago, or
  // nullopt. Expired ones for `key` are dropped on the way.
  std::optional<Conn> take(const std::string& key, Millis now) {
    auto it = idle_.find(key);
    if (it == idle_.end()) return std::nullopt;
    auto& list = it->second;
    std::optional<Conn> out;
    while (!list.empty()) {
      Entry e = std::move(list.back());
      list.pop_back();
      if (now - e.since < max_idle_ms_) {
        out.emplace(std::move(e.conn));
        break;
      }
      ++expired_;
    }
    if (list.empty()) idle_.erase(it);
    return out;
  }

  // Keeps `conn` idle for `key` from `now`. Returns false (and drops it)
  // when `key` already has max_idle_per_key idle connections.
  bool give_back(const std::string& key, Conn conn, Millis now) {
    if (max_idle_per_key_ == 0) return false;
    auto& list = idle_[key];
    if (list.size() >= max_idle_per_key_) return false;
    list.push_back(Entry{std::move(conn), now});
    return true;
  }

  // Drops every connection idle for max_idle_ms or longer; returns how many.
  std::size_t expire(Millis now) {
    std::size_t n = 0;
    for (auto it = idle_.begin(); it != idle_.end();) {
      auto& list = it->second;
      std::vector<Entry> keep;
      for (Entry& e : list) {
        if (now - e.since < max_idle_ms_) keep.push_back(std::move(e));
        else ++n;
      }
      list = std::move(keep);
      it = list.empty() ? idle_.erase(it) : std::next(it);
    }
    expired_ += n;
    return n;
  }

  // Drops everything (shutdown, settings change).
  void clear() { idle_.clear(); }

  // The earliest time (ms) at which some idle connection expires; nullopt
  // when none is idle.
  std::optional<Millis> next_expiry() const {
    std::optional<Millis> t;
    for (const auto& [key, list] : idle_) {
      for (const Entry& e : list) {
        Millis at = e.since + max_idle_ms_;
        if (!t || at < *t) t = at;
      }
    }
    return t;
  }

  // Idle connections for `key` / in total (expired ones not yet dropped included).
  std::size_t idle(const std::string& key) const {
    auto it = idle_.find(key);
    return it == idle_.end() ? 0 : it->second.size();
  }
  std::size_t idle_total() const {
    std::size_t n = 0;
    for (const auto& [key, list] : idle_) n += list.size();
    return n;
  }
  // Connections dropped because they were idle too long, since creation.
  std::size_t expired() const { return expired_; }

  void set_limits(std::size_t max_idle_per_key, Millis max_idle_ms) {
    max_idle_per_key_ = max_idle_per_key;
    max_idle_ms_ = max_idle_ms;
  }

 private:
  struct Entry {
    Conn conn;
    Millis since;
  };
  std::size_t max_idle_per_key_;
  Millis max_idle_ms_;
  std::map<std::string, std::vector<Entry>> idle_;
  std::size_t expired_ = 0;
};

}  // namespace drepl
