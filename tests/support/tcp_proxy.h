// A TCP proxy on loopback that a test can cut: connections through it are
// relayed byte for byte until cut() closes them all; while cut, new ones are
// refused; restore() lets them through again. For tests of disconnects that a
// real network would cause, with both ends real.
#pragma once

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

namespace qmtl::testing {

// A free loopback port now (for servers that cannot report the one they got).
int free_port();

class TcpProxy {
 public:
  // Listens on a free loopback port and relays to 127.0.0.1:`target_port`.
  explicit TcpProxy(int target_port);
  ~TcpProxy();
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  int port() const { return port_; }
  void cut();
  void restore();

 private:
  void accept_loop();
  void relay(int from, int to);

  int target_port_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<bool> cut_{false};
  std::mutex mu_;
  std::vector<int> fds_;
  std::vector<std::thread> threads_;
  std::thread acceptor_;
};

}  // namespace qmtl::testing
