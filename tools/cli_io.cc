#include "tools/cli_io.h"

#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "graph/hf_config.h"
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

namespace {

// Applies `sets`, reads model.hf_config relative to `base_file`'s folder and
// names the scenario after `base_file` if it has no name.
StatusOr<Scenario> PrepareScenario(Scenario scenario, const std::string& base_file,
                                   const std::vector<std::string>& sets) {
  for (const std::string& set : sets) {
    Status s = graph::ApplyOverride(set, &scenario);
    if (!s.ok()) return s;
  }
  if (scenario.model().has_hf_config()) {
    // A Hugging Face config.json, relative to the scenario's folder.
    const std::filesystem::path file(scenario.model().hf_config());
    const std::string path =
        file.is_absolute() ? file.string()
                           : (std::filesystem::path(base_file).parent_path() / file).string();
    StatusOr<std::string> json = ReadFile(path);
    if (!json.ok()) return Status::Invalid("model.hf_config: " + json.status().message());
    Status applied = graph::ApplyHfConfig(*json, path, &scenario);
    if (!applied.ok()) return applied;
  }
  if (scenario.name().empty()) {
    scenario.set_name(std::filesystem::path(base_file).stem().string());
  }
  return scenario;
}

}  // namespace

StatusOr<graph::Config> ResolveScenarioAt(Scenario scenario, const std::string& base_file,
                                          const std::vector<std::string>& sets) {
  StatusOr<Scenario> prepared = PrepareScenario(std::move(scenario), base_file, sets);
  if (!prepared.ok()) return prepared.status();
  return graph::Resolve(*prepared);
}

StatusOr<Scenario> LoadScenario(const ScenarioArgs& args) {
  StatusOr<std::string> text = ReadFile(args.path);
  if (!text.ok()) return text.status();
  StatusOr<Scenario> scenario = graph::ParseScenario(*text, args.path);
  if (!scenario.ok()) return scenario.status();
  return PrepareScenario(std::move(*scenario), args.path, args.sets);
}

StatusOr<graph::Config> LoadConfig(const ScenarioArgs& args) {
  StatusOr<Scenario> scenario = LoadScenario(args);
  if (!scenario.ok()) return scenario.status();
  return graph::Resolve(*scenario);
}

}  // namespace stepsim::tools
