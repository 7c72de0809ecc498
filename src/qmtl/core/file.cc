#include "qmtl/core/file.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace qmtl {

Result<std::string> read_file(const std::string& path, std::string_view what) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    return make_error(ErrorCode::kNotFound,
                      fmt::format("cannot open {} '{}': {}", what, path, std::strerror(errno)));
  }
  std::stringstream ss;
  ss << f.rdbuf();
  if (f.bad()) {
    return make_error(ErrorCode::kNotFound, fmt::format("cannot read {} '{}'", what, path));
  }
  return ss.str();
}

}  // namespace qmtl
