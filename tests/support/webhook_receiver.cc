#include "tests/support/webhook_receiver.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cctype>
#include <stdexcept>

namespace qmtl::testing {

WebhookReceiver::WebhookReceiver(std::vector<int> statuses, std::optional<TlsFiles> tls)
    : statuses_(statuses.begin(), statuses.end()) {
  if (tls) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == nullptr || SSL_CTX_use_certificate_chain_file(ctx, tls->cert.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, tls->key.c_str(), SSL_FILETYPE_PEM) != 1) {
      SSL_CTX_free(ctx);
      throw std::runtime_error("webhook receiver: cannot load the certificate or key");
    }
    tls_ctx_ = ctx;
    // SSL_write cannot be told MSG_NOSIGNAL: a client gone mid-answer must
    // not end the test process (a test binary, so process-wide is fine).
    ::signal(SIGPIPE, SIG_IGN);
  }
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
  SSL_CTX_free(static_cast<SSL_CTX*>(tls_ctx_));
}

size_t WebhookReceiver::handshake_failures() {
  std::lock_guard lock(mu_);
  return handshake_failures_;
}

std::string WebhookReceiver::url(const std::string& path) const {
  return fmt::format("{}://127.0.0.1:{}{}", tls_ctx_ != nullptr ? "https" : "http", port_, path);
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

std::vector<std::string> WebhookReceiver::paths() {
  std::lock_guard lock(mu_);
  return paths_;
}

std::vector<std::chrono::steady_clock::time_point> WebhookReceiver::arrivals() {
  std::lock_guard lock(mu_);
  return arrivals_;
}

void WebhookReceiver::answer_bodies(std::vector<std::string> bodies) {
  std::lock_guard lock(mu_);
  answers_.assign(bodies.begin(), bodies.end());
}

void WebhookReceiver::serve() {
  while (!stop_) {
    pollfd p{.fd = listen_fd_, .events = POLLIN, .revents = 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    const timeval two_seconds{.tv_sec = 2, .tv_usec = 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &two_seconds, sizeof two_seconds);
    if (tls_ctx_ == nullptr) {
      exchange(fd, nullptr);
    } else {
      SSL* ssl = SSL_new(static_cast<SSL_CTX*>(tls_ctx_));
      SSL_set_fd(ssl, fd);
      if (SSL_accept(ssl) == 1) {
        exchange(fd, ssl);
        SSL_shutdown(ssl);
      } else {
        ERR_clear_error();
        std::lock_guard lock(mu_);
        ++handshake_failures_;
      }
      SSL_free(ssl);
      cv_.notify_all();
    }
    ::close(fd);
  }
}

void WebhookReceiver::exchange(int fd, void* ssl_handle) {
  auto* ssl = static_cast<SSL*>(ssl_handle);
  // One request per connection: the head, then Content-Length bytes.
  std::string in;
  char buf[4096];
  size_t body_at = std::string::npos, length = 0;
  while (!stop_) {
    const ssize_t n = ssl != nullptr ? SSL_read(ssl, buf, sizeof buf) : ::read(fd, buf, sizeof buf);
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
  std::string answer;
  {
    std::lock_guard lock(mu_);
    if (body_at != std::string::npos) {
      // "POST /path HTTP/1.1"
      const auto sp = in.find(' ');
      const auto sp2 = in.find(' ', sp + 1);
      paths_.push_back(sp2 != std::string::npos ? in.substr(sp + 1, sp2 - sp - 1) : "");
      arrivals_.push_back(std::chrono::steady_clock::now());
      bodies_.push_back(in.substr(body_at, length));
    }
    if (!statuses_.empty()) {
      status = statuses_.front();
      statuses_.pop_front();
    }
    if (!answers_.empty()) {
      answer = std::move(answers_.front());
      answers_.pop_front();
    }
  }
  cv_.notify_all();
  const std::string reply = fmt::format(
      "HTTP/1.1 {} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n"
      "Connection: close\r\n\r\n{}",
      status, answer.size(), answer);
  if (ssl != nullptr) {
    (void)SSL_write(ssl, reply.data(), static_cast<int>(reply.size()));
  } else {
    (void)!::send(fd, reply.data(), reply.size(), MSG_NOSIGNAL);  // the caller may be gone
  }
}

}  // namespace qmtl::testing
