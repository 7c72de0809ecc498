#include "qmtl/server/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <array>
#include <map>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "qmtl/core/duration.h"

namespace qmtl::server {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;
using prometheus::ClientMetric;
using prometheus::Counter;
using prometheus::Family;
using prometheus::Gauge;
using prometheus::Histogram;
using prometheus::MetricFamily;
using prometheus::MetricType;

const Histogram::BucketBoundaries& request_buckets() {
  static const Histogram::BucketBoundaries kBuckets{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                    0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                                    1,      2.5,     5,      10};
  return kBuckets;
}

const Histogram::BucketBoundaries& job_buckets() {
  static const Histogram::BucketBoundaries kBuckets{
      0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};
  return kBuckets;
}

MetricFamily gauge_family(std::string name, std::string help) {
  return MetricFamily{.name = std::move(name), .help = std::move(help), .type = MetricType::Gauge};
}

// The period of a stored schedule: the duration of "every 1d"; for a cron
// schedule, the gap between its last and its next run.
std::optional<Duration> schedule_period(const std::optional<store::ScheduleState>& s) {
  if (!s) return std::nullopt;
  if (s->spec.starts_with("every ")) {
    if (auto d = parse_duration(std::string_view(s->spec).substr(6)); d && d->count() > 0) {
      return *d;
    }
  }
  if (s->last_run && s->next_run > *s->last_run) return s->next_run - *s->last_run;
  return std::nullopt;
}

void add_gauge(MetricFamily& f, std::vector<ClientMetric::Label> labels, double value) {
  ClientMetric m;
  // Sorted like the registry's own families, so every line reads the same way.
  std::sort(labels.begin(), labels.end());
  m.label = std::move(labels);
  m.gauge.value = value;
  f.metric.push_back(std::move(m));
}

}  // namespace

struct ServerMetrics::Impl {
  Impl()
      : registry(std::make_shared<prometheus::Registry>()),
        requests(BuildCounter()
                     .Name("qmtl_http_requests_total")
                     .Help("HTTP requests by method, route template and status code")
                     .Register(*registry)),
        request_seconds(BuildHistogram()
                            .Name("qmtl_http_request_duration_seconds")
                            .Help("HTTP request handling time by route template")
                            .Register(*registry)),
        evaluations(BuildCounter()
                        .Name("qmtl_evaluations_total")
                        .Help("World evaluations by outcome (ok or error)")
                        .Register(*registry)),
        evaluation_seconds(BuildHistogram()
                               .Name("qmtl_evaluation_duration_seconds")
                               .Help("Time to evaluate a world, successful runs and failures")
                               .Register(*registry)),
        applies(BuildCounter()
                    .Name("qmtl_applies_total")
                    .Help("Two-phase applies of evaluation runs that completed")
                    .Register(*registry)),
        apply_failures(BuildCounter()
                           .Name("qmtl_apply_failures_total")
                           .Help("Two-phase applies that were refused or failed")
                           .Register(*registry)),
        apply_seconds(BuildHistogram()
                          .Name("qmtl_apply_duration_seconds")
                          .Help("Time to apply an evaluation run (freeze, switch, unfreeze)")
                          .Register(*registry)),
        promotions(BuildCounter()
                       .Name("qmtl_promotions_total")
                       .Help("Strategies promoted to Live by applied evaluation runs")
                       .Register(*registry)),
        demotions(BuildCounter()
                      .Name("qmtl_demotions_total")
                      .Help("Strategies demoted from Live by applied evaluation runs")
                      .Register(*registry)),
        events(BuildCounter()
                   .Name("qmtl_events_sent_total")
                   .Help("Server-sent events written to event streams (heartbeats excluded)")
                   .Register(*registry)),
        events_counter(events.Add({})),
        connections(BuildGauge()
                        .Name("qmtl_http_connections_open")
                        .Help("HTTP connections open now, event streams included")
                        .Register(*registry)
                        .Add({})),
        refused(BuildCounter()
                    .Name("qmtl_http_connections_refused_total")
                    .Help("Connections answered 503 because --max-connections were open")
                    .Register(*registry)
                    .Add({})),
        accept_errors(BuildCounter()
                          .Name("qmtl_http_accept_errors_total")
                          .Help("accept() failures (out of file descriptors or memory); "
                                "accepting pauses while they last")
                          .Register(*registry)
                          .Add({})),
        alerts(BuildCounter()
                   .Name("qmtl_alerts_total")
                   .Help("Alerts to world webhooks by result (delivered or failed after retries)")
                   .Register(*registry)),
        validations(BuildCounter()
                        .Name("qmtl_validations_total")
                        .Help("Validation backtests finished, by outcome (passed, rejected, "
                              "failed)")
                        .Register(*registry)),
        runner_starts(BuildCounter()
                          .Name("qmtl_runner_starts_total")
                          .Help("Strategy runners started by the server; restarts have "
                                "restart=\"true\"")
                          .Register(*registry)),
        runner_exits(BuildCounter()
                         .Name("qmtl_runner_exits_total")
                         .Help("Strategy runners that ended while they should have been running")
                         .Register(*registry)) {}

