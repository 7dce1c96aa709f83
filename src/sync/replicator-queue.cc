#include "replicator-queue.h"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "string-arena.h"

namespace drepl {

namespace {

constexpr std::uint32_t kChunkShift = 12;
constexpr std::uint32_t kChunkSize = 1u << kChunkShift;
constexpr std::int64_t kEmptyQueueNextSecs = 3600;

// a + b, saturating at the int64 range (timestamps from a corrupt file can be huge).
std::int64_t sat_add(std::int64_t a, std::int64_t b) {
  std::int64_t r;
  if (__builtin_add_overflow(a, b, &r)) {
    return b > 0 ? std::numeric_limits<std::int64_t>::max()
                 : std::numeric_limits<std::int64_t>::min();
  }
  return r;
}

std::int64_t sat_sub(std::int64_t a, std::int64_t b) {
  std::int64_t r;
  if (__builtin_sub_overflow(a, b, &r)) {
    return b > 0 ? std::numeric_limits<std::int64_t>::min()
                 : std::numeric_limits<std::int64_t>::max();
  }
  return r;
}

std::uint32_t hash32(std::string_view s) {
  std::size_t h = std::hash<std::string_view>{}(s);
  return static_cast<std::uint32_t>(h ^ (static_cast<std::uint64_t>(h) >> 32));
}

// FNV-1a 64-bit: stable across builds, used for the backoff jitter.
std::uint64_t fnv1a(std::string_view s, std::uint32_t salt) {
  std::uint64_t h = 14695981039346656037ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  for (int i = 0; i < 4; i++) {
    h ^= (salt >> (8 * i)) & 0xffu;
    h *= 1099511628211ull;
  }
  return h;
}

// Tie-break rank: higher priority first.
std::uint32_t rank_of(Priority p) { return 3u - static_cast<std::uint32_t>(p); }

}  // namespace

struct ReplicatorQueue::Impl {
  struct HeapItem {
    std::int64_t key;
    std::uint32_t rank;
    std::uint32_t slot;
  };

  Impl(const Clock& c, QueueSettings s) : clock(c), settings(s) {}

  const Clock& clock;
  QueueSettings settings;
  std::function<void()> change_cb;

  // Every username (the records borrow them), compacted when removals
  // left more garbage than live names.
  StringArena names;

  // Chunked user storage: stable addresses, flat iteration.
  std::vector<std::unique_ptr<ReplicatorUser[]>> chunks;
  std::vector<bool> live;  // per slot
  std::uint32_t slot_count = 0;  // high-water mark
  std::vector<std::uint32_t> free_slots;
  std::size_t user_count = 0;

  // Open-addressing index: 0 = empty, else (hash32 << 32) | (slot + 1).
  std::vector<std::uint64_t> buckets;
  std::size_t bucket_mask = 0;

  // Indexed binary min-heap over (key, rank, slot).
  std::vector<HeapItem> heap;

  // ---- storage ----
  ReplicatorUser& at(std::uint32_t slot) {
    return chunks[slot >> kChunkShift][slot & (kChunkSize - 1)];
  }
  const ReplicatorUser& at(std::uint32_t slot) const {
    return chunks[slot >> kChunkShift][slot & (kChunkSize - 1)];
  }

  std::uint32_t alloc_slot() {
    if (!free_slots.empty()) {
      std::uint32_t s = free_slots.back();
      free_slots.pop_back();
      return s;
    }
    if ((slot_count & (kChunkSize - 1)) == 0) {
      chunks.emplace_back(new ReplicatorUser[kChunkSize]);
    }
    live.push_back(false);
    return slot_count++;
  }

  // ---- hash index ----
  static std::uint32_t tag_of(std::uint64_t b) { return static_cast<std::uint32_t>(b >> 32); }
  static std::uint32_t slot_in(std::uint64_t b) {
    return static_cast<std::uint32_t>(b & 0xffffffffu) - 1;
  }

  // Bucket index holding `name`, or SIZE_MAX.
  std::size_t find_bucket(std::string_view name, std::uint32_t h) const {
    if (buckets.empty()) return SIZE_MAX;
    for (std::size_t i = h & bucket_mask;; i = (i + 1) & bucket_mask) {
      std::uint64_t b = buckets[i];
      if (b == 0) return SIZE_MAX;
      if (tag_of(b) == h && at(slot_in(b)).username == name) return i;
    }
  }

