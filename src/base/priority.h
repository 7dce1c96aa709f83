// src/base/priority.h: replication priorities, as Dovecot 2.3 names and numbers them.
//
// Wire form (FIFO, notify socket, replicator-doveadm): the lowercase words
// "none", "low", "high", "sync", parsed exactly and case-sensitively.
// replicator.db form: the integers 0..3.
#pragma once

#include <optional>
#include <string_view>

namespace drepl {

enum class Priority : unsigned char {
  kNone = 0,  // nothing pending; only the periodic full sync is due
  kLow = 1,   // flag/keyword changes, expunges, folder operations, copies
  kHigh = 2,  // new mail
  kSync = 3,  // new mail and a mail process waits for the replica
};

// "none", "low", "high" or "sync".
std::string_view priority_to_string(Priority p);

// Exact, case-sensitive parse of the wire word; nullopt for anything else.
std::optional<Priority> priority_parse(std::string_view word);

// Parse of the replicator.db integer column ("0".."3"); nullopt otherwise.
std::optional<Priority> priority_from_int_string(std::string_view digits);

}  // namespace drepl
