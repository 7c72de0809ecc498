// Child processes for end-to-end tests: run a command to completion, or keep a
// server running and stop it again. Real processes, real sockets, no mocks.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace qmtl::testing {

// Environment changes for a child: a value sets the variable, nullopt removes it.
using EnvOverrides = std::map<std::string, std::optional<std::string>>;

struct ProcessResult {
  int exit_code = -1;  // 128 + signal number if killed by a signal
  std::string out;
  std::string err;
};

// Runs argv[0] with arguments, waits at most `timeout` (then kills it and fails
// the current test), and returns its exit code and captured output.
ProcessResult run_process(const std::vector<std::string>& argv, const EnvOverrides& env = {},
                          std::chrono::seconds timeout = std::chrono::seconds(30));

// A long-running child whose stdout is a pipe (read with read_line) and whose
// stderr goes to `stderr_path`. Killed and reaped on destruction.
class ChildProcess {
 public:
  ChildProcess(const std::vector<std::string>& argv, const std::string& stderr_path,
               const EnvOverrides& env = {});
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // The next line of stdout, or nullopt on EOF or timeout.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout);
  // Sends `sig` and waits up to `timeout` for exit; returns the exit code, or
  // nullopt if it did not exit (it is then killed with SIGKILL).
  std::optional<int> stop(int sig, std::chrono::milliseconds timeout);
  bool running();
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::string buffer_;
  std::optional<int> exit_code_;
};

// `qmtl serve` on a SQLite file (or a database URL) and a free port, ready
// when constructed.
// `extra` are further arguments (by default --no-auth).
class ServerProcess {
 public:
  ServerProcess(const std::string& binary, const std::string& db_path, const std::string& log_path,
                const std::vector<std::string>& extra = {"--no-auth"},
                const EnvOverrides& env = {});
  const std::string& url() const { return url_; }
  // SIGTERM and wait; returns the server's exit code.
  std::optional<int> stop() { return child_.stop(15, std::chrono::seconds(10)); }
  ChildProcess& child() { return child_; }

 private:
  ChildProcess child_;
  std::string url_;
};

// Writes `text` to `path` (replacing it) and returns the path.
std::string write_file(const std::string& path, const std::string& text);
// The same, private to its owner (mode 0600), as a file of secrets must be.
std::string write_private_file(const std::string& path, const std::string& text);

}  // namespace qmtl::testing