  void place_bucket(std::uint32_t h, std::uint32_t slot) {
    std::size_t i = h & bucket_mask;
    while (buckets[i] != 0) i = (i + 1) & bucket_mask;
    buckets[i] = (static_cast<std::uint64_t>(h) << 32) | (static_cast<std::uint64_t>(slot) + 1);
  }

  void index_insert(std::uint32_t h, std::uint32_t slot) {
    // Keep the load factor <= 0.7.
    if (buckets.empty() || (user_count + 1) * 10 > buckets.size() * 7) {
      std::size_t n = buckets.empty() ? 64 : buckets.size() * 2;
      std::vector<std::uint64_t> old;
      old.swap(buckets);
      buckets.assign(n, 0);
      bucket_mask = n - 1;
      for (std::uint64_t b : old) {
        if (b != 0) place_bucket(tag_of(b), slot_in(b));
      }
    }
    place_bucket(h, slot);
  }

  // Backward-shift deletion (no tombstones).
  void index_erase_at(std::size_t i) {
    std::size_t j = i;
    for (;;) {
      j = (j + 1) & bucket_mask;
      std::uint64_t b = buckets[j];
      if (b == 0) break;
      std::size_t home = tag_of(b) & bucket_mask;
      if (((j - home) & bucket_mask) >= ((j - i) & bucket_mask)) {
        buckets[i] = b;
        i = j;
      }
    }
    buckets[i] = 0;
  }

  // ---- heap ----
  static bool less(const HeapItem& a, const HeapItem& b) {
    if (a.key != b.key) return a.key < b.key;
    if (a.rank != b.rank) return a.rank < b.rank;
    return a.slot < b.slot;
  }

  void put(std::size_t i, const HeapItem& item) {
    heap[i] = item;
    heap_pos_of(at(item.slot)) = static_cast<std::uint32_t>(i);
  }

  void sift_up(std::size_t i) {
    HeapItem item = heap[i];
    while (i > 0) {
      std::size_t parent = (i - 1) / 2;
      if (!less(item, heap[parent])) break;
      put(i, heap[parent]);
      i = parent;
    }
    put(i, item);
  }

  void sift_down(std::size_t i) {
    HeapItem item = heap[i];
    const std::size_t n = heap.size();
    for (;;) {
      std::size_t child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && less(heap[child + 1], heap[child])) child++;
      if (!less(heap[child], item)) break;
      put(i, heap[child]);
      i = child;
    }
    put(i, item);
  }

  HeapItem item_of(ReplicatorUser& u, UnixTime key) {
    return HeapItem{key, rank_of(u.priority), slot_of(u)};
  }

  void heap_insert(ReplicatorUser& u, UnixTime key) {
    heap.push_back(item_of(u, key));
    sift_up(heap.size() - 1);
  }

  void heap_erase(ReplicatorUser& u) {
    std::size_t i = heap_pos_of(u);
    heap_pos_of(u) = kNoHeapPos;
    HeapItem last = heap.back();
    heap.pop_back();
    if (i == heap.size()) return;
    put(i, last);
    sift_up(i);
    sift_down(heap_pos_of(at(last.slot)));
  }

  void heap_update(ReplicatorUser& u, UnixTime key) {
    std::size_t i = heap_pos_of(u);
    heap[i] = item_of(u, key);
    sift_up(i);
    sift_down(heap_pos_of(u));
  }

  // ---- ordering ----
  std::int64_t backoff(std::string_view name, std::uint32_t failures) const {
    const std::int64_t first = std::max<std::int64_t>(settings.failure_interval_secs, 0);
    if (failures <= 1 || first == 0) return first;
    const std::int64_t cap = std::max(settings.failure_backoff_max_secs, first);
    std::int64_t delay = first;
    for (std::uint32_t k = 1; k < failures && delay < cap; k++) {
      delay = delay > cap / 2 ? cap : delay * 2;
    }
    delay = std::min(delay, cap);
    const std::uint64_t range = static_cast<std::uint64_t>(delay / 5) + 1;
    return delay - static_cast<std::int64_t>((fnv1a(name, failures) ^ settings.jitter_seed) % range);
  }

