// The JSON shapes of docs/api.md, shared by the API responses and the event stream
// so that a world, a strategy or an activation entry looks the same everywhere.
// Internal to the server part.
//
// Thread safety: pure functions.
#pragma once

#include <boost/json.hpp>
#include <vector>

#include "qmtl/world/world_service.h"

namespace qmtl::server {

boost::json::object world_json(const world::World& w);
boost::json::object strategy_json(const world::Strategy& s);
// `with_document` adds the submitted document and its canonical form.
boost::json::object policy_json(const world::PolicyVersion& p, bool current, bool with_document);
boost::json::object audit_json(const world::AuditRecord& a);
boost::json::object apply_json(const world::ApplyJournalEntry& e);
// [{"ts", "equity"}...] and [{"ts", "symbol", "side", "qty", "price", "fee"}...].
boost::json::array points_json(const std::vector<world::PerformancePoint>& points);
boost::json::array fills_json(const std::vector<store::FillRecord>& fills);
// {"seq", "strategy", "from" (null for the submission), "to", "at", "event",
// "actor", "reason", "run_id" (or null)}
boost::json::object transition_json(const world::StrategyTransition& t);
// {"strategy", "world", "kind", "total_points", "points": [{"ts", "equity"}],
// "total_fills", "fills": [...], "periods": [{"kind", "from", "to" | null}]}
boost::json::object performance_view_json(const world::PerformanceView& v,
                                          std::optional<world::RecordKind> kind);
// The outcome of a manual promotion, demotion or gate override: {"queued",
// "strategy" (without its spec), "apply_id", "forced", "next_evaluation": {"at", "decision",
// "reasons", "undoes"} | null, "warning"}, and "entry" for a gate override.
boost::json::object manual_outcome_json(const world::WorldService::ManualOutcome& o, int64_t ttl_s);
// The run as stored (docs/api.md, evaluation runs) with its id.
boost::json::object evaluation_json(const world::EvaluationRunRecord& run);
// One line per run: id, times, policy version and the decision per strategy.
boost::json::object evaluation_summary_json(const world::EvaluationRunRecord& run);

// The evidence lists carry (the design's `world list` and `strategy list`):
//  - a world's policy in brief: {"version", "form": "native"|"qmtl", and for a
//    native one "promote", "demote", "reject", "score", "top_k", "correlation":
//    {"max", "per_group"}, "window", "min_dry_run", "schedule": "every 1d" |
//    "cron 0 0 * * 1", "hysteresis": {"promote_after", "demote_after"}}, or null;
//  - its last evaluation: {"run", "finished_at", "policy_version", "live": [ids],
//    "decisions": {"PROMOTE": n, ...}}, or null;
//  - a strategy's result in that evaluation: {"run", "at", "decision", "score",
//    "rank", "group", "metrics": {...}}, or null when it was not in it.
boost::json::value policy_summary_json(const std::optional<world::WorldService::ParsedPolicy>& p);
boost::json::value last_evaluation_json(const std::optional<world::EvaluationRunRecord>& run);
boost::json::value strategy_evaluation_json(const world::EvaluationRunRecord& run,
                                            const boost::json::value& detail,
                                            std::string_view strategy_id);

// An activation entry; `ttl_s` is how long a runner may trust it without hearing
// from the server again.
boost::json::object activation_json(const world::Activation& a, int64_t ttl_s);
// The version of a world's activation set: it grows with every change of any entry.
int64_t activation_set_version(const std::vector<world::Activation>& entries);
// {"version", "entries"}; entries of `strategy` only when it is not empty.
boost::json::object activation_set_json(const std::vector<world::Activation>& entries,
                                        int64_t ttl_s, std::string_view strategy = {});

// Strong ETag text for a version number: "\"<n>\"".
std::string etag(int64_t version);
// The version in an If-Match / If-None-Match value ("\"3\"", "3" or W/"3");
// kInvalidArgument naming `header` otherwise. "*" is not supported: callers must
// say which version they read.
Result<int64_t> parse_etag(std::string_view value, std::string_view header);

}  // namespace qmtl::server
