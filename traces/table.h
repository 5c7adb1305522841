// A plain-text table for terminal summaries: columns sized to their widest
// cell, numbers right-aligned.
#ifndef STEPSIM_TRACES_TABLE_H_
#define STEPSIM_TRACES_TABLE_H_

#include <string>
#include <vector>

namespace stepsim::traces {

class Table {
 public:
  // A header per column; a header starting with '<' is left-aligned (the
  // '<' is not printed), others are right-aligned.
  explicit Table(std::vector<std::string> headers);

  void AddRow(std::vector<std::string> cells);
  // Lines of the table, each ending in '\n', columns two spaces apart.
  std::string Render() const;

 private:
  std::vector<std::string> headers_;
  std::vector<bool> left_;
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace stepsim::traces

#endif  // STEPSIM_TRACES_TABLE_H_
