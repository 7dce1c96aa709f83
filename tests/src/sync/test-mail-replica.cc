#include <gtest/gtest.h>

#include "mail-replica.h"

namespace drepl {
namespace {

MailReplica ok(std::string_view v, std::uint16_t port = 0) {
  auto r = parse_mail_replica(v, port);
  EXPECT_TRUE(r.has_value()) << v << ": " << (r ? "" : r.error().message);
  return r ? *r : MailReplica{};
}

std::string err(std::string_view v, std::uint16_t port = 0) {
  auto r = parse_mail_replica(v, port);
  return r ? "OK" : r.error().message;
}

TEST(MailReplica, WithPortMakesTheDefaultPortExplicit) {
  EXPECT_EQ(mail_replica_with_port("tcp:b", 12345), "tcp:b:12345");
  EXPECT_EQ(mail_replica_with_port("tcps:b.example", 12345), "tcps:b.example:12345");
  EXPECT_EQ(mail_replica_with_port("tcp:[::1]", 7), "tcp:[::1]:7");
  EXPECT_EQ(mail_replica_with_port("tcp:fe80::1", 7), "tcp:[fe80::1]:7");
  // unchanged: explicit port, no default, other kinds, invalid
  EXPECT_EQ(mail_replica_with_port("tcp:b:4", 12345), "tcp:b:4");
  EXPECT_EQ(mail_replica_with_port("tcp:[::1]:4", 12345), "tcp:[::1]:4");
  EXPECT_EQ(mail_replica_with_port("tcp:b", 0), "tcp:b");
  EXPECT_EQ(mail_replica_with_port("remote:vmail@b", 12345), "remote:vmail@b");
  EXPECT_EQ(mail_replica_with_port("remoteprefix:b", 12345), "remoteprefix:b");
  EXPECT_EQ(mail_replica_with_port("tcp:b:x", 12345), "tcp:b:x");
  EXPECT_EQ(mail_replica_with_port("tcp:", 12345), "tcp:");
  // the result parses to the same replica
  auto r = parse_mail_replica(mail_replica_with_port("tcp:fe80::1", 7), 0);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->host, "fe80::1");
  EXPECT_EQ(r->port, 7);
}

TEST(MailReplica, Tcp) {
  auto a = ok("tcp:127.0.0.1:12346");
  EXPECT_EQ(a.kind, ReplicaKind::kTcp);
  EXPECT_TRUE(a.is_tcp());
  EXPECT_EQ(a.host, "127.0.0.1");
  EXPECT_EQ(a.port, 12346);
  auto b = ok("tcp:replica.example", 12345);
  EXPECT_EQ(b.host, "replica.example");
  EXPECT_EQ(b.port, 12345);
  auto c = ok("tcp:replica.example:999", 12345);  // explicit port wins
  EXPECT_EQ(c.port, 999);
  EXPECT_EQ(mail_replica_display(c), "tcp:replica.example:999");
}

TEST(MailReplica, Tcps) {
  auto a = ok("tcps:b.example:12345");
  EXPECT_EQ(a.kind, ReplicaKind::kTcps);
  EXPECT_TRUE(a.is_tcp());
  EXPECT_EQ(a.host, "b.example");
  EXPECT_EQ(a.port, 12345);
  EXPECT_EQ(mail_replica_display(a), "tcps:b.example:12345");
}

TEST(MailReplica, Ipv6) {
  auto a = ok("tcp:[::1]:12345");
  EXPECT_EQ(a.host, "::1");
  EXPECT_EQ(a.port, 12345);
  EXPECT_EQ(mail_replica_display(a), "tcp:[::1]:12345");
  auto b = ok("tcp:[fe80::1]", 7);
  EXPECT_EQ(b.host, "fe80::1");
  EXPECT_EQ(b.port, 7);
  auto c = ok("tcp:fe80::1", 7);  // bare IPv6: no port part
  EXPECT_EQ(c.host, "fe80::1");
  EXPECT_EQ(c.port, 7);
}

TEST(MailReplica, TcpErrors) {
  EXPECT_EQ(err("tcp:replica.example"),
            "Port not known for replica.example. Either set proxy_port or use "
            "replica.example:port");
  EXPECT_EQ(err("tcps:b"), "Port not known for b. Either set proxy_port or use b:port");
  EXPECT_EQ(err("tcp:b:0"), "Invalid port in mail_replica: tcp:b:0");
  EXPECT_EQ(err("tcp:b:65536"), "Invalid port in mail_replica: tcp:b:65536");
  EXPECT_EQ(err("tcp:b:x"), "Invalid port in mail_replica: tcp:b:x");
  EXPECT_EQ(err("tcp:b:"), "Invalid port in mail_replica: tcp:b:");
  EXPECT_EQ(err("tcp:[::1]x", 1), "Invalid port in mail_replica: tcp:[::1]x");
  EXPECT_EQ(err("tcp:[::1", 1), "Invalid host in mail_replica: tcp:[::1");
  EXPECT_EQ(err("tcp:", 1), "Missing host in mail_replica: tcp:");
  EXPECT_EQ(err("tcp::12"), "Missing host in mail_replica: tcp::12");
  EXPECT_EQ(err(""), "mail_replica is empty");
}

TEST(MailReplica, Remote) {
  auto a = ok("remote:vmail@b.example");
  EXPECT_EQ(a.kind, ReplicaKind::kRemote);
  EXPECT_FALSE(a.is_tcp());
  EXPECT_EQ(a.login, "vmail");
  EXPECT_EQ(a.host, "b.example");
  EXPECT_EQ(mail_replica_display(a), "remote:b.example");
  auto b = ok("remote:b.example");
  EXPECT_EQ(b.login, "");
  EXPECT_EQ(b.host, "b.example");
  auto c = ok("remoteprefix:root@b");
  EXPECT_EQ(c.kind, ReplicaKind::kRemotePrefix);
  EXPECT_EQ(c.login, "root");
  EXPECT_EQ(c.host, "b");
  EXPECT_EQ(err("remote:"), "Missing host in mail_replica: remote:");
  EXPECT_EQ(err("remote:user@"), "Missing host in mail_replica: remote:user@");
}

TEST(MailReplica, Local) {
  auto a = ok("maildir:~/Maildir-replica");
  EXPECT_EQ(a.kind, ReplicaKind::kLocal);
  EXPECT_EQ(a.location, "maildir:~/Maildir-replica");
  EXPECT_EQ(mail_replica_display(a), "local");
  EXPECT_EQ(ok("TCP:b:1").kind, ReplicaKind::kLocal);  // prefixes are case-sensitive
}

}  // namespace
}  // namespace drepl
