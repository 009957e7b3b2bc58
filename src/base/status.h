// Error handling: every call that can fail returns absl::Status or absl::StatusOr<T>.
// No exception crosses a module boundary; broken invariants are CHECK crashes.
#pragma once

#include <cstdio>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/strings/cord.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// A storage fault: the data dir's volume is full, below its free-space floor,
// or failed a write (HTTP 507 insufficient_storage with Retry-After). An
// Unavailable status marked with the payload kStoragePayload.
inline constexpr char kStoragePayload[] = "affinity.storage";
inline absl::Status StorageError(const std::string& message) {
  absl::Status s = absl::UnavailableError(message);
  s.SetPayload(kStoragePayload, absl::Cord("1"));
  return s;
}
inline bool IsStorageError(const absl::Status& s) {
  return !s.ok() && s.GetPayload(kStoragePayload).has_value();
}

// A file that could not be written, by its errno: a full volume or a failing
// disk is a storage fault; anything else an internal error.
inline absl::Status FileWriteError(const std::string& what, int err) {
  const std::string message = what + ": " + std::strerror(err);
  if (err == ENOSPC || err == EDQUOT || err == EIO || err == EROFS) return StorageError(message);
  return absl::InternalError(message);
}

// Returns from the enclosing function when `expr` yields a non-OK status.
#define AFF_RETURN_IF_ERROR(expr)                \
  do {                                           \
    ::absl::Status aff_status_ = (expr);         \
    if (!aff_status_.ok()) return aff_status_;   \
  } while (0)

#define AFF_CONCAT_INNER(a, b) a##b
#define AFF_CONCAT(a, b) AFF_CONCAT_INNER(a, b)

// Assigns the value of a StatusOr expression to `lhs` or returns its error.
#define AFF_ASSIGN_OR_RETURN(lhs, expr) \
  AFF_ASSIGN_OR_RETURN_IMPL(AFF_CONCAT(aff_statusor_, __LINE__), lhs, expr)
#define AFF_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return tmp.status();             \
  lhs = std::move(tmp).value()

// Crashes with a message when an invariant does not hold.
#define AFF_CHECK(cond)                                                              \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      std::fprintf(stderr, "CHECK failed: %s at %s:%d\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                  \
    }                                                                                \
  } while (0)
