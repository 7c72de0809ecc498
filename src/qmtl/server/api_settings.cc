// The settings routes of a world: broker, e-mail and Telegram alerts and
// execution, one family of handlers driven by Route::setting.
#include "qmtl/server/api_internal.h"

namespace qmtl::server {

// What differs between the kinds of world settings.
struct Api::SettingFamily {
  // The answer is {"world": id, key: the settings as shown | null}.
  std::string_view key;
  // The 400 of a PUT without a body: what the body must be.
  std::string_view empty_body;
  Result<std::optional<boost::json::object>> (*get)(world::WorldService&, std::string_view world);
  // `doc` empty removes the settings.
  Result<std::optional<boost::json::object>> (*set)(world::WorldService&, std::string_view world,
                                                    std::string_view doc, std::string_view actor);
  // GET adds the status of the execution manager (validations and runners).
  bool with_runners = false;
};

namespace {

template <typename T>
Result<std::optional<boost::json::object>> shown(const Result<std::optional<T>>& r,
                                                 boost::json::object (*to_json)(const T&)) {
  if (!r) return propagate(r);
  if (!*r) return std::optional<boost::json::object>();
  return std::optional(to_json(**r));
}

}  // namespace

const Api::SettingFamily Api::kBrokerSettings{
    .key = "broker",
    .empty_body = "the body must be the broker settings (see docs/brokers.md)",
    .get = [](world::WorldService& w,
              std::string_view id) { return shown(w.get_broker(id), world::broker_settings_json); },
    .set =
        [](world::WorldService& w, std::string_view id, std::string_view doc,
           std::string_view actor) {
          return shown(w.set_broker(id, doc, actor), world::broker_settings_json);
        }};

const Api::SettingFamily Api::kEmailSettings{
    .key = "email",
    .empty_body = "the body must be the e-mail settings (see docs/api.md#alerts)",
    .get =
        [](world::WorldService& w, std::string_view id) {
          return shown(w.get_email_alerts(id), world::email_settings_json);
        },
    .set =
        [](world::WorldService& w, std::string_view id, std::string_view doc,
           std::string_view actor) {
          return shown(w.set_email_alerts(id, doc, actor), world::email_settings_json);
        }};

const Api::SettingFamily Api::kTelegramSettings{
    .key = "telegram",
    .empty_body = "the body must be the Telegram settings (see docs/api.md#alerts)",
    .get =
        [](world::WorldService& w, std::string_view id) {
          return shown(w.get_telegram_alerts(id), world::telegram_settings_json);
        },
    .set =
        [](world::WorldService& w, std::string_view id, std::string_view doc,
           std::string_view actor) {
          return shown(w.set_telegram_alerts(id, doc, actor), world::telegram_settings_json);
        }};

const Api::SettingFamily Api::kExecutionSettings{
    .key = "settings",
    .empty_body =
        "the body must be the execution settings: {\"history\": \"/abs/bars.csv\", "
        "\"feed\": \"/abs/live.csv\", ...} (see docs/api.md)",
    .get =
        [](world::WorldService& w, std::string_view id) {
          return shown(w.get_execution(id), world::execution_settings_json);
        },
    .set =
        [](world::WorldService& w, std::string_view id, std::string_view doc,
           std::string_view actor) {
          return shown(w.set_execution(id, doc, actor), world::execution_settings_json);
        },
    .with_runners = true};

namespace {

ApiResponse setting_answer(const std::string& world, std::string_view key,
                           const Result<std::optional<boost::json::object>>& r) {
  if (!r) return problem(r.error());
  return json_response(
      200, boost::json::object{{"world", world},
                               {key, *r ? boost::json::value(**r) : boost::json::value(nullptr)}});
}

}  // namespace

ApiResponse Api::get_setting(const ApiRequest&, Call& call) {
  const SettingFamily& family = *call.entry->setting;
  const std::string& id = call.segs[1];
  // An unknown world is a 404, not "no settings".
  if (auto w = worlds_.get_world(id); !w) return problem(w.error());
  auto settings = family.get(worlds_, id);
  if (!settings) return problem(settings.error());
  boost::json::object o{{"world", id}};
  o[family.key] = *settings ? boost::json::value(std::move(**settings)) : nullptr;
  if (family.with_runners) {
    auto* m = execution_.load();
    o["manager"] = m != nullptr;
    auto st = m != nullptr ? m->status(id)
                           : boost::json::object{{"validations", boost::json::array()},
                                                 {"runners", boost::json::array()}};
    o["validations"] = std::move(st["validations"]);
    o["runners"] = std::move(st["runners"]);
  }
  return json_response(200, o);
}

ApiResponse Api::put_setting(const ApiRequest& req, Call& call) {
  const SettingFamily& family = *call.entry->setting;
  const std::string& id = call.segs[1];
  if (req.body.empty()) return problem(400, family.empty_body);
  return setting_answer(id, family.key, family.set(worlds_, id, req.body, call.principal.name));
}

ApiResponse Api::delete_setting(const ApiRequest&, Call& call) {
  const SettingFamily& family = *call.entry->setting;
  const std::string& id = call.segs[1];
  return setting_answer(id, family.key, family.set(worlds_, id, "", call.principal.name));
}

}  // namespace qmtl::server
