#include "qmtl/cli/client.h"

#include <fmt/format.h>

#include <cmath>
#include <filesystem>

#include "qmtl/cli/table.h"
#include "qmtl/core/duration.h"
#include "qmtl/core/file.h"
#include "qmtl/core/id.h"
#include "qmtl/core/json.h"
#include "qmtl/policy/yaml_json.h"
#include "qmtl/sdk/program.h"

namespace qmtl::cli {

CliResult<boost::json::value> call_server(const Globals& g, HttpCall call) {
  if (call.bearer_token.empty()) call.bearer_token = g.token;
  auto reply = http_request(g.gateway_url, call);
  if (!reply) {
    const int code = reply.error().code == ErrorCode::kUnavailable ? kExitUnreachable : kExitUsage;
    return tl::unexpected(Failure{code, reply.error().message});
  }
  auto doc = json::parse(reply->body);
  if (reply->status < 200 || reply->status > 299) {
    std::string detail = fmt::format("HTTP {}", reply->status);
    if (doc && doc->is_object()) {
      if (const auto* d = doc->get_object().if_contains("detail"); d && d->is_string()) {
        detail = fmt::format("{} (HTTP {})", std::string_view(d->get_string()), reply->status);
      }
    }
    return tl::unexpected(Failure{kExitRefused, detail});
  }
  if (!doc) {
    return tl::unexpected(Failure{
        kExitRefused, fmt::format("the server at {} sent a response that is not JSON; is it a "
                                  "qmtl server?",
                                  g.gateway_url)});
  }
  return std::move(*doc);
}

std::optional<boost::json::value> answer_for_table(const Globals& g, HttpCall call,
                                                   std::ostream& out, std::ostream& err, int& rc) {
  auto r = call_server(g, std::move(call));
  if (!r) {
    rc = report(r.error(), err);
    return std::nullopt;
  }
  rc = kExitOk;
  if (g.json()) {
    print_json(*r, out);
    return std::nullopt;
  }
  return std::move(*r);
}

int report(const Failure& f, std::ostream& err) {
  err << "qmtl: " << f.message << '\n';
  return f.exit_code;
}

CliResult<void> check_id(std::string_view what, std::string_view id) {
  if (auto v = validate_id(what, id); !v) {
    return tl::unexpected(Failure{kExitUsage, v.error().message});
  }
  return {};
}

std::string str_field(const boost::json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) return "-";
  if (v->is_string()) return std::string(v->get_string());
  return json::dump(*v);
}

std::string display_time(const std::string& iso) {
  auto t = parse_timestamp(iso);
  if (!t) return iso;
  return format_timestamp(std::chrono::floor<std::chrono::seconds>(*t));
}

std::string display_age(const std::string& iso, TimePoint now) {
  auto t = parse_timestamp(iso);
  if (!t) return "-";
  auto s = std::chrono::duration_cast<std::chrono::seconds>(now - *t).count();
  if (s < 0) s = 0;
  const int64_t d = s / 86400, h = s % 86400 / 3600, m = s % 3600 / 60, sec = s % 60;
  if (d > 0) return fmt::format("{}d {}h", d, h);
  if (h > 0) return fmt::format("{}h {}m", h, m);
  if (m > 0) return fmt::format("{}m {}s", m, sec);
  return fmt::format("{}s", sec);
}

std::string display_number(const boost::json::value* v) {
  if (v == nullptr || !v->is_number()) return "-";
  const double d = v->is_double()  ? v->get_double()
                   : v->is_int64() ? static_cast<double>(v->get_int64())
                                   : static_cast<double>(v->get_uint64());
  if (!std::isfinite(d)) return "-";
  if (d == std::trunc(d) && std::fabs(d) < 1e9) return fmt::format("{}", static_cast<int64_t>(d));
  return fmt::format("{:.4g}", d);
}

void print_json(const boost::json::value& v, std::ostream& out) { out << json::dump(v) << '\n'; }

const boost::json::object& object_at(const boost::json::value& v, std::string_view key) {
  static const boost::json::object kEmpty;
  if (!v.is_object()) return kEmpty;
  const auto* x = v.get_object().if_contains(key);
  return x != nullptr && x->is_object() ? x->get_object() : kEmpty;
}

const boost::json::array& array_at(const boost::json::value& v, std::string_view key) {
  static const boost::json::array kEmpty;
  if (!v.is_object()) return kEmpty;
  const auto* x = v.get_object().if_contains(key);
  return x != nullptr && x->is_array() ? x->get_array() : kEmpty;
}

