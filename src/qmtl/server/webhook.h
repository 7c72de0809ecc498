// Posting JSON to an outside service over http or https (libcurl), for the
// alerts (alerts.h): certificates are checked against the system's trusted
// authorities, or against `ca_file` when given (a private CA).
//
// Thread safety: post_json may be called from any thread; each call uses its
// own connection.
#pragma once

#include <chrono>
#include <string>

#include "qmtl/core/result.h"

namespace qmtl::server {

struct PostOptions {
  std::chrono::milliseconds timeout{5000};
  std::string ca_file;  // PEM bundle trusted instead of the system's; "" = the system's
};

// What the service answered: its HTTP status, or why there was no answer.
struct PostOutcome {
  int status = 0;            // 0: no answer
  std::string error;         // why there was no answer (curl's words; never the URL's path)
  bool certificate = false;  // the answer was refused for its certificate (do not retry)
  std::string body;          // the answer's body, its first 64 KiB
};

// POSTs `body` (application/json) to `url` (http:// or https://; redirects
// are not followed). Errors only for a URL that is not http(s).
Result<PostOutcome> post_json(const std::string& url, const std::string& body,
                              const PostOptions& options);

}  // namespace qmtl::server
