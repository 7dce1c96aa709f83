// replicator/service/service-runtime.cc: see service-runtime.h.
#include "service-runtime.h"

#include <signal.h>
#include <unistd.h>

#include <cxxabi.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <typeinfo>

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
  io.run();  // no catch: see the header
  std::fflush(nullptr);
  ::_exit(0);
}

namespace {

[[noreturn]] void log_uncaught_and_abort() {
  std::string what = "std::terminate() without an exception";
  if (std::exception_ptr e = std::current_exception()) {
    std::string type = "of unknown type";
    if (const std::type_info* t = abi::__cxa_current_exception_type()) {
      int status = -1;
      char* demangled = abi::__cxa_demangle(t->name(), nullptr, nullptr, &status);
      type = status == 0 && demangled != nullptr ? demangled : t->name();
      std::free(demangled);
    }
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      what = fmt::format("uncaught exception {}: {}", type, ex.what());
    } catch (...) {
      what = fmt::format("uncaught exception {}", type);
    }
  }
  log_fatal("Internal error: {} - aborting", what);
  std::fflush(nullptr);
  std::abort();
}

}  // namespace

void abort_on_uncaught_exception() { std::set_terminate(&log_uncaught_and_abort); }

}  // namespace drepl
