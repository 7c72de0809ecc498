// Aligned text tables for people reading a terminal.
//
// Thread safety: a Table is a plain value.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace qmtl::cli {

class Table {
 public:
  explicit Table(std::vector<std::string> headers) : headers_(std::move(headers)) {}
  // Adds a row; missing trailing cells print empty, extra cells are an error
  // caught by an assert in debug builds.
  void add_row(std::vector<std::string> cells);
  // Writes headers and rows, columns separated by two spaces, widths measured in
  // terminal cells (CJK and emoji count two), no trailing spaces.
  void print(std::ostream& out) const;

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace qmtl::cli
