// Activation change -> gate flip in a connected runner: the time from sending
// PUT /worlds/{id}/activation to the moment a running sdk::Runner::run has the
// new entry in its OrderGate (its on_gate callback sees it), over real sockets
// to a running `qmtl serve`. The runner reads a feed that never has a bar, so
// only the event path is measured.
//
//   gate_flip <url> <token> <world> <strategy> [changes]
//
// Prints p50, p90, p99 and max in milliseconds. Used by bench/load/api_load.sh.
#include <fmt/format.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "qmtl/core/http_client.h"
#include "qmtl/sdk/runner.h"

namespace {

// A market that is closed: no bars, ever.
class QuietFeed final : public qmtl::sdk::BarFeed {
 public:
  qmtl::Result<qmtl::sdk::FeedItem> next(std::chrono::milliseconds timeout) override {
    std::this_thread::sleep_for(timeout);
    return qmtl::sdk::FeedItem{};
  }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: gate_flip <url> <token> <world> <strategy> [changes]\n");
    return 2;
  }
  const std::string url = argv[1], token = argv[2], world = argv[3], strategy = argv[4];
  const int changes = argc > 5 ? std::stoi(argv[5]) : 1000;
  auto spec = qmtl::sdk::parse_strategy(boost::json::parse(R"({
      "inputs": {"close": {"interval": "1m"}},
      "nodes": {"r": {"indicator": "returns", "input": "close"}},
      "orders": {"signal": "r", "symbol": "X", "qty": 1}})"));
  if (!spec) return 1;

  std::mutex mu;
  std::condition_variable cv;
  std::optional<bool> active;  // the long entry as the gate has it
  bool connected = false;
  std::stop_source stop;
  QuietFeed feed;
  qmtl::sdk::RunOptions options{
      .gateway_url = url,
      .token = token,
      .world_id = world,
      .strategy_id = strategy,
      .post_every = std::chrono::milliseconds(60'000),
      .stop = stop.get_token(),
      .on_gate =
          [&](const qmtl::sdk::OrderGate::View& v) {
            std::lock_guard lock(mu);
            connected = v.connected;
            active = v.entries[0] ? std::optional<bool>(v.entries[0]->active) : std::nullopt;
            cv.notify_all();
          },
      .log = [](std::string_view line) { fmt::print(stderr, "gate_flip: {}\n", line); }};
  std::thread runner([&] { (void)qmtl::sdk::Runner::run(std::move(*spec), feed, options); });
  {
    std::unique_lock lock(mu);
    if (!cv.wait_for(lock, std::chrono::seconds(10), [&] { return connected; })) {
      std::fprintf(stderr, "gate_flip: the runner did not connect to %s\n", url.c_str());
      stop.request_stop();
      lock.unlock();
      runner.join();
      return 1;
    }
  }
  std::vector<double> ms;
  ms.reserve(static_cast<size_t>(changes));
  int status = 0;
  for (int i = 0; i < changes && status == 0; ++i) {
    const bool want = i % 2 != 0;
    {
      std::lock_guard lock(mu);
      if (active == want) continue;  // already there (the first change)
    }
    const auto t0 = std::chrono::steady_clock::now();
    auto r = qmtl::http_request(
        url, {.method = "PUT",
              .path = fmt::format("/worlds/{}/activation", world),
              .body = fmt::format(R"({{"strategy":"{}","side":"long","active":{}}})", strategy,
                                  want ? "true" : "false"),
              .bearer_token = token});
    if (!r || r->status != 200) {
      std::fprintf(stderr, "gate_flip: PUT failed: %s\n",
                   r ? r->body.c_str() : r.error().message.c_str());
      status = 1;
      break;
    }
    std::unique_lock lock(mu);
    if (!cv.wait_for(lock, std::chrono::seconds(5), [&] { return active == want; })) {
      std::fprintf(stderr, "gate_flip: the gate did not flip within 5 s\n");
      status = 1;
      break;
    }
    ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  stop.request_stop();
  runner.join();
  if (status != 0 || ms.empty()) return 1;
  std::sort(ms.begin(), ms.end());
  auto pct = [&](double p) {
    return ms[std::min(ms.size() - 1, static_cast<size_t>(p * static_cast<double>(ms.size())))];
  };
  fmt::print("flips={} p50={:.3f}ms p90={:.3f}ms p99={:.3f}ms max={:.3f}ms\n", ms.size(), pct(0.5),
             pct(0.9), pct(0.99), ms.back());
  return 0;
}
