// Errors as values. Library code returns a Status (or StatusOr<T>) and never
// prints or exits; tools/ turns a Status into a message and an exit code.
#ifndef STEPSIM_GRAPH_STATUS_H_
#define STEPSIM_GRAPH_STATUS_H_

#include <cassert>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace stepsim {

// Lines joined with newlines; past `limit` lines, "... and N more".
inline std::string JoinLines(const std::vector<std::string>& lines,
                             size_t limit = static_cast<size_t>(-1)) {
  std::string out;
  for (size_t i = 0; i < lines.size() && i < limit; ++i) out += (i ? "\n" : "") + lines[i];
  if (lines.size() > limit) out += "\n... and " + std::to_string(lines.size() - limit) + " more";
  return out;
}

// What went wrong, which decides the exit code in tools/.
enum class StatusCode {
  kOk = 0,
  kInvalidInput,  // the user's input is wrong: exit 2
  kFailed,        // the input was fine but the run failed: exit 1
};

class Status {
 public:
  Status() = default;
  static Status Ok() { return Status(); }
  static Status Invalid(std::string message) {
    return Status(StatusCode::kInvalidInput, std::move(message));
  }
  static Status Failed(std::string message) {
    return Status(StatusCode::kFailed, std::move(message));
  }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  // Empty when ok(). May span several lines (one problem per line).
  const std::string& message() const { return message_; }

 private:
  Status(StatusCode code, std::string message)
      : code_(code), message_(std::move(message)) {}

  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// Either a value or a non-ok Status.
template <typename T>
class StatusOr {
 public:
  StatusOr(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  StatusOr(Status status) : status_(std::move(status)) {  // NOLINT
    assert(!status_.ok());
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  const T& value() const& { return *value_; }
  T& value() & { return *value_; }
  T&& value() && { return std::move(*value_); }
  const T& operator*() const& { return *value_; }
  T& operator*() & { return *value_; }
  const T* operator->() const { return &*value_; }
  T* operator->() { return &*value_; }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace stepsim

#endif  // STEPSIM_GRAPH_STATUS_H_
