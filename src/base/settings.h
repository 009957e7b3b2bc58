// How an options struct is read from the configuration and checked. Each
// component's options live in its own room (e.g. models/drift_options.h) and
// follow one form, which the configuration reader (config/config.h) drives:
//
//   struct DriftOptions {
//     double psi_threshold = 0.25;  // what it means, its unit and default
//     static constexpr const char* kSection = "drift";
//     template <class Read> void Fields(Read& read) { read("drift", "psi_threshold", psi_threshold); }
//     absl::Status Validate() const { ... return SettingError("drift.psi_threshold must be > 0"); }
//   };
//
// `read(section, key, field)` takes bool, integer, floating-point and string
// fields, and `read(section, key, field, names)` an enum spelled by an
// EnumNames table; a key the file sets that no field reads is refused by name.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace affinity {

// A setting's value is refused: InvalidArgument "config: <message>".
inline absl::Status SettingError(std::string_view message) {
  return absl::InvalidArgumentError("config: " + std::string(message));
}

}  // namespace affinity
