#include <gtest/gtest.h>

#include "replicator-settings.h"

namespace drepl {
namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;

TEST(ReplicatorSettings, Defaults) {
  ReplicatorSettings s;
  EXPECT_EQ(s.replication_full_sync_interval_secs, 86400);
  EXPECT_EQ(s.replication_max_conns, 10u);
  EXPECT_EQ(s.replication_max_conns_per_replica, 0u);
  EXPECT_EQ(s.replication_dsync_parameters, "-d -N -l 30 -U");
  EXPECT_EQ(s.auth_socket_path, "auth-userdb");
  EXPECT_EQ(s.doveadm_socket_path, "doveadm-server");
  EXPECT_EQ(s.replication_dsync_socket_path, "replicator-dsync");
  EXPECT_EQ(s.replicator_host, "replicator");
  EXPECT_EQ(s.replicator_port, 0);
  EXPECT_EQ(s.doveadm_port, 0);
  EXPECT_EQ(s.mail_replica, "");
  EXPECT_EQ(s.replication_dsync_timeout_secs, 600);
  EXPECT_EQ(s.replication_dsync_handshake_timeout_secs, 30);
  EXPECT_EQ(s.base_dir, "/var/run/dovecot");
  EXPECT_EQ(s.state_dir, "/var/lib/dovecot");
  EXPECT_EQ(replicator_db_path(s), "/var/lib/dovecot/replicator.db");
}

TEST(ReplicatorSettings, FromPairs) {
  auto r = replicator_settings_from_pairs(Pairs{
      {"replication_full_sync_interval", "12 hours"},
      {"replication_max_conns", "4"},
      {"plugin/replication_max_conns_per_replica", "2"},
      {"replication_dsync_parameters", "-d -N -l 60 -U"},
      {"auth_socket_path", "/run/dovecot/auth-userdb"},
      {"doveadm_socket_path", "doveadm-server"},
      {"doveadm_port", "12346"},
      {"plugin/replication_dsync_socket_path", "my-dsync"},
      {"plugin/mail_replica", "tcp:127.0.0.1:12346"},
      {"replication_dsync_timeout", "5 mins"},
      {"plugin/replication_dsync_handshake_timeout", "3 s"},
      {"base_dir", "/tmp/x/run"},
      {"state_dir", "/tmp/x/lib"},
      {"replicator_host", "replicator"},
      {"replicator_port", "0"},
      {"mail_plugins", "notify replication"},  // unknown: ignored
  });
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->replication_full_sync_interval_secs, 43200);
  EXPECT_EQ(r->replication_max_conns, 4u);
  EXPECT_EQ(r->replication_max_conns_per_replica, 2u);
  EXPECT_EQ(r->replication_dsync_parameters, "-d -N -l 60 -U");
  EXPECT_EQ(r->auth_socket_path, "/run/dovecot/auth-userdb");
  EXPECT_EQ(r->doveadm_port, 12346);
  EXPECT_EQ(r->mail_replica, "tcp:127.0.0.1:12346");
  EXPECT_EQ(r->replication_dsync_timeout_secs, 300);
  EXPECT_EQ(r->replication_dsync_handshake_timeout_secs, 3);
  EXPECT_EQ(replicator_db_path(*r), "/tmp/x/lib/replicator.db");
  EXPECT_EQ(resolve_base_dir_path(r->base_dir, r->doveadm_socket_path),
            "/tmp/x/run/doveadm-server");
  EXPECT_EQ(resolve_base_dir_path(r->base_dir, r->auth_socket_path), "/run/dovecot/auth-userdb");
  EXPECT_EQ(resolve_base_dir_path(r->base_dir, r->replication_dsync_socket_path),
            "/tmp/x/run/my-dsync");
}

