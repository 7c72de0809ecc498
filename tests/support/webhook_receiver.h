// A webhook endpoint for tests: an HTTP/1.1 listener on 127.0.0.1 that records
// each request body and answers with the next status of a script (then 200).
// Real sockets; it stands in for the outside service an alert goes to. With
// a certificate and key it speaks https (OpenSSL), as Slack and most relays do.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace qmtl::testing {

// PEM files of the receiver's certificate and private key.
struct TlsFiles {
  std::string cert, key;
};

class WebhookReceiver {
 public:
  // `statuses`: the answers to the first requests, in order. With `tls`, https.
  explicit WebhookReceiver(std::vector<int> statuses = {}, std::optional<TlsFiles> tls = {});
  ~WebhookReceiver();
  WebhookReceiver(const WebhookReceiver&) = delete;
  WebhookReceiver& operator=(const WebhookReceiver&) = delete;

  // e.g. http://127.0.0.1:41234/hooks/secret-path (https:// with TLS)
  std::string url(const std::string& path = "/hook") const;
  // Connections whose TLS handshake failed (the client refused the certificate).
  size_t handshake_failures();
  // Waits until at least `n` requests arrived; their bodies in order.
  std::vector<std::string> wait_for(size_t n, std::chrono::milliseconds timeout);
  size_t count();
  // The requests' paths (as sent: /bot<token>/sendMessage), in order.
  std::vector<std::string> paths();
  // When each request arrived, in order.
  std::vector<std::chrono::steady_clock::time_point> arrivals();
  // The bodies of the answers to the first requests (paired with `statuses`;
  // empty after them). Call before the requests.
  void answer_bodies(std::vector<std::string> bodies);

 private:
  void serve();
  // One request on `fd` (after the handshake, with TLS): its head and body,
  // and our answer.
  void exchange(int fd, void* ssl);
  int listen_fd_ = -1;
  void* tls_ctx_ = nullptr;  // SSL_CTX*, or null for plain http
  size_t handshake_failures_ = 0;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<int> statuses_;
  std::vector<std::string> bodies_;
  std::vector<std::string> paths_;
  std::vector<std::chrono::steady_clock::time_point> arrivals_;
  std::deque<std::string> answers_;
  std::thread thread_;
};

}  // namespace qmtl::testing
