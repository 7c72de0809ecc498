#include "qmtl/cli/cli.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <filesystem>
#include <memory>

#include "qmtl/cli/client.h"
#include "qmtl/cli/metrics_command.h"
#include "qmtl/cli/number_check.h"
#include "qmtl/cli/policy_command.h"
#include "qmtl/core/file.h"
#include "qmtl/policy/expr.h"
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

// Every command of the tree as the completion scripts need it: its path
// ("world status"), its subcommands, its long options, and what its first
// argument names (world or strategy ids, completed from the server).
struct CommandEntry {
  std::string path;
  std::vector<std::string> children, options;
  std::string ids;  // "worlds", "strategies" or ""
};

std::vector<CommandEntry> command_tree(const CLI::App& app) {
  std::vector<CommandEntry> out;
  auto walk = [&](auto&& self, const CLI::App& a, const std::string& path) -> void {
    CommandEntry e{.path = path};
    for (const auto* sub : a.get_subcommands({})) {
      if (!sub->get_group().empty()) e.children.push_back(sub->get_name());  // "" = hidden
    }
    for (const auto* o : a.get_options()) {
      for (const auto& l : o->get_lnames()) e.options.push_back("--" + l);
      if (!o->nonpositional() && e.ids.empty() && !path.starts_with("world create")) {
        const std::string& name = o->get_name();
        if (name == "world") e.ids = "worlds";
        if (name == "strategy" || (name == "id" && path.starts_with("strategy"))) {
          e.ids = "strategies";
        }
      }
    }
    out.push_back(std::move(e));
    for (const auto* sub : a.get_subcommands({})) {
      if (sub->get_group().empty()) continue;
      self(self, *sub, path.empty() ? sub->get_name() : path + " " + sub->get_name());
    }
  };
  walk(walk, app, "");
  return out;
}

// The case tables of the bash (and zsh) script.
std::string shell_cases(const std::vector<CommandEntry>& tree,
                        const std::vector<std::string> CommandEntry::*list) {
  std::string out;
  for (const auto& e : tree) {
    out += fmt::format("    \"{}\") echo \"{}\" ;;\n", e.path, fmt::join(e.*list, " "));
  }
  return out;
}

// A bash completion script for every command and option of `app`; world and
// strategy ids come from the server (`qmtl __ids`, silent when it is not there).
std::string bash_completion(const CLI::App& app) {
  const auto tree = command_tree(app);
  std::string ids;
  for (const auto& e : tree) {
    if (!e.ids.empty()) ids += fmt::format("    \"{}\") echo {} ;;\n", e.path, e.ids);
  }
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
_qmtl_ids() {{
  case "$1" in
{}    *) echo "" ;;
  esac
}}
_qmtl() {{
  # zsh (bashcompinit) gives 1-based arrays unless told otherwise; `path`
  # is its PATH array, hence qpath.
  [[ -n ${{ZSH_VERSION-}} ]] && setopt localoptions ksharrays
  COMPREPLY=()
  local cur="${{COMP_WORDS[COMP_CWORD]}}" prev="${{COMP_WORDS[COMP_CWORD-1]}}" qpath="" w i args=0
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="${{COMP_WORDS[i]}}"
    [[ $w == -* ]] && continue
    case " $(_qmtl_children "$qpath") " in
      *" $w "*) qpath="${{qpath:+$qpath }}$w" ;;
      *) args=$((args + 1)) ;;
    esac
  done
  local kind=""
  if [[ $prev == --world ]]; then kind=worlds
  elif [[ $cur != -* && $args == 0 ]]; then kind="$(_qmtl_ids "$qpath")"; fi
  if [[ -n $kind ]]; then
    COMPREPLY=($(compgen -W "$(qmtl __ids "$kind" 2>/dev/null)" -- "$cur"))
    [[ $prev == --world ]] && return
  fi
  COMPREPLY+=($(compgen -W "$(_qmtl_children "$qpath") $(_qmtl_options "$qpath")" -- "$cur"))
}}
complete -F _qmtl qmtl
)BASH",
                     shell_cases(tree, &CommandEntry::children),
                     shell_cases(tree, &CommandEntry::options), ids);
}

// zsh runs the bash script through its bash emulation (bashcompinit), as
// many tools' completions do: one script, the same answers.
std::string zsh_completion(const CLI::App& app) {
  return "# zsh completion for qmtl: eval \"$(qmtl completion zsh)\"\n"
         "autoload -U +X compinit && compinit -u\n"
         "autoload -U +X bashcompinit && bashcompinit\n" +
         bash_completion(app);
}

std::string fish_completion(const CLI::App& app) {
  const auto tree = command_tree(app);
  std::string children, options, ids;
  for (const auto& e : tree) {
    const auto words = [](const std::vector<std::string>& v) {
      return v.empty() ? std::string("true") : fmt::format("printf '%s\\n' {}", fmt::join(v, " "));
    };
    children += fmt::format("    case '{}'\n      {}\n", e.path, words(e.children));
    options += fmt::format("    case '{}'\n      {}\n", e.path, words(e.options));
    if (!e.ids.empty()) ids += fmt::format("    case '{}'\n      echo {}\n", e.path, e.ids);
  }
  return fmt::format(R"FISH(# fish completion for qmtl: qmtl completion fish | source
function __qmtl_children
  switch $argv[1]
{}  end
end
function __qmtl_options
  switch $argv[1]
{}  end
end
function __qmtl_ids
  switch $argv[1]
{}  end
end
function __qmtl_complete
  set -l words (commandline -opc)
  set -e words[1]
  set -l qpath ''
  set -l args 0
  for w in $words
    string match -q -- '-*' $w; and continue
    if contains -- $w (__qmtl_children "$qpath")
      set qpath (string trim -- "$qpath $w")
    else
      set args (math $args + 1)
    end
  end
  set -l cur (commandline -ct)
  if test "$words[-1]" = --world
    qmtl __ids worlds 2>/dev/null
    return
  end
  if test $args -eq 0; and not string match -q -- '-*' "$cur"
    set -l kind (__qmtl_ids "$qpath")
    test -n "$kind"; and qmtl __ids $kind 2>/dev/null
  end
  __qmtl_children "$qpath"
  __qmtl_options "$qpath"
end
complete -c qmtl -f -a '(__qmtl_complete)'
)FISH",
                     children, options, ids);
}

