#include "qmtl/server/smtp.h"

#include <curl/curl.h>
#include <fmt/format.h>

#include <memory>

namespace qmtl::server {
namespace {

std::string one_line(std::string s) {
  for (char& c : s) {
    if (c == '\r' || c == '\n') c = ' ';
  }
  return s;
}

struct Upload {
  std::string data;
  size_t at = 0;
};

size_t read_upload(char* out, size_t size, size_t n, void* user) {
  auto* u = static_cast<Upload*>(user);
  const size_t room = size * n;
  const size_t left = u->data.size() - u->at;
  const size_t take = std::min(room, left);
  std::copy_n(u->data.data() + u->at, take, out);
  u->at += take;
  return take;
}

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

}  // namespace

std::string format_mail(const MailMessage& m) {
  std::string to;
  for (const auto& a : m.to) to += fmt::format("{}{}", to.empty() ? "" : ", ", one_line(a));
  std::string out = fmt::format(
      "Date: {}\r\nFrom: {}\r\nTo: {}\r\nSubject: {}\r\nMessage-ID: {}\r\nMIME-Version: 1.0\r\n"
      "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
      one_line(m.date), one_line(m.from), to, one_line(m.subject), one_line(m.message_id));
  // The body with CRLF line ends.
  for (size_t i = 0; i < m.body.size(); ++i) {
    if (m.body[i] == '\n' && (i == 0 || m.body[i - 1] != '\r')) out += '\r';
    out += m.body[i];
  }
  if (!out.ends_with("\r\n")) out += "\r\n";
  return out;
}

Result<void> send_mail(const MailMessage& m, std::chrono::milliseconds timeout) {
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (!curl) return make_error(ErrorCode::kUnavailable, "e-mail: libcurl could not start");
  CURL* c = curl.get();
  curl_slist* raw = nullptr;
  for (const auto& a : m.to) raw = curl_slist_append(raw, fmt::format("<{}>", a).c_str());
  std::unique_ptr<curl_slist, SlistDeleter> rcpt(raw);
  Upload upload{.data = format_mail(m)};
  const std::string from = fmt::format("<{}>", m.from);
  char error[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(c, CURLOPT_URL, m.smtp_url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
  curl_easy_setopt(c, CURLOPT_MAIL_FROM, from.c_str());
  curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt.get());
  curl_easy_setopt(c, CURLOPT_READFUNCTION, &read_upload);
  curl_easy_setopt(c, CURLOPT_READDATA, &upload);
  curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
  if (m.starttls) curl_easy_setopt(c, CURLOPT_USE_SSL, static_cast<long>(CURLUSESSL_ALL));
  if (!m.username.empty()) {
    curl_easy_setopt(c, CURLOPT_USERNAME, m.username.c_str());
    curl_easy_setopt(c, CURLOPT_PASSWORD, m.password.c_str());
  }
  const CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) {
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    return make_error(ErrorCode::kUnavailable,
                      fmt::format("e-mail to {} failed: {}{}", m.smtp_url,
                                  error[0] != '\0' ? error : curl_easy_strerror(rc),
                                  code != 0 ? fmt::format(" (SMTP {})", code) : ""));
  }
  return {};
}

}  // namespace qmtl::server
