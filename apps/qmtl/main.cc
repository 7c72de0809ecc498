// The `qmtl` executable: a process edge, so exceptions stop here with a message.
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "qmtl/cli/cli.h"

int main(int argc, char** argv) {
  try {
    const std::vector<std::string> args(argv + 1, argv + argc);
    return qmtl::cli::run_cli(args, std::cout, std::cerr);
  } catch (const std::exception& e) {
    std::cerr << "qmtl: internal error: " << e.what() << '\n';
    return 70;  // EX_SOFTWARE
  }
}