TEST(ReplicatorSettings, LaterPairWinsAndAlias) {
  auto r = replicator_settings_from_pairs(
      Pairs{{"doveadm_port", "1"}, {"doveadm_proxy_port", "2"}, {"mail_replica", "tcp:a:1"},
            {"plugin/mail_replica", "tcp:b:2"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->doveadm_port, 2);
  EXPECT_EQ(r->mail_replica, "tcp:b:2");
}

TEST(ReplicatorSettings, KnownFlag) {
  ReplicatorSettings s;
  bool known = false;
  EXPECT_TRUE(apply_replicator_setting(s, "replication_max_conns", "3", &known));
  EXPECT_TRUE(known);
  EXPECT_TRUE(apply_replicator_setting(s, "ssl", "yes", &known));
  EXPECT_FALSE(known);
  EXPECT_EQ(s.replication_max_conns, 3u);
}

TEST(ReplicatorSettings, BadValues) {
  auto e = [](std::string k, std::string v) {
    auto r = replicator_settings_from_pairs(Pairs{{k, v}});
    return r ? std::string("OK") : r.error().message;
  };
  EXPECT_EQ(e("replication_max_conns", "ten"),
            "Invalid setting replication_max_conns: Invalid number: ten");
  EXPECT_EQ(e("replication_max_conns", "100000000"),
            "Invalid setting replication_max_conns: Number too large: 100000000 (max 10000)");
  EXPECT_EQ(e("replication_max_conns", "10000"), "OK");
  EXPECT_EQ(e("replication_full_sync_interval", "1 fortnight"),
            "Invalid setting replication_full_sync_interval: Invalid time interval: 1 fortnight");
  EXPECT_EQ(e("replication_full_sync_interval", "1500ms"),
            "Invalid setting replication_full_sync_interval: Milliseconds not supported for this "
            "setting: 1500ms");
  EXPECT_EQ(e("doveadm_port", "70000"),
            "Invalid setting doveadm_port: Number too large: 70000 (max 65535)");
  EXPECT_EQ(e("replicator_port", "-1"), "Invalid setting replicator_port: Invalid number: -1");
  EXPECT_EQ(e("replication_dsync_timeout", ""),
            "Invalid setting replication_dsync_timeout: Invalid time interval: ");
  EXPECT_EQ(e("replication_dsync_handshake_timeout", "soon"),
            "Invalid setting replication_dsync_handshake_timeout: Invalid time interval: soon");
}

TEST(ReplicatorSettings, DoveconfOutput) {
  constexpr std::string_view kText =
      "# 2.3.19.1 (9b53102964): /etc/dovecot/dovecot.conf\n"
      "base_dir = /tmp/repl-bench/a/run\n"
      "doveadm_port = 12346\n"
      "doveadm_password = # hidden, use -P to show it\n"
      "replication_max_conns = 10\n"
      "replication_dsync_parameters = -d -N -l 30 -U\n"
      "empty_value =\n"
      "plugin {\n"
      "  mail_replica = tcp:127.0.0.1:12346\n"
      "}\n"
      "service replicator {\n"
      "  process_min_avail = 1\n"
      "  unix_listener replicator-doveadm {\n"
      "    mode = 0600\n"
      "  }\n"
      "}\n"
      "state_dir = /tmp/repl-bench/a/lib\r\n";
  auto pairs = parse_doveconf_output(kText);
  ASSERT_TRUE(pairs) << pairs.error().message;
  Pairs expect{{"base_dir", "/tmp/repl-bench/a/run"},
               {"doveadm_port", "12346"},
               {"doveadm_password", "# hidden, use -P to show it"},
               {"replication_max_conns", "10"},
               {"replication_dsync_parameters", "-d -N -l 30 -U"},
               {"empty_value", ""},
               {"plugin/mail_replica", "tcp:127.0.0.1:12346"},
               {"service/replicator/process_min_avail", "1"},
               {"service/replicator/unix_listener/replicator-doveadm/mode", "0600"},
               {"state_dir", "/tmp/repl-bench/a/lib"}};
  EXPECT_EQ(*pairs, expect);
  auto s = replicator_settings_from_pairs(*pairs);
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->mail_replica, "tcp:127.0.0.1:12346");
  EXPECT_EQ(s->doveadm_port, 12346);
  EXPECT_EQ(s->state_dir, "/tmp/repl-bench/a/lib");
}

// doveconf (2.3 and 2.4) quotes values containing '#' or with leading or
// trailing white space, escaping '"', '\' and '\'' with a backslash.
TEST(ReplicatorSettings, DoveconfOutputQuotedValues) {
  constexpr std::string_view kText =
      "replication_dsync_parameters = \"-N -l 30 # keep\"\n"
      "mail_replica = \" tcp:peer\"\n"
      "replicator_host = \"a \\\"b\\\" \\\\c\\\\ #\"\n"
      "log_timestamp = \"%Y-%m-%d %H:%M:%S \"\n"
      "plain = no \"quotes\" here\n";
  auto pairs = parse_doveconf_output(kText);
  ASSERT_TRUE(pairs) << pairs.error().message;
  Pairs expect{{"replication_dsync_parameters", "-N -l 30 # keep"},
               {"mail_replica", " tcp:peer"},
               {"replicator_host", "a \"b\" \\c\\ #"},
               {"log_timestamp", "%Y-%m-%d %H:%M:%S "},
               {"plain", "no \"quotes\" here"}};
  EXPECT_EQ(*pairs, expect);
}

// 2.4 doveconf -n output: boollists, named filters, a protocol filter.
TEST(ReplicatorSettings, DoveconfOutput24Filters) {
  constexpr std::string_view kText =
      "# 2.4.1-4 (7d8c0e5759): /srv/a/dovecot.conf\n"
      "dovecot_config_version = 2.4.1\n"
      "mail_plugins {\n"
      "  notify = yes\n"
      "  replication = yes\n"
      "}\n"
      "mail_replica = tcp:127.0.0.1:24311\n"
      "replication_sync_timeout = 2s\n"
      "import_environment {\n"
      "  DOVECOT_HOSTNAME = node-a\n"
      "}\n"
      "passdb passwd-file {\n"
      "  passwd_file_path = /srv/a/users\n"
      "}\n"
      "protocol imap {\n"
      "  mail_replica = tcp:elsewhere\n"
      "  replication_max_conns = 3\n"
      "}\n";
  auto pairs = parse_doveconf_output(kText);
  ASSERT_TRUE(pairs) << pairs.error().message;
  auto s = replicator_settings_from_pairs(*pairs);
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->mail_replica, "tcp:127.0.0.1:24311");  // the filter's value is not global
  EXPECT_EQ(s->replication_max_conns, 10u);
  EXPECT_EQ(replicator_settings_in_filters(*pairs),
            (std::vector<std::string>{"protocol/imap/mail_replica",
                                      "protocol/imap/replication_max_conns"}));
  // 2.3's plugin { } section is not a filter.
  EXPECT_TRUE(replicator_settings_in_filters({{"plugin/mail_replica", "tcp:b"}}).empty());
}