  UnixTime compute_key(const ReplicatorUser& u) const {
    if (u.never_sync) return kNeverDue;
    UnixTime key;
    if (u.priority != Priority::kNone) {
      if (u.last_fast_sync == 0) {
        key = 3 - static_cast<UnixTime>(u.priority);
      } else {
        std::int64_t boost = u.priority == Priority::kLow    ? settings.boost_low_secs
                             : u.priority == Priority::kHigh ? settings.boost_high_secs
                                                             : settings.boost_sync_secs;
        key = sat_sub(u.last_update, boost);
      }
    } else if (u.last_sync_failed) {
      key = u.retry_now ? u.last_fast_sync
                        : sat_add(u.last_fast_sync, backoff(u.username, u.consecutive_failures));
    } else if (settings.full_sync_interval_secs <= 0) {
      key = kNeverDue - 1;  // replication_full_sync_interval = 0: no periodic full sync
    } else {
      key = sat_add(u.last_full_sync, settings.full_sync_interval_secs);
    }
    if (u.not_before > key) key = u.not_before;
    // kNeverDue is reserved for never_sync users.
    return key == kNeverDue ? kNeverDue - 1 : key;
  }

  // The ordering key: cached in the heap item while queued, else computed.
  UnixTime key_of(const ReplicatorUser& u) const {
    const std::uint32_t pos = heap_pos_of(u);
    return pos != kNoHeapPos ? heap[pos].key : compute_key(u);
  }

  // Recomputes the key and fixes the user's place in (or out of) the heap.
  void reposition(ReplicatorUser& u) {
    const bool want_in_heap = !u.popped && !u.never_sync;
    const bool in_heap = heap_pos_of(u) != kNoHeapPos;
    if (want_in_heap && in_heap) {
      heap_update(u, compute_key(u));
    } else if (want_in_heap) {
      heap_insert(u, compute_key(u));
    } else if (in_heap) {
      heap_erase(u);
    }
  }

  void rebuild_heap() {
    heap.clear();
    for (std::uint32_t s = 0; s < slot_count; s++) {
      if (!live[s]) continue;
      ReplicatorUser& u = at(s);
      heap_pos_of(u) = kNoHeapPos;
      if (!u.popped && !u.never_sync) {
        heap_pos_of(u) = static_cast<std::uint32_t>(heap.size());
        heap.push_back(item_of(u, compute_key(u)));
      }
    }
    for (std::size_t i = heap.size() / 2; i-- > 0;) sift_down(i);
  }

  ReplicatorUser& create(std::string_view name, std::uint32_t h, UnixTime last_update) {
    const std::uint32_t slot = alloc_slot();
    ReplicatorUser& u = at(slot);
    u.username = names.store(name);
    u.last_update = last_update;
    slot_of(u) = slot;
    heap_pos_of(u) = kNoHeapPos;
    live[slot] = true;
    index_insert(h, slot);
    user_count++;
    reposition(u);
    return u;
  }

  // Moves every live name into a fresh arena (drops the garbage of
  // removed users). Peak: the live names twice, briefly.
  void compact_names() {
    StringArena fresh;
    for (std::uint32_t s = 0; s < slot_count; s++) {
      if (!live[s]) continue;
      ReplicatorUser& u = at(s);
      u.username = fresh.store(u.username.view());
    }
    names.swap(fresh);
  }

  void changed() {
    if (change_cb) change_cb();
  }
};

ReplicatorQueue::ReplicatorQueue(const Clock& clock, QueueSettings settings)
    : impl_(std::make_unique<Impl>(clock, settings)) {}

ReplicatorQueue::~ReplicatorQueue() = default;

const QueueSettings& ReplicatorQueue::settings() const { return impl_->settings; }
const Clock& ReplicatorQueue::clock() const { return impl_->clock; }

void ReplicatorQueue::set_change_callback(std::function<void()> cb) {
  impl_->change_cb = std::move(cb);
}

ReplicatorUser* ReplicatorQueue::lookup(std::string_view username) {
  std::size_t i = impl_->find_bucket(username, hash32(username));
  return i == SIZE_MAX ? nullptr : &impl_->at(Impl::slot_in(impl_->buckets[i]));
}

const ReplicatorUser* ReplicatorQueue::lookup(std::string_view username) const {
  std::size_t i = impl_->find_bucket(username, hash32(username));
  return i == SIZE_MAX ? nullptr : &impl_->at(Impl::slot_in(impl_->buckets[i]));
}

ReplicatorUser& ReplicatorQueue::get(std::string_view username) {
  const std::uint32_t h = hash32(username);
  std::size_t i = impl_->find_bucket(username, h);
  if (i != SIZE_MAX) return impl_->at(Impl::slot_in(impl_->buckets[i]));
  ReplicatorUser& u = impl_->create(username, h, impl_->clock.now());
  impl_->changed();
  return u;
}

