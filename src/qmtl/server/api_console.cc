// The web console (docs/console.md): its page and assets under /ui/, and the
// sign-in sessions that let the browser call the API without holding a token.
#include <fmt/format.h>

#include "qmtl/server/api_internal.h"

namespace qmtl::server {
namespace console {
// Compiled in from web/ (src/qmtl/server/CMakeLists.txt).
extern const std::string_view kIndexHtml, kConsoleJs, kConsoleCss, kUplotJs, kUplotCss;
}  // namespace console

namespace {

// Only this page's own scripts, styles and API calls; no frames, no other origin.
constexpr std::string_view kContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

// `body` is shared: each asset is copied into a string once, not per request.
ApiResponse asset(std::string_view content_type, const std::shared_ptr<const std::string>& body,
                  bool cache) {
  ApiResponse r{.status = 200, .content_type = std::string(content_type), .shared_body = body};
  r.headers.emplace_back("Content-Security-Policy", kContentSecurityPolicy);
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.headers.emplace_back("Referrer-Policy", "no-referrer");
  r.headers.emplace_back("X-Frame-Options", "DENY");
  r.headers.emplace_back("Cache-Control", cache ? "max-age=300" : "no-cache");
  return r;
}

std::string session_cookie(std::string_view value, int64_t max_age_s) {
  return fmt::format("{}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}", kSessionCookie, value,
                     max_age_s);
}

boost::json::object principal_json(const Principal& p) {
  boost::json::object o{{"name", p.name}, {"role", role_name(p.role)}};
  if (p.worlds) {
    boost::json::array w;
    for (const auto& x : *p.worlds) w.emplace_back(x);
    o["worlds"] = std::move(w);
  } else {
    o["worlds"] = nullptr;
  }
  return o;
}

}  // namespace

std::optional<ApiResponse> Api::fast_console(const ApiRequest& req, Call& call) {
  return get_console(req, call);
}

ApiResponse Api::get_console(const ApiRequest&, Call& call) {
  static const auto kIndex = std::make_shared<const std::string>(console::kIndexHtml);
  static const auto kJs = std::make_shared<const std::string>(console::kConsoleJs);
  static const auto kCss = std::make_shared<const std::string>(console::kConsoleCss);
  static const auto kChartJs = std::make_shared<const std::string>(console::kUplotJs);
  static const auto kChartCss = std::make_shared<const std::string>(console::kUplotCss);
  // /ui/assets/<name> is a file of the app; every other /ui path is the app,
  // which shows the page its address names.
  if (call.segs.size() >= 2 && call.segs[1] == "assets") {
    const std::string name = call.segs.size() == 3 ? call.segs[2] : "";
    if (name == "console.js") return asset("text/javascript; charset=utf-8", kJs, true);
    if (name == "console.css") return asset("text/css; charset=utf-8", kCss, true);
    if (name == "uPlot.iife.min.js") return asset("text/javascript; charset=utf-8", kChartJs, true);
    if (name == "uPlot.min.css") return asset("text/css; charset=utf-8", kChartCss, true);
    return problem(404, fmt::format("the console has no asset '{}'", name));
  }
  return asset("text/html; charset=utf-8", kIndex, false);
}

ApiResponse Api::open_session(const ApiRequest& req, Call&) {
  auto obj = body_object(req, {"token"}, "the sign-in");
  if (!obj) return problem(obj.error());
  auto token = json::get_string(*obj, "token");
  if (!token) return problem(token.error());
  if (options_.tokens == nullptr) {
    // --no-auth: everyone is the admin "local" already; no session is needed.
    return json_response(200, principal_json({.name = "local", .role = Role::kAdmin}));
  }
  auto p = options_.tokens->find(*token);
  if (!p) return problem(401, "the token is not valid; ask an admin for a token");
  const std::string id = sessions_.open(*p);
  ApiResponse r = json_response(200, principal_json(*p));
  r.headers.emplace_back(
      "Set-Cookie",
      session_cookie(id,
                     std::chrono::duration_cast<std::chrono::seconds>(sessions_.idle()).count()));
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

ApiResponse Api::get_session(const ApiRequest&, Call& call) {
  return json_response(200, principal_json(call.principal));
}

ApiResponse Api::close_session(const ApiRequest& req, Call&) {
  if (auto id = cookie_value(req.cookie, kSessionCookie); !id.empty()) sessions_.close(id);
  ApiResponse r{.status = 204, .content_type = "application/json"};
  r.headers.emplace_back("Set-Cookie", session_cookie("", 0));
  return r;
}

}  // namespace qmtl::server