  std::shared_ptr<prometheus::Registry> registry;
  Family<Counter>& requests;
  Family<Histogram>& request_seconds;
  Family<Counter>& evaluations;
  Family<Histogram>& evaluation_seconds;
  Family<Counter>& applies;
  Family<Counter>& apply_failures;
  Family<Histogram>& apply_seconds;
  Family<Counter>& promotions;
  Family<Counter>& demotions;
  Family<Counter>& events;
  Counter& events_counter;
  Gauge& connections;
  Counter& refused;
  Counter& accept_errors;
  Family<Counter>& alerts;
  Family<Counter>& validations;
  Family<Counter>& runner_starts;
  Family<Counter>& runner_exits;

  // The request counter and histogram of each (method, route, code), found once:
  // Family::Add builds a label map per call, which costs more than the request
  // itself on the cheapest routes.
  struct RequestSeries {
    Counter* count;
    Histogram* seconds;
  };
  std::mutex series_mu;
  std::unordered_map<std::string, RequestSeries> series;
};

const std::vector<ServerMetrics::FamilyName>& ServerMetrics::families() {
  static const std::vector<FamilyName> kFamilies = {
      {"qmtl_http_requests_total", "counter"},
      {"qmtl_http_request_duration_seconds", "histogram"},
      {"qmtl_evaluations_total", "counter"},
      {"qmtl_evaluation_duration_seconds", "histogram"},
      {"qmtl_applies_total", "counter"},
      {"qmtl_apply_failures_total", "counter"},
      {"qmtl_apply_duration_seconds", "histogram"},
      {"qmtl_promotions_total", "counter"},
      {"qmtl_demotions_total", "counter"},
      {"qmtl_events_sent_total", "counter"},
      {"qmtl_http_connections_open", "gauge"},
      {"qmtl_http_connections_refused_total", "counter"},
      {"qmtl_http_accept_errors_total", "counter"},
      {"qmtl_alerts_total", "counter"},
      {"qmtl_validations_total", "counter"},
      {"qmtl_runner_starts_total", "counter"},
      {"qmtl_runner_exits_total", "counter"},
      {"qmtl_worlds", "gauge"},
      {"qmtl_strategies", "gauge"},
      {"qmtl_gates", "gauge"},
      {"qmtl_world_last_evaluation_timestamp_seconds", "gauge"},
      {"qmtl_world_evaluation_period_seconds", "gauge"},
      {"qmtl_dry_run_age_max_seconds", "gauge"},
      {"qmtl_dry_run_age_mean_seconds", "gauge"},
      {"qmtl_event_streams_open", "gauge"},
  };
  return kFamilies;
}

