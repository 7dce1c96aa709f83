// replicator/inputs/doveadm-connection.h: the server side of the
// replicator-doveadm protocol (spec §8) on the `replicator-doveadm`
// listener: what `doveadm replicator status|dsync-status|replicate|add|
// remove` and a replica's dsync-server (NOTIFY) talk to.
//
// Stock-compatible bytes (src/doveadm/doveadm-protocol.h). Commands are handled one
// at a time in arrival order; the connection stays open after a success,
// so several commands may be sent on one connection. A bad handshake logs
// one error line and closes the connection without a reply, as stock does.
// A bad command (unknown, wrong argument count, empty or over-long line)
// logs one error line, gets "-<error>\n" (e.g. "-Unknown command: FOO",
// "-REMOVE: Invalid parameters"; stock sends nothing) and the connection is
// closed once that is written, as stock closes it. Other connections are
// never affected.
// Commands are held (the greeting is not) until the backend is ready, i.e.
// the replicator knows the userdb's users, as stock answers only then.
// Also STATUS-DETAIL <mask> (src/doveadm/doveadm-detail.h), our extension for
// `doveadm replicator detail`.
// Large STATUS <mask> listings are written in chunks as the client reads,
// so a million users neither block the loop nor buffer ~100 MB at once.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "doveadm-backend.h"
#include "line-connection.h"
#include "listener.h"

namespace drepl {

inline constexpr std::size_t kDoveadmMaxLineBytes = 1024 * 1024;

class DoveadmConnection final : public LineConnection {
 public:
  DoveadmConnection(Socket socket, std::string listener_name, DoveadmBackend& backend,
                    std::unique_ptr<ClientCounter::Token> token);

 private:
  void on_start() override;
  LineAction on_line(std::string_view line) override;
  void on_line_too_long() override;
  void on_output_drained() override;
  // STATUS <mask> (detail = false) or STATUS-DETAIL <mask> (detail = true).
  LineAction start_status_listing(const std::string& mask, bool detail);
  void write_status_chunk();

  DoveadmBackend& backend_;
  std::unique_ptr<ClientCounter::Token> token_;
  bool handshaked_ = false;
  // After the handshake, commands wait for DoveadmBackend::when_ready().
  bool waiting_ready_ = false;
  bool paused_for_ready_ = false;
  // STATUS <mask> in progress: names still to print.
  std::vector<std::string> listing_;
  std::size_t listing_pos_ = 0;
  bool listing_active_ = false;
  bool listing_detail_ = false;
};

}  // namespace drepl
