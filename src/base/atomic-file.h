// src/base/atomic-file.h: replace a file atomically, LevelDB-style, reporting
// every failure: write <path>.tmp (mode 0600, O_NOFOLLOW, O_CLOEXEC), fsync it,
// close it, rename it over <path>, fsync the directory. Used for replicator.db
// and its journal header. No fmt: base is linked by the mail plugin.
#pragma once

#include <string>
#include <string_view>

#include "result.h"
#include "unique-fd.h"

namespace drepl {

// The directory part of `path` ("." for a bare name, "/" for "/x").
std::string dir_of(const std::string& path);

// Writes all of `data` to `fd`, retrying short writes and EINTR. `what` names
// the file in the error: kTemp "write(<what>) failed: <strerror>".
Status write_all(int fd, std::string_view data, std::string_view what);

// One atomic replacement in progress. Move-only; a writer destroyed before
// commit() removes the temp file and leaves <path> untouched.
class AtomicFileWriter {
 public:
  // Creates (truncates) <path>.tmp. Errors: kTemp "open(<path>.tmp) failed: ...".
  static Result<AtomicFileWriter> create(std::string path);

  AtomicFileWriter(AtomicFileWriter&& o) noexcept;
  AtomicFileWriter& operator=(AtomicFileWriter&& o) noexcept;
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;
  ~AtomicFileWriter();

  // Appends to the temp file. Errors: kTemp "write(<path>.tmp) failed: ...";
  // the writer is then still pending (destroy it or call abandon()).
  Status write(std::string_view data);

  // fsync, close, rename over <path>, fsync the directory, in that order.
  // Errors (kTemp, first failing call): "fsync(<path>.tmp)", "close(<path>.tmp)",
  // "rename(<path>.tmp)" (the temp file is removed), or "open(<dir>)"/"fsync(<dir>)"
  // (the new file is in place but the rename may not survive a crash).
  Status commit();

  // Closes and removes the temp file; <path> is unchanged. Idempotent.
  void abandon() noexcept;

  const std::string& path() const { return path_; }
  const std::string& tmp_path() const { return tmp_; }

 private:
  AtomicFileWriter(std::string path, std::string tmp, UniqueFd fd);

  std::string path_;
  std::string tmp_;
  UniqueFd fd_;
  bool pending_ = false;  // the temp file exists and is ours to remove
};

// write_file_atomically(path, data): the whole sequence for data in memory.
// Errors as AtomicFileWriter::create/write/commit.
Status write_file_atomically(const std::string& path, std::string_view data);

}  // namespace drepl
