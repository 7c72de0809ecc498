#include "qmtl/cli/cli.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <filesystem>

#include "qmtl/cli/client.h"
#include "qmtl/cli/metrics_command.h"
#include "qmtl/cli/number_check.h"
#include "qmtl/cli/policy_command.h"
#include "qmtl/core/file.h"
#include "qmtl/policy/yaml_reader.h"

namespace qmtl::cli {
namespace {

// ~/.config/qmtl/config.yml (or $QMTL_CONFIG): defaults below the environment
// and the flags. Keys: gateway_url, token, output.
CliResult<void> load_config(Globals& g) {
  std::string path;
  if (const char* p = std::getenv("QMTL_CONFIG"); p != nullptr && *p != '\0') {
    path = p;
  } else if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    path = std::string(home) + "/.config/qmtl/config.yml";
  } else {
    return {};
  }
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return {};
  auto text = read_file(path, "config file");
  if (!text) return tl::unexpected(Failure{kExitUsage, text.error().message});
  auto loaded = policy::YamlReader(path, "config file").load(*text);
  if (!loaded) return tl::unexpected(Failure{kExitUsage, loaded.error().message});
  try {
    const YAML::Node& n = *loaded;
    if (!n.IsMap() && !n.IsNull()) {
      return tl::unexpected(Failure{kExitUsage, fmt::format("{}: expected a mapping", path)});
    }
    for (const auto& kv : n) {
      const auto key = kv.first.as<std::string>();
      const auto value = kv.second.as<std::string>();
      if (key == "gateway_url") {
        g.gateway_url = value;
      } else if (key == "token") {
        g.token = value;
      } else if (key == "output") {
        g.output = value;
      } else {
        return tl::unexpected(Failure{
            kExitUsage, fmt::format("{}:{}: unknown key '{}'; use gateway_url, token or output",
                                    path, kv.first.Mark().line + 1, key)});
      }
    }
  } catch (const YAML::Exception& e) {
    return tl::unexpected(Failure{
        kExitUsage, fmt::format("{}:{}:{}: {}", path, e.mark.line + 1, e.mark.column + 1, e.msg)});
  }
  return {};
}

// A bash completion script for every command and option of `app`.
std::string bash_completion(const CLI::App& app) {
  std::string children_cases, option_cases;
  auto walk = [&](auto&& self, const CLI::App& a, const std::string& path) -> void {
    std::vector<std::string> names, opts;
    for (const auto* sub : a.get_subcommands({})) names.push_back(sub->get_name());
    for (const auto* o : a.get_options()) {
      for (const auto& l : o->get_lnames()) opts.push_back("--" + l);
    }
    children_cases += fmt::format("    \"{}\") echo \"{}\" ;;\n", path, fmt::join(names, " "));
    option_cases += fmt::format("    \"{}\") echo \"{}\" ;;\n", path, fmt::join(opts, " "));
    for (const auto* sub : a.get_subcommands({})) {
      self(self, *sub, path.empty() ? sub->get_name() : path + " " + sub->get_name());
    }
  };
  walk(walk, app, "");
  return fmt::format(R"BASH(# bash completion for qmtl: eval "$(qmtl completion bash)"
_qmtl_children() {{
  case "$1" in
{}    *) echo "" ;;
  esac
}}
_qmtl_options() {{
  case "$1" in
{}    *) echo "" ;;
  esac
}}
_qmtl() {{
  local cur="${{COMP_WORDS[COMP_CWORD]}}" path="" w i
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="${{COMP_WORDS[i]}}"
    [[ $w == -* ]] && continue
    case " $(_qmtl_children "$path") " in
      *" $w "*) path="${{path:+$path }}$w" ;;
    esac
  done
  COMPREPLY=($(compgen -W "$(_qmtl_children "$path") $(_qmtl_options "$path")" -- "$cur"))
}}
complete -F _qmtl qmtl
)BASH",
                     children_cases, option_cases);
}

}  // namespace

