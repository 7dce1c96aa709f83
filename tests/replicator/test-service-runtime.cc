// Tests of the event loop's exception policy (replicator/service/
// service-runtime.h): a handler that throws is not swallowed; the daemon
// logs one Fatal line naming the exception and aborts.
#include <gtest/gtest.h>

#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <stdexcept>

#include "logger.h"
#include "service-runtime.h"

namespace drepl {
namespace {

TEST(RunUntilStoppedThenExitDeathTest, AThrowingHandlerCrashesLoudlyWithOneFatalLine) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        log_init(LogTarget::kPlain, "replicator", false);
        abort_on_uncaught_exception();
        asio::io_context io;
        asio::post(io, [] { throw std::length_error("CompactString: string longer than 4 GiB"); });
        // gtest catches what leaves the statement; in the daemon nothing
        // above the loop does, which noexcept stands in for here.
        [&io]() noexcept { run_until_stopped_then_exit(io); }();
      },
      "replicator: Fatal: Internal error: uncaught exception std::length_error: "
      "CompactString: string longer than 4 GiB - aborting");
}

TEST(RunUntilStoppedThenExitDeathTest, ExitsZeroOnceTheLoopIsStopped) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        asio::io_context io;
        asio::post(io, [&io] { io.stop(); });
        run_until_stopped_then_exit(io);
      },
      ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace drepl
