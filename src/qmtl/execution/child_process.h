// A child process the server starts and owns (`qmtl backtest`, `qmtl run`).
//
// The child gets /dev/null as stdin, its stdout and stderr appended to files,
// and SIGTERM when the thread that started it ends (PR_SET_PDEATHSIG), so a
// server that dies does not leave strategies running unsupervised. Destroying
// a ChildProcess that is still running kills it (SIGKILL) and reaps it.
//
// Thread safety: none; one owner calls it.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "qmtl/core/result.h"

namespace qmtl::execution {

struct ChildSpec {
  std::vector<std::string> argv;                         // argv[0] is the executable's path
  std::vector<std::pair<std::string, std::string>> env;  // added to the server's environment
  std::string stdout_path;                               // appended; "" = /dev/null
  std::string stderr_path;                               // appended; "" = /dev/null
};

class ChildProcess {
 public:
  // Starts the child. kUnavailable if fork or exec fails (exec failures are
  // reported by the child's exit status 127 and a line in its stderr file).
  static Result<ChildProcess> spawn(const ChildSpec& spec);

  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0 && !status_; }
  // Reaps the child if it has ended; its wait status once it has.
  std::optional<int> poll();
  // Sends `sig` if the child is still running.
  void signal(int sig);

  // "exit 0", "exit 3", "signal 9 (Killed)": a wait status for people.
  static std::string describe(int status);

 private:
  explicit ChildProcess(pid_t pid) : pid_(pid) {}
  void kill_and_reap();
  pid_t pid_ = -1;
  std::optional<int> status_;
};

}  // namespace qmtl::execution
