// replicator/app/listener-set.cc: see listener-set.h.
#include "listener-set.h"

#include <fmt/format.h>

#include "metrics-connection.h"
#include "systemd-notify.h"

namespace drepl {

ListenerRole replicator_listener_role(const std::string& name) {
  if (name == "replicator-doveadm") return ListenerRole::kDoveadm;
  if (name == kMetricsListenerName) return ListenerRole::kMetrics;
  if (name == "replication-notify") return ListenerRole::kPlugin;
  if (name == "replication-notify-fifo") return ListenerRole::kFifo;
  return ListenerRole::kNotify;  // "replicator" and anything else (stock rule)
}

Result<std::vector<MasterListener>> inherited_listeners(const std::optional<MasterEnv>& master,
                                                        InheritFrom from) {
  if (master) {
    if (!master->listener_fds) return master->listener_fds.error();
    return master->listeners;
  }
  if (from == InheritFrom::kMasterOrSystemd) return systemd_listeners();
  return std::vector<MasterListener>{};
}

ListenerSet::ListenerSet(asio::io_context& io, NotifySink& fifo_sink, AcceptFn on_accept)
    : io_(io), fifo_sink_(fifo_sink), on_accept_(std::move(on_accept)) {}

StreamListener::AcceptFn ListenerSet::accept_fn(ListenerRole role, const std::string& name) {
  return [this, role, name](StreamListener::Socket s) { on_accept_(role, name, std::move(s)); };
}

Status ListenerSet::adopt(const std::vector<MasterListener>& inherited,
                          const std::function<ListenerRole(const std::string&)>& role_for) {
  for (const MasterListener& ml : inherited) {
    if (fd_is_fifo(ml.fd)) {
      fifos_.push_back(std::make_shared<FifoReader>(io_, ml.fd, ml.name, fifo_sink_));
      continue;
    }
    ListenerRole role = role_for(ml.name);
    if (role == ListenerRole::kFifo) role = ListenerRole::kPlugin;  // a socket after all
    auto l = StreamListener::adopt(io_, ml.fd, ml.name, accept_fn(role, ml.name));
    if (!l) return l.error();
    sockets_.push_back(l.value());
  }
  return ok_status();
}

Status ListenerSet::open(const std::vector<ListenerWant>& wants) {
  for (const ListenerWant& w : wants) {
    if (Status st = open_one(w); !st) return st;
  }
  return ok_status();
}

Status ListenerSet::open_one(const ListenerWant& want) {
  constexpr unsigned kMode = 0600;
  if (want.role == ListenerRole::kFifo) {
    auto fd = open_fifo(want.address, kMode);
    if (!fd) return fd.error();
    fifos_.push_back(std::make_shared<FifoReader>(io_, fd.value(), want.address, fifo_sink_));
    return ok_status();
  }
  Result<std::shared_ptr<StreamListener>> l = make_error(ErrorCode::kInternal, "");
  if (want.role == ListenerRole::kMetrics) {
    auto addr = parse_listen_address(want.address);
    if (!addr) {
      return make_error(addr.error().code,
                        fmt::format("--listen-metrics: {}", addr.error().message));
    }
    auto accept = accept_fn(want.role, std::string(kMetricsListenerName));
    l = addr->is_unix ? StreamListener::listen_unix(io_, addr->path, kMode, addr->path, accept)
                      : StreamListener::listen_tcp(io_, addr->host, addr->port, want.address,
                                                   accept);
  } else {
    l = StreamListener::listen_unix(io_, want.address, kMode, want.address,
                                    accept_fn(want.role, want.address));
  }
  if (!l) return l.error();
  sockets_.push_back(l.value());
  return ok_status();
}

void ListenerSet::start() {
  for (auto& l : sockets_) l->start();
  for (auto& f : fifos_) f->start();
}

void ListenerSet::stop() {
  for (auto& l : sockets_) l->stop();
  for (auto& f : fifos_) f->stop();
}

}  // namespace drepl
