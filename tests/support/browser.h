// A real headless Chromium (Debian's, installed by scripts/setup.sh) for tests
// of what people look at: reports now, the console next.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "tests/support/process.h"

namespace qmtl::testing {

// The page at `url` (file:// or http://) as Chromium leaves it once its
// scripts ran. `profile` is an empty directory of the test's own. The flags
// keep Chromium off the network it would otherwise call on start.
inline std::string rendered_dom(const std::string& chromium, const std::string& url,
                                const std::string& profile) {
  auto r = run_process(
      {chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
       "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
       "--user-data-dir=" + profile, "--virtual-time-budget=5000", "--dump-dom", url},
      {});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.out;
}

// The opening tag and text of the report's #status element, which says what
// it drew (data-charts, data-series) or what failed (data-errors); empty if absent.
inline std::string report_status(const std::string& dom) {
  const auto at = dom.find("<p id=\"status\"");
  if (at == std::string::npos) return {};
  return dom.substr(at, dom.find("</p>", at) - at);
}

}  // namespace qmtl::testing
