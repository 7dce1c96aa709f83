#include <gtest/gtest.h>

#include "auth-master.h"

namespace drepl {
namespace {

template <typename T>
const T& as(const Result<AuthMasterReply>& r) {
  EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message);
  EXPECT_TRUE(std::holds_alternative<T>(*r));
  return std::get<T>(*r);
}

TEST(AuthMaster, RequestBytes) {
  EXPECT_EQ(format_auth_master_handshake(), "VERSION\t1\t0\n");
  EXPECT_EQ(format_auth_list_request(1, "*"), "LIST\t1\tuser=*\tservice=replicator\n");
  EXPECT_EQ(format_auth_list_request(2, "user00*"), "LIST\t2\tuser=user00*\tservice=replicator\n");
  EXPECT_EQ(format_auth_list_request(3, ""), "LIST\t3\tservice=replicator\n");
  EXPECT_EQ(format_auth_user_request(4, "alice@example.com"),
            "USER\t4\talice@example.com\tservice=replicator\n");
  EXPECT_EQ(format_auth_user_request(5, "a\tb"), "USER\t5\ta\x01tb\tservice=replicator\n");
}

TEST(AuthMaster, Greeting) {
  auto v = as<AuthVersion>(parse_auth_master_line("VERSION\t1\t0"));
  EXPECT_EQ(v.major, 1u);
  EXPECT_EQ(v.minor, 0u);
  auto v2 = as<AuthVersion>(parse_auth_master_line("VERSION\t1\t3"));
  EXPECT_EQ(v2.minor, 3u);
  auto spid = as<AuthSpid>(parse_auth_master_line("SPID\t24412"));
  EXPECT_EQ(spid.pid, 24412u);
}

TEST(AuthMaster, ListReplies) {
  auto e = as<AuthListEntry>(parse_auth_master_line("LIST\t1\tuser0042"));
  EXPECT_EQ(e.id, 1u);
  EXPECT_EQ(e.username, "user0042");
  auto esc = as<AuthListEntry>(parse_auth_master_line("LIST\t1\tod\x01tdly"));
  EXPECT_EQ(esc.username, "od\tdly");
  auto ok = as<AuthListDone>(parse_auth_master_line("DONE\t1\t"));
  EXPECT_EQ(ok.id, 1u);
  EXPECT_FALSE(ok.failed);
  auto ok2 = as<AuthListDone>(parse_auth_master_line("DONE\t1"));
  EXPECT_FALSE(ok2.failed);
  auto fail = as<AuthListDone>(parse_auth_master_line("DONE\t9\tfail"));
  EXPECT_EQ(fail.id, 9u);
  EXPECT_TRUE(fail.failed);
}

TEST(AuthMaster, UserReply) {
  auto u = as<AuthUserReply>(parse_auth_master_line(
      "USER\t4\talice\tuid=5000\tgid=5000\thome=/srv/vmail/alice\tmail_replica=tcp:b\x01tx:12345"
      "\tnoreplicate"));
  EXPECT_EQ(u.id, 4u);
  EXPECT_EQ(u.username, "alice");
  ASSERT_EQ(u.fields.size(), 5u);
  EXPECT_EQ(u.fields[0], (std::pair<std::string, std::string>{"uid", "5000"}));
  EXPECT_EQ(*auth_user_field(u, "home"), "/srv/vmail/alice");
  EXPECT_EQ(*auth_user_field(u, "mail_replica"), "tcp:b\tx:12345");
  EXPECT_EQ(*auth_user_field(u, "noreplicate"), "");
  EXPECT_FALSE(auth_user_field(u, "nope").has_value());
  auto repl = userdb_replication_fields(u);
  EXPECT_EQ(repl.mail_replica, "tcp:b\tx:12345");
  EXPECT_TRUE(repl.noreplicate);
}

TEST(AuthMaster, ReplicationFields) {
  auto get = [](std::string_view line) {
    auto r = parse_auth_master_line(line);
    return userdb_replication_fields(std::get<AuthUserReply>(*r));
  };
  auto none = get("USER\t1\tbob\tuid=1");
  EXPECT_EQ(none.mail_replica, "");
  EXPECT_FALSE(none.noreplicate);
  auto plugin = get("USER\t1\tbob\tplugin/mail_replica=remote:b\tnoreplicate=no");
  EXPECT_EQ(plugin.mail_replica, "remote:b");
  EXPECT_FALSE(plugin.noreplicate);
  EXPECT_TRUE(get("USER\t1\tbob\tnoreplicate=yes").noreplicate);
  EXPECT_TRUE(get("USER\t1\tbob\tnoreplicate=1").noreplicate);
  EXPECT_FALSE(get("USER\t1\tbob\tnoreplicate=0").noreplicate);
  EXPECT_FALSE(get("USER\t1\tbob\tnoreplicate=FALSE").noreplicate);
}

TEST(AuthMaster, FlagTruthRule) {
  EXPECT_TRUE(userdb_flag_is_true(""));
  EXPECT_TRUE(userdb_flag_is_true("yes"));
  EXPECT_TRUE(userdb_flag_is_true("1"));
  EXPECT_TRUE(userdb_flag_is_true("true"));
  EXPECT_TRUE(userdb_flag_is_true("anything"));
  EXPECT_TRUE(userdb_flag_is_true("Yes"));
  for (std::string_view f : {"no", "No", "NO", "n", "0", "false", "f", "False", "F"}) {
    EXPECT_FALSE(userdb_flag_is_true(f)) << f;
  }
}

TEST(AuthMaster, NotFoundAndFail) {
  auto nf = as<AuthUserNotFound>(parse_auth_master_line("NOTFOUND\t6"));
  EXPECT_EQ(nf.id, 6u);
  auto f = as<AuthUserFail>(parse_auth_master_line("FAIL\t7\treason=LDAP down"));
  EXPECT_EQ(f.id, 7u);
  EXPECT_EQ(f.reason, "LDAP down");
  auto f2 = as<AuthUserFail>(parse_auth_master_line("FAIL\t7"));
  EXPECT_EQ(f2.reason, "");
  auto f3 = as<AuthUserFail>(parse_auth_master_line("FAIL\t7\ttempfail\tx=y"));
  EXPECT_EQ(f3.reason, "tempfail x=y");
}

TEST(AuthMaster, Malformed) {
  for (std::string_view bad :
       {"", "LIST", "LIST\tx\tuser", "LIST\t1", "DONE", "USER\t1", "NOTFOUND\t-1", "VERSION\t1",
        "VERSION\tx\t0", "SPID", "SPID\tabc", "BOGUS\t1", "USER\t99999999999\tu"}) {
    auto r = parse_auth_master_line(bad);
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_EQ(r.error().message, "auth-master sent invalid input: " + std::string(bad));
  }
  auto huge = parse_auth_master_line("BOGUS\t" + std::string(100000, 'x'));
  ASSERT_FALSE(huge);
  EXPECT_LT(huge.error().message.size(), 300u);
}

}  // namespace
}  // namespace drepl
