#include "qmtl/core/child_process.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <system_error>

extern char** environ;

namespace qmtl {
namespace {

int open_output(const std::string& path) {
  if (path.empty()) return ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  return ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
}

}  // namespace

Result<ChildProcess> ChildProcess::spawn(const ChildSpec& spec) {
  if (spec.argv.empty()) return make_error(ErrorCode::kInvalidArgument, "no program to run");
  // Everything the child needs is built before fork: between fork and exec a
  // multithreaded parent's child may only make async-signal-safe calls.
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string_view kv(*e);
    bool replaced = false;
    for (const auto& [k, v] : spec.env) {
      if (kv.size() > k.size() && kv.starts_with(k) && kv[k.size()] == '=') replaced = true;
    }
    if (!replaced) env_strings.emplace_back(kv);
  }
  for (const auto& [k, v] : spec.env) env_strings.push_back(fmt::format("{}={}", k, v));
  std::vector<char*> envp, argv;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = spec.argv;
  for (auto& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);

  std::array<int, 2> pair{-1, -1};  // [0] the parent's end, [1] the child's
  if (spec.channel && ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair.data()) != 0) {
    return make_error(ErrorCode::kUnavailable,
                      fmt::format("cannot start {}: socketpair: {}", spec.argv[0],
                                  std::generic_category().message(errno)));
  }
  const int in = spec.channel ? ::fcntl(pair[1], F_DUPFD_CLOEXEC, 0)
                              : ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const int out = spec.channel ? pair[1] : open_output(spec.stdout_path);
  const int err =
      spec.inherit_stderr ? ::fcntl(2, F_DUPFD_CLOEXEC, 0) : open_output(spec.stderr_path);
  if (in < 0 || out < 0 || err < 0) {
    const int e = errno;
    for (int fd : {in, out, err, pair[0]}) {
      if (fd >= 0) ::close(fd);
    }
    return make_error(ErrorCode::kUnavailable,
                      fmt::format("cannot open the standard files of {}: {}", spec.argv[0],
                                  std::generic_category().message(e)));
  }
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(126);  // the parent died before prctl
    // The parent's signal mask and dispositions are inherited; the child starts clean.
    sigset_t none;
    sigemptyset(&none);
    // In the child after fork: one thread, so the mask is its own.
    ::sigprocmask(SIG_SETMASK, &none, nullptr);  // NOLINT(concurrency-mt-unsafe)
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(err, 2);
    ::setpgid(0, 0);
    ::execve(argv[0], argv.data(), envp.data());
    static const char kMsg[] = "qmtl: exec failed\n";
    [[maybe_unused]] const auto n = ::write(2, kMsg, sizeof kMsg - 1);
    ::_exit(127);
  }
  const int fork_errno = errno;
  for (int fd : {in, out, err}) ::close(fd);
  if (pid < 0) {
    if (pair[0] >= 0) ::close(pair[0]);
    return make_error(ErrorCode::kUnavailable,
                      fmt::format("cannot start {}: {}", spec.argv[0],
                                  std::generic_category().message(fork_errno)));
  }
  return ChildProcess(pid, pair[0]);
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      channel_(std::exchange(other.channel_, -1)),
      status_(std::exchange(other.status_, std::nullopt)) {}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    kill_and_reap();
    pid_ = std::exchange(other.pid_, -1);
    channel_ = std::exchange(other.channel_, -1);
    status_ = std::exchange(other.status_, std::nullopt);
  }
  return *this;
}

ChildProcess::~ChildProcess() { kill_and_reap(); }

void ChildProcess::kill_and_reap() {
  if (channel_ >= 0) ::close(std::exchange(channel_, -1));
  if (running()) {
    ::kill(pid_, SIGKILL);
    int st = 0;
    while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
    }
  }
  pid_ = -1;
  status_.reset();
}

std::optional<int> ChildProcess::poll() {
  if (pid_ <= 0 || status_) return status_;
  int st = 0;
  const pid_t r = ::waitpid(pid_, &st, WNOHANG);
  if (r == pid_) status_ = st;
  return status_;
}

void ChildProcess::signal(int sig) {
  if (running()) ::kill(pid_, sig);
}

std::string ChildProcess::describe(int status) {
  if (WIFEXITED(status)) return fmt::format("exit {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    const char* name = ::sigdescr_np(sig);  // unlike strsignal, thread-safe
    return fmt::format("signal {} ({})", sig, name != nullptr ? name : "?");
  }
  return fmt::format("status {}", status);
}

}  // namespace qmtl
