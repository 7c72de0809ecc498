// A world's e-mail alert settings (world_service.h: EmailSettings), kept in the
// world_settings table as kind "email".
#include <fmt/format.h>

#include <algorithm>
#include <array>

#include "qmtl/core/id.h"
#include "qmtl/core/json.h"
#include "qmtl/world/world_internal.h"
#include "qmtl/world/world_service.h"

namespace qmtl::world {
namespace {

tl::unexpected<Error> bad(std::string msg) {
  return make_error(ErrorCode::kInvalidArgument, "e-mail alerts: " + std::move(msg));
}

constexpr std::array<std::string_view, 4> kKinds{"promote", "demote", "reject", "failure"};

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

Result<EmailSettings> parse_email_settings(std::string_view text) {
  auto doc = json::parse(text);
  if (!doc) return bad(doc.error().message);
  auto o = json::as_object(*doc, "the e-mail settings");
  if (!o) return bad(o.error().message);
  auto cleaned = without_secrets(**o);
  if (!cleaned) return bad(cleaned.error().message);
  const boost::json::object& obj = *cleaned;
  if (auto r = json::check_keys(obj,
                                {"smtp", "starttls", "from", "to", "username", "password_env",
                                 "password_file", "events", "credentials", "updated_at"},
                                "the e-mail settings");
      !r) {
    return bad(r.error().message);
  }
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
  if (const auto* e = obj.if_contains("events")) {
    if (!e->is_array())
      return bad("field 'events' must be a list of promote, demote, reject, failure");
    for (const auto& k : e->as_array()) {
      if (!k.is_string() || std::find(kKinds.begin(), kKinds.end(),
                                      std::string_view(k.as_string())) == kKinds.end()) {
        return bad(fmt::format("alert event {} is not one of promote, demote, reject, failure",
                               json::dump(k)));
      }
      s.events.emplace_back(k.as_string());
    }
  }
  if (s.events.empty()) s.events.assign(kKinds.begin(), kKinds.end());
  return s;
}

boost::json::object email_settings_json(const EmailSettings& s) {
  auto opt = [](const std::string& v) {
    return v.empty() ? boost::json::value(nullptr) : boost::json::value(v);
  };
  boost::json::array to(s.to.begin(), s.to.end());
  boost::json::array events(s.events.begin(), s.events.end());
  boost::json::object o{
      {"smtp", s.smtp},
      {"starttls", s.starttls},
      {"from", s.from},
      {"to", std::move(to)},
      {"username", opt(s.username)},
      {"password_env", opt(s.password_env)},
      {"password_file", opt(s.password_file)},
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

}  // namespace qmtl::world
