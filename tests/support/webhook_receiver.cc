#include "tests/support/webhook_receiver.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <stdexcept>

namespace qmtl::testing {

WebhookReceiver::WebhookReceiver(std::vector<int> statuses)
    : statuses_(statuses.begin(), statuses.end()) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, 16) != 0) {
    throw std::runtime_error("webhook receiver: cannot listen");
  }
  socklen_t len = sizeof addr;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] { serve(); });
}

WebhookReceiver::~WebhookReceiver() {
  stop_ = true;
  thread_.join();
  ::close(listen_fd_);
}

std::string WebhookReceiver::url(const std::string& path) const {
  return fmt::format("http://127.0.0.1:{}{}", port_, path);
}

std::vector<std::string> WebhookReceiver::wait_for(size_t n, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return bodies_.size() >= n; });
  return bodies_;
}

size_t WebhookReceiver::count() {
  std::lock_guard lock(mu_);
  return bodies_.size();
}

void WebhookReceiver::serve() {
  while (!stop_) {
    pollfd p{.fd = listen_fd_, .events = POLLIN, .revents = 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    // One request per connection: the head, then Content-Length bytes.
    std::string in;
    char buf[4096];
    size_t body_at = std::string::npos, length = 0;
    while (!stop_) {
      pollfd c{.fd = fd, .events = POLLIN, .revents = 0};
      if (::poll(&c, 1, 2000) <= 0) break;
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) break;
      in.append(buf, static_cast<size_t>(n));
      if (body_at == std::string::npos) {
        const auto end = in.find("\r\n\r\n");
        if (end == std::string::npos) continue;
        body_at = end + 4;
        std::string head = in.substr(0, end);
        for (auto& ch : head) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        const auto cl = head.find("content-length:");
        if (cl != std::string::npos) length = std::stoul(head.substr(cl + 15));
      }
      if (in.size() >= body_at + length) break;
    }
    int status = 200;
    {
      std::lock_guard lock(mu_);
      if (body_at != std::string::npos) bodies_.push_back(in.substr(body_at, length));
      if (!statuses_.empty()) {
        status = statuses_.front();
        statuses_.pop_front();
      }
    }
    cv_.notify_all();
    const std::string reply =
        fmt::format("HTTP/1.1 {} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", status);
    (void)!::send(fd, reply.data(), reply.size(), MSG_NOSIGNAL);  // the caller may be gone
    ::close(fd);
  }
}

}  // namespace qmtl::testing
