// A world's e-mail and Telegram alert settings (world_service.h: EmailSettings,
// TelegramSettings), kept in the world_settings table as kinds "email" and
// "telegram".
#include <fmt/format.h>

#include <algorithm>
#include <array>

#include "qmtl/core/http_client.h"
#include "qmtl/core/id.h"
#include "qmtl/core/json.h"
#include "qmtl/world/world_internal.h"
#include "qmtl/world/world_service.h"

namespace qmtl::world {
namespace {

tl::unexpected<Error> bad(std::string msg) {
  return make_error(ErrorCode::kInvalidArgument, "e-mail alerts: " + std::move(msg));
}

tl::unexpected<Error> bad_telegram(std::string msg) {
  return make_error(ErrorCode::kInvalidArgument, "telegram alerts: " + std::move(msg));
}

constexpr std::array<std::string_view, 4> kKinds{"promote", "demote", "reject", "failure"};

// Telegram's chat ids: a number (groups and channels are negative) or a
// public channel's @username (5 to 32 characters).
bool chat_id_ok(std::string_view c) {
  if (c.starts_with('@')) {
    const auto name = c.substr(1);
    return name.size() >= 5 && name.size() <= 32 &&
           std::isalpha(static_cast<unsigned char>(name[0])) &&
           std::all_of(name.begin(), name.end(), [](char ch) {
             return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_';
           });
  }
  const auto digits = c.starts_with('-') ? c.substr(1) : c;
  return !digits.empty() && digits.size() <= 20 &&
         std::all_of(digits.begin(), digits.end(),
                     [](char ch) { return std::isdigit(static_cast<unsigned char>(ch)); });
}

// http(s)://host[:port] with nothing after it (the bot's path is ours to add).
bool api_base_ok(std::string_view u) {
  const auto scheme_end = u.find("://");
  if (scheme_end == std::string_view::npos || !parse_web_url(u)) return false;
  const auto rest = u.substr(scheme_end + 3);
  return !rest.empty() && rest.find_first_of("/?#@ ") == std::string_view::npos;
}

// An address a mail header can carry as it is: user@host, no spaces, angle
// brackets, quotes or line breaks (which would let a value add headers).
bool address_ok(std::string_view a) {
  const auto at = a.find('@');
  return a.size() <= 254 && at != std::string_view::npos && at > 0 && at + 1 < a.size() &&
         a.find('@', at + 1) == std::string_view::npos &&
         std::all_of(a.begin(), a.end(), [](char c) {
           return c > ' ' && c < 127 && c != '<' && c != '>' && c != '"' && c != ',' && c != ';' &&
                  c != '\\';
         });
}

// smtp://host[:port] or smtps://host[:port], nothing after the authority.
bool smtp_url_ok(std::string_view u) {
  std::string_view rest;
  if (u.starts_with("smtp://")) {
    rest = u.substr(7);
  } else if (u.starts_with("smtps://")) {
    rest = u.substr(8);
  } else {
    return false;
  }
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  return !rest.empty() && rest.size() <= 255 && std::all_of(rest.begin(), rest.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':' ||
           c == '[' || c == ']';
  });
}

}  // namespace

Result<std::vector<std::string>> parse_alert_kinds(const boost::json::object& o) {
  std::vector<std::string> kinds;
  if (const auto* e = o.if_contains("events")) {
    if (!e->is_array()) {
      return make_error(ErrorCode::kInvalidArgument,
                        "field 'events' must be a list of promote, demote, reject, failure");
    }
    for (const auto& k : e->as_array()) {
      if (!k.is_string() || std::find(kKinds.begin(), kKinds.end(),
                                      std::string_view(k.as_string())) == kKinds.end()) {
        return make_error(ErrorCode::kInvalidArgument,
                          fmt::format("alert event {} is not one of promote, demote, reject, "
                                      "failure",
                                      json::dump(k)));
      }
      kinds.emplace_back(k.as_string());
    }
  }
  if (kinds.empty()) kinds.assign(kKinds.begin(), kKinds.end());
  return kinds;
}

Result<EmailSettings> parse_email_settings(std::string_view text) {
  auto parsed = settings_object(text, "the e-mail settings",
                                {"smtp", "starttls", "from", "to", "username", "password_env",
                                 "password_file", "events", "credentials", "updated_at"});
  if (!parsed) return bad(parsed.error().message);
  const boost::json::object& obj = *parsed;
  EmailSettings s;
  auto str = [&](std::string_view key, std::string& out) -> Result<void> {
    auto v = json::get_optional_string(obj, key);
    if (!v) return bad(v.error().message);
    if (*v) out = **v;
    return {};
  };
  for (auto [key, out] :
       {std::pair{"smtp", &s.smtp}, std::pair{"from", &s.from}, std::pair{"username", &s.username},
        std::pair{"password_env", &s.password_env}, std::pair{"password_file", &s.password_file}}) {
    if (auto r = str(key, *out); !r) return propagate(r);
  }
  if (!smtp_url_ok(s.smtp)) {
    return bad(
        fmt::format("field 'smtp' takes smtp://host:port or smtps://host:port, not '{}'", s.smtp));
  }
  if (const auto* v = obj.if_contains("starttls")) {
    if (!v->is_bool()) return bad("field 'starttls' takes true or false");
    s.starttls = v->as_bool();
  }
  if (!address_ok(s.from)) {
    return bad(
        fmt::format("field 'from' takes one address such as qmtl@desk.example, not '{}'", s.from));
  }
  const auto* to = obj.if_contains("to");
  if (to == nullptr || !to->is_array() || to->as_array().empty() || to->as_array().size() > 50) {
    return bad("field 'to' takes a list of 1 to 50 addresses");
  }
  for (const auto& a : to->as_array()) {
    if (!a.is_string() || !address_ok(a.as_string())) {
      return bad(
          fmt::format("field 'to': {} is not an address such as ops@desk.example", json::dump(a)));
    }
    s.to.emplace_back(a.as_string());
  }
  if (s.username.size() > 256 || std::any_of(s.username.begin(), s.username.end(), [](char c) {
        return static_cast<unsigned char>(c) < ' ';
      })) {
    return bad("field 'username' takes one line of at most 256 characters");
  }
  if (auto r = check_secret_reference(s.password_env, s.password_file); !r) {
    return bad(r.error().message);
  }
  auto events = parse_alert_kinds(obj);
  if (!events) return bad(events.error().message);
  s.events = std::move(*events);
  return s;
}

