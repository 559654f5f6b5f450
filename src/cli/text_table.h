#pragma once

#include <string>
#include <vector>

namespace keel::cli {

// A plain-text table with aligned columns, for command output.
// Thread-safety: none.
class TextTable {
 public:
  explicit TextTable(std::vector<std::string> header) : rows_{std::move(header)} {}
  void AddRow(std::vector<std::string> row) { rows_.push_back(std::move(row)); }

  // Header, a rule, then the rows; columns separated by two spaces.
  std::string ToString() const {
    std::vector<size_t> widths;
    for (const auto& row : rows_) {
      for (size_t column = 0; column < row.size(); ++column) {
        if (widths.size() <= column) widths.push_back(0);
        widths[column] = std::max(widths[column], row[column].size());
      }
    }
    std::string out;
    for (size_t row_idx = 0; row_idx < rows_.size(); ++row_idx) {
      const auto& row = rows_[row_idx];
      std::string line;
      for (size_t column = 0; column < row.size(); ++column) {
        line += row[column];
        if (column + 1 < row.size())
          line += std::string(widths[column] - row[column].size() + 2, ' ');
      }
      out += line + "\n";
      if (row_idx == 0) {
        size_t total = 0;
        for (size_t width : widths) total += width + 2;
        out += std::string(total > 2 ? total - 2 : 0, '-') + "\n";
      }
    }
    return out;
  }

 private:
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace keel::cli
