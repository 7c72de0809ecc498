// Error values for qmtl.
//
// Every operation that can fail because of its input or its environment returns
// Result<T>: either a T or an Error whose message tells the user what to fix.
// Exceptions are reserved for programming errors and process edges.
//
// Thread safety: Error and Result are plain values; distinct objects may be used
// from distinct threads without synchronisation.
#pragma once

#include <string>
#include <string_view>
#include <tl/expected.hpp>
#include <utility>

namespace qmtl {

// The kind of failure. Callers branch on the code; people read the message.
// The server maps each code to one HTTP status (see server/api.h).
enum class ErrorCode {
  kInvalidArgument,     // the input is malformed or out of range
  kNotFound,            // the named object does not exist
  kAlreadyExists,       // creating an object whose id is taken
  kFailedPrecondition,  // the object's state does not allow the operation
  kVersionMismatch,     // the caller's expected version (If-Match) is not the current one
  kUnauthenticated,     // no valid credentials
  kPermissionDenied,    // valid credentials, insufficient role
  kUnavailable,         // a dependency (server, database) cannot be reached
  kInternal,            // a bug or an unexpected environment failure
};

// Stable lower-case name of `code`, e.g. "invalid_argument". Used in logs and in
// problem+json `type` URNs, so never change an existing name.
std::string_view error_code_name(ErrorCode code);

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  // One line, addressed to the user: what is wrong and, where possible, how to fix it.
  std::string message;

  friend bool operator==(const Error&, const Error&) = default;
};

template <typename T>
using Result = tl::expected<T, Error>;

// Shorthand for returning a failure from a function that returns Result<T>:
//   return make_error(ErrorCode::kNotFound, "world 'x' does not exist");
inline tl::unexpected<Error> make_error(ErrorCode code, std::string message) {
  return tl::unexpected<Error>(Error{code, std::move(message)});
}

// Re-raises the error of `r` from a function returning Result<U>.
template <typename T>
tl::unexpected<Error> propagate(const Result<T>& r) {
  return tl::unexpected<Error>(r.error());
}

}  // namespace qmtl
