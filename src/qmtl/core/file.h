// Reading whole files for the parsers (CSV series, policies, JSON inputs).
//
// Thread safety: pure function.
#pragma once

#include <string>
#include <string_view>

#include "qmtl/core/result.h"

namespace qmtl {

// The bytes of the file at `path`. kNotFound, naming `what` (e.g. "policy file")
// and the path with the system's reason, if it cannot be opened or read.
Result<std::string> read_file(const std::string& path, std::string_view what = "file");

}  // namespace qmtl