ReplicatorUser& ReplicatorQueue::get_listed(std::string_view username, UnixTime last_update) {
  const std::uint32_t h = hash32(username);
  std::size_t i = impl_->find_bucket(username, h);
  if (i == SIZE_MAX) {
    ReplicatorUser& u = impl_->create(username, h, last_update);
    impl_->changed();
    return u;
  }
  ReplicatorUser& u = impl_->at(Impl::slot_in(impl_->buckets[i]));
  if (last_update > u.last_update) {
    u.last_update = last_update;
    impl_->reposition(u);
    impl_->changed();
  }
  return u;
}

void ReplicatorQueue::update(ReplicatorUser& user, Priority p) {
  if (user.never_sync) return;
  if (p > user.priority) {
    user.priority = p;
    user.last_update = impl_->clock.now();
  }
  impl_->reposition(user);
  impl_->changed();
}

void ReplicatorQueue::modify(ReplicatorUser& user,
                             const std::function<void(ReplicatorUser&)>& edit) {
  edit(user);
  impl_->reposition(user);
  impl_->changed();
}

bool ReplicatorQueue::remove(std::string_view username) {
  Impl& m = *impl_;
  std::size_t i = m.find_bucket(username, hash32(username));
  if (i == SIZE_MAX) return false;
  const std::uint32_t slot = Impl::slot_in(m.buckets[i]);
  ReplicatorUser& u = m.at(slot);
  if (heap_pos_of(u) != kNoHeapPos) m.heap_erase(u);
  m.index_erase_at(i);
  // Reset the slot, releasing string memory.
  m.names.release(u.username);
  u = ReplicatorUser();
  m.live[slot] = false;
  m.free_slots.push_back(slot);
  m.user_count--;
  if (m.names.wants_compaction()) m.compact_names();
  m.changed();
  return true;
}

UnixTime ReplicatorQueue::next_sync_time(const ReplicatorUser& user) const {
  return impl_->compute_key(user);
}

std::int64_t ReplicatorQueue::next_secs(const ReplicatorUser& user) const {
  const UnixTime key = impl_->compute_key(user);
  if (key == kNeverDue) return kNeverDue;
  return std::max<std::int64_t>(0, sat_sub(key, impl_->clock.now()));
}

std::int64_t ReplicatorQueue::failure_backoff_secs(std::string_view username,
                                                   std::uint32_t consecutive_failures) const {
  return impl_->backoff(username, consecutive_failures);
}

ReplicatorUser* ReplicatorQueue::peek(std::int64_t* next_secs_r) {
  Impl& m = *impl_;
  if (m.heap.empty()) {
    if (next_secs_r != nullptr) *next_secs_r = kEmptyQueueNextSecs;
    return nullptr;
  }
  const Impl::HeapItem& top = m.heap.front();
  if (next_secs_r != nullptr) {
    *next_secs_r = std::max<std::int64_t>(0, sat_sub(top.key, m.clock.now()));
  }
  return &m.at(top.slot);
}

ReplicatorUser* ReplicatorQueue::pop() {
  Impl& m = *impl_;
  if (m.heap.empty() || m.heap.front().key > m.clock.now()) return nullptr;
  ReplicatorUser& u = m.at(m.heap.front().slot);
  m.heap_erase(u);
  u.popped = true;
  return &u;
}

void ReplicatorQueue::push(ReplicatorUser& user) {
  user.popped = false;
  impl_->reposition(user);
  impl_->changed();
}

void ReplicatorQueue::defer(ReplicatorUser& user, UnixTime not_before) {
  if (user.popped) {
    // A sync that began but never ran: keep what it was going to serve.
    if (user.priority_in_sync > user.priority) user.priority = user.priority_in_sync;
    if (user.full_sync_running) user.full_sync_retry = true;
    user.priority_in_sync = Priority::kNone;
    user.full_sync_running = false;
    user.popped = false;
  }
  user.not_before = not_before;
  impl_->reposition(user);
  impl_->changed();
}

bool ReplicatorQueue::begin_sync(ReplicatorUser& user) {
  const UnixTime now = impl_->clock.now();
  const bool full = user.force_full_sync || user.full_sync_retry ||
                    (impl_->settings.full_sync_interval_secs > 0 &&
                     sat_add(user.last_full_sync, impl_->settings.full_sync_interval_secs) <= now);
  user.last_fast_sync = now;
  user.priority_in_sync = user.priority;
  user.priority = Priority::kNone;
  user.retry_now = false;
  user.not_before = 0;
  if (full) {
    user.last_full_sync = now;
    user.force_full_sync = false;
    user.full_sync_retry = false;
  }
  user.full_sync_running = full;
  impl_->reposition(user);
  return full;
}

