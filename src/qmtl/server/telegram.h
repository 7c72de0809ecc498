// A world's alerts as Telegram messages: one call of the Bot API's sendMessage
// (POST {api}/bot<token>/sendMessage, JSON {"chat_id", "text"}) through
// post_json (webhook.h), so https certificates are checked the same way.
//
// The bot's token is a credential: it travels only in the request's path and
// is never part of what this returns (a message naming the failure).
//
// Thread safety: send_telegram may be called from any thread.
#pragma once

#include <chrono>
#include <string>

#include "qmtl/server/webhook.h"

namespace qmtl::server {

struct TelegramMessage {
  std::string api;  // https://api.telegram.org, or another Bot API server
  std::string token;
  std::string chat_id;
  std::string text;  // plain text; cut to Telegram's 4,096 characters
};

struct TelegramOutcome {
  bool delivered = false;
  // Trying again cannot help: the token or chat is wrong, the bot was
  // removed from the chat, the certificate does not verify.
  bool permanent = false;
  // Telegram asked to wait this long before the next message (HTTP 429).
  std::chrono::seconds retry_after{0};
  // For the log: "HTTP 403: Forbidden: bot was kicked from the group chat",
  // "nothing: Connection refused". Never holds the token.
  std::string said;
};

TelegramOutcome send_telegram(const TelegramMessage& m, const PostOptions& options);

// `text` cut to at most 4,096 bytes (so at most Telegram's 4,096 characters)
// on a character boundary, ending in "…" when cut.
std::string fit_telegram_text(std::string text);

}  // namespace qmtl::server
