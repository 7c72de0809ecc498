// Sending one e-mail over SMTP (libcurl), for the e-mail alerts (alerts.h).
//
// Thread safety: send_mail may be called from any thread; each call uses its
// own connection.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "qmtl/core/result.h"

namespace qmtl::server {

struct MailMessage {
  std::string smtp_url;   // smtp://host:port or smtps://host:port
  bool starttls = false;  // require STARTTLS on smtp://
  std::string username;   // "" = no AUTH
  std::string password;
  std::string from;
  std::vector<std::string> to;
  std::string subject;  // one line
  std::string body;     // plain text; lines are sent with CRLF
  std::string date;     // RFC 5322 date, e.g. "Fri, 27 Nov 2026 10:00:00 +0000"
  std::string message_id;
};

// The message as it goes on the wire after DATA (headers, blank line, body,
// CRLF line ends, dot-stuffing left to libcurl). Header values are single
// lines: CR and LF in them become spaces.
std::string format_mail(const MailMessage& m);

// Sends `m`; kUnavailable with the server's answer (never the password) when
// it cannot be delivered within `timeout`.
Result<void> send_mail(const MailMessage& m, std::chrono::milliseconds timeout);

}  // namespace qmtl::server
