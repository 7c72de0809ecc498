#include "tests/support/sse_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>

namespace qmtl::testing {

SseClient::SseClient(const std::string& base_url, const std::string& path,
                     const std::vector<std::pair<std::string, std::string>>& headers) {
  const std::string prefix = "http://";
  const auto hostport = base_url.substr(prefix.size());
  const auto colon = hostport.find(':');
  const std::string host = hostport.substr(0, colon);
  const int port = std::stoi(hostport.substr(colon + 1));
  fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, host.c_str(), &addr.sin_addr);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    throw std::runtime_error("cannot connect to " + base_url);
  }
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  std::string req =
      "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nAccept: text/event-stream\r\n";
  for (const auto& [k, v] : headers) req += k + ": " + v + "\r\n";
  req += "\r\n";
  if (::send(fd_, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    throw std::runtime_error("cannot send the request to " + base_url);
  }
}

SseClient::~SseClient() {
  if (fd_ >= 0) ::close(fd_);
}

bool SseClient::fill(std::chrono::steady_clock::time_point deadline) {
  if (ended_) return false;
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  if (left.count() <= 0) return false;
  pollfd p{.fd = fd_, .events = POLLIN, .revents = 0};
  if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
  char tmp[65536];
  const ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
  if (n <= 0) {
    ended_ = true;
    return false;
  }
  buf_.append(tmp, static_cast<size_t>(n));
  return true;
}

bool SseClient::read_head(std::chrono::steady_clock::time_point deadline) {
  if (status_ != 0) return true;
  for (;;) {
    const auto end = buf_.find("\r\n\r\n");
    if (end != std::string::npos) {
      head_ = buf_.substr(0, end);
      buf_.erase(0, end + 4);
      status_ = std::stoi(head_.substr(9, 3));
      return true;
    }
    if (!fill(deadline)) return false;
  }
}

int SseClient::status() {
  read_head(std::chrono::steady_clock::now() + std::chrono::seconds(10));
  return status_;
}

const std::string& SseClient::head() {
  status();
  return head_;
}

std::optional<SseEvent> SseClient::next(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  if (!read_head(deadline) || status_ != 200) return std::nullopt;
  for (;;) {
    const auto end = buf_.find("\n\n");
    if (end != std::string::npos) {
      const std::string block = buf_.substr(0, end);
      buf_.erase(0, end + 2);
      SseEvent e;
      size_t pos = 0;
      while (pos < block.size()) {
        auto nl = block.find('\n', pos);
        if (nl == std::string::npos) nl = block.size();
        const std::string line = block.substr(pos, nl - pos);
        pos = nl + 1;
        if (line.starts_with("id: ")) e.id = line.substr(4);
        if (line.starts_with("event: ")) e.type = line.substr(7);
        if (line.starts_with("data: ")) e.data += line.substr(6);
      }
      return e;
    }
    if (!fill(deadline)) return std::nullopt;
  }
}

std::optional<SseEvent> SseClient::next_non_heartbeat(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    auto e = next(left);
    if (!e || e->type != "heartbeat") return e;
  }
}

}  // namespace qmtl::testing
