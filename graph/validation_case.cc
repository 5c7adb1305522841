#include "graph/validation_case.h"

#include <google/protobuf/text_format.h>

#include "graph/scenario_text.h"

namespace stepsim::graph {
namespace {

using google::protobuf::TextFormat;

// Where field `f` (item `index` if repeated) was set in `text`: 1-based
// line and byte column (protobuf counts a tab to the next multiple of 8).
TextPlace Place(std::string_view text, const TextFormat::ParseInfoTree* tree,
                const google::protobuf::FieldDescriptor* f, int index, TextPlace fallback) {
  if (tree == nullptr) return fallback;
  const google::protobuf::TextFormat::ParseLocationRange range =
      tree->GetLocationRange(f, f->is_repeated() ? index : -1);
  if (range.start.line < 0) return fallback;
  const size_t offset = ProtobufOffset(text, range.start.line, range.start.column);
  const size_t newline = offset == 0 ? std::string_view::npos : text.rfind('\n', offset - 1);
  const size_t line_start = newline == std::string_view::npos ? 0 : newline + 1;
  return {range.start.line + 1, static_cast<int>(offset - line_start) + 1};
}

}  // namespace

Status ParsedCase::ErrorAt(const TextPlace& place, const std::string& message) const {
  return Status::Invalid(LocatedError(text, filename, place.line, place.col, message));
}

StatusOr<ParsedCase> ParseValidationCase(std::string_view text, std::string_view filename) {
  // Without its byte-order mark, as ParseTextMessage reads it, so that the
  // places below and its error messages count from the same first column.
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  ParsedCase c;
  c.text = std::string(text);
  c.filename = std::string(filename);
  std::string parsed_text;
  Status parsed = ParseTextMessage(text, filename, &c.value, nullptr, &parsed_text);
  if (!parsed.ok()) return parsed;
  // Parse again to learn where each field stands: the text as it parsed
  // (enum names in any letter case rewritten in place), known good.
  TextFormat::ParseInfoTree tree;
  TextFormat::Parser parser;
  parser.WriteLocationsTo(&tree);
  parser.SetRecursionLimit(32);
  ValidationCase again;
  parser.ParseFromString(parsed_text, &again);
  const auto* d = ValidationCase::descriptor();
  const auto* md = Measurement::descriptor();
  c.name = Place(text, &tree, d->FindFieldByName("name"), -1, {});
  const ValidationCase& v = c.value;
  for (int i = 0; i < v.measured_size(); ++i) {
    const TextPlace block = Place(text, &tree, d->FindFieldByName("measured"), i, {});
    const TextFormat::ParseInfoTree* sub = tree.GetTreeForNested(d->FindFieldByName("measured"), i);
    c.measured.push_back(block);
    c.pp_rank.push_back(Place(text, sub, md->FindFieldByName("pp_rank"), -1, block));
    c.metric.push_back(Place(text, sub, md->FindFieldByName("metric"), -1, block));
  }
  if (v.name().empty()) return c.ErrorAt({1, 1}, "a case needs a name");
  if (v.source().empty()) {
    return c.ErrorAt(c.name, "case \"" + v.name() + "\" needs a source (where the measurement "
                             "comes from)");
  }
  if (!v.has_tolerance()) {
    return c.ErrorAt(c.name, "case \"" + v.name() + "\" needs a tolerance (e.g. 0.05 for 5%)");
  }
  if (!(v.tolerance() > 0 && v.tolerance() <= 1)) {
    return c.ErrorAt(Place(text, &tree, d->FindFieldByName("tolerance"), -1, c.name),
                     "tolerance must be in (0, 1], got " + std::to_string(v.tolerance()));
  }
  if (v.description_case() == ValidationCase::DESCRIPTION_NOT_SET) {
    return c.ErrorAt(c.name, "case \"" + v.name() + "\" needs a scenario { ... } or a "
                             "scenario_file");
  }
  if (v.measured_size() == 0) {
    return c.ErrorAt(c.name, "case \"" + v.name() + "\" has no measured { ... } entries");
  }
  for (int i = 0; i < v.measured_size(); ++i) {
    const Measurement& m = v.measured(i);
    if (m.metric() == METRIC_UNSPECIFIED) {
      return c.ErrorAt(c.measured[i], "measured: a metric is required (PEAK_ALLOCATED, "
                                      "PEAK_RESERVED, DEVICE_USED, STATIC_ALLOCATED, "
                                      "DYNAMIC_ALLOCATED)");
    }
    if (Metric_descriptor()->FindValueByNumber(m.metric()) == nullptr) {
      return c.ErrorAt(c.metric[i], "measured: unknown metric " + std::to_string(m.metric()));
    }
    if (m.pp_rank() < 0) {
      return c.ErrorAt(c.pp_rank[i], "measured: pp_rank must not be negative, got " +
                                         std::to_string(m.pp_rank()));
    }
    if (m.bytes() <= 0) {
      return c.ErrorAt(c.measured[i], "measured: bytes must be positive, got " +
                                          std::to_string(m.bytes()));
    }
  }
  return c;
}

}  // namespace stepsim::graph
