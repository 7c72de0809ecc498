// Reading whole files for the parsers (CSV series, policies, JSON inputs), and
// writing one whole.
//
// Thread safety: functions of the file system only; concurrent writers of one
// path race (the last rename wins).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "qmtl/core/result.h"

namespace qmtl {

// How much read_file takes: documents (policies, strategies, settings, JSON
// inputs, tokens) are small; bar and metrics files may be large.
inline constexpr size_t kMaxDocumentBytes = size_t{16} << 20;  // 16 MiB
inline constexpr size_t kMaxDataBytes = size_t{1} << 30;       // 1 GiB

// The bytes of the file at `path`, at most `max_bytes` of them. kNotFound,
// naming `what` (e.g. "policy file") and the path with the system's reason, if
// it cannot be opened or read; kInvalidArgument if it is a directory or a
// device (/dev/zero never ends) or holds more than `max_bytes`, found while
// reading: memory never grows past the limit, whatever the file is (a pipe
// has no size to check first).
Result<std::string> read_file(const std::string& path, std::string_view what = "file",
                              size_t max_bytes = kMaxDocumentBytes);

// read_file for a file that holds secrets (API tokens, passwords): also
// kPermissionDenied when group or others have any access to it, as sshd and
// PostgreSQL refuse such key files; the message gives the chmod that fixes it.
// The mode is read from the open file, so it is the file whose bytes are read.
Result<std::string> read_private_file(const std::string& path, std::string_view what);

// kPermissionDenied, as read_private_file, when `path` exists and group or
// others have access to it; ok when it is private or does not exist (yet).
Result<void> check_private_file(const std::string& path, std::string_view what);

// Writes `text` to `path` whole or not at all (a temporary file renamed over
// it), so a crash mid-write never leaves half a file for a reader.
// kUnavailable naming the path if it cannot be written.
Result<void> write_file_atomically(const std::string& path, std::string_view text);

// A secret named by settings: the value of environment variable `env`, or
// else the contents of `file` without trailing line breaks. kNotFound naming
// the variable or file (never the value) when it is unset, empty or unreadable;
// "" when both names are empty. `what` names the secret in those messages
// ("password": "password_env names X, which is not set"). Thread-safe as long
// as nobody calls setenv.
Result<std::string> read_secret(const std::string& env, const std::string& file,
                                std::string_view what = "password");

// An executable a strategy names (sdk/program.h), as it is on disk now.
struct ExecutableFile {
  std::string path;    // absolute, without symbolic links, "." or ".."
  std::string sha256;  // of its bytes, lower-case hex
};
// kNotFound naming `path` if it does not exist or cannot be read;
// kInvalidArgument if it is not a regular file executable by this user.
Result<ExecutableFile> inspect_executable(const std::string& path);

// True when `path` (canonical) is inside directory `dir` (canonical).
bool path_within(std::string_view dir, std::string_view path);

}  // namespace qmtl
