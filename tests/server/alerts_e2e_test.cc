// Alerts through the real server: a webhook set through the API (its secret
// path never shown, logged or audited), a promotion posted as Slack-compatible
// JSON after a failed first attempt, the alert counted in /metrics, and the
// errors of a bad setting.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "qmtl/core/http_client.h"
#include "qmtl/core/json.h"
#include "qmtl/world/world_service.h"
#include "tests/support/process.h"
#include "tests/support/smtp_receiver.h"
#include "tests/support/temp_dir.h"
#include "tests/support/webhook_receiver.h"

namespace qmtl {
namespace {

using lifecycle::StrategyEvent;

class AlertsE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    {
      auto store = std::move(*store::open_store("sqlite:" + dir_.file("a.db")));
      SystemClock clock;
      world::WorldService s(*store, clock);
      ASSERT_TRUE(s.create_world({.id = "alpha"}));
      ASSERT_TRUE(s.add_policy("alpha", "gates: {promote: 'return >= 0.01'}\n", "desk"));
      ASSERT_TRUE(s.submit_strategy({.id = "up", .world = "alpha", .spec = "{}"}));
      for (auto e : {StrategyEvent::kSubmit, StrategyEvent::kValidationPassed}) {
        ASSERT_TRUE(s.apply_strategy_event("up", e, "setup", ""));
      }
      std::vector<world::PerformancePoint> pts;
      double eq = 100;
      for (int d = 30; d >= 0; --d) {
        pts.push_back({clock.now() - std::chrono::hours(24 * d), eq});
        eq *= d % 2 == 0 ? 1.004 : 1.002;
      }
      ASSERT_TRUE(s.record_performance("up", pts, {}));
    }
    server_ = std::make_unique<testing::ServerProcess>(QMTL_BINARY, dir_.file("a.db"),
                                                       dir_.file("server.log"));
  }
  HttpReply call(const std::string& method, const std::string& path, const std::string& body = "") {
    auto r = http_request(server_->url(), {.method = method, .path = path, .body = body});
    EXPECT_TRUE(r) << r.error().message;
    return r ? *r : HttpReply{};
  }
  // Waits up to 2.5 s for /metrics to show `line` (alerts are counted by the
  // dispatcher's thread, just after delivery).
  bool metrics_show(const std::string& line) {
    for (int i = 0; i < 50; ++i) {
      if (call("GET", "/metrics").body.find(line) != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }
  std::string log() {
    std::ifstream f(dir_.file("server.log"));
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::ServerProcess> server_;
};

TEST_F(AlertsE2eTest, APromotionReachesTheWebhookAfterARetry) {
  testing::WebhookReceiver hook({500});  // the first attempt fails
  const std::string secret_url = hook.url("/services/T0KEN-very-secret");
  auto set = call("PUT", "/worlds/alpha/alerts",
                  fmt::format(R"({{"webhook":"{}","events":["promote","demote"]}})", secret_url));
  ASSERT_EQ(set.status, 200) << set.body;
  EXPECT_EQ(set.body.find("T0KEN"), std::string::npos) << set.body;
  auto shown = json::parse(call("GET", "/worlds/alpha/alerts").body);
  EXPECT_EQ(shown->at("webhook").as_string().find("T0KEN"), std::string::npos);
  EXPECT_EQ(json::dump(shown->at("events")), R"(["promote","demote"])");

  auto run = call("POST", "/worlds/alpha/evaluate", R"({"apply":true})");
  ASSERT_EQ(run.status, 201) << run.body;
  const auto bodies = hook.wait_for(2, std::chrono::seconds(10));
  ASSERT_EQ(bodies.size(), 2u) << "expected a failed attempt and a retry";
  EXPECT_EQ(bodies[0], bodies[1]);
  auto alert = json::parse(bodies[1]);
  ASSERT_TRUE(alert) << bodies[1];
  EXPECT_NE(alert->at("text").as_string().find("world 'alpha': 'up' promoted to Live (run alpha-1"),
            std::string::npos)
      << bodies[1];
  EXPECT_EQ(alert->at("qmtl").at("kind").as_string(), "promote");
  EXPECT_EQ(alert->at("qmtl").at("run_id").as_string(), "alpha-1");

  // Counted, and the secret is nowhere the server writes.
  EXPECT_TRUE(
      metrics_show(R"(qmtl_alerts_total{channel="webhook",result="delivered",world="alpha"} 1)"));
  EXPECT_EQ(log().find("T0KEN"), std::string::npos);
  EXPECT_EQ(call("GET", "/worlds/alpha/audit").body.find("T0KEN"), std::string::npos);
  EXPECT_NE(log().find("answered HTTP 500 (attempt 1 of 5)"), std::string::npos);

  // Removing the hook stops the alerts.
  ASSERT_EQ(call("PUT", "/worlds/alpha/alerts", R"({"webhook":""})").status, 200);
  EXPECT_TRUE(json::parse(call("GET", "/worlds/alpha/alerts").body)->at("webhook").is_null());
}

// Webhooks over https (Slack and most relays accept nothing else), through
// libcurl: the receiver's certificate is checked. One the system does not
// trust is refused once, not retried, and said so; trusted through
// --alert-ca-file, the alert is delivered.
TEST_F(AlertsE2eTest, HttpsWebhooksCheckTheCertificate) {
  const std::string cert = dir_.file("cert.pem"), key = dir_.file("key.pem");
  auto made = testing::run_process({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048",
                                    "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj",
                                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  testing::WebhookReceiver hook({}, testing::TlsFiles{.cert = cert, .key = key});
  const std::string url = hook.url("/services/T0KEN-very-secret");
  ASSERT_TRUE(url.starts_with("https://"));
  auto set = call("PUT", "/worlds/alpha/alerts",
                  fmt::format(R"({{"webhook":"{}","events":["promote"]}})", url));
  ASSERT_EQ(set.status, 200) << set.body;
  EXPECT_NE(set.body.find(fmt::format(R"("webhook":"https://127.0.0.1:)")), std::string::npos)
      << set.body;
  EXPECT_EQ(set.body.find("T0KEN"), std::string::npos) << set.body;

  // A self-signed certificate: the TLS handshake is refused, once.
  auto run = call("POST", "/worlds/alpha/evaluate", R"({"apply":true})");
  ASSERT_EQ(run.status, 201) << run.body;
  for (int i = 0; i < 200 && log().find("gave up on an alert") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  EXPECT_NE(log().find("answered nothing: SSL certificate problem"), std::string::npos) << log();
  EXPECT_NE(log().find("(attempt 1 of 5)"), std::string::npos) << log();
  EXPECT_EQ(log().find("(attempt 2 of 5)"), std::string::npos) << "retried a certificate";
  EXPECT_EQ(hook.count(), 0u);
  EXPECT_GE(hook.handshake_failures(), 1u);
  EXPECT_EQ(log().find("T0KEN"), std::string::npos);

  // Trusted through --alert-ca-file: delivered over TLS.
  server_.reset();
  server_ = std::make_unique<testing::ServerProcess>(
      QMTL_BINARY, dir_.file("a.db"), dir_.file("server2.log"),
      std::vector<std::string>{"--no-auth", "--alert-ca-file", cert});
  ASSERT_EQ(call("POST", "/strategies/up/demote", R"({"reason":"again"})").status, 200);
  run = call("POST", "/worlds/alpha/evaluate", R"({"apply":true})");
  ASSERT_EQ(run.status, 201) << run.body;
  const auto bodies = hook.wait_for(1, std::chrono::seconds(10));
  ASSERT_EQ(bodies.size(), 1u);
  EXPECT_NE(bodies[0].find("'up' promoted to Live"), std::string::npos) << bodies[0];

  // A CA file that is not there is a usage error at start.
  auto bad = testing::run_process({QMTL_BINARY, "serve", "--no-auth", "--db",
                                   "sqlite:" + dir_.file("b.db"), "--alert-ca-file",
                                   dir_.file("missing.pem")});
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  EXPECT_NE(bad.err.find("missing.pem"), std::string::npos) << bad.err;
}

TEST_F(AlertsE2eTest, BadSettingsAreRefusedAndChangeNothing) {
  struct Case {
    std::string body;
    std::string detail;
  };
  const std::vector<Case> cases = {
      {R"({"webhook":"ftp://example.com/x"})", "webhook: expected an http:// or https:// URL"},
      {R"({"webhook":"http://127.0.0.1:9/x","events":["boom"]})",
       "alert event 'boom' is not one of promote, demote, reject, failure"},
      {R"({"webhook":"http://127.0.0.1:9/x","events":"promote"})", "field 'events' must be a list"},
      {R"({"webhook":1})", "webhook"},
      {R"({"hook":"http://x"})", "hook"},
  };
  for (const auto& c : cases) {
    auto r = call("PUT", "/worlds/alpha/alerts", c.body);
    EXPECT_EQ(r.status, 400) << c.body << " -> " << r.body;
    EXPECT_NE(r.body.find(c.detail), std::string::npos) << r.body;
  }
  EXPECT_TRUE(json::parse(call("GET", "/worlds/alpha/alerts").body)->at("webhook").is_null());
  EXPECT_EQ(call("PUT", "/worlds/nope/alerts", R"({"webhook":""})").status, 404);
}

TEST_F(AlertsE2eTest, APromotionIsMailedThroughSmtpAfterATransientError) {
  // The server must have the password in its environment; the settings name it.
  server_.reset();
  server_ = std::make_unique<testing::ServerProcess>(
      QMTL_BINARY, dir_.file("a.db"), dir_.file("server.log"),
      std::vector<std::string>{"--no-auth"},
      testing::EnvOverrides{{"QMTL_SMTP_PASS", "s3cret-smtp-pw"}});
  testing::SmtpReceiver relay(1);  // the first DATA gets 451: try again later
  const std::string settings = fmt::format(
      R"({{"smtp":"{}","from":"qmtl@desk.example","to":["ops@desk.example","risk@desk.example"],
          "username":"qmtl","password_env":"QMTL_SMTP_PASS","events":["promote","demote"]}})",
      relay.url());
  auto set = call("PUT", "/worlds/alpha/alerts/email", settings);
  ASSERT_EQ(set.status, 200) << set.body;
  auto shown = json::parse(call("GET", "/worlds/alpha/alerts/email").body);
  ASSERT_TRUE(shown);
  EXPECT_EQ(shown->at("email").at("credentials").as_string(),
            "from environment variable QMTL_SMTP_PASS");
  EXPECT_EQ(json::dump(shown->at("email").at("to")), R"(["ops@desk.example","risk@desk.example"])");

  ASSERT_EQ(call("POST", "/worlds/alpha/evaluate", R"({"apply":true})").status, 201);
  const auto mails = relay.wait_for(1, std::chrono::seconds(15));
  ASSERT_EQ(mails.size(), 1u);
  EXPECT_EQ(relay.rejected(), 1);
  const auto& m = mails[0];
  EXPECT_EQ(m.auth, std::string("\0qmtl\0s3cret-smtp-pw", 20)) << "AUTH PLAIN with the password";
  EXPECT_EQ(m.from, "<qmtl@desk.example>");
  EXPECT_EQ(m.to, (std::vector<std::string>{"<ops@desk.example>", "<risk@desk.example>"}));
  EXPECT_NE(m.data.find("Subject: [qmtl] world 'alpha': 'up' promoted to Live (run alpha-1"),
            std::string::npos)
      << m.data;
  EXPECT_NE(m.data.find("From: qmtl@desk.example\r\n"), std::string::npos) << m.data;
  EXPECT_NE(m.data.find("\r\nkind: promote\r\n"), std::string::npos) << m.data;
  EXPECT_NE(m.data.find("\r\nrun_id: alpha-1\r\n"), std::string::npos) << m.data;

  // Counted by channel; the password is nowhere the server writes or shows.
  EXPECT_TRUE(
      metrics_show(R"(qmtl_alerts_total{channel="email",result="delivered",world="alpha"} 1)"));
  EXPECT_NE(log().find("(SMTP 451)"), std::string::npos) << log();
  for (const auto& where : {log(), call("GET", "/worlds/alpha/audit").body,
                            call("GET", "/worlds/alpha/alerts/email").body}) {
    EXPECT_EQ(where.find("s3cret"), std::string::npos);
  }

  // Removed: audited, and shown as null.
  ASSERT_EQ(call("DELETE", "/worlds/alpha/alerts/email").status, 200);
  EXPECT_TRUE(json::parse(call("GET", "/worlds/alpha/alerts/email").body)->at("email").is_null());
  const auto audit = call("GET", "/worlds/alpha/audit").body;
  EXPECT_NE(audit.find("EMAIL_ALERTS_SET"), std::string::npos);
  EXPECT_NE(audit.find("EMAIL_ALERTS_REMOVED"), std::string::npos);
}

TEST_F(AlertsE2eTest, BadEmailSettingsAreRefusedWithoutEchoingSecrets) {
  struct Case {
    std::string body;
    std::string detail;
  };
  const std::string ok = R"("smtp":"smtp://127.0.0.1:25","from":"q@d.example")";
  testing::TempDir secrets;
  const std::string open_secret = testing::write_file(secrets.file("smtp-pass"), "hunter2\n");
  std::filesystem::permissions(open_secret, static_cast<std::filesystem::perms>(0644));
  const std::vector<Case> cases = {
      {R"({"smtp":"http://x","from":"q@d.example","to":["a@b.example"]})", "field 'smtp' takes"},
      {R"({"smtp":"smtp://x/path","from":"q@d.example","to":["a@b.example"]})",
       "field 'smtp' takes"},
      {"{" + ok + R"(,"to":[]})", "field 'to' takes a list of 1 to 50"},
      {"{" + ok + R"(,"to":["ops@x.example\r\nBcc: evil@x.example"]})", "is not an address"},
      {R"({"smtp":"smtp://h:25","from":"nobody","to":["a@b.example"]})", "field 'from' takes"},
      {"{" + ok + R"(,"to":["a@b.example"],"password":"hunter2"})", "'password' is not taken"},
      {"{" + ok + R"(,"to":["a@b.example"],"password_env":"A-B"})", "'password_env' takes"},
      {"{" + ok + R"(,"to":["a@b.example"],"events":["boom"]})", "is not one of promote"},
      {"{" + ok + R"(,"to":["a@b.example"],"cc":["x@y.example"]})", "cc"},
      {"", "the body must be the e-mail settings"},
      // A password file others can read is refused when set, not at the first alert.
      {"{" + ok + R"(,"to":["a@b.example"],"password_file":")" + open_secret + R"("})",
       "is open to group or others (mode 0644); a file of secrets must be private"},
  };
  for (const auto& c : cases) {
    auto r = call("PUT", "/worlds/alpha/alerts/email", c.body);
    EXPECT_EQ(r.status, 400) << c.body << " -> " << r.body;
    EXPECT_NE(r.body.find(c.detail), std::string::npos) << r.body;
    EXPECT_EQ(r.body.find("hunter2"), std::string::npos) << r.body;
  }
  EXPECT_TRUE(json::parse(call("GET", "/worlds/alpha/alerts/email").body)->at("email").is_null());
  EXPECT_EQ(call("GET", "/worlds/alpha/audit").body.find("EMAIL_ALERTS"), std::string::npos);
  EXPECT_EQ(call("PUT", "/worlds/nope/alerts/email", "{" + ok + R"(,"to":["a@b.example"]})").status,
            404);
}

// A bot token as BotFather makes them; it must appear only in the request
// path the Bot API server receives.
constexpr const char* kBotToken = "123456789:AAHs3cretTelegramBotToken_abcdefghij";

// Telegram natively: the bot's token named by the settings and read from the
// server's environment, sent only in the Bot API's path; a 429 waits as long
// as Telegram asks; a wrong token (401) is not retried.
TEST_F(AlertsE2eTest, APromotionReachesTelegramWaitingAsLongAsItAsks) {
  server_.reset();
  server_ = std::make_unique<testing::ServerProcess>(
      QMTL_BINARY, dir_.file("a.db"), dir_.file("server.log"),
      std::vector<std::string>{"--no-auth"},
      testing::EnvOverrides{{"QMTL_TELEGRAM_TOKEN", kBotToken}});
  testing::WebhookReceiver bot_api({429, 200});
  bot_api.answer_bodies(
      {R"({"ok":false,"error_code":429,"description":"Too Many Requests: retry after 1",)"
       R"("parameters":{"retry_after":1}})",
       R"({"ok":true,"result":{"message_id":7}})"});
  auto set = call("PUT", "/worlds/alpha/alerts/telegram",
                  fmt::format(R"({{"chat_id":-1001234567890,"token_env":"QMTL_TELEGRAM_TOKEN",
                                   "api":"{}","events":["promote"]}})",
                              bot_api.url("")));
  ASSERT_EQ(set.status, 200) << set.body;
  auto shown = json::parse(call("GET", "/worlds/alpha/alerts/telegram").body);
  ASSERT_TRUE(shown);
  EXPECT_EQ(shown->at("telegram").at("chat_id").as_string(), "-1001234567890");
  EXPECT_EQ(shown->at("telegram").at("credentials").as_string(),
            "token from environment variable QMTL_TELEGRAM_TOKEN");

  ASSERT_EQ(call("POST", "/worlds/alpha/evaluate", R"({"apply":true})").status, 201);
  const auto bodies = bot_api.wait_for(2, std::chrono::seconds(15));
  ASSERT_EQ(bodies.size(), 2u) << "expected a 429 and the message sent again";
  const std::string path = fmt::format("/bot{}/sendMessage", kBotToken);
  EXPECT_EQ(bot_api.paths(), (std::vector<std::string>{path, path}));
  const auto at = bot_api.arrivals();
  EXPECT_GE(at[1] - at[0], std::chrono::milliseconds(950)) << "retry_after 1 s not honoured";
  auto message = json::parse(bodies[1]);
  ASSERT_TRUE(message) << bodies[1];
  EXPECT_EQ(message->at("chat_id").as_string(), "-1001234567890");
  const std::string text(message->at("text").as_string());
  EXPECT_TRUE(text.starts_with("[qmtl] world 'alpha': 'up' promoted to Live (run alpha-1")) << text;
  EXPECT_NE(text.find("\nkind: promote\n"), std::string::npos) << text;
  EXPECT_NE(log().find("answered HTTP 429: Too Many Requests: retry after 1; asked to wait 1 s "
                       "(attempt 1 of 5)"),
            std::string::npos)
      << log();
  EXPECT_TRUE(
      metrics_show(R"(qmtl_alerts_total{channel="telegram",result="delivered",world="alpha"} 1)"));

  // A token the Bot API refuses: said once, not retried, counted as failed.
  testing::WebhookReceiver refusing({401});
  refusing.answer_bodies({R"({"ok":false,"error_code":401,"description":"Unauthorized"})"});
  ASSERT_EQ(call("PUT", "/worlds/alpha/alerts/telegram",
                 fmt::format(R"({{"chat_id":"@desk_alerts","token_env":"QMTL_TELEGRAM_TOKEN",
                                  "api":"{}","events":["promote"]}})",
                             refusing.url("/")))
                .status,
            200);
  ASSERT_EQ(call("POST", "/strategies/up/demote", R"({"reason":"again"})").status, 200);
  ASSERT_EQ(call("POST", "/worlds/alpha/evaluate", R"({"apply":true})").status, 201);
  for (int i = 0; i < 200 && log().find("gave up on a Telegram alert") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  EXPECT_NE(log().find("gave up on a Telegram alert for world 'alpha' to chat @desk_alerts"),
            std::string::npos)
      << log();
  EXPECT_NE(log().find("answered HTTP 401: Unauthorized (attempt 1 of 5)"), std::string::npos);
  EXPECT_EQ(refusing.count(), 1u) << "a refused token was tried again";
  EXPECT_TRUE(
      metrics_show(R"(qmtl_alerts_total{channel="telegram",result="failed",world="alpha"} 1)"));

  // The token is nowhere the server writes or shows.
  for (const auto& where : {log(), call("GET", "/worlds/alpha/audit").body,
                            call("GET", "/worlds/alpha/alerts/telegram").body}) {
    EXPECT_EQ(where.find("s3cretTelegram"), std::string::npos) << where;
  }
  ASSERT_EQ(call("DELETE", "/worlds/alpha/alerts/telegram").status, 200);
  EXPECT_TRUE(
      json::parse(call("GET", "/worlds/alpha/alerts/telegram").body)->at("telegram").is_null());
  const auto audit = call("GET", "/worlds/alpha/audit").body;
  EXPECT_NE(audit.find("TELEGRAM_ALERTS_SET"), std::string::npos);
  EXPECT_NE(audit.find("TELEGRAM_ALERTS_REMOVED"), std::string::npos);
}

TEST_F(AlertsE2eTest, BadTelegramSettingsAreRefusedWithoutEchoingSecrets) {
  struct Case {
    std::string body;
    std::string detail;
  };
  const std::string ok = R"("chat_id":"-100123")";
  testing::TempDir secrets;
  const std::string open_token =
      testing::write_file(secrets.file("bot-token"), std::string(kBotToken) + "\n");
  std::filesystem::permissions(open_token, static_cast<std::filesystem::perms>(0644));
  const std::vector<Case> cases = {
      {"{" + ok + R"(,"token":"hunter2-token"})", "'token' is not taken"},
      {"{" + ok + R"(,"bot_token":"hunter2-token"})", "'bot_token' is not taken"},
      {R"({"token_env":"T"})", "field 'chat_id' takes the chat's number"},
      {R"({"chat_id":"general","token_env":"T"})", "field 'chat_id' takes"},
      {R"({"chat_id":1.5,"token_env":"T"})", "field 'chat_id' takes"},
      {"{" + ok + "}", "name where the bot's token is"},
      {"{" + ok + R"(,"token_env":"T","token_file":"/etc/t"})",
       "give token_env or token_file, not both"},
      {"{" + ok + R"(,"token_env":"A-B"})", "'token_env' takes the name of an environment"},
      {"{" + ok + R"(,"token_file":"etc/t"})", "'token_file' must be an absolute path"},
      {"{" + ok + R"(,"token_env":"T","api":"ftp://x"})", "field 'api' takes"},
      {"{" + ok + R"(,"token_env":"T","api":"https://api.telegram.org/bothunter2-token"})",
       "field 'api' takes"},
      {"{" + ok + R"(,"token_env":"T","events":["boom"]})", "is not one of promote"},
      {"{" + ok + R"(,"token_env":"T","parse_mode":"HTML"})", "parse_mode"},
      {"", "the body must be the Telegram settings"},
      // A token file others can read is refused when set, not at the first alert.
      {"{" + ok + R"(,"token_file":")" + open_token + R"("})",
       "is open to group or others (mode 0644); a file of secrets must be private"},
  };
  for (const auto& c : cases) {
    auto r = call("PUT", "/worlds/alpha/alerts/telegram", c.body);
    EXPECT_EQ(r.status, 400) << c.body << " -> " << r.body;
    EXPECT_NE(r.body.find(c.detail), std::string::npos) << c.body << " -> " << r.body;
    EXPECT_EQ(r.body.find("hunter2"), std::string::npos) << r.body;
  }
  EXPECT_TRUE(
      json::parse(call("GET", "/worlds/alpha/alerts/telegram").body)->at("telegram").is_null());
  EXPECT_EQ(call("GET", "/worlds/alpha/audit").body.find("TELEGRAM_ALERTS"), std::string::npos);
  EXPECT_EQ(call("PUT", "/worlds/nope/alerts/telegram", "{" + ok + R"(,"token_env":"T"})").status,
            404);
}

}  // namespace
}  // namespace qmtl
