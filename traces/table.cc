#include "traces/table.h"

#include <algorithm>

#include "traces/format.h"

namespace stepsim::traces {

Table::Table(std::vector<std::string> headers) {
  for (std::string& h : headers) {
    const bool left = !h.empty() && h[0] == '<';
    left_.push_back(left);
    headers_.push_back(left ? h.substr(1) : h);
  }
}

void Table::AddRow(std::vector<std::string> cells) {
  cells.resize(headers_.size());
  rows_.push_back(std::move(cells));
}

std::string Table::Render() const {
  std::vector<size_t> width(headers_.size());
  for (size_t i = 0; i < headers_.size(); ++i) {
    width[i] = headers_[i].size();
    for (const auto& row : rows_) width[i] = std::max(width[i], row[i].size());
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out;
    for (size_t i = 0; i < cells.size(); ++i) {
      const bool last = i + 1 == cells.size();
      std::string cell = left_[i] ? (last ? cells[i] : Left(cells[i], width[i]))
                                  : Right(cells[i], width[i]);
      out += (i ? "  " : "") + cell;
    }
    return out + "\n";
  };
  std::string out = line(headers_);
  for (const auto& row : rows_) out += line(row);
  return out;
}

}  // namespace stepsim::traces
