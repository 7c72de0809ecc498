// Timestamps and durations are parsed for every row of every performance record
// a strategy posts, so their cost bounds ingestion throughput.
#include <benchmark/benchmark.h>

#include "qmtl/core/duration.h"
#include "qmtl/core/time.h"

namespace {

void BM_ParseTimestamp(benchmark::State& state) {
  for (auto _ : state) {
    auto t = qmtl::parse_timestamp("2024-03-01T09:30:00.123456Z");
    benchmark::DoNotOptimize(t);
  }
}
BENCHMARK(BM_ParseTimestamp);

void BM_FormatTimestamp(benchmark::State& state) {
  const auto t = *qmtl::parse_timestamp("2024-03-01T09:30:00.123456Z");
  for (auto _ : state) {
    auto s = qmtl::format_timestamp(t);
    benchmark::DoNotOptimize(s);
  }
}
BENCHMARK(BM_FormatTimestamp);

void BM_ParseDuration(benchmark::State& state) {
  for (auto _ : state) {
    auto d = qmtl::parse_duration("500ms");
    benchmark::DoNotOptimize(d);
  }
}
BENCHMARK(BM_ParseDuration);

}  // namespace