ServerMetrics::ServerMetrics(world::WorldService& worlds, const Clock& clock)
    : worlds_(worlds), clock_(clock), impl_(std::make_unique<Impl>()) {}
ServerMetrics::~ServerMetrics() = default;

void ServerMetrics::request(std::string_view method, std::string_view route, int status,
                            double seconds) {
  std::string key;
  key.reserve(method.size() + route.size() + 8);
  key.append(method).append(1, ' ').append(route).append(1, ' ').append(std::to_string(status));
  Impl::RequestSeries s{};
  {
    std::lock_guard lock(impl_->series_mu);
    auto it = impl_->series.find(key);
    if (it == impl_->series.end()) {
      auto& count = impl_->requests.Add({{"method", std::string(method)},
                                         {"route", std::string(route)},
                                         {"code", std::to_string(status)}});
      auto& secs = impl_->request_seconds.Add({{"route", std::string(route)}}, request_buckets());
      it = impl_->series.emplace(std::move(key), Impl::RequestSeries{&count, &secs}).first;
    }
    s = it->second;
  }
  s.count->Increment();
  s.seconds->Observe(seconds);
}

void ServerMetrics::evaluation(std::string_view world, double seconds, bool ok) {
  const std::string w(world);
  impl_->evaluations.Add({{"world", w}, {"outcome", ok ? "ok" : "error"}}).Increment();
  impl_->evaluation_seconds.Add({{"world", w}}, job_buckets()).Observe(seconds);
}

void ServerMetrics::apply(std::string_view world, const world::ApplyJournalEntry* done, bool fresh,
                          double seconds) {
  const std::string w(world);
  impl_->apply_seconds.Add({{"world", w}}, job_buckets()).Observe(seconds);
  if (done == nullptr) {
    impl_->apply_failures.Add({{"world", w}}).Increment();
    return;
  }
  impl_->applies.Add({{"world", w}}).Increment();
  if (!fresh) return;  // an already applied run: its moves were counted then
  impl_->promotions.Add({{"world", w}}).Increment(static_cast<double>(done->promote.size()));
  impl_->demotions.Add({{"world", w}}).Increment(static_cast<double>(done->demote.size()));
}

void ServerMetrics::events_sent(size_t n) {
  impl_->events_counter.Increment(static_cast<double>(n));
}

void ServerMetrics::connections_open(size_t n) { impl_->connections.Set(static_cast<double>(n)); }

void ServerMetrics::connection_refused() { impl_->refused.Increment(); }

void ServerMetrics::accept_failed() { impl_->accept_errors.Increment(); }

void ServerMetrics::alert(std::string_view world, std::string_view channel, bool delivered) {
  impl_->alerts
      .Add({{"world", std::string(world)},
            {"channel", std::string(channel)},
            {"result", delivered ? "delivered" : "failed"}})
      .Increment();
}

void ServerMetrics::validation(std::string_view world, std::string_view outcome) {
  impl_->validations.Add({{"world", std::string(world)}, {"outcome", std::string(outcome)}})
      .Increment();
}

void ServerMetrics::runner_started(std::string_view world, bool restart) {
  impl_->runner_starts.Add({{"world", std::string(world)}, {"restart", restart ? "true" : "false"}})
      .Increment();
}

void ServerMetrics::runner_exited(std::string_view world) {
  impl_->runner_exits.Add({{"world", std::string(world)}}).Increment();
}

