// The `qmtl` command line (docs/cli.md).
//
// run_cli() parses arguments, talks to the server over HTTP (or runs the server
// for `qmtl serve`), writes results to `out` and one-line errors to `err`, and
// returns the process exit code:
//   0 ok, 1 refused by the server, 2 usage error, 3 server unreachable.
//
// Thread safety: not reentrant with respect to the streams it is given.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace qmtl::cli {

enum ExitCode : int { kExitOk = 0, kExitRefused = 1, kExitUsage = 2, kExitUnreachable = 3 };

// `args` excludes the program name. QMTL_GATEWAY_URL is read from the process
// environment; flags win over it.
int run_cli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace qmtl::cli
