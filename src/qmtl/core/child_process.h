// A child process that qmtl starts and owns: the server's `qmtl backtest` and
// `qmtl run`, the demo's server, a strategy program (sdk/program.h).
//
// The child gets /dev/null as stdin and its stdout and stderr appended to
// files, or (ChildSpec::channel) one end of a socket pair as both its stdin
// and stdout, for a line protocol with the parent. It gets SIGTERM when the
// thread that started it ends (PR_SET_PDEATHSIG), so a parent that dies does
// not leave strategies running unsupervised, and runs in a process group of
// its own. Destroying a ChildProcess that is still running kills it (SIGKILL)
// and reaps it.
//
// Thread safety: none; one owner calls it.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "qmtl/core/result.h"

namespace qmtl {

struct ChildSpec {
  std::vector<std::string> argv;                         // argv[0] is the executable's path
  std::vector<std::pair<std::string, std::string>> env;  // added to the server's environment
  std::string stdout_path;                               // appended; "" = /dev/null
  std::string stderr_path;                               // appended; "" = /dev/null
  // The child's stdin and stdout are a socket to the parent (channel()), and
  // stdout_path is not used. A socket, not pipes, so the parent writes with
  // MSG_NOSIGNAL: a child that has gone is an error value, not a SIGPIPE.
  bool channel = false;
  bool inherit_stderr = false;  // the child writes to the parent's stderr (stderr_path unused)
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
  // The parent's end of the channel (ChildSpec::channel); -1 without one. It
  // is closed with the ChildProcess.
  int channel() const { return channel_; }
  bool running() const { return pid_ > 0 && !status_; }
  // Reaps the child if it has ended; its wait status once it has.
  std::optional<int> poll();
  // Sends `sig` if the child is still running.
  void signal(int sig);

  // "exit 0", "exit 3", "signal 9 (Killed)": a wait status for people.
  static std::string describe(int status);

 private:
  ChildProcess(pid_t pid, int channel) : pid_(pid), channel_(channel) {}
  void kill_and_reap();
  pid_t pid_ = -1;
  int channel_ = -1;
  std::optional<int> status_;
};

}  // namespace qmtl