void print_worlds_table(const boost::json::array& worlds, std::ostream& out) {
  if (worlds.empty()) {
    out << "no worlds yet; create one with `qmtl world create <id>`\n";
    return;
  }
  // The policy in brief and the last evaluation, from the evidence the
  // server adds (policy, last_evaluation); the gates follow the table.
  Table t({"ID", "NAME", "STATE", "POLICY", "TOP_K", "CORRELATION", "SCHEDULE", "LAST RUN", "AT",
           "LIVE"});
  std::vector<std::string> gates;
  for (const auto& w : worlds) {
    if (!w.is_object()) continue;
    const auto& o = w.get_object();
    const auto* p = o.if_contains("policy");
    const boost::json::object* pol = p != nullptr && p->is_object() ? &p->get_object() : nullptr;
    const auto* e = o.if_contains("last_evaluation");
    const boost::json::object* ev = e != nullptr && e->is_object() ? &e->get_object() : nullptr;
    std::string version = "-", top_k = "-", corr = "-", schedule = "-";
    if (pol != nullptr) {
      version = fmt::format("v{}", str_field(*pol, "version"));
      if (str_field(*pol, "form") == "qmtl") {
        schedule = "(QMTL form)";
      } else {
        top_k = str_field(*pol, "top_k");
        schedule = str_field(*pol, "schedule");
        if (const auto* c = pol->if_contains("correlation"); c != nullptr && c->is_object()) {
          corr =
              fmt::format(">= {}, {} per group", display_number(c->as_object().if_contains("max")),
                          str_field(c->as_object(), "per_group"));
        }
        std::string line = fmt::format("{}: promote when {}; demote when {}", str_field(o, "id"),
                                       str_field(*pol, "promote"), str_field(*pol, "demote"));
        if (const auto* r = pol->if_contains("reject"); r != nullptr && r->is_string()) {
          line += fmt::format("; reject when {}", std::string_view(r->get_string()));
        }
        line += fmt::format("; score {}; window {}", str_field(*pol, "score"),
                            str_field(*pol, "window"));
        gates.push_back(std::move(line));
      }
    }
    std::string run = "-", at = "-", live = "-";
    if (ev != nullptr) {
      run = str_field(*ev, "run");
      at = display_time(str_field(*ev, "finished_at"));
      live = std::to_string(array_at(*e, "live").size());
    }
    t.add_row({str_field(o, "id"), str_field(o, "name"), str_field(o, "state"), version, top_k,
               corr, schedule, run, at, live});
  }
  t.print(out);
  if (!gates.empty()) out << '\n';
  for (const auto& g : gates) out << g << '\n';
}

CliResult<boost::json::object> read_strategy_file(const std::string& path) {
  return read_mapping_file(path, "strategy file", "a strategy");
}

CliResult<boost::json::object> strategy_source(const StrategySource& source) {
  auto usage = [](std::string message) {
    return tl::unexpected(Failure{kExitUsage, std::move(message)});
  };
  if (source.file.empty() == source.command.empty()) {
    return usage("give a strategy file or --command \"path/to/program args\", one of them");
  }
  if (source.command.empty()) return read_strategy_file(source.file);
  auto argv = sdk::split_command(source.command);
  if (!argv) return usage("--command: " + argv.error().message);
  auto timeout = parse_duration(source.timeout);
  if (!timeout || *timeout < std::chrono::milliseconds(1) || *timeout > std::chrono::hours(1)) {
    return usage("--timeout takes a duration from 1ms to 1h, such as 5s");
  }
  auto spec = sdk::program_spec(std::move(*argv),
                                std::chrono::duration_cast<std::chrono::milliseconds>(*timeout));
  if (!spec) return usage(spec.error().message);
  return std::move(*spec);
}

CliResult<boost::json::object> read_mapping_file(const std::string& path, std::string_view what,
                                                 std::string_view thing) {
  auto text = read_file(path, what);
  if (!text) return tl::unexpected(Failure{kExitUsage, text.error().message});
  boost::json::value v;
  if (path.ends_with(".json")) {
    auto j = json::parse(*text);
    if (!j)
      return tl::unexpected(Failure{kExitUsage, fmt::format("{}: {}", path, j.error().message)});
    v = std::move(*j);
  } else {
    auto y = policy::yaml_to_json(*text, path);
    if (!y) return tl::unexpected(Failure{kExitUsage, y.error().message});
    v = std::move(*y);
  }
  if (!v.is_object()) {
    return tl::unexpected(
        Failure{kExitUsage, fmt::format("{}: {} must be a mapping of fields", path, thing)});
  }
  return std::move(v.as_object());
}

void print_manual_outcome(const Globals& g, const boost::json::value& answer,
                          const std::string& summary, std::ostream& out, std::ostream& err) {
  const auto& o = answer.as_object();
  if (const auto* w = o.if_contains("warning"); w != nullptr && w->is_string()) {
    err << "qmtl: warning: " << std::string_view(w->get_string()) << '\n';
  }
  if (g.json()) {
    print_json(answer, out);
    return;
  }
  out << summary << '\n';
  if (const auto* f = o.if_contains("forced"); f != nullptr && f->is_string()) {
    out << "  forced past the policy's caps: " << std::string_view(f->get_string()) << '\n';
  }
  const auto* next = o.if_contains("next_evaluation");
  if (next == nullptr || !next->is_object()) return;
  const auto& n = next->as_object();
  std::vector<std::string> reasons;
  for (const auto& r : array_at(*next, "reasons")) {
    if (r.is_string()) reasons.emplace_back(r.get_string());
  }
  out << fmt::format("  next evaluation ({}): {}{}{}\n", display_time(str_field(n, "at")),
                     str_field(n, "decision"), reasons.empty() ? "" : " - ",
                     fmt::join(reasons, "; "));
}

CliResult<std::optional<std::string>> programs_dir_option(const std::optional<std::string>& flag) {
  if (!flag) return std::optional<std::string>();
  if (*flag == "none") return std::optional<std::string>("");
  std::error_code ec;
  const auto dir = std::filesystem::canonical(*flag, ec);
  if (ec || !std::filesystem::is_directory(dir, ec)) {
    return tl::unexpected(
        Failure{kExitUsage, fmt::format("--strategy-programs '{}' is not a directory", *flag)});
  }
  return std::optional<std::string>(dir.string());
}

}  // namespace qmtl::cli
