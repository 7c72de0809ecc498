// A webhook endpoint for tests: an HTTP/1.1 listener on 127.0.0.1 that records
// each request body and answers with the next status of a script (then 200).
// Real sockets; it stands in for the outside service an alert goes to.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace qmtl::testing {

class WebhookReceiver {
 public:
  // `statuses`: the answers to the first requests, in order.
  explicit WebhookReceiver(std::vector<int> statuses = {});
  ~WebhookReceiver();
  WebhookReceiver(const WebhookReceiver&) = delete;
  WebhookReceiver& operator=(const WebhookReceiver&) = delete;

  // e.g. http://127.0.0.1:41234/hooks/secret-path
  std::string url(const std::string& path = "/hook") const;
  // Waits until at least `n` requests arrived; their bodies in order.
  std::vector<std::string> wait_for(size_t n, std::chrono::milliseconds timeout);
  size_t count();

 private:
  void serve();
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<int> statuses_;
  std::vector<std::string> bodies_;
  std::thread thread_;
};

}  // namespace qmtl::testing
