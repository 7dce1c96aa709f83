#include <gtest/gtest.h>

#include <memory>

#include "idle-pool.h"

namespace drepl {
namespace {

// A connection that counts its own destruction (= close).
struct FakeConn {
  int id = 0;
  std::shared_ptr<int> closed;
  FakeConn(int i, std::shared_ptr<int> c) : id(i), closed(std::move(c)) {}
  FakeConn(FakeConn&& o) noexcept : id(o.id), closed(std::move(o.closed)) {}
  FakeConn& operator=(FakeConn&& o) noexcept {
    if (closed) ++*closed;
    id = o.id;
    closed = std::move(o.closed);
    return *this;
  }
  ~FakeConn() {
    if (closed) ++*closed;
  }
};

TEST(IdlePool, TakeFromEmptyIsNothing) {
  IdlePool<FakeConn> pool(2, 1000);
  EXPECT_FALSE(pool.take("a", 0).has_value());
  EXPECT_EQ(pool.idle_total(), 0u);
}

TEST(IdlePool, ReturnedConnectionIsReusedForTheSameKeyOnly) {
  auto closed = std::make_shared<int>(0);
  IdlePool<FakeConn> pool(2, 1000);
  ASSERT_TRUE(pool.give_back("a", FakeConn(1, closed), 100));
  EXPECT_FALSE(pool.take("b", 200).has_value());
  auto c = pool.take("a", 200);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->id, 1);
  EXPECT_EQ(*closed, 0);
  EXPECT_EQ(pool.idle("a"), 0u);
  EXPECT_FALSE(pool.take("a", 200).has_value());
}

TEST(IdlePool, NewestFirst) {
  auto closed = std::make_shared<int>(0);
  IdlePool<FakeConn> pool(3, 1000);
  pool.give_back("a", FakeConn(1, closed), 100);
  pool.give_back("a", FakeConn(2, closed), 110);
  EXPECT_EQ(pool.take("a", 120)->id, 2);
  EXPECT_EQ(pool.take("a", 120)->id, 1);
}

TEST(IdlePool, OverCapacityIsDroppedAndClosed) {
  auto closed = std::make_shared<int>(0);
  IdlePool<FakeConn> pool(1, 1000);
  EXPECT_TRUE(pool.give_back("a", FakeConn(1, closed), 100));
  EXPECT_FALSE(pool.give_back("a", FakeConn(2, closed), 100));
  EXPECT_EQ(*closed, 1);  // #2 closed
  EXPECT_TRUE(pool.give_back("b", FakeConn(3, closed), 100));  // per key
  EXPECT_EQ(pool.idle_total(), 2u);
}

TEST(IdlePool, ZeroCapacityKeepsNothing) {
  auto closed = std::make_shared<int>(0);
  IdlePool<FakeConn> pool(0, 1000);
  EXPECT_FALSE(pool.give_back("a", FakeConn(1, closed), 100));
  EXPECT_EQ(*closed, 1);
  EXPECT_EQ(pool.idle_total(), 0u);
}

TEST(IdlePool, ExpiredConnectionIsNeverHandedOut) {
  auto closed = std::make_shared<int>(0);
  IdlePool<FakeConn> pool(2, 1000);
  pool.give_back("a", FakeConn(1, closed), 100);
  pool.give_back("a", FakeConn(2, closed), 600);
  // At 1100 #1 is exactly max_idle old: expired; #2 (500 ms) is fine.
  auto c = pool.take("a", 1100);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->id, 2);
  // #1 is still in the list until reached; at 1600 take() drops it.
  EXPECT_FALSE(pool.take("a", 1600).has_value());
  EXPECT_EQ(*closed, 1);
  EXPECT_EQ(pool.expired(), 1u);
  EXPECT_EQ(pool.idle_total(), 0u);
}

TEST(IdlePool, ExpireDropsOnlyOldOnesAndTellsNextExpiry) {
  auto closed = std::make_shared<int>(0);
  IdlePool<FakeConn> pool(4, 1000);
  EXPECT_FALSE(pool.next_expiry().has_value());
  pool.give_back("a", FakeConn(1, closed), 100);
  pool.give_back("a", FakeConn(2, closed), 500);
  pool.give_back("b", FakeConn(3, closed), 300);
  EXPECT_EQ(pool.next_expiry(), 1100);
  EXPECT_EQ(pool.expire(1099), 0u);
  EXPECT_EQ(pool.expire(1300), 2u);  // #1 and #3
  EXPECT_EQ(*closed, 2);
  EXPECT_EQ(pool.idle("a"), 1u);
  EXPECT_EQ(pool.idle("b"), 0u);
  EXPECT_EQ(pool.next_expiry(), 1500);
  EXPECT_EQ(pool.take("a", 1400)->id, 2);
}

TEST(IdlePool, ClearClosesEverything) {
  auto closed = std::make_shared<int>(0);
  IdlePool<FakeConn> pool(4, 1000);
  pool.give_back("a", FakeConn(1, closed), 100);
  pool.give_back("b", FakeConn(2, closed), 100);
  pool.clear();
  EXPECT_EQ(*closed, 2);
  EXPECT_EQ(pool.idle_total(), 0u);
}

}  // namespace
}  // namespace drepl
