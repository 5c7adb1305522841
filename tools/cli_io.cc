#include "tools/cli_io.h"

#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "graph/overrides.h"
#include "graph/scenario_text.h"

namespace stepsim::tools {

int ExitCode(const Status& status) {
  if (status.ok()) return kExitOk;
  return status.code() == StatusCode::kInvalidInput ? kExitBadInput : kExitFailed;
}

int Report(const Status& status) {
  if (!status.ok()) std::cerr << "stepsim: " << status.message() << "\n";
  return ExitCode(status);
}

StatusOr<std::string> ReadFile(const std::string& path,
                               std::uintmax_t max_bytes) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) {
    return Status::Invalid(path + ": no such file");
  }
  if (std::filesystem::is_directory(status)) {
    return Status::Invalid(path + ": is a directory, not a file");
  }
  const auto size = std::filesystem::file_size(path, ec);
  if (!ec && size > max_bytes) {
    return Status::Invalid(path + ": " + std::to_string(size) + " bytes is larger than the " +
                           std::to_string(max_bytes >> 20) + " MiB this input may have");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::Invalid(path + ": cannot be opened");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

Status WriteOutput(const std::string& path, const std::string& text) {
  if (path == "-") {
    std::cout << text;
    return Status::Ok();
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return Status::Invalid(path + ": cannot be written");
  out << text;
  out.close();
  if (!out) return Status::Failed(path + ": write failed");
  return Status::Ok();
}

Status WriteStream(const std::string& path, const std::function<void(std::ostream&)>& write) {
  if (path == "-") {
    write(std::cout);
    std::cout.flush();
    return std::cout ? Status::Ok() : Status::Failed("stdout: write failed");
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return Status::Invalid(path + ": cannot be written");
  write(out);
  out.close();
  if (!out) return Status::Failed(path + ": write failed");
  return Status::Ok();
}

StatusOr<Scenario> LoadScenario(const ScenarioArgs& args) {
  StatusOr<std::string> text = ReadFile(args.path);
  if (!text.ok()) return text.status();
  StatusOr<Scenario> scenario = graph::ParseScenario(*text, args.path);
  if (!scenario.ok()) return scenario.status();
  for (const std::string& set : args.sets) {
    Status s = graph::ApplyOverride(set, &*scenario);
    if (!s.ok()) return s;
  }
  if (scenario->name().empty()) {
    scenario->set_name(std::filesystem::path(args.path).stem().string());
  }
  return scenario;
}

StatusOr<graph::Config> LoadConfig(const ScenarioArgs& args) {
  StatusOr<Scenario> scenario = LoadScenario(args);
  if (!scenario.ok()) return scenario.status();
  return graph::Resolve(*scenario);
}

}  // namespace stepsim::tools