Result<std::string> ServerMetrics::render(size_t open_streams) {
  auto families = impl_->registry->Collect();

  auto worlds = worlds_.list_worlds();
  if (!worlds) return propagate(worlds);
  MetricFamily world_states = gauge_family("qmtl_worlds", "Worlds by state");
  std::map<std::string, int> by_state{
      {"Active", 0}, {"EvalOnly", 0}, {"Paused", 0}, {"Retired", 0}};
  MetricFamily strategies =
      gauge_family("qmtl_strategies", "Strategies by world and lifecycle state");
  MetricFamily gates = gauge_family(
      "qmtl_gates", "Activation gates (strategy sides) by world and state: open, closed, frozen");
  MetricFamily last_eval = gauge_family(
      "qmtl_world_last_evaluation_timestamp_seconds",
      "When the world's latest evaluation run finished (Unix seconds); absent before the first");
  MetricFamily period = gauge_family(
      "qmtl_world_evaluation_period_seconds",
      "The world's evaluation period from its policy's schedule, for scheduled Active and "
      "EvalOnly worlds");
  MetricFamily dry_max =
      gauge_family("qmtl_dry_run_age_max_seconds",
                   "How long the world's longest-waiting DryRun strategy has been in DryRun");
  MetricFamily dry_mean =
      gauge_family("qmtl_dry_run_age_mean_seconds",
                   "Mean time the world's DryRun strategies have been in DryRun");
  static constexpr std::array kStates = {"Submitted", "Validating", "Rejected", "DryRun",
                                         "Live",      "Inactive",   "Archived"};
  const TimePoint now = clock_.now();
  const auto seconds = [](Duration d) { return std::chrono::duration<double>(d).count(); };
  for (const auto& w : *worlds) {
    ++by_state[std::string(lifecycle::world_state_name(w.state))];
    auto list = worlds_.list_strategies(w.id);
    if (!list) return propagate(list);
    std::map<std::string, int> counts;
    for (const char* s : kStates) counts[s] = 0;
    double dry_total = 0, dry_oldest = 0;
    int dry_n = 0;
    for (const auto& s : *list) {
      ++counts[std::string(lifecycle::strategy_state_name(s.state))];
      if (s.state == lifecycle::StrategyState::kDryRun) {
        const double age = std::max(0.0, seconds(now - s.state_since));
        dry_total += age;
        dry_oldest = std::max(dry_oldest, age);
        ++dry_n;
      }
    }
    if (dry_n > 0) {
      add_gauge(dry_max, {{"world", w.id}}, dry_oldest);
      add_gauge(dry_mean, {{"world", w.id}}, dry_total / dry_n);
    }
    auto last = worlds_.last_evaluation_finished(w.id);
    if (!last) return propagate(last);
    if (*last) add_gauge(last_eval, {{"world", w.id}}, seconds((*last)->time_since_epoch()));
    if (w.state == lifecycle::WorldState::kActive || w.state == lifecycle::WorldState::kEvalOnly) {
      auto sched = worlds_.get_schedule(w.id);
      if (!sched) return propagate(sched);
      if (auto p = schedule_period(*sched)) add_gauge(period, {{"world", w.id}}, seconds(*p));
    }
    for (const auto& [state, n] : counts) {
      add_gauge(strategies, {{"world", w.id}, {"state", state}}, n);
    }
    auto acts = worlds_.list_activations(w.id);
    if (!acts) return propagate(acts);
    int open = 0, closed = 0, frozen = 0;
    for (const auto& a : *acts) {
      if (a.frozen) {
        ++frozen;
      } else if (a.active) {
        ++open;
      } else {
        ++closed;
      }
    }
    add_gauge(gates, {{"world", w.id}, {"state", "open"}}, open);
    add_gauge(gates, {{"world", w.id}, {"state", "closed"}}, closed);
    add_gauge(gates, {{"world", w.id}, {"state", "frozen"}}, frozen);
  }
  for (const auto& [state, n] : by_state) add_gauge(world_states, {{"state", state}}, n);
  MetricFamily streams = gauge_family("qmtl_event_streams_open", "Open server-sent event streams");
  add_gauge(streams, {}, static_cast<double>(open_streams));
  families.push_back(std::move(world_states));
  families.push_back(std::move(strategies));
  families.push_back(std::move(gates));
  families.push_back(std::move(last_eval));
  families.push_back(std::move(period));
  families.push_back(std::move(dry_max));
  families.push_back(std::move(dry_mean));
  families.push_back(std::move(streams));
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace qmtl::server
