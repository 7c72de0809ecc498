// Activation change -> event received: the time from sending PUT
// /worlds/{id}/activation to reading the matching event on an open event
// stream, over real sockets to a running `qmtl serve`.
//
//   event_latency <url> <token> <world> <strategy> [changes]
//
// Prints p50, p90, p99 and max in milliseconds. Used by bench/load/api_load.sh.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "qmtl/core/http_client.h"
#include "qmtl/sdk/event_stream.h"

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: event_latency <url> <token> <world> <strategy> [changes]\n");
    return 2;
  }
  const std::string url = argv[1], token = argv[2], world = argv[3], strategy = argv[4];
  const int changes = argc > 5 ? std::stoi(argv[5]) : 1000;
  auto sse = qmtl::sdk::EventStream::open(
      {.base_url = url, .token = token, .world = world, .strategy = strategy});
  if (!sse) {
    std::fprintf(stderr, "event_latency: %s\n", sse.error().message.c_str());
    return 1;
  }
  // The next event that is not a heartbeat, within five seconds.
  auto next_event = [&]() -> std::optional<qmtl::sdk::ServerEvent> {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < until) {
      auto e = (*sse)->next(std::chrono::milliseconds(500));
      if (!e) return std::nullopt;
      if (*e && (*e)->type != "heartbeat") return **e;
    }
    return std::nullopt;
  };
  auto snap = next_event();
  if (!snap || snap->type != "snapshot") {
    std::fprintf(stderr, "event_latency: no snapshot from %s\n", url.c_str());
    return 1;
  }
  std::vector<double> ms;
  ms.reserve(static_cast<size_t>(changes));
  for (int i = 0; i < changes; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    auto r = qmtl::http_request(
        url, {.method = "PUT",
              .path = fmt::format("/worlds/{}/activation", world),
              .body = fmt::format(R"({{"strategy":"{}","side":"long","active":{}}})", strategy,
                                  i % 2 == 0 ? "false" : "true"),
              .bearer_token = token});
    if (!r || r->status != 200) {
      std::fprintf(stderr, "event_latency: PUT failed: %s\n",
                   r ? r->body.c_str() : r.error().message.c_str());
      return 1;
    }
    auto e = next_event();
    const auto t1 = std::chrono::steady_clock::now();
    if (!e || e->type != "activation") {
      std::fprintf(stderr, "event_latency: no event for change %d\n", i);
      return 1;
    }
    ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  auto pct = [&](double p) {
    return ms[static_cast<size_t>(p * static_cast<double>(ms.size() - 1))];
  };
  std::printf("event_latency changes=%d p50=%.3fms p90=%.3fms p99=%.3fms max=%.3fms\n", changes,
              pct(0.5), pct(0.9), pct(0.99), ms.back());
  return 0;
}