// `qmtl __ids worlds|strategies`: the ids the server has, one per line, for
// the completion scripts. Quick (2 s at most) and silent on any failure, as
// a shell completing a word must not print errors or wait.
int print_ids(const Globals& g, const std::string& kind, std::ostream& out) {
  HttpCall call{
      .path = "/" + kind, .bearer_token = g.token, .timeout = std::chrono::milliseconds(2000)};
  auto r = call_server(g, std::move(call));
  if (!r) return kExitOk;
  for (const auto& item : array_at(*r, kind)) {
    if (const auto* o = item.if_object()) {
      if (const auto* id = o->if_contains("id"); id != nullptr && id->is_string())
        out << std::string_view(id->get_string()) << '\n';
    }
  }
  return kExitOk;
}

// `qmtl completion SHELL` and the hidden `qmtl __ids KIND` it calls.
void add_completion_commands(CLI::App& app, const Globals& g, int& rc, std::ostream& out) {
  auto* completion = app.add_subcommand(
      "completion",
      "print a shell completion script (commands, options, and world and strategy ids from "
      "the server)\n  e.g. eval \"$(qmtl completion bash)\", eval \"$(qmtl completion zsh)\", "
      "qmtl completion fish | source");
  auto shell = std::make_shared<std::string>();
  completion->add_option("shell", *shell, "the shell")
      ->required()
      ->check(CLI::IsMember({"bash", "zsh", "fish"}));
  completion->callback([&app, shell, &out] {
    out << (*shell == "fish"  ? fish_completion(app)
            : *shell == "zsh" ? zsh_completion(app)
                              : bash_completion(app));
  });
  // For the completion scripts only: hidden from help (group "").
  auto* ids = app.add_subcommand("__ids", "ids the server has, one per line")->group("");
  auto kind = std::make_shared<std::string>();
  ids->add_option("kind", *kind)->required()->check(CLI::IsMember({"worlds", "strategies"}));
  ids->callback([&g, &rc, kind, &out] { rc = print_ids(g, *kind, out); });
}

// CLI11 reads a word that names no command as a stray argument ("A
// subcommand is required"), which leaves a user who typed `qmtl wrld` to
// guess. Walks `args` through the command tree as the parser will and, at
// the first word that should name a command and does not, says so with the
// closest one. Options' values are skipped; a command that takes positional
// arguments (`world show ID`) has no unknown commands.
std::optional<std::string> unknown_command(const CLI::App& app,
                                           const std::vector<std::string>& args) {
  const CLI::App* at = &app;
  std::string path;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") return std::nullopt;
    if (a.starts_with('-')) {
      // An option that takes a value, given without `=`, consumes the next word.
      const std::string name = a.substr(0, a.find('='));
      const CLI::Option* o = nullptr;
      for (const CLI::App* level = at; level != nullptr && o == nullptr;
           level = level->get_parent()) {
        o = level->get_option_no_throw(name);
      }
      if (o != nullptr && o->get_type_size() != 0 && a.find('=') == std::string::npos) ++i;
      continue;
    }
    const auto subs = at->get_subcommands({});
    if (subs.empty()) return std::nullopt;
    const CLI::App* next = nullptr;
    std::vector<std::string_view> names;
    for (const CLI::App* s : subs) {
      names.push_back(s->get_name());
      if (s->check_name(a)) next = s;
    }
    if (next == nullptr) {
      for (const CLI::Option* o : at->get_options()) {
        if (!o->nonpositional()) return std::nullopt;  // the word is an argument
      }
      const std::string_view hint = policy::closest_name(a, names);
      const std::string prefix = path.empty() ? "" : path + " ";
      return fmt::format("unknown command '{}{}'{}; run `qmtl {}--help` for the commands", prefix,
                         a, hint.empty() ? "" : fmt::format(": did you mean '{}{}'?", prefix, hint),
                         prefix);
    }
    path += (path.empty() ? "" : " ") + a;
    at = next;
  }
  return std::nullopt;
}

}  // namespace

int run_cli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  CLI::App app{"qmtl: decide, by policy and with evidence, which strategies may trade", "qmtl"};
  app.require_subcommand(1);
  app.fallthrough();
  app.set_version_flag("--version", fmt::format("qmtl {}", QMTL_VERSION),
                       "print the version and exit");
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

  add_completion_commands(app, g, rc, out);

  if (auto unknown = unknown_command(app, args)) {
    err << "qmtl: " << *unknown << '\n';
    return kExitUsage;
  }
  std::vector<std::string> reversed(args.rbegin(), args.rend());
  try {
    app.parse(reversed);
  } catch (const CLI::CallForHelp&) {
    out << app.help();
    return kExitOk;
  } catch (const CLI::CallForAllHelp&) {
    out << app.help("", CLI::AppFormatMode::All);
    return kExitOk;
  } catch (const CLI::CallForVersion& v) {
    out << v.what() << '\n';
    return kExitOk;
  } catch (const CLI::ParseError& e) {
    err << "qmtl: " << e.what() << "; run `qmtl --help` for usage\n";
    return kExitUsage;
  }
  return rc;
}

}  // namespace qmtl::cli
