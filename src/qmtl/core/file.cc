#include "qmtl/core/file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "qmtl/core/sha256.h"

namespace qmtl {
namespace {

struct FdCloser {
  explicit FdCloser(int f) : fd(f) {}
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;
  ~FdCloser() { ::close(fd); }
  int fd;
};

// Unless the file is private to its owner (no group or other bits): the error
// read_private_file and check_private_file give.
Result<void> private_mode(mode_t mode, const std::string& path, std::string_view what) {
  if ((mode & (S_IRWXG | S_IRWXO)) == 0) return {};
  return make_error(ErrorCode::kPermissionDenied,
                    fmt::format("{} '{}' is open to group or others (mode {:04o}); a file of "
                                "secrets must be private to its owner: chmod 600 '{}'",
                                what, path, mode & 07777, path));
}

Result<std::string> read_bounded(const std::string& path, std::string_view what, size_t max_bytes,
                                 bool private_only) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return make_error(ErrorCode::kNotFound, fmt::format("cannot open {} '{}': {}", what, path,
                                                        std::generic_category().message(errno)));
  }
  const FdCloser closer{fd};
  auto too_large = [&] {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("{} '{}' is larger than {} MiB, the most qmtl reads of it", what,
                                  path, max_bytes >> 20));
  };
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    return make_error(ErrorCode::kNotFound, fmt::format("cannot read {} '{}': {}", what, path,
                                                        std::generic_category().message(errno)));
  }
  if (S_ISDIR(st.st_mode)) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("{} '{}' is a directory, not a file", what, path));
  }
  if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("{} '{}' is a device, not a file", what, path));
  }
  if (private_only) {
    if (auto r = private_mode(st.st_mode, path, what); !r) return propagate(r);
  }
  if (S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) > max_bytes) return too_large();
  std::string out;
  if (S_ISREG(st.st_mode)) out.reserve(static_cast<size_t>(st.st_size));
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return make_error(ErrorCode::kNotFound, fmt::format("cannot read {} '{}': {}", what, path,
                                                          std::generic_category().message(errno)));
    }
    if (n == 0) break;
    // A file that grew after fstat, or a pipe, is checked as it is read.
    if (out.size() + static_cast<size_t>(n) > max_bytes) return too_large();
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

}  // namespace

Result<std::string> read_file(const std::string& path, std::string_view what, size_t max_bytes) {
  return read_bounded(path, what, max_bytes, false);
}

Result<std::string> read_private_file(const std::string& path, std::string_view what) {
  return read_bounded(path, what, kMaxDocumentBytes, true);
}

Result<void> check_private_file(const std::string& path, std::string_view what) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return {};
  return private_mode(st.st_mode, path, what);
}

Result<void> write_file_atomically(const std::string& path, std::string_view text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f << text;
    f.flush();
    if (!f) return make_error(ErrorCode::kUnavailable, fmt::format("cannot write {}", tmp));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    return make_error(ErrorCode::kUnavailable,
                      fmt::format("cannot write {}: {}", path, ec.message()));
  }
  return {};
}

Result<std::string> read_secret(const std::string& env, const std::string& file,
                                std::string_view what) {
  if (!env.empty()) {
    const char* v = std::getenv(env.c_str());
    if (v == nullptr || *v == '\0') {
      return make_error(ErrorCode::kNotFound,
                        fmt::format("{}_env names {}, which is not set", what, env));
    }
    return std::string(v);
  }
  if (file.empty()) return std::string();
  auto secret = read_private_file(file, fmt::format("{} file", what));
  if (!secret && secret.error().code == ErrorCode::kPermissionDenied) return secret;
  if (!secret) {
    return make_error(ErrorCode::kNotFound, fmt::format("{}_file {} cannot be read", what, file));
  }
  while (!secret->empty() && (secret->back() == '\n' || secret->back() == '\r')) {
    secret->pop_back();
  }
  return secret;
}

Result<ExecutableFile> inspect_executable(const std::string& path) {
  std::error_code ec;
  const auto canonical = std::filesystem::canonical(path, ec);
  if (ec) {
    return make_error(ErrorCode::kNotFound,
                      fmt::format("cannot find program '{}': {}", path, ec.message()));
  }
  if (!std::filesystem::is_regular_file(canonical, ec) || ::access(canonical.c_str(), X_OK) != 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("'{}' is not an executable file (chmod +x it, or name the "
                                  "program itself, not a directory)",
                                  canonical.string()));
  }
  auto bytes = read_file(canonical.string(), "program", kMaxDataBytes);
  if (!bytes) return propagate(bytes);
  return ExecutableFile{.path = canonical.string(), .sha256 = sha256_hex(*bytes)};
}

bool path_within(std::string_view dir, std::string_view path) {
  if (dir.empty()) return false;
  if (dir == "/") return path.starts_with('/');
  return path.size() > dir.size() && path.starts_with(dir) && path[dir.size()] == '/';
}

}  // namespace qmtl