void ReplicatorQueue::finish_sync(ReplicatorUser& user, bool success, std::string_view new_state,
                                  const SyncError& error) {
  user.desync_streak = 0;
  user.oneway_next = false;
  record_outcome(user, success, new_state, error);
  push(user);
}

DesyncStep ReplicatorQueue::finish_desynced_sync(ReplicatorUser& user, const SyncError& error) {
  // The rerun of a desync (desync-recovery.h) keeps its own kind: not made
  // full by record_outcome().
  const bool full_retry = user.full_sync_retry || user.full_sync_running;
  record_outcome(user, false, {}, error);
  user.full_sync_retry = full_retry;
  if (user.desync_streak < std::numeric_limits<decltype(user.desync_streak)>::max()) {
    ++user.desync_streak;
  }
  const DesyncStep step = desync_next_step(user.desync_streak);
  user.oneway_next = step.oneway;
  if (step.retry_now) user.retry_now = true;
  push(user);
  return step;
}

void ReplicatorQueue::finish_failed_trial(ReplicatorUser& user, const SyncError& error) {
  const std::uint32_t before = user.consecutive_failures;
  user.desync_streak = 0;
  user.oneway_next = false;
  record_outcome(user, false, {}, error);
  user.consecutive_failures = std::max<std::uint32_t>(before, 1);
  push(user);
}

void ReplicatorQueue::record_outcome(ReplicatorUser& user, bool success,
                                     std::string_view new_state, const SyncError& error) {
  if (success) {
    // An empty state means dsync wants a full resync: never keep the old one.
    user.state.assign(new_state.data(), new_state.size());
    user.last_successful_sync = impl_->clock.now();
    user.last_sync_failed = false;
    user.consecutive_failures = 0;
    user.last_error.kind = SyncErrorKind::kNone;
    user.last_error.text.clear();
  } else if (error.kind == SyncErrorKind::kNoReplicate || error.kind == SyncErrorKind::kNoReplica) {
    user.never_sync = true;
    user.last_sync_failed = false;
    user.consecutive_failures = 0;
    user.priority = Priority::kNone;
    user.last_error = error;
  } else {
    user.last_sync_failed = true;
    // A dsync that failed midway may have applied part of its changes: an
    // incremental retry from the old state would replay them as new and undo
    // what users changed since (a removed keyword would come back). Failures
    // before dsync touched any mailbox keep the state.
    if (sync_error_may_have_changed_mail(error.kind)) {
      user.state = CompactString();
      // ... and the retry is full: a stateless incremental dsync takes two
      // mailboxes with the same GUID, UIDVALIDITY, UIDNEXT, message count and
      // HIGHESTMODSEQ as equal without looking at a message ("Mailboxes are
      // equal"), which is what both servers' INBOXes look like after the
      // same number of deliveries on each side of a partition: it would
      // report success and exchange nothing (e2e-partition found it).
      user.full_sync_retry = true;
    }
    // Without this a failed full sync with a kept state would be retried as an
    // incremental one.
    if (user.full_sync_running) user.full_sync_retry = true;
    if (user.consecutive_failures != std::numeric_limits<std::uint32_t>::max()) {
      user.consecutive_failures++;
    }
    user.last_error = error;
  }
  user.priority_in_sync = Priority::kNone;
  user.full_sync_running = false;
}

std::size_t ReplicatorQueue::retry_failed_now(
    const std::function<bool(const ReplicatorUser&)>& pred) {
  Impl& m = *impl_;
  const UnixTime now = m.clock.now();
  std::size_t n = 0;
  for (std::uint32_t s = 0; s < m.slot_count; s++) {
    if (!m.live[s]) continue;
    ReplicatorUser& u = m.at(s);
    if (u.popped || u.never_sync) continue;
    const bool deferred = u.not_before > now;
    if (!u.last_sync_failed && !deferred) continue;
    if (!pred(u)) continue;
    if (u.last_sync_failed) u.retry_now = true;
    u.not_before = 0;
    m.reposition(u);
    n++;
  }
  if (n > 0) m.changed();
  return n;
}