boost::json::object email_settings_json(const EmailSettings& s) {
  boost::json::array to(s.to.begin(), s.to.end());
  boost::json::array events(s.events.begin(), s.events.end());
  boost::json::object o{
      {"smtp", s.smtp},
      {"starttls", s.starttls},
      {"from", s.from},
      {"to", std::move(to)},
      {"username", null_if_empty(s.username)},
      {"password_env", null_if_empty(s.password_env)},
      {"password_file", null_if_empty(s.password_file)},
      {"events", std::move(events)},
      {"credentials", !s.password_env.empty()    ? "from environment variable " + s.password_env
                      : !s.password_file.empty() ? "from file " + s.password_file
                                                 : std::string("none")}};
  if (s.updated_at != TimePoint{}) o["updated_at"] = format_timestamp(s.updated_at);
  return o;
}

Result<std::optional<EmailSettings>> WorldService::set_email_alerts(std::string_view world_id,
                                                                    std::string_view doc,
                                                                    std::string_view actor) {
  return set_setting<EmailSettings>(world_id, doc, actor);
}

Result<std::optional<EmailSettings>> WorldService::get_email_alerts(std::string_view world_id) {
  return get_setting<EmailSettings>(world_id);
}

Result<TelegramSettings> parse_telegram_settings(std::string_view text) {
  auto parsed = settings_object(
      text, "the Telegram settings",
      {"chat_id", "token_env", "token_file", "api", "events", "credentials", "updated_at"});
  if (!parsed) return bad_telegram(parsed.error().message);
  const boost::json::object& obj = *parsed;
  TelegramSettings s;
  // A chat id is a number in Telegram's API; a string keeps every digit.
  if (const auto* c = obj.if_contains("chat_id"); c != nullptr && c->is_int64()) {
    s.chat_id = std::to_string(c->as_int64());
  } else if (c != nullptr && c->is_string()) {
    s.chat_id = c->as_string();
  }
  if (!chat_id_ok(s.chat_id)) {
    return bad_telegram(
        "field 'chat_id' takes the chat's number (e.g. -1001234567890 for a group or channel) "
        "or a public channel's @username");
  }
  for (auto [key, out] : {std::pair{"token_env", &s.token_env},
                          std::pair{"token_file", &s.token_file}, std::pair{"api", &s.api}}) {
    auto v = json::get_optional_string(obj, key);
    if (!v) return bad_telegram(v.error().message);
    if (*v) *out = **v;
  }
  if (s.token_env.empty() && s.token_file.empty()) {
    return bad_telegram(
        "name where the bot's token is: token_env (a variable of the server's environment) or "
        "token_file (a file only the server's user can read)");
  }
  if (auto r = check_secret_reference(s.token_env, s.token_file, "token"); !r) {
    return bad_telegram(r.error().message);
  }
  while (s.api.ends_with('/')) s.api.pop_back();
  if (!api_base_ok(s.api)) {
    // Not echoed: a token pasted into the URL would be repeated.
    return bad_telegram(
        "field 'api' takes the Bot API server as https://host[:port] without a path (default "
        "https://api.telegram.org)");
  }
  auto events = parse_alert_kinds(obj);
  if (!events) return bad_telegram(events.error().message);
  s.events = std::move(*events);
  return s;
}

boost::json::object telegram_settings_json(const TelegramSettings& s) {
  boost::json::object o{
      {"chat_id", s.chat_id},
      {"token_env", null_if_empty(s.token_env)},
      {"token_file", null_if_empty(s.token_file)},
      {"api", s.api},
      {"events", boost::json::array(s.events.begin(), s.events.end())},
      {"credentials", !s.token_env.empty() ? "token from environment variable " + s.token_env
                                           : "token from file " + s.token_file}};
  if (s.updated_at != TimePoint{}) o["updated_at"] = format_timestamp(s.updated_at);
  return o;
}

Result<std::optional<TelegramSettings>> WorldService::set_telegram_alerts(std::string_view world_id,
                                                                          std::string_view doc,
                                                                          std::string_view actor) {
  return set_setting<TelegramSettings>(world_id, doc, actor);
}

Result<std::optional<TelegramSettings>> WorldService::get_telegram_alerts(
    std::string_view world_id) {
  return get_setting<TelegramSettings>(world_id);
}

}  // namespace qmtl::world
