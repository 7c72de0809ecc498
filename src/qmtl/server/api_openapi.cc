// GET /openapi.json: an OpenAPI 3.1 description of the API, generated from the
// route table (so it cannot describe a route that is not served, nor miss
// one), with each route's summary, success status and media type from the
// table below. docs/api.md stays the reference for fields and behaviour.
#include <fmt/format.h>

#include <array>
#include <cctype>

#include "qmtl/server/api_internal.h"

namespace qmtl::server {
namespace {

struct Operation {
  std::string_view route;  // "METHOD /template", as in the route table
  std::string_view summary;
  int status = 200;                                  // on success
  std::string_view media_type = "application/json";  // of the success response
};

// One entry per route; a route without one fails the OpenAPI test.
constexpr std::array kOperations{
    Operation{"GET /healthz", "Liveness and the server's clock (no token)"},
    Operation{"GET /openapi.json", "This description of the API (no token)"},
    Operation{"POST /ui/session", "Sign the web console in with a token (sets a cookie)"},
    Operation{"GET /ui/session", "Who the console is signed in as"},
    Operation{"DELETE /ui/session", "Sign the console out", 204},
    Operation{"GET /ui/{*}", "The web console (any path under /ui/)", 200, "text/html"},
    Operation{"GET /metrics", "Prometheus metrics of every world", 200, "text/plain"},
    Operation{"GET /worlds", "The worlds the token may see"},
    Operation{"POST /worlds", "Create a world, optionally with its first policy", 201},
    Operation{"GET /worlds/{id}", "One world"},
    Operation{"POST /worlds/{id}/state",
              "Change a world's state (Active, EvalOnly, Paused, "
              "Retired)"},
    Operation{"GET /worlds/{id}/policy", "The current policy version with its document"},
    Operation{"POST /worlds/{id}/policy", "Add a policy version (YAML or JSON document)", 201},
    Operation{"POST /worlds/{id}/policy/current", "Make an earlier policy version current"},
    Operation{"GET /worlds/{id}/policies", "Every policy version of the world"},
    Operation{"GET /worlds/{id}/policies/{version}", "One policy version with its document"},
    Operation{"POST /worlds/{id}/evaluate", "Evaluate the world now (and optionally apply)", 201},
    Operation{"GET /worlds/{id}/evaluations", "The world's evaluation runs, newest first"},
    Operation{"GET /worlds/{id}/evaluations/{run}", "One run with every strategy's explanation"},
    Operation{"GET /worlds/{id}/schedule", "When the world is evaluated next and was last"},
    Operation{"POST /worlds/{id}/replay",
              "What a policy would have decided over the world's "
              "history (changes nothing)"},
    Operation{"GET /worlds/{id}/alerts", "The world's alert webhook"},
    Operation{"PUT /worlds/{id}/alerts", "Set the world's alert webhook"},
    Operation{"GET /worlds/{id}/alerts/email", "The world's e-mail alert settings"},
    Operation{"PUT /worlds/{id}/alerts/email", "Set the world's e-mail alert settings"},
    Operation{"DELETE /worlds/{id}/alerts/email", "Remove the world's e-mail alert settings"},
    Operation{"GET /worlds/{id}/alerts/telegram", "The world's Telegram alert settings"},
    Operation{"PUT /worlds/{id}/alerts/telegram", "Set the world's Telegram alert settings"},
    Operation{"DELETE /worlds/{id}/alerts/telegram", "Remove the world's Telegram alert settings"},
    Operation{"GET /worlds/{id}/execution", "The world's execution settings and its jobs"},
    Operation{"PUT /worlds/{id}/execution", "Set how the server validates and runs strategies"},
    Operation{"DELETE /worlds/{id}/execution", "Remove the execution settings"},
    Operation{"GET /worlds/{id}/broker", "The world's live broker (FIX) settings"},
    Operation{"PUT /worlds/{id}/broker", "Set the world's live broker (FIX) settings"},
    Operation{"DELETE /worlds/{id}/broker", "Remove the live broker settings"},
    Operation{"GET /worlds/{id}/activation", "The world's order gates (ETag)"},
    Operation{"PUT /worlds/{id}/activation", "Set one gate by hand (If-Match)"},
    Operation{"POST /worlds/{id}/apply", "Apply an evaluation run (two-phase)"},
    Operation{"GET /worlds/{id}/audit", "The world's audit log"},
    Operation{"GET /worlds/{id}/events", "The world's event stream (server-sent events)", 200,
              "text/event-stream"},
    Operation{"GET /worlds/{id}/timeline", "Every change of state of the world's strategies"},
    Operation{"POST /strategies", "Submit a strategy (declarative, or a program) to a world", 201},
    Operation{"GET /strategies", "Strategies with their last evaluation"},
    Operation{"GET /strategies/{id}", "One strategy"},
    Operation{"POST /strategies/{id}/activate", "Bring an Inactive strategy back to DryRun"},
    Operation{"POST /strategies/{id}/deactivate", "Stop a DryRun or Live strategy"},
    Operation{"POST /strategies/{id}/archive", "Retire a strategy for good"},
    Operation{"POST /strategies/{id}/promote", "Promote a DryRun strategy to Live by hand"},
    Operation{"POST /strategies/{id}/demote", "Demote a Live strategy to DryRun by hand"},
    Operation{"POST /strategies/{id}/error", "Report a strategy's failure (runners)"},
    Operation{"POST /strategies/{id}/performance", "Post performance records (runners)"},
    Operation{"GET /strategies/{id}/performance", "Read the strategy's records back"},
    Operation{"GET /strategies/{id}/performance/last", "Where the strategy's records end"},
    Operation{"POST /strategies/{id}/handover", "Report a position hand-over (runners)"},
    Operation{"GET /strategies/{id}/validation", "The strategy's validation backtest"},
};

const Operation* operation_of(std::string_view route) {
  for (const auto& op : kOperations) {
    if (op.route == route) return &op;
  }
  return nullptr;
}

// "/ui/{*}" is any path under /ui/; OpenAPI names a parameter for each segment.
std::string openapi_path(std::string_view path) {
  std::string out(path);
  if (auto at = out.find("{*}"); at != std::string::npos) out.replace(at, 3, "{asset}");
  return out;
}

boost::json::array path_parameters(const std::string& path) {
  boost::json::array params;
  for (size_t at = path.find('{'); at != std::string::npos; at = path.find('{', at + 1)) {
    const auto end = path.find('}', at);
    const std::string name = path.substr(at + 1, end - at - 1);
    params.push_back(
        {{"name", name}, {"in", "path"}, {"required", true}, {"schema", {{"type", "string"}}}});
  }
  return params;
}

boost::json::object content(std::string_view media_type) {
  boost::json::object schema = media_type == "application/json"
                                   ? boost::json::object{{"type", "object"}}
                                   : boost::json::object{{"type", "string"}};
  return {{std::string(media_type), {{"schema", std::move(schema)}}}};
}

}  // namespace

std::optional<std::string> Api::route_summary(std::string_view route) {
  const auto* op = operation_of(route);
  if (op == nullptr) return std::nullopt;
  return std::string(op->summary);
}

boost::json::object Api::openapi() {
  boost::json::object paths;
  for (const auto& r : routes()) {
    const std::string route = fmt::format("{} {}", r.method, r.path);
    const auto* op = operation_of(route);
    const std::string path = openapi_path(r.path);
    boost::json::object o{{"operationId", route},
                          {"summary", op != nullptr ? op->summary : std::string_view()}};
    if (auto params = path_parameters(path); !params.empty()) o["parameters"] = std::move(params);
    if (r.body != Body::kNone) {
      boost::json::object body = content("application/json");
      if (r.body == Body::kPolicy) body["application/yaml"] = {{"schema", {{"type", "string"}}}};
      o["requestBody"] = {{"required", r.body == Body::kPolicy}, {"content", std::move(body)}};
    }
    const int status = op != nullptr ? op->status : 200;
    boost::json::object success{{"description", status == 204 ? "Done" : "The answer"}};
    if (status != 204) {
      success["content"] = content(op != nullptr ? op->media_type : "application/json");
    }
    boost::json::object responses{{std::to_string(status), std::move(success)}};
    responses["default"] = {
        {"description", "A refusal: what is wrong and how to fix it"},
        {"content",
         {{"application/problem+json", {{"schema", {{"$ref", "#/components/schemas/Problem"}}}}}}}};
    o["responses"] = std::move(responses);
    if (r.scope == Scope::kPublic) {
      o["security"] = boost::json::array();
    } else {
      o["x-qmtl-role"] = role_name(r.role);
    }
    std::string method(r.method);
    for (char& c : method) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    auto& item = paths[path];
    if (!item.is_object()) item.emplace_object();
    item.as_object()[method] = std::move(o);
  }
  return {
      {"openapi", "3.1.0"},
      {"info",
       {{"title", "qmtl"},
        {"version", "1"},
        {"description",
         "Which trading strategies may trade real money, by policy and with evidence. "
         "Fields and behaviour: docs/api.md. Every route but the public ones needs "
         "`Authorization: Bearer <token>` of at least the role in x-qmtl-role "
         "(viewer < operator < admin)."}}},
      {"servers", boost::json::array{{{"url", "/"}}}},
      {"security", boost::json::array{{{"bearer", boost::json::array()}}}},
      {"paths", std::move(paths)},
      {"components",
       {{"securitySchemes", {{"bearer", {{"type", "http"}, {"scheme", "bearer"}}}}},
        {"schemas",
         {{"Problem",
           {{"type", "object"},
            {"required", boost::json::array{"type", "title", "status", "detail"}},
            {"properties",
             {{"type", {{"type", "string"}}},
              {"title", {{"type", "string"}}},
              {"status", {{"type", "integer"}}},
              {"detail", {{"type", "string"}}}}}}}}}}},
  };
}

ApiResponse Api::get_openapi(const ApiRequest&, Call&) {
  // The same document every time: built once.
  static const std::string kDocument = json::dump(openapi());
  return ApiResponse{.status = 200, .content_type = "application/json", .body = kDocument};
}

std::optional<ApiResponse> Api::fast_openapi(const ApiRequest& req, Call& call) {
  return get_openapi(req, call);
}

}  // namespace qmtl::server