ReplicatorQueue::Overview ReplicatorQueue::overview() const {
  const Impl& m = *impl_;
  const UnixTime now = m.clock.now();
  Overview o;
  o.total_users = m.user_count;
  for (std::size_t c = 0; c < m.chunks.size(); c++) {
    const ReplicatorUser* chunk = m.chunks[c].get();
    const std::uint32_t base = static_cast<std::uint32_t>(c) << kChunkShift;
    const std::uint32_t n = std::min(kChunkSize, m.slot_count - base);
    for (std::uint32_t i = 0; i < n; i++) {
      if (!m.live[base + i]) continue;
      const ReplicatorUser& u = chunk[i];
      if (u.never_sync) continue;
      switch (u.priority) {
        case Priority::kSync: o.queued_sync++; continue;
        case Priority::kHigh: o.queued_high++; continue;
        case Priority::kLow: o.queued_low++; continue;
        case Priority::kNone: break;
      }
      if (m.key_of(u) <= now) {
        if (u.last_sync_failed) {
          o.queued_failed++;
        } else {
          o.queued_full_resync++;
        }
      } else if (u.last_sync_failed) {
        o.waiting_failed++;
      }
    }
  }
  return o;
}

std::size_t ReplicatorQueue::size() const { return impl_->user_count; }
std::size_t ReplicatorQueue::queued_count() const { return impl_->heap.size(); }

void ReplicatorQueue::for_each(const std::function<void(const ReplicatorUser&)>& fn) const {
  const Impl& m = *impl_;
  for (std::uint32_t s = 0; s < m.slot_count; s++) {
    if (m.live[s]) fn(m.at(s));
  }
}

std::size_t ReplicatorQueue::for_each_from(
    std::size_t cursor, std::size_t max_users,
    const std::function<void(const ReplicatorUser&)>& fn) const {
  const Impl& m = *impl_;
  std::size_t visited = 0;
  std::size_t s = cursor;
  for (; s < m.slot_count && visited < max_users; s++) {
    if (!m.live[s]) continue;
    fn(m.at(static_cast<std::uint32_t>(s)));
    visited++;
  }
  return s >= m.slot_count ? kEndCursor : s;
}

void ReplicatorQueue::for_each_mutable(const std::function<void(ReplicatorUser&)>& fn) {
  Impl& m = *impl_;
  for (std::uint32_t s = 0; s < m.slot_count; s++) {
    if (m.live[s]) fn(m.at(s));
  }
  m.rebuild_heap();
  m.changed();
}

std::string ReplicatorQueue::check_invariants_for_test() const {
  const Impl& m = *impl_;
  std::size_t live = 0, want_heap = 0;
  for (std::uint32_t s = 0; s < m.slot_count; s++) {
    if (!m.live[s]) continue;
    live++;
    const ReplicatorUser& u = m.at(s);
    if (u.slot_ != s) return fmt::format("user {} slot {} != {}", u.username, u.slot_, s);
    const bool should = !u.popped && !u.never_sync;
    if (should) want_heap++;
    if (should != (u.heap_pos_ != kNoHeapPos)) {
      return fmt::format("user {} heap membership wrong", u.username);
    }
    if (should) {
      if (u.heap_pos_ >= m.heap.size()) return fmt::format("user {} bad heap pos", u.username);
      const Impl::HeapItem& it = m.heap[u.heap_pos_];
      if (it.slot != s || it.rank != rank_of(u.priority)) {
        return fmt::format("user {} heap item stale", u.username);
      }
      if (it.key != m.compute_key(u)) {
        return fmt::format("user {} cached key {} != computed {}", u.username, it.key,
                           m.compute_key(u));
      }
    }
    const std::size_t b = m.find_bucket(u.username, hash32(u.username));
    if (b == SIZE_MAX || Impl::slot_in(m.buckets[b]) != s) {
      return fmt::format("user {} not found in index", u.username);
    }
  }
  if (live != m.user_count) return fmt::format("live {} != count {}", live, m.user_count);
  if (want_heap != m.heap.size()) {
    return fmt::format("heap size {} != expected {}", m.heap.size(), want_heap);
  }
  for (std::size_t i = 1; i < m.heap.size(); i++) {
    if (Impl::less(m.heap[i], m.heap[(i - 1) / 2])) return fmt::format("heap order broken at {}", i);
  }
  std::size_t used = 0;
  for (std::uint64_t b : m.buckets) used += b != 0;
  if (used != m.user_count) return fmt::format("index has {} entries, {} users", used, m.user_count);
  return {};
}

}  // namespace drepl
