// ServerMetrics: what GET /metrics exports, in the Prometheus text format.
//
// Counters and histograms are updated as requests, evaluations and applies
// finish; the per-world gauges (worlds by state, strategies by world and state,
// gates by world and state, the last evaluation and the schedule's period, the
// age of dry-run strategies) are read from the store at scrape time so they are
// never out of date. Label values are world ids, route templates, methods and
// status codes: bounded sets, never raw paths or strategy ids.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "qmtl/execution/manager.h"
#include "qmtl/world/world_service.h"

namespace prometheus {
class Registry;
}

namespace qmtl::server {

class ServerMetrics final : public execution::ExecutionMetrics {
 public:
  // `worlds` and `clock` must outlive the metrics; ages are measured on `clock`.
  ServerMetrics(world::WorldService& worlds, const Clock& clock);
  ~ServerMetrics() override;
  ServerMetrics(const ServerMetrics&) = delete;
  ServerMetrics& operator=(const ServerMetrics&) = delete;

  void request(std::string_view method, std::string_view route, int status, double seconds);
  void evaluation(std::string_view world, double seconds, bool ok);
  void apply(std::string_view world, const world::ApplyJournalEntry* done, bool fresh,
             double seconds);
  void events_sent(size_t n);
  // Connections: how many are open now; one refused at the limit; an accept()
  // that failed (no file descriptors or memory).
  void connections_open(size_t n);
  void connection_refused();
  void accept_failed();
  // An alert delivered to a world's webhook or e-mail (`channel` "webhook" or
  // "email"), or given up on.
  void alert(std::string_view world, std::string_view channel, bool delivered);
  // A validation backtest ended: "passed", "rejected" or "failed".
  void validation(std::string_view world, std::string_view outcome) override;
  // The execution manager started a runner (a restart after it ended, or not).
  void runner_started(std::string_view world, bool restart) override;
  // A runner ended that should have kept running.
  void runner_exited(std::string_view world) override;

  // Every metric family render() can produce, with its Prometheus type
  // ("counter", "gauge", "histogram"); a family appears in the text once it has
  // a series. Dashboards and alert rules are checked against it. Thread-safe.
  struct FamilyName {
    std::string_view name;
    std::string_view type;
  };
  static const std::vector<FamilyName>& families();

  // The exposition text of every metric; `open_streams` is the number of event
  // streams open now.
  Result<std::string> render(size_t open_streams);

 private:
  struct Impl;
  world::WorldService& worlds_;
  const Clock& clock_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace qmtl::server