// The replica probe's settings: ssl_client_ca_* (a `protocol doveadm { }`
// value wins, as for doveadm, and is no "ignored filter" warning) and
// dsync_remote_cmd.
TEST(ReplicatorSettings, ProbeSettings) {
  ReplicatorSettings defaults;
  EXPECT_EQ(defaults.ssl_client_ca_file, "");
  EXPECT_EQ(defaults.ssl_client_ca_dir, "");
  EXPECT_EQ(defaults.dsync_remote_cmd, "ssh -l%{login} %{host} doveadm dsync-server -u%u -U");
  constexpr std::string_view kText =
      "dsync_remote_cmd = ssh -p 2222 -l%{login} %{host} doveadm dsync-server -u%u\n"
      "ssl_client_ca_dir = /etc/ssl/certs\n"
      "ssl_client_ca_file = /etc/dovecot/global-ca.crt\n"
      "protocol doveadm {\n"
      "  ssl_client_ca_file = /etc/dovecot/replication-ca.crt\n"
      "}\n"
      "protocol imap {\n"
      "  ssl_client_ca_dir = /elsewhere\n"
      "}\n";
  auto pairs = parse_doveconf_output(kText);
  ASSERT_TRUE(pairs) << pairs.error().message;
  auto s = replicator_settings_from_pairs(*pairs);
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->ssl_client_ca_file, "/etc/dovecot/replication-ca.crt");
  EXPECT_EQ(s->ssl_client_ca_dir, "/etc/ssl/certs");
  EXPECT_EQ(s->dsync_remote_cmd, "ssh -p 2222 -l%{login} %{host} doveadm dsync-server -u%u");
  EXPECT_EQ(replicator_settings_in_filters(*pairs),
            (std::vector<std::string>{"protocol/imap/ssl_client_ca_dir"}));
}

TEST(ReplicatorSettings, DoveconfOutputErrors) {
  auto a = parse_doveconf_output("a = 1\n}\n");
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().message, "doveconf output line 2: unexpected '}'");
  auto b = parse_doveconf_output("garbage line\n");
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().message, "doveconf output line 1: not 'key = value': garbage line");
}

}  // namespace
}  // namespace drepl
