#include <gtest/gtest.h>

#include "version-line.h"

namespace drepl {
namespace {

TEST(VersionLine, FormatsCapturedLines) {
  EXPECT_EQ(format_version_line("replicator-notify", 1, 0), "VERSION\treplicator-notify\t1\t0\n");
  EXPECT_EQ(format_version_line("doveadm-server", 1, 0), "VERSION\tdoveadm-server\t1\t0\n");
  EXPECT_EQ(format_version_line("replicator-doveadm-server", 1, 0),
            "VERSION\treplicator-doveadm-server\t1\t0\n");
}

TEST(VersionLine, VerifyAcceptsAnyMinor) {
  auto v = verify_version_line("VERSION\treplicator-notify\t1\t0", "replicator-notify", 1);
  ASSERT_TRUE(v.has_value()) << v.error().message;
  EXPECT_EQ(v->service, "replicator-notify");
  EXPECT_EQ(v->major, 1u);
  EXPECT_EQ(v->minor, 0u);
  auto v2 = verify_version_line("VERSION\treplicator-notify\t1\t7", "replicator-notify", 1);
  ASSERT_TRUE(v2.has_value());
  EXPECT_EQ(v2->minor, 7u);
}

TEST(VersionLine, VerifyRejections) {
  auto e = [](std::string_view line) {
    auto r = verify_version_line(line, "replicator-notify", 1);
    return r.has_value() ? std::string("OK") : r.error().message;
  };
  EXPECT_EQ(e("VERSION\treplicator-notif\t1\t0"),
            "Wrong service: expected 'replicator-notify', got 'replicator-notif'");
  EXPECT_EQ(e("VERSION\treplicator-notifyX\t1\t0"),
            "Wrong service: expected 'replicator-notify', got 'replicator-notifyX'");
  EXPECT_EQ(e("VERSION\treplicator-notify"),
            "Wrong service: expected 'replicator-notify', got 'replicator-notify'");
  EXPECT_EQ(e("VERSION\treplicator-notify\t2\t0"),
            "Incompatible major version: expected 1, got 2");
  EXPECT_EQ(e("VERSION\treplicator-notify\t01x\t0"),
            "Incompatible major version: expected 1, got 01x");
  EXPECT_EQ(e("VERSION\treplicator-notify\t1"),
            "Invalid minor version: VERSION\treplicator-notify\t1");
  EXPECT_EQ(e("VERSION\treplicator-notify\t1\t-1"),
            "Invalid minor version: VERSION\treplicator-notify\t1\t-1");
  EXPECT_EQ(e("VERSION\treplicator-notify\t1\t0\textra"),
            "Invalid minor version: VERSION\treplicator-notify\t1\t0\textra");
  EXPECT_EQ(e("version\treplicator-notify\t1\t0"),
            "Not a VERSION line: version\treplicator-notify\t1\t0");
  EXPECT_EQ(e("U\tuser0042\thigh"), "Not a VERSION line: U\tuser0042\thigh");
  EXPECT_EQ(e(""), "Not a VERSION line: ");
}

TEST(VersionLine, VerifyErrorQuotesSafely) {
  std::string evil = "VERSION\tx\n\x01" + std::string(1000, 'y');
  auto r = verify_version_line(evil, "replicator-notify", 1);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message.find('\n'), std::string::npos);
  EXPECT_LT(r.error().message.size(), 300u);
}

TEST(VersionLine, StrictRequiresExactlyFourFields) {
  constexpr std::string_view kSvc = "replicator-doveadm-client";
  EXPECT_TRUE(verify_version_line_strict("VERSION\treplicator-doveadm-client\t1\t0", kSvc, 1));
  EXPECT_TRUE(verify_version_line_strict("VERSION\treplicator-doveadm-client\t1\t3", kSvc, 1));
  auto e = [&](std::string_view line) {
    auto r = verify_version_line_strict(line, kSvc, 1);
    return r.has_value() ? std::string("OK") : r.error().message;
  };
  EXPECT_EQ(e("VERSION\treplicator-doveadm-client\t1\t0\tx"),
            "Invalid VERSION line: VERSION\treplicator-doveadm-client\t1\t0\tx");
  EXPECT_EQ(e("VERSION\treplicator-doveadm-client\t1"),
            "Invalid VERSION line: VERSION\treplicator-doveadm-client\t1");
  EXPECT_EQ(e("VERSION\treplicator-doveadm-client\tx\t0"),
            "Invalid VERSION line: VERSION\treplicator-doveadm-client\tx\t0");
  EXPECT_EQ(e("VERSION\treplicator-doveadm-server\t1\t0"),
            "Connected to wrong socket type. We want 'replicator-doveadm-client', but received "
            "'replicator-doveadm-server'");
  EXPECT_EQ(e("VERSION\treplicator-doveadm-client\t2\t0"),
            "Socket supports major version 2, but we support only 1 (mixed old and new "
            "binaries?)");
  EXPECT_EQ(e("STATUS"), "Invalid VERSION line: STATUS");
}

}  // namespace
}  // namespace drepl
