// replicator/clients/userdb-client.h: the auth-master protocol on auth_socket_path
// (default base_dir/auth-userdb), spec §6.8, over src/sync/auth-master.h:
//  - UserdbLookups: USER lookups on one persistent connection, many in
//    flight (matched by id), reconnecting on demand; used per sync to find
//    the user's mail_replica / noreplicate.
//  - UserLister: one LIST (userdb iteration) on its own connection,
//    delivered in chunks as it streams in, so a million users never block
//    the event loop.
#pragma once

#include <asio/io_context.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "auth-master.h"
#include "line-reader.h"
#include "result.h"

namespace drepl {

// The outcome of one USER lookup.
struct UserdbLookup {
  enum class Kind : unsigned char {
    kFound,     // `reply` holds the userdb fields
    kNotFound,  // NOTFOUND: the user does not exist
    kFailed,    // FAIL, connection/protocol error or timeout: `error` says why
  };
  Kind kind = Kind::kFailed;
  AuthUserReply reply;
  std::string error;
};

class UserdbLookups {
 public:
  using Done = std::function<void(UserdbLookup)>;

  // `timeout`: how long a lookup may wait for its reply (stock lib-auth: 155 s).
  UserdbLookups(asio::io_context& io, std::string socket_path,
                std::chrono::seconds timeout = std::chrono::seconds(60));
  ~UserdbLookups();

  // Looks `username` up; `done` runs later on the loop, exactly once
  // (unless close() ran first).
  void lookup(std::string_view username, Done done);
  // Fails nothing, drops everything (shutdown).
  void close();
  std::size_t in_flight() const { return pending_.size(); }

 private:
  struct Conn;
  void connect();
  void write_more(const std::shared_ptr<Conn>& c);
  void read_more(const std::shared_ptr<Conn>& c);
  void handle_line(std::string_view line);
  void fail_all(const std::string& why);
  void arm_timeout();

  asio::io_context& io_;
  std::string socket_path_;
  std::chrono::seconds timeout_;
  std::shared_ptr<Conn> conn_;
  struct Pending {
    std::string username;
    Done done;
    std::chrono::steady_clock::time_point sent;
  };
  std::unordered_map<std::uint32_t, Pending> pending_;
  std::uint32_t last_id_ = 0;
  asio::steady_timer timeout_timer_;
  bool timer_armed_ = false;
  bool closed_ = false;
};

class UserLister : public std::enable_shared_from_this<UserLister> {
 public:
  // Called with each batch of usernames, in order, as they arrive.
  using ChunkFn = std::function<void(std::vector<std::string>& usernames)>;
  // Called once at the end: ok after "DONE\t<id>\t", else the error
  // ("userdb listing failed", connection errors, timeouts).
  using DoneFn = std::function<void(Status)>;

  // Lists the userdb users matching `mask` (wildcard_match(): '*', '?').
  // The mask goes to the auth server as LIST user=<mask>, and the names it
  // returns are filtered with it again, because Dovecot 2.3's auth ignores
  // the mask for some userdbs (passwd-file returns every user).
  // `idle_timeout`: the longest gap between two received chunks.
  UserLister(asio::io_context& io, std::string socket_path, std::string mask, ChunkFn on_chunk,
             DoneFn on_done, std::chrono::seconds idle_timeout = std::chrono::seconds(155));
  void start();
  // Stops without calling on_done.
  void cancel();
  std::uint64_t listed() const { return listed_; }

 private:
  void read_more();
  void finish(Status st);

  asio::local::stream_protocol::socket socket_;
  asio::steady_timer idle_timer_;
  std::string socket_path_;
  std::string mask_;
  ChunkFn on_chunk_;
  DoneFn on_done_;
  std::chrono::seconds idle_timeout_;
  LineReader reader_;
  std::vector<char> buf_;
  std::string request_;
  std::uint64_t listed_ = 0;
  bool finished_ = false;
};

}  // namespace drepl
