#include "qmtl/cli/policy_command.h"

#include <fmt/format.h>

#include <boost/json.hpp>

#include "qmtl/cli/cli.h"
#include "qmtl/cli/table.h"
#include "qmtl/core/duration.h"
#include "qmtl/core/file.h"
#include "qmtl/core/json.h"
#include "qmtl/policy/document.h"
#include "qmtl/policy/offline.h"
#include "qmtl/policy/selection.h"

namespace qmtl::cli {
namespace {

using namespace qmtl::policy;

Result<boost::json::value> read_json(const std::string& path) {
  auto text = read_file(path);
  if (!text) return propagate(text);
  auto doc = json::parse(*text);
  if (!doc) return make_error(doc.error().code, fmt::format("{}: {}", path, doc.error().message));
  return doc;
}

}  // namespace

int run_policy_check(const std::string& path, bool as_json, std::ostream& out, std::ostream& err) {
  auto doc = read_policy_document(path);
  if (!doc) {
    err << "qmtl: " << doc.error().message << '\n';
    return kExitUsage;
  }
  const PolicySummary summary = summarize_policy(*doc);
  if (as_json) {
    out << json::dump(policy_summary_json(summary)) << '\n';
  } else {
    out << fmt::format(
        "{}: ok ({} form); reads {}\n", path, summary.form == "qmtl" ? "QMTL" : "native",
        summary.metrics.empty() ? std::string("no metrics")
                                : fmt::format("{}", fmt::join(summary.metrics, ", ")));
  }
  return kExitOk;
}

namespace {

void print_results(const OfflineResult& r, bool as_json, std::ostream& out) {
  if (as_json) {
    out << json::dump(offline_result_json(r)) << '\n';
    return;
  }
  Table t({"STRATEGY", "DECISION", "RANK", "SCORE", "GROUP", "REASONS"});
  for (const auto& x : r.results) {
    t.add_row({x.id, std::string(decision_name(x.decision)), x.rank ? std::to_string(*x.rank) : "-",
               x.score ? fmt::format("{:.4f}", *x.score) : "-",
               x.group ? std::to_string(*x.group) : "-",
               fmt::format("{}", fmt::join(x.reasons, "; "))});
  }
  t.print(out);
  if (r.profile) out << fmt::format("\nvalidation profile: {}", *r.profile);
  out << fmt::format(
      "\nlive after this evaluation: {}\n",
      r.selected.empty() ? "(none)" : fmt::format("{}", fmt::join(r.selected, ", ")));
}

}  // namespace

int run_policy_eval(const PolicyEvalOptions& o, std::ostream& out, std::ostream& err) {
  auto fail = [&](const Error& e) {
    err << "qmtl: " << e.message << '\n';
    return kExitUsage;
  };
  TimePoint now = SystemClock().now();
  if (o.now) {
    auto t = parse_timestamp(*o.now);
    if (!t) {
      err << "qmtl: --now: " << t.error().message << '\n';
      return kExitUsage;
    }
    now = *t;
  }
  auto doc = read_policy_document(o.policy);
  if (!doc) return fail(doc.error());
  const bool qmtl_form = std::holds_alternative<QmtlPolicy>(*doc);
  if (qmtl_form && o.history) {
    err << "qmtl: --history applies to native policies; QMTL's hysteresis uses --previous\n";
    return kExitUsage;
  }
  if (!qmtl_form && o.stage) {
    err << "qmtl: --stage applies to QMTL policies with validation_profiles\n";
    return kExitUsage;
  }
  OfflineInputs in{.previous = o.previous,
                   .now = now,
                   .stage = o.stage,
                   .metrics_name = o.metrics,
                   .correlations_name = o.correlations.value_or(""),
                   .history_name = o.history.value_or(""),
                   .previous_name = "--previous"};
  auto metrics = read_json(o.metrics);
  if (!metrics) return fail(metrics.error());
  in.metrics = std::move(*metrics);
  for (auto [path, into] :
       {std::pair{&o.correlations, &in.correlations}, std::pair{&o.history, &in.history}}) {
    if (!*path) continue;
    auto d = read_json(**path);
    if (!d) return fail(d.error());
    *into = std::move(*d);
  }
  auto r = evaluate_offline(*doc, in);
  if (!r) return fail(r.error());
  print_results(*r, o.json, out);
  return kExitOk;
}

}  // namespace qmtl::cli
