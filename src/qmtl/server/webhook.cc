#include "qmtl/server/webhook.h"

#include <curl/curl.h>

#include <algorithm>
#include <memory>

#include "qmtl/core/http_client.h"

namespace qmtl::server {
namespace {

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

// A webhook says what it did by its status; the Bot API says more in its
// body (why it refused, how long to wait). What is kept is bounded.
constexpr size_t kBodyKept = size_t{64} * 1024;
size_t keep(char* data, size_t size, size_t n, void* user) {
  auto* body = static_cast<std::string*>(user);
  body->append(data, std::min(size * n, kBodyKept - std::min(kBodyKept, body->size())));
  return size * n;
}

}  // namespace

Result<PostOutcome> post_json(const std::string& url, const std::string& body,
                              const PostOptions& options) {
  if (auto u = parse_web_url(url); !u) return propagate(u);
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (!curl) return PostOutcome{.error = "libcurl could not start"};
  CURL* c = curl.get();
  std::unique_ptr<curl_slist, SlistDeleter> headers(
      curl_slist_append(nullptr, "Content-Type: application/json"));
  char error[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_POST, 1L);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  std::string answer;
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &keep);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &answer);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(options.timeout.count()));
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
  // libcurl's defaults, stated: the peer's certificate and its name are checked.
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!options.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, options.ca_file.c_str());
  const CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) {
    return PostOutcome{
        .error = error[0] != 0 ? std::string(error) : std::string(curl_easy_strerror(rc)),
        .certificate = rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE};
  }
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  return PostOutcome{.status = static_cast<int>(status), .body = std::move(answer)};
}

}  // namespace qmtl::server
