#include "qmtl/sdk/event_stream.h"

#include <fmt/format.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <system_error>

#include "qmtl/core/http_client.h"
#include "qmtl/core/json.h"

namespace qmtl::sdk {
namespace {

using Clock = std::chrono::steady_clock;

int remaining_ms(Clock::time_point deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

ErrorCode code_for_status(int status) {
  switch (status) {
    case 400:
      return ErrorCode::kInvalidArgument;
    case 401:
      return ErrorCode::kUnauthenticated;
    case 403:
      return ErrorCode::kPermissionDenied;
    case 404:
      return ErrorCode::kNotFound;
    default:
      return ErrorCode::kUnavailable;
  }
}

// A connected TCP socket to host:port within the deadline, or -1 with `why`.
int connect_to(const ServerAddress& a, Clock::time_point deadline, std::string& why) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (int rc = ::getaddrinfo(a.host.c_str(), a.port.c_str(), &hints, &res); rc != 0) {
    why = ::gai_strerror(rc);
    return -1;
  }
  int fd = -1;
  for (auto* ai = res; ai != nullptr && fd < 0; ai = ai->ai_next) {
    fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) continue;
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
      why = std::generic_category().message(errno);
      ::close(fd);
      fd = -1;
      continue;
    }
    pollfd p{.fd = fd, .events = POLLOUT, .revents = 0};
    int err = 0;
    socklen_t len = sizeof err;
    if (::poll(&p, 1, remaining_ms(deadline)) != 1 ||
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
      why = err != 0 ? std::generic_category().message(err) : "no answer in time";
      ::close(fd);
      fd = -1;
    }
  }
  ::freeaddrinfo(res);
  if (fd >= 0) {
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  return fd;
}

}  // namespace

EventStream::~EventStream() {
  if (fd_ >= 0) ::close(fd_);
}

Result<bool> EventStream::fill(Clock::time_point deadline) {
  pollfd p{.fd = fd_, .events = POLLIN, .revents = 0};
  const int ready = ::poll(&p, 1, remaining_ms(deadline));
  if (ready == 0) return false;
  if (ready < 0) {
    return make_error(ErrorCode::kUnavailable, fmt::format("the event stream broke: {}",
                                                           std::generic_category().message(errno)));
  }
  char chunk[16384];
  const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
  if (n == 0) return make_error(ErrorCode::kUnavailable, "the server ended the event stream");
  if (n < 0) {
    if (errno == EAGAIN || errno == EINTR) return false;
    return make_error(ErrorCode::kUnavailable, fmt::format("the event stream broke: {}",
                                                           std::generic_category().message(errno)));
  }
  buffer_.append(chunk, static_cast<size_t>(n));
  return true;
}

Result<std::unique_ptr<EventStream>> EventStream::open(const Options& o) {
  auto addr = parse_server_url(o.base_url);
  if (!addr) return propagate(addr);
  const auto deadline = Clock::now() + o.timeout;
  std::unique_ptr<EventStream> s(new EventStream());
  std::string why;
  s->fd_ = connect_to(*addr, deadline, why);
  if (s->fd_ < 0) {
    return make_error(ErrorCode::kUnavailable,
                      fmt::format("cannot reach the qmtl server at {}: {}", o.base_url, why));
  }
  std::string target = fmt::format("{}/worlds/{}/events", addr->path_prefix, o.world);
  if (!o.strategy.empty()) target += "?strategy=" + o.strategy;
  std::string req = fmt::format(
      "GET {} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\nUser-Agent: qmtl-runner\r\n",
      target, addr->host);
  if (!o.token.empty()) req += fmt::format("Authorization: Bearer {}\r\n", o.token);
  if (o.last_event_id) req += fmt::format("Last-Event-ID: {}\r\n", *o.last_event_id);
  req += "\r\n";
  for (size_t sent = 0; sent < req.size();) {
    const ssize_t n = ::send(s->fd_, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EAGAIN) {
      pollfd p{.fd = s->fd_, .events = POLLOUT, .revents = 0};
      if (::poll(&p, 1, remaining_ms(deadline)) != 1) {
        return make_error(ErrorCode::kUnavailable, "the server did not take the request in time");
      }
      continue;
    }
    if (n <= 0) {
      return make_error(
          ErrorCode::kUnavailable,
          fmt::format("cannot send to {}: {}", o.base_url, std::generic_category().message(errno)));
    }
    sent += static_cast<size_t>(n);
  }
  size_t head_end = std::string::npos;
  while ((head_end = s->buffer_.find("\r\n\r\n")) == std::string::npos) {
    auto more = s->fill(deadline);
    if (!more) return propagate(more);
    if (!*more) {
      return make_error(ErrorCode::kUnavailable,
                        fmt::format("the server at {} did not answer in time", o.base_url));
    }
  }
  const std::string head = s->buffer_.substr(0, head_end);
  s->buffer_.erase(0, head_end + 4);
  int status = 0;  // "HTTP/1.1 200 OK": the three digits after the version
  if (head.size() > 12) std::from_chars(head.data() + 9, head.data() + 12, status);
  if (status != 200) {
    // A problem document: read it (Content-Length bounded by the deadline) for its detail.
    std::string detail = fmt::format("HTTP {}", status);
    const auto cl = head.find("Content-Length: ");
    const size_t want =
        cl == std::string::npos ? 0 : std::strtoul(head.c_str() + cl + 16, nullptr, 10);
    while (s->buffer_.size() < want) {
      auto more = s->fill(deadline);
      if (!more || !*more) break;
    }
    if (auto doc = json::parse(s->buffer_.substr(0, want)); doc && doc->is_object()) {
      if (const auto* d = doc->get_object().if_contains("detail"); d && d->is_string()) {
        detail = fmt::format("{} (HTTP {})", std::string_view(d->get_string()), status);
      }
    }
    return make_error(code_for_status(status), detail);
  }
  s->last_id_ = o.last_event_id;
  return s;
}

Result<std::optional<ServerEvent>> EventStream::next(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const auto end = buffer_.find("\n\n");
    if (end != std::string::npos) {
      const std::string block = buffer_.substr(0, end);
      buffer_.erase(0, end + 2);
      ServerEvent e;
      bool any = false;
      size_t pos = 0;
      while (pos < block.size()) {
        auto nl = block.find('\n', pos);
        if (nl == std::string::npos) nl = block.size();
        std::string_view line(block.data() + pos, nl - pos);
        pos = nl + 1;
        if (line.starts_with(':')) continue;  // a comment
        const auto colon = line.find(':');
        const std::string_view field = line.substr(0, colon);
        std::string_view value = colon == std::string_view::npos ? "" : line.substr(colon + 1);
        if (value.starts_with(' ')) value.remove_prefix(1);
        any = true;
        if (field == "id") e.id = value;
        if (field == "event") e.type = value;
        if (field == "data") {
          if (!e.data.empty()) e.data += '\n';
          e.data += value;
        }
      }
      if (!any) continue;
      if (e.type.empty()) e.type = "message";
      if (!e.id.empty()) last_id_ = e.id;
      return std::optional<ServerEvent>(std::move(e));
    }
    auto more = fill(deadline);
    if (!more) return propagate(more);
    if (!*more) return std::optional<ServerEvent>{};
  }
}

}  // namespace qmtl::sdk
