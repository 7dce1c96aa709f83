// src/base/dovecot-time.h: Dovecot setting value syntax for times and booleans
// (lib-settings settings_get_time*() / get_bool()).
//
// Time: "<number>[ ]<unit>", or a plain number. As in Dovecot the unit is
// case-insensitive and may be any prefix of its long forms:
//   s  sec secs second seconds          m  min mins minute minutes
//   h  hour hours    d  day days        w  week weeks
//   ms msec msecs mseconds millisec(s) millisecond(s)   ("mi" = minutes)
// Examples: "30", "2s", "500ms", "1 min", "1 days", "12 hours", "1 W".
#pragma once

#include <cstdint>
#include <string_view>

#include "result.h"

namespace drepl {

// Parses a time value into milliseconds. A plain number means seconds (the
// unit of time settings such as replication_full_sync_interval).
// Leading/trailing spaces are ignored. (Dovecot itself rejects a non-zero
// plain number for time settings: "missing units"; we accept it as seconds.)
// Errors (kInvalid), Dovecot's texts:
//   "Invalid time interval: <value>"       empty, garbage, unknown unit,
//                                          number too long
//   "Time interval is too large: <value>"  the result overflows 64 bits
Result<std::uint64_t> parse_dovecot_time_msecs(std::string_view value);

// As parse_dovecot_time_msecs(), in whole seconds. A value that is not a
// whole number of seconds ("1500ms") is an error, as in Dovecot:
//   "Milliseconds not supported for this setting: <value>"
Result<std::uint64_t> parse_dovecot_time_secs(std::string_view value);

// Dovecot boolean setting: "yes" / "no" (case-insensitive). Errors (kInvalid):
//   "Invalid boolean value: <value> (use yes or no)"
Result<bool> parse_dovecot_bool(std::string_view value);

// Unsigned decimal setting (uint): digits only, no sign, no spaces, fits
// max_value. Errors (kInvalid): "Invalid number: <value>" /
// "Number too large: <value> (max <max_value>)".
Result<std::uint64_t> parse_dovecot_uint(std::string_view value,
                                         std::uint64_t max_value = UINT32_MAX);

}  // namespace drepl
