// A fixture for tests that run the real `qmtl` binary on files they write.
// The including test target defines QMTL_BINARY (and QMTL_SOURCE_DIR).
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace qmtl::testing {

class CliTest : public ::testing::Test {
 protected:
  // Writes `text` to `name` in the test's own directory; returns the path.
  std::string write(const std::string& name, const std::string& text) {
    return write_file(dir_.file(name), text);
  }
  // Runs `qmtl args...` and returns its exit code and output.
  static ProcessResult qmtl(std::vector<std::string> args) {
    args.insert(args.begin(), QMTL_BINARY);
    return run_process(args);
  }
  TempDir dir_;
};

}  // namespace qmtl::testing
