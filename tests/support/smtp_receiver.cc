#include "tests/support/smtp_receiver.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <optional>
#include <stdexcept>

namespace qmtl::testing {
namespace {

std::string base64_decode(const std::string& in) {
  static const std::string kChars =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  int bits = 0, value = 0;
  for (char c : in) {
    const auto at = kChars.find(c);
    if (at == std::string::npos) continue;  // '=' and anything else
    value = (value << 6) | static_cast<int>(at);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((value >> bits) & 0xff));
    }
  }
  return out;
}

bool send_all(int fd, const std::string& s) {
  size_t at = 0;
  while (at < s.size()) {
    const ssize_t n = ::send(fd, s.data() + at, s.size() - at, MSG_NOSIGNAL);
    if (n <= 0) return false;
    at += static_cast<size_t>(n);
  }
  return true;
}

// Reads one CRLF-terminated line (without the CRLF), at most 5 s of waiting.
std::optional<std::string> read_line(int fd, std::string& buffer) {
  for (;;) {
    const auto end = buffer.find("\r\n");
    if (end != std::string::npos) {
      std::string line = buffer.substr(0, end);
      buffer.erase(0, end + 2);
      return line;
    }
    pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
    if (::poll(&p, 1, 5000) <= 0) return std::nullopt;
    char chunk[4096];
    const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) return std::nullopt;
    buffer.append(chunk, static_cast<size_t>(n));
  }
}

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

SmtpReceiver::SmtpReceiver(int fail_first) : fail_first_(fail_first) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, 16) != 0) {
    throw std::runtime_error("smtp receiver: cannot listen");
  }
  socklen_t len = sizeof addr;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] { serve(); });
}

SmtpReceiver::~SmtpReceiver() {
  stop_ = true;
  thread_.join();
  ::close(listen_fd_);
}

std::string SmtpReceiver::url() const { return fmt::format("smtp://127.0.0.1:{}", port_); }

std::vector<SmtpReceiver::Mail> SmtpReceiver::wait_for(size_t n,
                                                       std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return mails_.size() >= n; });
  return mails_;
}

void SmtpReceiver::serve() {
  while (!stop_) {
    pollfd p{.fd = listen_fd_, .events = POLLIN, .revents = 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    session(fd);
    ::close(fd);
  }
}

void SmtpReceiver::session(int fd) {
  std::string buffer;
  Mail mail;
  if (!send_all(fd, "220 qmtl-test ESMTP\r\n")) return;
  while (!stop_) {
    auto line = read_line(fd, buffer);
    if (!line) return;
    const std::string cmd = upper(line->substr(0, line->find(' ')));
    std::string reply = "250 OK\r\n";
    if (cmd == "EHLO") {
      reply = "250-qmtl-test\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n";
    } else if (cmd == "AUTH") {
      std::string response = line->size() > 11 ? line->substr(11) : "";  // "AUTH PLAIN "
      if (response.empty()) {
        if (!send_all(fd, "334 \r\n")) return;
        auto next = read_line(fd, buffer);
        if (!next) return;
        response = *next;
      }
      mail.auth = base64_decode(response);
      reply = "235 2.7.0 Authentication successful\r\n";
    } else if (cmd == "MAIL") {
      mail.from = line->substr(line->find(':') + 1);
    } else if (cmd == "RCPT") {
      mail.to.push_back(line->substr(line->find(':') + 1));
    } else if (cmd == "DATA") {
      if (fail_first_.load() > 0) {
        --fail_first_;
        ++rejected_;
        reply = "451 4.3.0 try again later\r\n";
      } else {
        if (!send_all(fd, "354 go ahead\r\n")) return;
        std::string data;
        for (;;) {
          auto l = read_line(fd, buffer);
          if (!l) return;
          if (*l == ".") break;
          data += (l->starts_with("..") ? l->substr(1) : *l) + "\r\n";
        }
        mail.data = std::move(data);
        {
          std::lock_guard lock(mu_);
          mails_.push_back(mail);
        }
        cv_.notify_all();
        mail.from.clear();
        mail.to.clear();
      }
    } else if (cmd == "QUIT") {
      send_all(fd, "221 bye\r\n");
      return;
    }
    if (!send_all(fd, reply)) return;
  }
}

}  // namespace qmtl::testing