int run_cli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  CLI::App app{"qmtl: decide, by policy and with evidence, which strategies may trade", "qmtl"};
  app.require_subcommand(1);
  app.fallthrough();
  Globals g;
  // Lowest precedence first: the config file; QMTL_* variables and flags override it.
  if (auto c = load_config(g); !c) return report(c.error(), err);
  app.add_option("--gateway-url", g.gateway_url, "qmtl server URL")
      ->envname("QMTL_GATEWAY_URL")
      ->default_str(std::string(kDefaultGateway));
  app.add_option("--token", g.token, "API token (prefer the QMTL_TOKEN variable)")
      ->envname("QMTL_TOKEN");
  app.add_option("--output,-o", g.output, "output format")
      ->check(CLI::IsMember({"table", "json"}))
      ->default_str("table");

  int rc = kExitOk;
  add_world_commands(app, g, rc, out, err);
  add_strategy_commands(app, g, rc, out, err);
  add_backtest_command(app, g, rc, out, err);
  add_run_command(app, g, rc, out, err);

  MetricsCommandOptions mo;
  auto* metrics_cmd =
      app.add_subcommand("metrics",
                         "every KPI of equity/PnL/return CSV files, and their correlation\n"
                         "  e.g. qmtl metrics a.csv b.csv --window 4w --worst-loss 1d,1w");
  metrics_cmd
      ->add_option("files", mo.files,
                   "CSV files with a timestamp column and one of "
                   "equity, pnl or return")
      ->required()
      ->check(CLI::ExistingFile);
  metrics_cmd->add_option("--window", mo.window, "also compute over the last W (e.g. 4w)");
  metrics_cmd
      ->add_option("--periods-per-year", mo.periods_per_year,
                   "annualisation factor (default: inferred from the timestamps)")
      ->check(finite_above(0));
  metrics_cmd
      ->add_option("--initial-equity", mo.initial_equity,
                   "equity before the first row (required for pnl files)")
      ->check(finite_above(0));
  metrics_cmd->add_option("--tz", mo.tz,
                          "zone of date-times written without one (UTC, +01:00, "
                          "Europe/Berlin); without it they are refused");
  metrics_cmd->add_option("--worst-loss", mo.worst_loss, "windows for worst_loss(w)")
      ->delimiter(',')
      ->default_str("1d");
  metrics_cmd->callback([&] {
    mo.json = g.output == "json";
    rc = run_metrics_command(mo, out, err);
  });

  auto* policy_cmd =
      app.add_subcommand("policy", "check and try out policy files")->require_subcommand(1);
  std::string check_path;
  auto* check = policy_cmd->add_subcommand(
      "check", "validate a policy file\n  e.g. qmtl policy check examples/policies/design.yml");
  check->add_option("policy", check_path, "policy file (YAML or JSON)")->required();
  check->callback([&] { rc = run_policy_check(check_path, g.output == "json", out, err); });

  PolicyEvalOptions pe;
  auto* eval = policy_cmd->add_subcommand(
      "eval",
      "run the selection on given metrics\n"
      "  e.g. qmtl policy eval policy.yml --metrics metrics.json --previous a,b --output json");
  eval->add_option("policy", pe.policy, "policy file (YAML or JSON)")->required();
  eval->add_option("--metrics", pe.metrics, "JSON {\"<strategy>\": {\"<metric>\": number}}")
      ->required();
  eval->add_option("--previous", pe.previous, "strategies live before this evaluation")
      ->delimiter(',');
  eval->add_option("--correlations", pe.correlations, "JSON [{\"a\", \"b\", \"value\"}]");
  eval->add_option("--history", pe.history,
                   "JSON {\"<strategy>\": [{\"at\", \"promote_pass\", \"out\"}]} for hysteresis");
  eval->add_option("--now", pe.now, "evaluation time, ISO-8601 (default: now)");
  eval->add_option("--stage", pe.stage, "QMTL policies: stage that picks the validation profile");
  eval->callback([&] {
    pe.json = g.output == "json";
    rc = run_policy_eval(pe, out, err);
  });

  add_serve_command(app, rc, out, err);
  add_demo_command(app, rc, out, err);

  auto* completion = app.add_subcommand(
      "completion", "print a shell completion script\n  e.g. eval \"$(qmtl completion bash)\"");
  std::string shell;
  completion->add_option("shell", shell, "the shell")->required()->check(CLI::IsMember({"bash"}));
  completion->callback([&] { out << bash_completion(app); });

  std::vector<std::string> reversed(args.rbegin(), args.rend());
  try {
    app.parse(reversed);
  } catch (const CLI::CallForHelp&) {
    out << app.help();
    return kExitOk;
  } catch (const CLI::CallForAllHelp&) {
    out << app.help("", CLI::AppFormatMode::All);
    return kExitOk;
  } catch (const CLI::ParseError& e) {
    err << "qmtl: " << e.what() << "; run `qmtl --help` for usage\n";
    return kExitUsage;
  }
  return rc;
}

}  // namespace qmtl::cli
