// replicator/clients/userdb-client.cc: see userdb-client.h.
#include "userdb-client.h"

#include <asio/post.hpp>
#include <asio/write.hpp>
#include <fmt/format.h>

#include <variant>

#include "logger.h"
#include "wildcard.h"

namespace drepl {
namespace {
constexpr std::size_t kAuthMaxLineBytes = 1024 * 1024;
constexpr std::uint32_t kListRequestId = 1;
}  // namespace

// ---- UserdbLookups -----------------------------------------------------------

struct UserdbLookups::Conn {
  explicit Conn(asio::io_context& io)
      : socket(io), reader(kAuthMaxLineBytes, LineReader::OverflowMode::kFail), buf(64 * 1024) {}
  asio::local::stream_protocol::socket socket;
  LineReader reader;
  std::vector<char> buf;
  std::string out_pending;
  std::string out_inflight;
  bool writing = false;
  bool connected = false;
  bool dead = false;
};

UserdbLookups::UserdbLookups(asio::io_context& io, std::string socket_path,
                             std::chrono::seconds timeout)
    : io_(io), socket_path_(std::move(socket_path)), timeout_(timeout), timeout_timer_(io) {}

UserdbLookups::~UserdbLookups() { close(); }

void UserdbLookups::close() {
  closed_ = true;
  timeout_timer_.cancel();
  if (conn_) {
    conn_->dead = true;
    asio::error_code ignored;
    conn_->socket.close(ignored);
    conn_.reset();
  }
  pending_.clear();
}

void UserdbLookups::lookup(std::string_view username, Done done) {
  if (closed_) return;
  do {
    ++last_id_;
  } while (last_id_ == 0 || pending_.count(last_id_) != 0);
  std::uint32_t id = last_id_;
  pending_.emplace(id, Pending{std::string(username), std::move(done),
                               std::chrono::steady_clock::now()});
  if (!conn_) connect();
  conn_->out_pending += format_auth_user_request(id, username);
  write_more(conn_);
  arm_timeout();
}

void UserdbLookups::write_more(const std::shared_ptr<Conn>& c) {
  if (c->dead || !c->connected || c->writing || c->out_pending.empty()) return;
  c->out_inflight.swap(c->out_pending);
  c->out_pending.clear();
  c->writing = true;
  asio::async_write(c->socket, asio::buffer(c->out_inflight),
                    [this, c](const asio::error_code& ec, std::size_t) {
                      c->writing = false;
                      c->out_inflight.clear();
                      if (c->dead) return;
                      if (ec) {
                        fail_all(fmt::format("write({}) failed: {}", socket_path_, ec.message()));
                        return;
                      }
                      write_more(c);
                    });
}

void UserdbLookups::connect() {
  auto c = std::make_shared<Conn>(io_);
  conn_ = c;
  c->out_pending = format_auth_master_handshake();
  c->socket.async_connect(asio::local::stream_protocol::endpoint(socket_path_),
                          [this, c](const asio::error_code& ec) {
                            if (c->dead) return;
                            if (ec) {
                              fail_all(fmt::format("net_connect_unix({}) failed: {}", socket_path_,
                                                   ec.message()));
                              return;
                            }
                            c->connected = true;
                            write_more(c);
                            read_more(c);
                          });
}

void UserdbLookups::read_more(const std::shared_ptr<Conn>& c) {
  c->socket.async_read_some(asio::buffer(c->buf), [this, c](const asio::error_code& e,
                                                            std::size_t n) {
    if (c->dead) return;
    if (n > 0) {
      c->reader.feed(std::string_view(c->buf.data(), n));
      for (;;) {
        std::string_view line;
        auto st = c->reader.next(&line);
        if (st == LineReader::Status::kNeedMore) break;
        if (st == LineReader::Status::kTooLong) {
          fail_all(fmt::format("{}: auth server sent too long line", socket_path_));
          return;
        }
        handle_line(line);
        if (c->dead) return;
      }
    }
    if (e) {
      fail_all(fmt::format("{}: auth server disconnected", socket_path_));
      return;
    }
    read_more(c);
  });
}

void UserdbLookups::handle_line(std::string_view line) {
  auto parsed = parse_auth_master_line(line);
  if (!parsed) {
    fail_all(parsed.error().message);
    return;
  }
  auto& reply = parsed.value();
  std::uint32_t id = 0;
  UserdbLookup result;
  if (auto* v = std::get_if<AuthVersion>(&reply)) {
    if (v->major != kAuthMasterMajor) {
      fail_all(fmt::format("{}: auth-master major version {} unsupported", socket_path_, v->major));
    }
    return;
  } else if (auto* u = std::get_if<AuthUserReply>(&reply)) {
    id = u->id;
    result.kind = UserdbLookup::Kind::kFound;
    result.reply = std::move(*u);
  } else if (auto* nf = std::get_if<AuthUserNotFound>(&reply)) {
    id = nf->id;
    result.kind = UserdbLookup::Kind::kNotFound;
  } else if (auto* f = std::get_if<AuthUserFail>(&reply)) {
    id = f->id;
    result.kind = UserdbLookup::Kind::kFailed;
    result.error =
        "userdb lookup failed: " + (f->reason.empty() ? std::string("(no reason)") : f->reason);
  } else {
    return;  // SPID; LIST/DONE never come on this connection
  }
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  Done done = std::move(it->second.done);
  pending_.erase(it);
  done(std::move(result));
}

void UserdbLookups::fail_all(const std::string& why) {
  if (conn_) {
    conn_->dead = true;
    asio::error_code ignored;
    conn_->socket.close(ignored);
    conn_.reset();
  }
  auto pending = std::move(pending_);
  pending_.clear();
  for (auto& [id, p] : pending) {
    UserdbLookup r;
    r.kind = UserdbLookup::Kind::kFailed;
    r.error = why;
    p.done(std::move(r));
  }
}

void UserdbLookups::arm_timeout() {
  if (timer_armed_ || closed_) return;
  timer_armed_ = true;
  timeout_timer_.expires_after(std::chrono::seconds(5));
  timeout_timer_.async_wait([this](const asio::error_code& ec) {
    timer_armed_ = false;
    if (ec || closed_) return;
    auto now = std::chrono::steady_clock::now();
    bool expired = false;
    for (auto& [id, p] : pending_) {
      if (now - p.sent > timeout_) expired = true;
    }
    if (expired) {
      // The auth server is stuck: start over with a fresh connection.
      fail_all(fmt::format("{}: userdb lookup timed out after {} secs", socket_path_,
                           timeout_.count()));
    }
    if (!pending_.empty()) arm_timeout();
  });
}

// ---- UserLister ----------------------------------------------------------------

UserLister::UserLister(asio::io_context& io, std::string socket_path, std::string mask,
                       ChunkFn on_chunk, DoneFn on_done, std::chrono::seconds idle_timeout)
    : socket_(io),
      idle_timer_(io),
      socket_path_(std::move(socket_path)),
      mask_(std::move(mask)),
      on_chunk_(std::move(on_chunk)),
      on_done_(std::move(on_done)),
      idle_timeout_(idle_timeout),
      reader_(kAuthMaxLineBytes, LineReader::OverflowMode::kFail),
      buf_(64 * 1024) {}

void UserLister::start() {
  auto self = shared_from_this();
  request_ = format_auth_master_handshake() + format_auth_list_request(kListRequestId, mask_);
  idle_timer_.expires_after(idle_timeout_);
  idle_timer_.async_wait([this, self](const asio::error_code& ec) {
    if (ec || finished_) return;
    finish(make_error(ErrorCode::kTemp, fmt::format("{}: user listing timed out", socket_path_)));
  });
  socket_.async_connect(asio::local::stream_protocol::endpoint(socket_path_),
                        [this, self](const asio::error_code& ec) {
                          if (finished_) return;
                          if (ec) {
                            finish(make_error(ErrorCode::kTemp,
                                              fmt::format("net_connect_unix({}) failed: {}",
                                                          socket_path_, ec.message())));
                            return;
                          }
                          asio::async_write(socket_, asio::buffer(request_),
                                            [this, self](const asio::error_code& e, std::size_t) {
                                              if (finished_ || !e) return;
                                              finish(make_error(
                                                  ErrorCode::kTemp,
                                                  fmt::format("write({}) failed: {}", socket_path_,
                                                              e.message())));
                                            });
                          read_more();
                        });
}

void UserLister::cancel() {
  finished_ = true;
  asio::error_code ignored;
  idle_timer_.cancel();
  socket_.close(ignored);
}

void UserLister::read_more() {
  auto self = shared_from_this();
  socket_.async_read_some(asio::buffer(buf_), [this, self](const asio::error_code& ec,
                                                           std::size_t n) {
    if (finished_) return;
    if (n > 0) {
      idle_timer_.expires_after(idle_timeout_);
      idle_timer_.async_wait([this, self](const asio::error_code& e) {
        if (e || finished_) return;
        finish(make_error(ErrorCode::kTemp, fmt::format("{}: user listing timed out",
                                                        socket_path_)));
      });
      reader_.feed(std::string_view(buf_.data(), n));
      std::vector<std::string> batch;
      for (;;) {
        std::string_view line;
        auto st = reader_.next(&line);
        if (st == LineReader::Status::kNeedMore) break;
        if (st == LineReader::Status::kTooLong) {
          finish(make_error(ErrorCode::kTemp, "auth-master sent too long line"));
          return;
        }
        auto parsed = parse_auth_master_line(line);
        if (!parsed) {
          finish(make_error(ErrorCode::kTemp, parsed.error().message));
          return;
        }
        auto& reply = parsed.value();
        if (auto* e = std::get_if<AuthListEntry>(&reply)) {
          // Dovecot 2.3's auth server ignores the user= mask for some
          // userdbs (passwd-file lists everyone): filter here as well.
          if (e->id == kListRequestId && !e->username.empty() &&
              (mask_ == "*" || wildcard_match(e->username, mask_))) {
            batch.push_back(std::move(e->username));
          }
        } else if (auto* d = std::get_if<AuthListDone>(&reply)) {
          if (d->id != kListRequestId) continue;
          if (!batch.empty()) {
            listed_ += batch.size();
            on_chunk_(batch);
          }
          if (d->failed) {
            finish(make_error(ErrorCode::kTemp,
                              "userdb listing failed (does the userdb support iteration, and "
                              "may this process list users?)"));
          } else {
            finish(ok_status());
          }
          return;
        } else if (auto* v = std::get_if<AuthVersion>(&reply)) {
          if (v->major != kAuthMasterMajor) {
            finish(make_error(ErrorCode::kTemp,
                              fmt::format("auth-master major version {} unsupported", v->major)));
            return;
          }
        }
      }
      if (!batch.empty()) {
        listed_ += batch.size();
        on_chunk_(batch);
        if (finished_) return;
      }
    }
    if (ec) {
      finish(make_error(ErrorCode::kTemp,
                        fmt::format("{}: auth server disconnected during the user listing",
                                    socket_path_)));
      return;
    }
    read_more();
  });
}

void UserLister::finish(Status st) {
  if (finished_) return;
  finished_ = true;
  asio::error_code ignored;
  idle_timer_.cancel();
  socket_.close(ignored);
  DoneFn done = std::move(on_done_);
  on_done_ = nullptr;
  if (done) done(std::move(st));
}

}  // namespace drepl
