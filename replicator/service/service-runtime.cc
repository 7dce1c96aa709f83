// replicator/service/service-runtime.cc: see service-runtime.h.
#include "service-runtime.h"

#include <signal.h>
#include <unistd.h>

#include <cstdio>

#include "logger.h"

namespace drepl {

ServiceRuntime::ServiceRuntime(asio::io_context& io, std::optional<MasterEnv> master,
                               std::function<void(const std::string&)> on_shutdown)
    : io_(io),
      master_env_(std::move(master)),
      on_shutdown_(std::move(on_shutdown)),
      signals_(io),
      clients_([this](std::size_t) { update_status(); }) {
  if (master_env_) {
    master_status_ = std::make_unique<MasterStatus>(io_, *master_env_,
                                                    [this] { trigger("master process died"); });
  }
}

ServiceRuntime::~ServiceRuntime() = default;

void ServiceRuntime::start() {
  ::signal(SIGPIPE, SIG_IGN);
  ::signal(SIGHUP, SIG_IGN);   // the master handles reloads by replacing processes
  ::signal(SIGUSR1, SIG_IGN);  // log reopen: our stderr is a pipe
  signals_.add(SIGTERM);
  signals_.add(SIGINT);
  signals_.add(SIGQUIT);
  signals_.async_wait([this](const asio::error_code& ec, int signo) {
    if (ec) return;
    trigger(fmt::format("received signal {}", signo == SIGTERM  ? "SIGTERM"
                                              : signo == SIGINT ? "SIGINT"
                                                                : "SIGQUIT"));
  });
  if (master_status_) {
    unsigned limit = master_status_->client_limit();
    std::size_t used = clients_.count() + extra_clients_;
    master_status_->start(used >= limit ? 0 : static_cast<unsigned>(limit - used));
  }
}

void ServiceRuntime::set_extra_clients(unsigned n) {
  extra_clients_ = n;
  update_status();
}

void ServiceRuntime::update_status() {
  if (!master_status_) return;
  unsigned limit = master_status_->client_limit();
  std::size_t used = clients_.count() + extra_clients_;
  master_status_->set_available(used >= limit ? 0 : static_cast<unsigned>(limit - used));
}

void ServiceRuntime::trigger(const std::string& reason) {
  if (triggered_) return;
  triggered_ = true;
  signals_.cancel();
  if (on_shutdown_) on_shutdown_(reason);
}

void run_until_stopped_then_exit(asio::io_context& io) {
  for (;;) {
    try {
      io.run();
      break;
    } catch (const std::exception& e) {
      log_error("Internal error in an event handler, continuing: {}", e.what());
    }
  }
  std::fflush(nullptr);
  ::_exit(0);
}

}  // namespace drepl
