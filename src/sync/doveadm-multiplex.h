// src/sync/doveadm-multiplex.h: reader for the packet-based multiplex stream that
// doveadm-server sends after "+\n" when the client's handshake has minor >= 1
// ("VERSION\tdoveadm-server\t1\t1"; checked in client-connection-tcp.c of 2.3.19.1
// and 2.4.1, where minor 1..2 also turns on the log channel without asking):
//
//   packet = <1 byte channel id> <4 byte big-endian length> <length bytes>
//   channel 0    : the command's normal output (state line, +/-CODE)
//   channel 'L'  : the doveadm worker's own log lines, each
//                  <type byte> <log prefix> <message> "\n", with type
//                  0x01 debug, 0x02 info, 0x03 warning, 0x04 error,
//                  0x05 fatal, 0x06 panic (doveadm_log_type_to_char()).
//
// Fatal errors (i_fatal, e.g. a refused TCP connect to the replica) are not
// sent on the log channel: the worker exits and the client sees EOF.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace drepl {

inline constexpr char kDoveadmMainChannel = '\0';
inline constexpr char kDoveadmLogChannel = 'L';

// One line the worker logged on the 'L' channel.
struct DoveadmLogLine {
  enum class Type : unsigned char { kDebug = 1, kInfo, kWarning, kError, kFatal, kPanic };
  Type type = Type::kInfo;
  std::string text;  // prefix + message, without the type byte and LF
};

class DoveadmMultiplexReader {
 public:
  // Log lines longer than `max_log_line_bytes` are cut there (the rest of
  // that line is dropped).
  explicit DoveadmMultiplexReader(std::size_t max_log_line_bytes = 4096);

  // Feeds raw stream bytes. Channel 0 data is appended to *main; complete
  // log lines are appended to *log. Data of other channels is ignored.
  void feed(std::string_view bytes, std::string* main, std::vector<DoveadmLogLine>* log);

  // As feed(), but stops at the end of the current packet: returns how many
  // bytes of `bytes` it consumed (all of them when the packet continues past
  // them). What it appends comes from one channel only, so a caller that
  // loops over feed_packet() sees main output and log lines in the order the
  // server sent them, however the stream was split into reads.
  std::size_t feed_packet(std::string_view bytes, std::string* main,
                          std::vector<DoveadmLogLine>* log);

  // True when every packet fed so far was complete (no header or payload
  // bytes outstanding) and no log line is half received.
  bool at_packet_boundary() const noexcept {
    return header_len_ == 0 && remaining_ == 0 && log_partial_.empty();
  }

 private:
  void log_bytes(std::string_view data, std::vector<DoveadmLogLine>* log);

  std::size_t max_log_line_bytes_;
  char header_[5] = {};
  std::size_t header_len_ = 0;
  std::uint32_t remaining_ = 0;  // bytes left in the current packet
  char channel_ = 0;
  std::string log_partial_;
  bool log_overflow_ = false;
};

}  // namespace drepl
