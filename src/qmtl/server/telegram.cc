#include "qmtl/server/telegram.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>

#include "qmtl/core/json.h"

namespace qmtl::server {
namespace {

constexpr size_t kMaxText = 4096;

// BotFather's tokens are <bot id>:<35 letters, digits, - or _>; anything else
// would change the request's path.
bool token_ok(std::string_view t) {
  const auto colon = t.find(':');
  return colon != std::string_view::npos && colon > 0 && colon + 1 < t.size() && t.size() <= 256 &&
         std::all_of(t.begin(), t.begin() + static_cast<std::ptrdiff_t>(colon),
                     [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }) &&
         std::all_of(t.begin() + static_cast<std::ptrdiff_t>(colon) + 1, t.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
         });
}

// What a Bot API error says: {"ok": false, "error_code", "description",
// "parameters": {"retry_after"}}. Missing parts stay empty.
struct ApiError {
  std::string description;
  std::chrono::seconds retry_after{0};
};
ApiError api_error(const std::string& body) {
  ApiError e;
  auto doc = json::parse(body);
  if (!doc || !doc->is_object()) return e;
  const auto& o = doc->as_object();
  if (const auto* d = o.if_contains("description"); d != nullptr && d->is_string()) {
    e.description = std::string(d->as_string()).substr(0, 300);
  }
  if (const auto* p = o.if_contains("parameters"); p != nullptr && p->is_object()) {
    if (const auto* r = p->as_object().if_contains("retry_after"); r != nullptr && r->is_int64()) {
      e.retry_after = std::chrono::seconds(std::clamp<int64_t>(r->as_int64(), 0, 86400));
    }
  }
  return e;
}

void scrub(std::string& s, const std::string& secret) {
  for (auto at = s.find(secret); !secret.empty() && at != std::string::npos;
       at = s.find(secret, at)) {
    s.replace(at, secret.size(), "<token>");
  }
}

}  // namespace

std::string fit_telegram_text(std::string text) {
  if (text.size() <= kMaxText) return text;
  const std::string_view ellipsis = "\u2026";
  size_t cut = kMaxText - ellipsis.size();
  // Back up over continuation bytes (10xxxxxx) to the start of a character.
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  text.resize(cut);
  text += ellipsis;
  return text;
}

TelegramOutcome send_telegram(const TelegramMessage& m, const PostOptions& options) {
  TelegramOutcome out;
  if (!token_ok(m.token)) {
    out.permanent = true;
    out.said = "nothing: the token is not a bot token (<digits>:<letters, digits, - or _>)";
    return out;
  }
  const boost::json::object body{{"chat_id", m.chat_id},
                                 {"text", fit_telegram_text(m.text)},
                                 {"disable_web_page_preview", true}};
  auto reply =
      post_json(fmt::format("{}/bot{}/sendMessage", m.api, m.token), json::dump(body), options);
  if (!reply) {
    out.permanent = true;
    out.said = "nothing: " + reply.error().message;
  } else if (reply->status >= 200 && reply->status < 300) {
    out.delivered = true;
    out.said = fmt::format("HTTP {}", reply->status);
  } else if (reply->status == 0) {
    out.permanent = reply->certificate;
    out.said = "nothing: " + reply->error;
  } else {
    const ApiError e = api_error(reply->body);
    out.retry_after = reply->status == 429 ? e.retry_after : std::chrono::seconds(0);
    // 400 (no such chat), 401 and 404 (a wrong token), 403 (the bot was
    // removed): not for trying again. 408, 429 and 5xx pass.
    out.permanent =
        reply->status >= 400 && reply->status < 500 && reply->status != 408 && reply->status != 429;
    out.said = e.description.empty() ? fmt::format("HTTP {}", reply->status)
                                     : fmt::format("HTTP {}: {}", reply->status, e.description);
  }
  scrub(out.said, m.token);
  return out;
}

}  // namespace qmtl::server
