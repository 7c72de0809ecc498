// End to end: the real `qmtl` binary as server (`qmtl serve`) and as client, over
// real sockets, on a real SQLite file.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "qmtl/core/http_client.h"
#include "qmtl/core/json.h"
#include "qmtl/core/time.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace qmtl {
namespace {

using testing::EnvOverrides;
using testing::ProcessResult;

class CliE2eTest : public ::testing::Test {
 protected:
  void start_server() {
    server_ =
        std::make_unique<testing::ServerProcess>(QMTL_BINARY, db_path(), dir_.file("server.log"));
  }
  std::string db_path() const { return dir_.file("qmtl.db"); }
  // Runs `qmtl args...` against the test server, with QMTL_GATEWAY_URL unset
  // unless `env` sets it.
  ProcessResult qmtl(std::vector<std::string> args, EnvOverrides env = {}, bool with_url = true) {
    std::vector<std::string> argv{QMTL_BINARY};
    if (with_url) {
      argv.push_back("--gateway-url");
      argv.push_back(server_->url());
    }
    argv.insert(argv.end(), args.begin(), args.end());
    env.try_emplace("QMTL_GATEWAY_URL", std::nullopt);
    // Nothing from the developer's own environment or config file.
    env.try_emplace("QMTL_TOKEN", std::nullopt);
    env.try_emplace("QMTL_CONFIG", dir_.file("no-config.yml"));
    return testing::run_process(argv, env);
  }
  std::string server_log() const {
    std::ifstream f(dir_.file("server.log"));
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }
  std::vector<std::string> world_ids() {
    auto r = qmtl({"world", "list", "--output", "json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    auto doc = json::parse(r.out);
    EXPECT_TRUE(doc) << r.out;
    std::vector<std::string> ids;
    if (!doc) return ids;
    for (const auto& w : doc->at("worlds").as_array()) ids.emplace_back(w.at("id").as_string());
    return ids;
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::ServerProcess> server_;
};

TEST_F(CliE2eTest, WorldSurvivesAServerRestart) {
  start_server();
  auto created = qmtl({"world", "create", "demo", "--name", "Demo desk"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  EXPECT_EQ(created.out, "created world 'demo'\n");
  EXPECT_EQ(created.err, "");

  EXPECT_EQ(server_->stop(), 0) << server_log();
  start_server();  // a new process on a new port, same database file

  EXPECT_EQ(world_ids(), std::vector<std::string>{"demo"});
  auto table = qmtl({"world", "list"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  std::istringstream lines(table.out);
  std::string header, row, extra;
  std::getline(lines, header);
  std::getline(lines, row);
  EXPECT_FALSE(std::getline(lines, extra));
  EXPECT_EQ(header.substr(0, 4), "ID  ");
  EXPECT_NE(header.find("NAME"), std::string::npos);
  EXPECT_NE(header.find("STATE"), std::string::npos);
  EXPECT_EQ(row.substr(0, 4), "demo");
  EXPECT_NE(row.find("Demo desk"), std::string::npos);
  EXPECT_NE(row.find("Active"), std::string::npos);
  // Columns line up: STATE starts at the same offset in header and row.
  EXPECT_EQ(header.find("STATE"), row.find("Active"));
}

TEST_F(CliE2eTest, JsonOutputHasTheSpecFields) {
  start_server();
  auto r = qmtl({"--output", "json", "world", "create", "alpha"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto doc = json::parse(r.out);
  ASSERT_TRUE(doc) << r.out;
  const auto& w = doc->as_object();
  for (const char* field : {"id", "name", "state", "policy_version", "created_at", "updated_at"}) {
    EXPECT_TRUE(w.contains(field)) << field;
  }
  EXPECT_EQ(w.at("id").as_string(), "alpha");
  EXPECT_EQ(w.at("name").as_string(), "alpha");
  EXPECT_EQ(w.at("state").as_string(), "Active");
  EXPECT_TRUE(w.at("policy_version").is_null());
  EXPECT_TRUE(parse_timestamp(std::string(w.at("created_at").as_string())));

  // status: the same world fields, plus its strategies and the evidence
  // (policy in brief, last evaluation: none yet).
  auto status = qmtl({"world", "status", "alpha", "--output", "json"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  auto st = *json::parse(status.out);
  EXPECT_TRUE(st.at("strategies").as_array().empty());
  EXPECT_TRUE(st.at("policy").is_null());
  EXPECT_TRUE(st.at("last_evaluation").is_null());
  for (const char* extra : {"strategies", "policy", "last_evaluation"}) st.as_object().erase(extra);
  EXPECT_EQ(st, *doc);
}

TEST_F(CliE2eTest, GatewayUrlFromEnvironmentAndFlagWins) {
  start_server();
  auto via_env = qmtl({"world", "create", "envworld"}, {{"QMTL_GATEWAY_URL", server_->url()}},
                      /*with_url=*/false);
  EXPECT_EQ(via_env.exit_code, 0) << via_env.err;
  // The flag beats a wrong environment value.
  auto flag_wins = qmtl({"world", "list"}, {{"QMTL_GATEWAY_URL", "http://127.0.0.1:1"}});
  EXPECT_EQ(flag_wins.exit_code, 0) << flag_wins.err;
  EXPECT_NE(flag_wins.out.find("envworld"), std::string::npos);
}

TEST_F(CliE2eTest, BadInputIsRefusedWithOneLineAndChangesNothing) {
  start_server();
  ASSERT_EQ(qmtl({"world", "create", "demo"}).exit_code, 0);

  auto invalid = qmtl({"world", "create", "Bad Id"});
  EXPECT_EQ(invalid.exit_code, 1);
  EXPECT_EQ(invalid.out, "");
  EXPECT_EQ(invalid.err.find("qmtl: invalid world id 'Bad Id'"), 0u) << invalid.err;
  EXPECT_NE(invalid.err.find("(HTTP 400)"), std::string::npos);

  auto dup = qmtl({"world", "create", "demo", "--name", "again"});
  EXPECT_EQ(dup.exit_code, 1);
  EXPECT_NE(dup.err.find("world 'demo' already exists"), std::string::npos) << dup.err;
  EXPECT_NE(dup.err.find("(HTTP 409)"), std::string::npos);

  auto missing = qmtl({"world", "status", "absent"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("world 'absent' does not exist"), std::string::npos);

  for (const auto* r : {&invalid, &dup, &missing}) {
    EXPECT_EQ(std::count(r->err.begin(), r->err.end(), '\n'), 1) << r->err;
  }
  EXPECT_EQ(world_ids(), std::vector<std::string>{"demo"});
  auto table = qmtl({"world", "list"});
  EXPECT_EQ(table.out.find("again"), std::string::npos);
}

TEST_F(CliE2eTest, UsageErrorsExitTwo) {
  start_server();
  for (const auto& args :
       std::vector<std::vector<std::string>>{{"world"},
                                             {"world", "create"},
                                             {"world", "frobnicate"},
                                             {"--output", "xml", "world", "list"},
                                             {"bogus"}}) {
    auto r = qmtl(args);
    EXPECT_EQ(r.exit_code, 2) << args.back() << ": " << r.err;
    EXPECT_EQ(r.err.rfind("qmtl: ", 0), 0u) << r.err;
  }
  auto help = qmtl({"world", "create", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("e.g. qmtl world create"), std::string::npos) << help.out;
}

TEST_F(CliE2eTest, RawHttpErrorsFromTheRealServerAreProblemJson) {
  start_server();
  struct Case {
    std::string method, path, body;
    int status;
    std::string detail_part;
  };
  for (const Case& c : std::vector<Case>{
           {"POST", "/worlds", R"({"id": "x",)", 400, "malformed JSON"},
           {"POST", "/worlds", R"({"id": ["x"]})", 400, "field 'id' must be a string"},
           {"GET", "/no/such/route", "", 404, "no route for GET /no/such/route"},
           {"PATCH", "/worlds", "{}", 405, "PATCH is not allowed"},
       }) {
    auto r = http_request(server_->url(), {.method = c.method, .path = c.path, .body = c.body});
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->status, c.status) << c.path;
    EXPECT_EQ(r->content_type, "application/problem+json");
    auto doc = json::parse(r->body);
    ASSERT_TRUE(doc) << r->body;
    EXPECT_NE(std::string(doc->at("detail").as_string()).find(c.detail_part), std::string::npos)
        << r->body;
  }
  EXPECT_TRUE(world_ids().empty());
  // A client-side check keeps a bad id from ever becoming a URL path.
  auto bad = qmtl({"world", "status", "Bad.Id"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("invalid world id 'Bad.Id'"), std::string::npos);
}

TEST(CliE2e, UnreachableServerExitsThreeNamingTheUrl) {
  const std::string url = "http://127.0.0.1:9";  // discard port: nothing listens
  auto r = testing::run_process({QMTL_BINARY, "--gateway-url", url, "world", "list"},
                                {{"QMTL_GATEWAY_URL", std::nullopt}});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("cannot reach the qmtl server at " + url), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1);

  auto env = testing::run_process({QMTL_BINARY, "world", "list"}, {{"QMTL_GATEWAY_URL", url}});
  EXPECT_EQ(env.exit_code, 3);
  EXPECT_NE(env.err.find(url), std::string::npos);
}

TEST(CliE2e, ServeRefusesABadDatabaseUrl) {
  auto r =
      testing::run_process({QMTL_BINARY, "serve", "--db", "mysql://x", "--port", "0", "--no-auth"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("unknown database URL 'mysql://x'"), std::string::npos) << r.err;
}

TEST(CliE2e, ServeNeverStartsOpenByAccident) {
  const testing::EnvOverrides no_tokens{{"QMTL_API_TOKENS", std::nullopt}};
  auto none = testing::run_process({QMTL_BINARY, "serve", "--db", "sqlite::memory:", "--port", "0"},
                                   no_tokens);
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_NE(none.err.find("no API tokens: pass --token-file FILE"), std::string::npos) << none.err;
  auto wide = testing::run_process({QMTL_BINARY, "serve", "--db", "sqlite::memory:", "--port", "0",
                                    "--no-auth", "--address", "0.0.0.0"},
                                   no_tokens);
  EXPECT_EQ(wide.exit_code, 2);
  EXPECT_NE(wide.err.find("--no-auth is for local use only"), std::string::npos) << wide.err;
  auto bad = testing::run_process({QMTL_BINARY, "serve", "--db", "sqlite::memory:", "--port", "0"},
                                  {{"QMTL_API_TOKENS", "ci operator token:short"}});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("QMTL_API_TOKENS:1: a token must be at least 16 characters"),
            std::string::npos)
      << bad.err;
  EXPECT_EQ(bad.err.find("token:short"), std::string::npos);
}

TEST(CliE2e, VersionAndUnknownCommandsSayWhatToType) {
  auto v = testing::run_process({QMTL_BINARY, "--version"});
  EXPECT_EQ(v.exit_code, 0);
  EXPECT_EQ(v.out, fmt::format("qmtl {}\n", QMTL_VERSION));
  struct Case {
    std::vector<std::string> args;
    std::string err;
  };
  for (const Case& c : std::vector<Case>{
           {{"wrld"},
            "qmtl: unknown command 'wrld': did you mean 'world'?; run `qmtl --help` for the "
            "commands\n"},
           {{"-o", "json", "world", "lst"},
            "qmtl: unknown command 'world lst': did you mean 'world list'?; run `qmtl world "
            "--help` for the commands\n"},
           {{"--gateway-url", "http://h:1", "strategy", "sbmit", "x.yml"},
            "qmtl: unknown command 'strategy sbmit': did you mean 'strategy submit'?"},
           {{"zzzzzzzz"}, "qmtl: unknown command 'zzzzzzzz'; run `qmtl --help`"},
       }) {
    std::vector<std::string> argv{QMTL_BINARY};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    auto r = testing::run_process(argv);
    EXPECT_EQ(r.exit_code, 2) << c.args[0];
    EXPECT_EQ(r.err.rfind(c.err, 0), 0u) << r.err;
  }
  // A word in an argument's place is not taken for a command.
  auto arg = testing::run_process({QMTL_BINARY, "policy", "check", "wrld"});
  EXPECT_NE(arg.err.find("cannot open policy file 'wrld'"), std::string::npos) << arg.err;
}

// The completion scripts of bash, zsh and fish, each run by its own shell:
// commands, options, and world ids from the server (`qmtl __ids`).
TEST_F(CliE2eTest, CompletionInBashZshAndFishNamesCommandsOptionsAndIds) {
  start_server();
  for (const char* w : {"alpha", "beta"}) ASSERT_EQ(qmtl({"world", "create", w}).exit_code, 0);
  const std::string bin = std::filesystem::path(QMTL_BINARY).parent_path().string();
  const testing::EnvOverrides env{{"QMTL_GATEWAY_URL", server_->url()},
                                  {"QMTL_TOKEN", std::nullopt},
                                  {"QMTL_CONFIG", dir_.file("no-config.yml")},
                                  {"PATH", bin + ":/usr/bin:/bin"}};
  // bash and zsh share the script; zsh runs it through bashcompinit, whose
  // arrays start at 1 unless the script says otherwise (it does).
  const std::string drive =
      "for line in 'world status ' 'wor' 'strategy list --world ' 'world lst'; do\n"
      "  eval \"COMP_WORDS=(qmtl $line)\"; [[ $line == *' ' ]] && COMP_WORDS+=('')\n"
      "  COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); _qmtl\n"
      "  echo \"$line|${COMPREPLY[*]}\"\n"
      "done\n";
  for (const std::string shell : {"bash", "zsh"}) {
    auto r = testing::run_process(
        {"/usr/bin/" + shell, "-c", "eval \"$(qmtl completion " + shell + ")\"\n" + drive}, env);
    ASSERT_EQ(r.exit_code, 0) << shell << ": " << r.err;
    EXPECT_NE(r.out.find("world status |alpha beta --help --set --reason"), std::string::npos)
        << shell << ": " << r.out;
    EXPECT_NE(r.out.find("strategy list --world |alpha beta\n"), std::string::npos)
        << shell << ": " << r.out;
    // bash filters by the word typed; zsh's own matcher filters what it is given.
    EXPECT_NE(r.out.find(shell == "bash" ? "wor|world\n" : "wor|world strategy"), std::string::npos)
        << shell << ": " << r.out;
  }
  auto fish = testing::run_process(
      {"/usr/bin/fish", "-c",
       "qmtl completion fish | source; complete -C 'qmtl world status '; echo ---; "
       "complete -C 'qmtl wor'; echo ---; complete -C 'qmtl strategy list --world '"},
      env);
  ASSERT_EQ(fish.exit_code, 0) << fish.err;
  EXPECT_EQ(fish.out, "alpha\nbeta\n--help\n--reason\n--set\n---\nworld\n---\nalpha\nbeta\n");
  // Without a server the ids are simply not offered: no error on the terminal.
  auto away = testing::run_process({QMTL_BINARY, "__ids", "worlds"},
                                   {{"QMTL_GATEWAY_URL", "http://127.0.0.1:1"}});
  EXPECT_EQ(away.exit_code, 0);
  EXPECT_EQ(away.out + away.err, "");
}

// As sshd and PostgreSQL refuse a key file others can read, the server refuses
// a token file open to group or others, and says the chmod that fixes it.
TEST(CliE2e, ServeRefusesATokenFileOthersCanRead) {
  testing::TempDir dir;
  const std::string tokens =
      testing::write_file(dir.file("tokens"), "ops operator token:0123456789abcdef0123\n");
  const testing::EnvOverrides no_tokens{{"QMTL_API_TOKENS", std::nullopt}};
  for (const auto mode :
       {std::filesystem::perms::group_read, std::filesystem::perms::others_read}) {
    std::filesystem::permissions(
        tokens, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write | mode);
    auto r = testing::run_process(
        {QMTL_BINARY, "serve", "--db", "sqlite::memory:", "--port", "0", "--token-file", tokens},
        no_tokens);
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("token file '" + tokens + "' is open to group or others (mode 06"),
              std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("chmod 600 '" + tokens + "'"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("0123456789abcdef"), std::string::npos);
  }
}

// docs/operations.md: the SQLite file is backed up while the server runs and
// writes (sqlite3's .backup uses SQLite's online backup API), and the copy is a
// database a server starts on.
TEST_F(CliE2eTest, TheDatabaseIsBackedUpWhileTheServerWritesAndTheCopyServes) {
  start_server();
  ASSERT_EQ(qmtl({"world", "create", "desk"}).exit_code, 0);
  std::atomic<bool> stop{false};
  std::atomic<int> writes{0};
  std::thread writer([&] {
    for (int i = 0; !stop; ++i) {
      auto r = http_request(
          server_->url(),
          {.method = "POST", .path = "/worlds", .body = fmt::format(R"({{"id":"w{}"}})", i)});
      if (r && r->status == 201) ++writes;
    }
  });
  while (writes < 20) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const std::string copy = dir_.file("backup.db");
  const auto backup =
      testing::run_process({"/usr/bin/sqlite3", db_path(), fmt::format(".backup '{}'", copy)});
  stop = true;
  writer.join();
  ASSERT_EQ(backup.exit_code, 0) << backup.err;
  EXPECT_GT(writes.load(), 20);
  const auto check = testing::run_process({"/usr/bin/sqlite3", copy, "PRAGMA integrity_check;"});
  EXPECT_EQ(check.out, "ok\n") << check.err;
  // Restore = start on the copy: everything committed before the backup is there.
  server_ = std::make_unique<testing::ServerProcess>(QMTL_BINARY, copy, dir_.file("restored.log"));
  const auto ids = world_ids();
  ASSERT_GE(ids.size(), 21u);
  EXPECT_EQ(ids.front(), "desk");
  EXPECT_EQ(qmtl({"world", "status", "desk"}).exit_code, 0);
}

}  // namespace
}  // namespace qmtl
