// Tests of ClientLimit (replicator/service/client-limit.h): past
// client_limit open connections a new one is closed at once.
#include <gtest/gtest.h>

#include <asio/generic/stream_protocol.hpp>
#include <asio/io_context.hpp>
#include <asio/local/connect_pair.hpp>
#include <asio/local/stream_protocol.hpp>

#include "client-limit.h"

namespace drepl {
namespace {

// A connected socket as a listener hands it out.
StreamListener::Socket accepted_socket(asio::io_context& io,
                                       asio::local::stream_protocol::socket& peer) {
  asio::local::stream_protocol::socket ours(io);
  asio::local::connect_pair(ours, peer);
  return StreamListener::Socket(io, asio::generic::stream_protocol(AF_UNIX, SOCK_STREAM),
                                ours.release());
}

TEST(ClientLimit, ClosesNewConnectionsOnlyOnceTheLimitIsReached) {
  asio::io_context io;
  ClientCounter clients([](std::size_t) {});
  ClientLimit limit(clients, 2);
  asio::local::stream_protocol::socket peer1(io), peer2(io);

  auto one = clients.acquire();
  auto s1 = accepted_socket(io, peer1);
  EXPECT_FALSE(limit.refuse(s1, "replicator-doveadm"));
  EXPECT_TRUE(s1.is_open());

  auto two = clients.acquire();
  auto s2 = accepted_socket(io, peer2);
  EXPECT_TRUE(limit.refuse(s2, "replicator-doveadm"));
  EXPECT_FALSE(s2.is_open());
  // The peer sees the connection closed.
  char c;
  asio::error_code ec;
  peer2.read_some(asio::buffer(&c, 1), ec);
  EXPECT_EQ(ec, asio::error::eof);

  two.reset();
  asio::local::stream_protocol::socket peer3(io);
  auto s3 = accepted_socket(io, peer3);
  EXPECT_FALSE(limit.refuse(s3, "replicator-doveadm"));
  EXPECT_TRUE(s3.is_open());
}

}  // namespace
}  // namespace drepl
