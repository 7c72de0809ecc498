// An SMTP server for tests: a listener on 127.0.0.1 that speaks enough ESMTP
// (EHLO, AUTH PLAIN, MAIL, RCPT, DATA, QUIT) to take mail from libcurl, and
// records each message. Real sockets; it stands in for the desk's mail relay.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace qmtl::testing {

class SmtpReceiver {
 public:
  struct Mail {
    std::string auth;  // the decoded AUTH PLAIN response ("\0user\0password"), "" if none
    std::string from;  // MAIL FROM:<...> as sent
    std::vector<std::string> to;
    std::string data;  // headers and body, CRLF line ends, without the final "."
  };
  // The first `fail_first` DATA commands are answered 451 (a transient error).
  explicit SmtpReceiver(int fail_first = 0);
  ~SmtpReceiver();
  SmtpReceiver(const SmtpReceiver&) = delete;
  SmtpReceiver& operator=(const SmtpReceiver&) = delete;

  std::string url() const;  // smtp://127.0.0.1:<port>
  // Waits until at least `n` messages arrived; all of them in order.
  std::vector<Mail> wait_for(size_t n, std::chrono::milliseconds timeout);
  int rejected() const { return rejected_.load(); }

 private:
  void serve();
  void session(int fd);
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<int> fail_first_;
  std::atomic<int> rejected_{0};
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Mail> mails_;
  std::thread thread_;
};

}  // namespace qmtl::testing
