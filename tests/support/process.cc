#include "tests/support/process.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "tests/support/temp_dir.h"

extern char** environ;

namespace qmtl::testing {
namespace {

std::vector<std::string> make_env(const EnvOverrides& overrides) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string kv(*e);
    const std::string key = kv.substr(0, kv.find('='));
    if (overrides.count(key) == 0) env.push_back(kv);
  }
  for (const auto& [k, v] : overrides) {
    if (v) env.push_back(k + "=" + *v);
  }
  return env;
}

std::vector<char*> c_strings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

pid_t spawn(const std::vector<std::string>& argv, const EnvOverrides& env,
            posix_spawn_file_actions_t* actions) {
  std::vector<std::string> args = argv;
  std::vector<std::string> envs = make_env(env);
  auto cargs = c_strings(args);
  auto cenv = c_strings(envs);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, cargs[0], actions, nullptr, cargs.data(), cenv.data());
  if (rc != 0) throw std::runtime_error("posix_spawn " + argv[0] + ": " + std::strerror(rc));
  return pid;
}

}  // namespace

ProcessResult run_process(const std::vector<std::string>& argv, const EnvOverrides& env,
                          std::chrono::seconds timeout) {
  TempDir dir;
  const std::string out_path = dir.file("stdout"), err_path = dir.file("stderr");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  const pid_t pid = spawn(argv, env, &actions);
  posix_spawn_file_actions_destroy(&actions);

  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  for (;;) {
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      ADD_FAILURE() << argv[0] << " did not finish within " << timeout.count() << " s";
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return ProcessResult{decode_status(status), slurp(out_path), slurp(err_path)};
}

ChildProcess::ChildProcess(const std::vector<std::string>& argv, const std::string& stderr_path,
                           const EnvOverrides& env) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  posix_spawn_file_actions_addopen(&actions, 2, stderr_path.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                   0600);
  try {
    pid_ = spawn(argv, env, &actions);
  } catch (...) {
    posix_spawn_file_actions_destroy(&actions);
    close(fds[0]);
    close(fds[1]);
    throw;
  }
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  out_fd_ = fds[0];
}

ChildProcess::~ChildProcess() {
  if (running()) stop(SIGKILL, std::chrono::seconds(5));
  if (out_fd_ >= 0) close(out_fd_);
}

bool ChildProcess::running() {
  if (exit_code_) return false;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    exit_code_ = decode_status(status);
    return false;
  }
  return true;
}

std::optional<std::string> ChildProcess::read_line(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return line;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd p{out_fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[4096];
    const ssize_t n = read(out_fd_, buf, sizeof buf);
    if (n <= 0) return std::nullopt;
    buffer_.append(buf, static_cast<size_t>(n));
  }
}

std::optional<int> ChildProcess::stop(int sig, std::chrono::milliseconds timeout) {
  if (!running()) return exit_code_;
  kill(pid_, sig);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!running()) return exit_code_;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  exit_code_ = decode_status(status);
  return std::nullopt;
}

namespace {

std::vector<std::string> serve_argv(const std::string& binary, const std::string& db_path,
                                    const std::vector<std::string>& extra) {
  // A path, or a database URL (postgres://...).
  const bool url = db_path.find("://") != std::string::npos || db_path.starts_with("sqlite:");
  std::vector<std::string> argv{binary, "serve", "--db", url ? db_path : "sqlite:" + db_path};
  // Any free port, unless the test names one (to restart a server where its
  // clients expect it).
  if (std::find(extra.begin(), extra.end(), "--port") == extra.end()) {
    argv.insert(argv.end(), {"--port", "0"});
  }
  // Tests drive evaluations themselves: a scheduled one at midnight UTC would
  // make them depend on the time of day.
  if (std::find(extra.begin(), extra.end(), "--scheduler") == extra.end()) {
    argv.insert(argv.end(), {"--scheduler", "false"});
  }
  argv.insert(argv.end(), extra.begin(), extra.end());
  return argv;
}

}  // namespace

ServerProcess::ServerProcess(const std::string& binary, const std::string& db_path,
                             const std::string& log_path, const std::vector<std::string>& extra,
                             const EnvOverrides& env)
    : child_(serve_argv(binary, db_path, extra), log_path, env) {
  const auto line = child_.read_line(std::chrono::seconds(20));
  const std::string marker = "listening on ";
  if (!line || line->find(marker) == std::string::npos) {
    throw std::runtime_error("qmtl serve did not start; its log: " + slurp(log_path));
  }
  const auto start = line->find(marker) + marker.size();
  url_ = line->substr(start, line->find(' ', start) - start);
}

std::string write_file(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

std::string write_private_file(const std::string& path, const std::string& text) {
  write_file(path, text);
  std::filesystem::permissions(
      path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  return path;
}

}  // namespace qmtl::testing
