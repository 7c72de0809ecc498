// Every `qmtl world` and `qmtl strategy` command, run as the real binary against
// a real server with tokens: output shape, JSON fields, exit codes and the
// messages of the error cases.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "qmtl/core/json.h"
#include "qmtl/world/world_service.h"
#include "tests/support/browser.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace qmtl {
namespace {

using lifecycle::StrategyEvent;
using testing::EnvOverrides;
using testing::ProcessResult;

const std::string kAdmin = "cli-admin-secret-0123456789";
const std::string kViewer = "cli-viewer-secret-0123456789";

class CliCommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    seed();
    testing::write_private_file(
        dir_.file("tokens"),
        fmt::format("admin admin token:{}\nwatcher viewer token:{}\n", kAdmin, kViewer));
    server_ = std::make_unique<testing::ServerProcess>(
        QMTL_BINARY, dir_.file("cli.db"), dir_.file("server.log"),
        std::vector<std::string>{"--token-file", dir_.file("tokens")});
    testing::write_file(dir_.file("policy.yml"),
                        "gates: {promote: 'return >= 0.03', demote: 'return < 0'}\n"
                        "evaluation: {window: 2w, every: 1d}\n");
  }

  // World alpha: up (DryRun, rising), down and steady (Live; falling, rising),
  // each with 31 daily equity points.
  void seed() {
    auto store = std::move(*store::open_store(fmt::format("sqlite:{}", dir_.file("cli.db"))));
    SystemClock clock;
    world::WorldService s(*store, clock);
    ASSERT_TRUE(s.create_world({.id = "alpha"}));
    for (const auto& [id, daily, live] : std::vector<std::tuple<std::string, double, bool>>{
             {"up", 0.003, false}, {"down", -0.003, true}, {"steady", 0.003, true}}) {
      ASSERT_TRUE(s.submit_strategy({.id = id, .world = "alpha", .spec = "{}"}));
      ASSERT_TRUE(s.apply_strategy_event(id, StrategyEvent::kSubmit, "setup", ""));
      ASSERT_TRUE(s.apply_strategy_event(id, StrategyEvent::kValidationPassed, "setup", ""));
      if (live) {
        ASSERT_TRUE(s.apply_strategy_event(id, StrategyEvent::kPromote, "setup", ""));
      }
      std::vector<world::PerformancePoint> pts;
      double eq = 100;
      for (int d = 30; d >= 0; --d) {
        pts.push_back({clock.now() - std::chrono::hours(24 * d), eq});
        eq *= 1 + daily + (d % 2 == 0 ? 0.001 : -0.001);
      }
      ASSERT_TRUE(s.record_performance(id, pts, {}));
    }
  }

  // `qmtl args...` with the admin token unless `env` says otherwise.
  ProcessResult qmtl(std::vector<std::string> args, EnvOverrides env = {}) {
    std::vector<std::string> argv{QMTL_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    env.try_emplace("QMTL_GATEWAY_URL", server_->url());
    env.try_emplace("QMTL_TOKEN", kAdmin);
    env.try_emplace("QMTL_CONFIG", dir_.file("no-config.yml"));
    return testing::run_process(argv, env);
  }
  static bool has(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
  }
  boost::json::value json_of(std::vector<std::string> args) {
    args.insert(args.begin(), {"--output", "json"});
    auto r = qmtl(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    auto doc = json::parse(r.out);
    EXPECT_TRUE(doc) << r.out;
    return doc ? *doc : boost::json::value();
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::ServerProcess> server_;
};

TEST_F(CliCommandsTest, WorldReportIsOneFileWithTheTimelineAndTheLiveEquity) {
  const std::string out = dir_.file("alpha.html");
  auto r = qmtl({"world", "report", "alpha", "--out", out}, {{"QMTL_TOKEN", kViewer}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(has(r.out, "(3 strategies, 2 live, 3 lanes)")) << r.out;
  std::ifstream f(out);
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string html = ss.str();
  EXPECT_TRUE(has(html, "<title>World alpha</title>"));
  EXPECT_TRUE(has(html, "Promotion timeline"));
  EXPECT_TRUE(has(html, "data-state=\"Live\""));
  EXPECT_TRUE(has(html, "data-state=\"DryRun\""));
  EXPECT_TRUE(has(html, "<td>steady</td><td>Live</td>"));
  EXPECT_TRUE(has(html, "VALIDATION_PASSED"));
  const std::string status = testing::report_status(
      testing::rendered_dom(QMTL_CHROMIUM, "file://" + out, dir_.file("chromium")));
  // One chart: the equity of down and steady, the two Live strategies.
  EXPECT_TRUE(has(status, "data-charts=\"1\"")) << status;
  EXPECT_TRUE(has(status, "data-series=\"2\"")) << status;
  EXPECT_FALSE(has(status, "data-errors")) << status;

  auto missing = qmtl({"world", "report", "nope", "--out", dir_.file("nope.html")});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_TRUE(has(missing.err, "world 'nope'")) << missing.err;
}

TEST_F(CliCommandsTest, PolicyCommands) {
  auto set = qmtl({"world", "policy", "set", "alpha", "--policy-file", dir_.file("policy.yml")});
  ASSERT_EQ(set.exit_code, 0) << set.err;
  EXPECT_TRUE(has(set.out, "world 'alpha' now uses policy version 1 (sha256 ")) << set.out;
  ASSERT_EQ(
      qmtl({"world", "policy", "set", "alpha", "--policy-file", dir_.file("policy.yml")}).exit_code,
      0);
  auto history = qmtl({"world", "policy", "history", "alpha"});
  EXPECT_TRUE(has(history.out, "VERSION  CURRENT  CREATED")) << history.out;
  EXPECT_TRUE(has(history.out, "\n2        *")) << history.out;
  auto show = qmtl({"world", "policy", "show", "alpha", "--version", "1"});
  EXPECT_TRUE(has(show.out, "# world alpha, policy version 1, created")) << show.out;
  EXPECT_TRUE(has(show.out, "return >= 0.03")) << show.out;
  auto rollback = qmtl({"world", "policy", "rollback", "alpha", "--version", "1", "--reason", "x"});
  EXPECT_EQ(rollback.exit_code, 0) << rollback.err;
  EXPECT_EQ(json_of({"world", "status", "alpha"}).at("policy_version").as_int64(), 1);
  auto versions = json_of({"world", "policy", "history", "alpha"});
  EXPECT_EQ(versions.at("current").as_int64(), 1);
  EXPECT_EQ(versions.at("versions").as_array().size(), 2u);
  // A bad file is caught locally, named with line and column, and changes nothing.
  testing::write_file(dir_.file("bad.yml"), "gates:\n  promote: 'sharpe >'\n");
  auto bad = qmtl({"world", "policy", "set", "alpha", "--policy-file", dir_.file("bad.yml")});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_TRUE(has(bad.err, dir_.file("bad.yml") + ":2:")) << bad.err;
  EXPECT_EQ(json_of({"world", "policy", "history", "alpha"}).at("versions").as_array().size(), 2u);
  EXPECT_EQ(qmtl({"world", "policy", "rollback", "alpha", "--version", "9"}).exit_code, 1);
}

TEST_F(CliCommandsTest, EvaluateExplainActivateAndAudit) {
  ASSERT_EQ(
      qmtl({"world", "policy", "set", "alpha", "--policy-file", dir_.file("policy.yml")}).exit_code,
      0);
  auto dry = qmtl({"world", "evaluate", "alpha", "--dry-run"});
  ASSERT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_TRUE(has(dry.out, "STRATEGY  STATE   DECISION")) << dry.out;
  EXPECT_TRUE(has(dry.out, "dry run, nothing applied: would promote up; would demote down"))
      << dry.out;
  EXPECT_EQ(json_of({"strategy", "status", "up"}).at("state").as_string(), "DryRun");

  auto real = qmtl({"world", "evaluate", "alpha"});
  ASSERT_EQ(real.exit_code, 0) << real.err;
  EXPECT_TRUE(has(real.out, "applied: promoted up; demoted down")) << real.out;
  auto up = json_of({"strategy", "status", "up"});
  EXPECT_EQ(up.at("state").as_string(), "Live");
  EXPECT_EQ(up.at("effective_mode").as_string(), "live");

  // The lists carry the evidence: each world's policy in brief and last
  // evaluation, each strategy's decision, rank, score and key KPIs.
  auto worlds = qmtl({"world", "list"});
  ASSERT_EQ(worlds.exit_code, 0) << worlds.err;
  EXPECT_TRUE(has(worlds.out,
                  "ID     NAME   STATE   POLICY  TOP_K  CORRELATION  SCHEDULE  LAST "
                  "RUN  AT"))
      << worlds.out;
  EXPECT_TRUE(has(worlds.out,
                  "alpha  alpha  Active  v1      -      -            every 1d  "
                  "alpha-2"))
      << worlds.out;
  EXPECT_TRUE(has(worlds.out,
                  "alpha: promote when return >= 0.03; demote when return < 0; "
                  "score sharpe; window 2w"))
      << worlds.out;
  const auto wj = json_of({"world", "list"});
  const auto& alpha = wj.at("worlds").at(0);
  EXPECT_EQ(alpha.at("policy").at("promote").as_string(), "return >= 0.03");
  EXPECT_EQ(alpha.at("policy").at("schedule").as_string(), "every 1d");
  EXPECT_TRUE(alpha.at("policy").at("top_k").is_null());
  EXPECT_EQ(alpha.at("last_evaluation").at("run").as_string(), "alpha-2");
  EXPECT_EQ(alpha.at("last_evaluation").at("decisions").at("PROMOTE").as_int64(), 1);
  // By rank: steady and up score the same; steady was promoted first.
  EXPECT_EQ(json::dump(alpha.at("last_evaluation").at("live")), R"(["steady","up"])");
  auto strategies = qmtl({"strategy", "list", "--world", "alpha"});
  EXPECT_TRUE(has(strategies.out, "DECISION  RANK  SCORE  RETURN   SHARPE")) << strategies.out;
  EXPECT_TRUE(has(strategies.out, "live   PROMOTE   2     45.89  0.04282")) << strategies.out;
  EXPECT_TRUE(has(strategies.out, "DEMOTE    -     -      -0.0")) << strategies.out;
  const auto sj = json_of({"strategy", "list", "--world", "alpha"});
  for (const auto& x : sj.at("strategies").as_array()) {
    const auto& ev = x.at("evaluation");
    EXPECT_EQ(ev.at("run").as_string(), "alpha-2");
    EXPECT_TRUE(ev.at("metrics").at("return").is_double());
    if (x.at("id") == "up") {
      EXPECT_EQ(ev.at("decision").as_string(), "PROMOTE");
      EXPECT_EQ(ev.at("rank").as_int64(), 2);
      EXPECT_GT(ev.at("score").as_double(), 0);
    }
  }

  auto runs = qmtl({"world", "evaluations", "alpha"});
  EXPECT_TRUE(has(runs.out, "RUN      STARTED")) << runs.out;
  EXPECT_TRUE(has(runs.out, "alpha-2")) << runs.out;
  auto explain = qmtl({"world", "evaluations", "alpha", "--run", "alpha-2"});
  ASSERT_EQ(explain.exit_code, 0) << explain.err;
  EXPECT_TRUE(has(explain.out, "up (promote gate):")) << explain.out;
  EXPECT_TRUE(has(explain.out, "return >= 0.03")) << explain.out;
  EXPECT_TRUE(has(explain.out, "  metrics: ")) << explain.out;
  auto run = json_of({"world", "evaluations", "alpha", "--run", "alpha-2"});
  EXPECT_EQ(run.at("strategies").at("up").at("decision").as_string(), "PROMOTE");
  EXPECT_TRUE(run.at("strategies").at("up").at("clauses").is_array());
  EXPECT_EQ(qmtl({"world", "evaluations", "alpha", "--run", "alpha-9"}).exit_code, 1);

  // Closing one side of a Live strategy: it stays Live and no evaluation
  // reopens the side, so there is nothing to warn about.
  auto close = qmtl({"world", "activation", "set", "alpha", "--strategy", "steady", "--side",
                     "long", "--active", "false", "--reason", "risk check"});
  ASSERT_EQ(close.exit_code, 0) << close.err;
  EXPECT_TRUE(has(close.out, "closed steady/long in world 'alpha'")) << close.out;
  EXPECT_TRUE(has(close.out, "next evaluation (")) << close.out;
  EXPECT_TRUE(has(close.out, "): HOLD - demote gate is false")) << close.out;
  EXPECT_TRUE(close.err.empty()) << close.err;
  // Closing its other side demotes it; the policy would promote it again at
  // the next evaluation, and the warning says so with the reasons.
  auto last = qmtl({"world", "activation", "set", "alpha", "--strategy", "steady", "--side",
                    "short", "--active", "false", "--reason", "stop it"});
  ASSERT_EQ(last.exit_code, 0) << last.err;
  EXPECT_TRUE(has(last.out, "strategy 'steady' is now DryRun (alpha-m")) << last.out;
  EXPECT_TRUE(has(last.err, "qmtl: warning: the next evaluation (due 20")) << last.err;
  EXPECT_TRUE(has(last.err, "would promote 'steady' again: promote gate passed")) << last.err;
  // Opening a gate of a Live strategy the policy keeps: no warning.
  auto open = qmtl({"--output", "json", "world", "activation", "set", "alpha", "--strategy", "up",
                    "--side", "long", "--active", "true"});
  ASSERT_EQ(open.exit_code, 0) << open.err;
  EXPECT_TRUE(open.err.empty()) << open.err;
  EXPECT_TRUE(json::parse(open.out)->at("warning").is_null());
  EXPECT_EQ(json::parse(open.out)->at("next_evaluation").at("decision").as_string(), "HOLD");
  EXPECT_EQ(qmtl({"world", "activation", "set", "alpha", "--strategy", "up", "--side", "up",
                  "--active", "true"})
                .exit_code,
            2);

  auto audit = qmtl({"world", "audit", "alpha", "--since", "1h"});
  ASSERT_EQ(audit.exit_code, 0) << audit.err;
  EXPECT_TRUE(has(audit.out, "SEQ  AT")) << audit.out;
  EXPECT_TRUE(has(audit.out, "PROMOTE")) << audit.out;
  EXPECT_TRUE(has(audit.out, "risk check")) << audit.out;
  auto all = json_of({"world", "audit", "alpha"});
  EXPECT_GT(all.at("records").as_array().size(), 10u);
  auto later = json_of({"world", "audit", "alpha", "--since", "2099-01-01T00:00:00Z"});
  EXPECT_TRUE(later.at("records").as_array().empty());
  EXPECT_EQ(qmtl({"world", "audit", "alpha", "--since", "last tuesday"}).exit_code, 2);
}

TEST_F(CliCommandsTest, StrategyCommandsAndWorldState) {
  testing::write_file(dir_.file("fresh.yml"),
                      "id: fresh\ninputs: {close: {interval: 1d}}\n"
                      "nodes:\n  fast: {indicator: sma, input: close, n: 20}\n"
                      "orders: {signal: fast, symbol: X, weight: 1}\n");
  auto submit = qmtl({"strategy", "submit", dir_.file("fresh.yml"), "--world", "alpha"});
  ASSERT_EQ(submit.exit_code, 0) << submit.err;
  EXPECT_TRUE(has(submit.out, "submitted strategy 'fresh' to world 'alpha' (state Submitted)"));
  auto fresh = json_of({"strategy", "status", "fresh"});
  for (const char* f : {"id", "world", "state", "state_since", "effective_mode", "spec"}) {
    EXPECT_TRUE(fresh.as_object().contains(f)) << f;
  }
  EXPECT_EQ(fresh.at("spec").at("nodes").at("fast").at("n").as_int64(), 20);
  EXPECT_EQ(fresh.at("spec").at("inputs").at("close").at("interval").as_string(), "1d");
  // A spec the runner could not build is refused before it reaches the server.
  testing::write_file(dir_.file("nonsense.yml"), "inputs: {close: {interval: 1d}}\n");
  auto nonsense = qmtl({"strategy", "submit", dir_.file("nonsense.yml"), "--world", "alpha"});
  EXPECT_EQ(nonsense.exit_code, 2);
  EXPECT_TRUE(has(nonsense.err, "nonsense.yml: orders is required")) << nonsense.err;
  testing::write_file(dir_.file("bad.yml"), "nodes: [1, 2\n");
  auto bad = qmtl({"strategy", "submit", dir_.file("bad.yml"), "--world", "alpha"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_TRUE(has(bad.err, dir_.file("bad.yml") + ":")) << bad.err;

  auto list = qmtl({"strategy", "list", "--world", "alpha"});
  EXPECT_TRUE(has(list.out, "STRATEGY  WORLD  STATE      FOR")) << list.out;
  EXPECT_TRUE(has(list.out, "fresh     alpha  Submitted  ")) << list.out;
  EXPECT_EQ(json_of({"strategy", "list"}).at("strategies").as_array().size(), 4u);

  // Manual promotion and demotion (the design's strategy activate / deactivate).
  auto early = qmtl({"strategy", "activate", "up"});
  EXPECT_EQ(early.exit_code, 1);
  EXPECT_TRUE(has(early.err, "to trade it live use `qmtl strategy promote up`")) << early.err;
  EXPECT_EQ(qmtl({"strategy", "promote", "up"}).exit_code, 2);  // --reason is required
  auto promoted = qmtl({"strategy", "promote", "up", "--reason", "desk call"});
  ASSERT_EQ(promoted.exit_code, 0) << promoted.err;
  // m1 and m2 are the setup's promotions of down and steady.
  EXPECT_TRUE(has(promoted.out, "strategy 'up' is now Live (alpha-m3)")) << promoted.out;
  EXPECT_FALSE(has(promoted.out, "next evaluation")) << "no policy, no forecast";
  auto twice = qmtl({"strategy", "promote", "up", "--reason", "again"});
  EXPECT_EQ(twice.exit_code, 1);
  EXPECT_TRUE(has(twice.err, "strategy 'up' is already Live (HTTP 409)")) << twice.err;
  auto demoted = json_of({"strategy", "demote", "down", "--reason", "losing"});
  EXPECT_EQ(demoted.at("strategy").at("state").as_string(), "DryRun");
  EXPECT_EQ(demoted.at("apply_id").as_string(), "alpha-m4");
  bool audited = false;
  const auto log = json_of({"world", "audit", "alpha"});  // by value: the loop must not dangle
  for (const auto& a : log.at("records").as_array()) {
    audited |= a.at("event") == "DEMOTE" && a.at("entity_id") == "down" &&
               a.at("reason") == "losing" && a.at("actor") == "admin";
  }
  EXPECT_TRUE(audited);
  auto down_again = qmtl({"strategy", "demote", "down", "--reason", "x"});
  EXPECT_EQ(down_again.exit_code, 1);
  EXPECT_TRUE(has(down_again.err, "is DryRun, not Live")) << down_again.err;

  auto off = qmtl({"strategy", "deactivate", "up", "--reason", "decayed"});
  EXPECT_TRUE(has(off.out, "strategy 'up' is now Inactive")) << off.out << off.err;
  EXPECT_TRUE(has(qmtl({"strategy", "activate", "up"}).out, "is now DryRun"));
  EXPECT_TRUE(has(qmtl({"strategy", "archive", "up"}).out, "is now Archived"));
  auto again = qmtl({"strategy", "activate", "up"});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_TRUE(has(again.err, "(HTTP 409)")) << again.err;

  auto paused = qmtl({"world", "status", "alpha", "--set", "Paused", "--reason", "outage"});
  ASSERT_EQ(paused.exit_code, 0) << paused.err;
  EXPECT_TRUE(has(paused.out, "alpha  alpha  Paused")) << paused.out;
  EXPECT_TRUE(has(paused.out, "STRATEGY  STATE      FOR  MODE")) << paused.out;
  EXPECT_EQ(qmtl({"world", "status", "alpha", "--set", "Asleep"}).exit_code, 2);
  auto create = qmtl({"world", "create", "beta", "--policy-file", dir_.file("policy.yml")});
  EXPECT_TRUE(has(create.out, "created world 'beta' with policy version 1")) << create.err;
}

TEST_F(CliCommandsTest, AlertSettings) {
  auto none = qmtl({"world", "alerts", "alpha"});
  ASSERT_EQ(none.exit_code, 0) << none.err;
  EXPECT_EQ(none.out,
            "world 'alpha' posts no alerts to a webhook\nworld 'alpha' mails no alerts\n"
            "world 'alpha' sends no alerts to Telegram\n");
  auto set = qmtl({"world", "alerts", "alpha", "--webhook", "http://127.0.0.1:9/hooks/S3CRET",
                   "--events", "promote,demote"});
  ASSERT_EQ(set.exit_code, 0) << set.err;
  EXPECT_EQ(set.out,
            "world 'alpha' alerts http://127.0.0.1:9/… (promote, demote)\n"
            "world 'alpha' mails no alerts\n"
            "world 'alpha' sends no alerts to Telegram\n");
  auto shown = json_of({"world", "alerts", "alpha"});
  EXPECT_EQ(json::dump(shown.at("events")), R"(["promote","demote"])");
  EXPECT_FALSE(has(json::dump(shown), "S3CRET"));
  auto viewer = qmtl({"world", "alerts", "alpha"}, {{"QMTL_TOKEN", kViewer}});
  EXPECT_EQ(viewer.exit_code, 1);
  EXPECT_TRUE(has(viewer.err, "(HTTP 403)")) << viewer.err;
  auto boom = qmtl({"world", "alerts", "alpha", "--webhook", "http://x:1/", "--events", "boom"});
  EXPECT_EQ(boom.exit_code, 2);
  auto lonely = qmtl({"world", "alerts", "alpha", "--events", "promote"});
  EXPECT_EQ(lonely.exit_code, 2);
  EXPECT_TRUE(has(lonely.err, "--events goes with --webhook")) << lonely.err;
  auto ftp = qmtl({"world", "alerts", "alpha", "--webhook", "ftp://x/y"});
  EXPECT_EQ(ftp.exit_code, 1);
  EXPECT_TRUE(has(ftp.err, "webhook:")) << ftp.err;
  // E-mail settings from a file, the example the Quick tour names; the
  // password by name only.
  const std::string mail = std::string(QMTL_SOURCE_DIR) + "/examples/mail.yml";
  auto mailed = qmtl({"world", "alerts", "alpha", "--email", mail});
  ASSERT_EQ(mailed.exit_code, 0) << mailed.err;
  EXPECT_TRUE(has(mailed.out,
                  "world 'alpha' mails ops@desk.example via smtp://127.0.0.1:2525 (promote, "
                  "demote, reject, failure); credentials from environment variable "
                  "QMTL_SMTP_PASS"))
      << mailed.out;
  EXPECT_EQ(json_of({"world", "alerts", "alpha"}).at("email").at("from").as_string(),
            "qmtl@desk.example");
  const auto secret =
      testing::write_file(dir_.file("bad-mail.yml"),
                          "smtp: smtp://h:25\nfrom: q@d.example\nto: [a@b.example]\n"
                          "password: hunter2\n");
  auto refused = qmtl({"world", "alerts", "alpha", "--email", secret});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_TRUE(has(refused.err, "'password' is not taken")) << refused.err;
  EXPECT_FALSE(has(refused.err, "hunter2"));
  // Telegram from a file, the example docs name: the token by name only.
  const std::string telegram = std::string(QMTL_SOURCE_DIR) + "/examples/telegram.yml";
  auto sent = qmtl({"world", "alerts", "alpha", "--telegram", telegram});
  ASSERT_EQ(sent.exit_code, 0) << sent.err;
  EXPECT_TRUE(has(sent.out,
                  "world 'alpha' sends alerts to Telegram chat -1001234567890 via "
                  "https://api.telegram.org (promote, demote, reject, failure); token from "
                  "environment variable QMTL_TELEGRAM_TOKEN\n"))
      << sent.out;
  EXPECT_EQ(json_of({"world", "alerts", "alpha"}).at("telegram").at("chat_id").as_string(),
            "-1001234567890");
  const auto token = testing::write_file(dir_.file("bad-telegram.yml"),
                                         "chat_id: -100123\ntoken: \"123456:AAHhunter2hunter2\"\n");
  auto leaked = qmtl({"world", "alerts", "alpha", "--telegram", token});
  EXPECT_EQ(leaked.exit_code, 1);
  EXPECT_TRUE(has(leaked.err, "'token' is not taken")) << leaked.err;
  EXPECT_FALSE(has(leaked.err, "hunter2"));
  EXPECT_EQ(qmtl({"world", "alerts", "alpha", "--telegram", telegram, "--no-telegram"}).exit_code,
            2);
  EXPECT_EQ(qmtl({"world", "alerts", "alpha", "--webhook", "", "--no-email", "--no-telegram"}).out,
            "world 'alpha' posts no alerts to a webhook\nworld 'alpha' mails no alerts\n"
            "world 'alpha' sends no alerts to Telegram\n");
}

TEST_F(CliCommandsTest, ErrorsSayWhatHappenedWithHonestExitCodes) {
  auto unknown = qmtl({"world", "status", "nope"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_EQ(unknown.err,
            "qmtl: world 'nope' does not exist; `qmtl world list` shows the worlds "
            "(HTTP 404)\n");
  auto viewer = qmtl({"world", "create", "x"}, {{"QMTL_TOKEN", kViewer}});
  EXPECT_EQ(viewer.exit_code, 1);
  EXPECT_TRUE(has(viewer.err,
                  "token 'watcher' has role viewer; this needs admin or higher "
                  "(HTTP 403)"))
      << viewer.err;
  auto anonymous = qmtl({"world", "list"}, {{"QMTL_TOKEN", std::nullopt}});
  EXPECT_EQ(anonymous.exit_code, 1);
  EXPECT_TRUE(has(anonymous.err, "(HTTP 401)")) << anonymous.err;
  auto away = qmtl({"--gateway-url", "http://127.0.0.1:9", "world", "list"});
  EXPECT_EQ(away.exit_code, 3);
  EXPECT_TRUE(has(away.err, "cannot reach the qmtl server at http://127.0.0.1:9")) << away.err;
  EXPECT_EQ(qmtl({"world", "status", "Bad Id"}).exit_code, 2);
  EXPECT_EQ(qmtl({"strategy", "status", "Bad Id"}).exit_code, 2);
}

TEST_F(CliCommandsTest, ConfigFileIsBelowEnvironmentAndFlags) {
  const std::string config = testing::write_file(
      dir_.file("config.yml"),
      fmt::format("gateway_url: {}\ntoken: {}\noutput: json\n", server_->url(), kViewer));
  // The config alone: its URL, token and output format.
  auto r = qmtl(
      {"world", "list"},
      {{"QMTL_CONFIG", config}, {"QMTL_GATEWAY_URL", std::nullopt}, {"QMTL_TOKEN", std::nullopt}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(json::parse(r.out)) << r.out;
  // The environment beats it, and a flag beats the environment.
  auto env = qmtl({"world", "create", "x"},
                  {{"QMTL_CONFIG", config}, {"QMTL_GATEWAY_URL", "http://127.0.0.1:9"}});
  EXPECT_EQ(env.exit_code, 3);
  auto flag = qmtl({"--gateway-url", server_->url(), "--output", "table", "world", "list"},
                   {{"QMTL_CONFIG", config}, {"QMTL_GATEWAY_URL", "http://127.0.0.1:9"}});
  EXPECT_EQ(flag.exit_code, 0) << flag.err;
  EXPECT_TRUE(has(flag.out, "ID     NAME")) << flag.out;
  auto token = qmtl({"world", "create", "y"}, {{"QMTL_CONFIG", config}});  // env token: admin
  EXPECT_EQ(token.exit_code, 0) << token.err;
  const std::string broken = testing::write_file(dir_.file("broken.yml"), "gateway: x\n");
  auto b = qmtl({"world", "list"}, {{"QMTL_CONFIG", broken}});
  EXPECT_EQ(b.exit_code, 2);
  EXPECT_TRUE(has(b.err, broken + ":1: unknown key 'gateway'")) << b.err;
}

TEST_F(CliCommandsTest, HelpOnEveryCommandAndBashCompletion) {
  for (const auto& cmd : std::vector<std::vector<std::string>>{{"world"},
                                                               {"world", "create"},
                                                               {"world", "list"},
                                                               {"world", "status"},
                                                               {"world", "policy", "set"},
                                                               {"world", "policy", "show"},
                                                               {"world", "policy", "history"},
                                                               {"world", "policy", "rollback"},
                                                               {"world", "evaluate"},
                                                               {"world", "evaluations"},
                                                               {"world", "activation", "set"},
                                                               {"world", "audit"},
                                                               {"strategy", "submit"},
                                                               {"strategy", "list"},
                                                               {"strategy", "status"},
                                                               {"strategy", "activate"},
                                                               {"strategy", "deactivate"},
                                                               {"strategy", "archive"},
                                                               {"serve"},
                                                               {"completion"}}) {
    auto args = cmd;
    args.push_back("--help");
    auto r = qmtl(args);
    EXPECT_EQ(r.exit_code, 0) << fmt::format("{}", fmt::join(cmd, " "));
    if (cmd.size() > 1 || cmd[0] != "world") {
      EXPECT_TRUE(has(r.out, "e.g. qmtl") || has(r.out, "e.g. eval"))
          << fmt::format("{}: {}", fmt::join(cmd, " "), r.out);
    }
  }
  auto c = qmtl({"completion", "bash"});
  ASSERT_EQ(c.exit_code, 0);
  EXPECT_TRUE(has(c.out, "\"world policy\") echo \"set show history rollback\""));
  EXPECT_TRUE(has(c.out, "--dry-run"));
  const std::string script = testing::write_file(dir_.file("completion.bash"), c.out);
  auto check = testing::run_process({"/bin/bash", "-n", script});
  EXPECT_EQ(check.exit_code, 0) << check.err;
  // Completing "qmtl world po" offers "policy".
  auto complete = testing::run_process(
      {"/bin/bash", "-c",
       fmt::format("source {}; COMP_WORDS=(qmtl world po); COMP_CWORD=2; _qmtl; "
                   "echo \"${{COMPREPLY[@]}}\"",
                   script)});
  EXPECT_EQ(complete.out, "policy\n") << complete.err;
  EXPECT_EQ(qmtl({"completion", "tcsh"}).exit_code, 2);
}

}  // namespace
}  // namespace qmtl
