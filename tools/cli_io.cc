#include "tools/cli_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <filesystem>
#include <iostream>

#include "graph/hf_config.h"
#include "graph/overrides.h"
#include "graph/scenario_text.h"
#include "graph/utf8.h"

namespace stepsim::tools {

int ExitCode(const Status& status) {
  if (status.ok()) return kExitOk;
  return status.code() == StatusCode::kInvalidInput ? kExitBadInput : kExitFailed;
}

int Report(const Status& status) {
  if (status.ok()) return kExitOk;
  std::string out;
  const std::string& message = status.message();
  for (size_t start = 0; start <= message.size();) {
    size_t end = message.find('\n', start);
    if (end == std::string::npos) end = message.size();
    out += (start > 0 ? "\n" : "") +
           graph::Shorten(std::string_view(message).substr(start, end - start), kMaxMessageLine);
    start = end + 1;
  }
  std::cerr << "stepsim: " << out << "\n";
  return ExitCode(status);
}

void PrepareStandardStreams() {
  for (int fd : {STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO}) {
    if (fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
    if (fd == STDOUT_FILENO) {
      // A pipe whose reading end is closed: every write fails with EPIPE.
      int fds[2];
      if (pipe(fds) == 0) {
        close(fds[0]);
        if (fds[1] != STDOUT_FILENO) {
          dup2(fds[1], STDOUT_FILENO);
          close(fds[1]);
        }
        continue;
      }
    }
    const int null = open("/dev/null", fd == STDIN_FILENO ? O_RDONLY : O_WRONLY);
    if (null >= 0 && null != fd) {
      dup2(null, fd);
      close(null);
    }
  }
  std::signal(SIGPIPE, SIG_IGN);
  std::signal(SIGXFSZ, SIG_IGN);
}

std::string OpenError(const std::string& path, int error) {
  switch (error) {
    case ENOENT: return path + ": no such file";
    case EACCES:
    case EPERM: return path + ": permission denied";
    case ELOOP: return path + ": too many levels of symbolic links (a symlink loop?)";
    case ENOTDIR: return path + ": a folder in this path is not a folder";
    case ENAMETOOLONG: return path + ": file name too long";
    case EISDIR: return path + ": is a directory, not a file";
    default: return path + ": cannot be opened: " + std::generic_category().message(error);
  }
}

std::string NotRegular(unsigned mode) {
  if (S_ISREG(mode)) return "";
  if (S_ISDIR(mode)) return "is a directory";
  if (S_ISFIFO(mode)) return "is a FIFO (named pipe)";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return "is a device";
  if (S_ISSOCK(mode)) return "is a socket";
  return "is a special file";
}

StatusOr<std::string> ReadFile(const std::string& path, std::uintmax_t max_bytes) {
  if (path.empty()) return Status::Invalid("an empty file name");
  // O_NONBLOCK: opening a FIFO without a writer must not wait for one.
  const int fd = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return Status::Invalid(OpenError(path, errno));
  struct FdCloser {
    int fd;
    ~FdCloser() { close(fd); }
  } closer{fd};
  struct stat st {};
  if (fstat(fd, &st) != 0) return Status::Invalid(OpenError(path, errno));
  if (S_ISDIR(st.st_mode)) return Status::Invalid(path + ": is a directory, not a file");
  if (!S_ISREG(st.st_mode)) {
    return Status::Invalid(path + ": " + NotRegular(st.st_mode) +
                           ", not a regular file; stepsim reads inputs from regular files");
  }
  const auto too_large = [&](std::uintmax_t size) {
    const std::string bound = max_bytes >= (1u << 20) ? std::to_string(max_bytes >> 20) + " MiB"
                                                      : std::to_string(max_bytes) + " bytes";
    return Status::Invalid(path + ": " + std::to_string(size) + " bytes is larger than the " +
                           bound + " this input may have");
  };
  if (static_cast<std::uintmax_t>(st.st_size) > max_bytes) return too_large(st.st_size);
  std::string text;
  text.resize(static_cast<size_t>(st.st_size));
  size_t used = 0;
  // A file may grow while it is read: read until the end, never past the bound.
  while (true) {
    if (used == text.size()) {
      if (text.size() > max_bytes) return too_large(text.size());
      text.resize(std::max<size_t>(used * 2, used + 4096));
    }
    const ssize_t n = read(fd, text.data() + used, text.size() - used);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return Status::Invalid(path + ": cannot be read: " + std::generic_category().message(errno));
    }
    if (n == 0) break;
    used += static_cast<size_t>(n);
  }
  if (used > max_bytes) return too_large(used);
  text.resize(used);
  return text;
}

std::string RelativeToScenario(const std::string& scenario_path, const std::string& file) {
  const std::filesystem::path path(file);
  return path.is_absolute() ? path.string()
                            : (std::filesystem::path(scenario_path).parent_path() / path).string();
}

namespace {

// Reads model.hf_config (relative to `base_file`'s folder) into `scenario`
// under its explicit fields; returns the config file's path ("" if none).
StatusOr<std::string> MergeHfConfig(const std::string& base_file, Scenario* scenario) {
  if (!scenario->model().has_hf_config()) return std::string();
  const std::string path = RelativeToScenario(base_file, scenario->model().hf_config());
  StatusOr<std::string> json = ReadFile(path);
  if (!json.ok()) return Status::Invalid("model.hf_config: " + json.status().message());
  Status applied = graph::ApplyHfConfig(*json, path, scenario);
  if (!applied.ok()) return applied;
  return path;
}

// Overrides, the Hugging Face config and a default name.
Status Prepare(const std::string& base_file, const std::vector<std::string>& sets,
               Scenario* scenario, graph::FieldPlaces* places, std::vector<std::string>* notes,
               std::string* hf_path) {
  Status overridden = graph::ApplyOverrides(sets, scenario, places, notes);
  if (!overridden.ok()) return overridden;
  StatusOr<std::string> hf = MergeHfConfig(base_file, scenario);
  if (!hf.ok()) return hf.status();
  if (hf_path != nullptr) *hf_path = *hf;
  if (scenario->name().empty()) {
    scenario->set_name(graph::RepairUtf8(std::filesystem::path(base_file).stem().string()));
  }
  return Status::Ok();
}

}  // namespace

StatusOr<Scenario> ReadScenario(const ScenarioArgs& args) {
  StatusOr<std::string> text = ReadFile(args.path);
  if (!text.ok()) return text.status();
  graph::FieldPlaces places;
  StatusOr<Scenario> scenario = graph::ParseScenario(*text, args.path, &places);
  if (!scenario.ok()) return scenario.status();
  std::vector<std::string> notes;
  Status prepared = Prepare(args.path, args.sets, &*scenario, &places, &notes, nullptr);
  if (!prepared.ok()) return prepared;
  return scenario;
}

StatusOr<LoadedScenario> LoadScenario(const ScenarioArgs& args) {
  StatusOr<std::string> text = ReadFile(args.path);
  if (!text.ok()) return text.status();
  LoadedScenario loaded;
  StatusOr<Scenario> scenario = graph::ParseScenario(*text, args.path, &loaded.places);
  if (!scenario.ok()) return scenario.status();
  std::string hf_path;
  Status prepared =
      Prepare(args.path, args.sets, &*scenario, &loaded.places, &loaded.notes, &hf_path);
  if (!prepared.ok()) return prepared;
  StatusOr<graph::Config> config = graph::Resolve(*scenario);
  if (!config.ok()) return loaded.places.Locate(config.status());
  loaded.config = std::move(*config);
  loaded.inputs.push_back(args.path);
  if (!hf_path.empty()) loaded.inputs.push_back(hf_path);
  if (!loaded.config.schedule_file.empty()) {
    loaded.inputs.push_back(RelativeToScenario(args.path, loaded.config.schedule_file));
  }
  return loaded;
}

StatusOr<graph::Config> ResolveScenarioAt(Scenario scenario, const std::string& base_file,
                                          const std::vector<std::string>& sets) {
  std::vector<std::string> notes;
  Status prepared = Prepare(base_file, sets, &scenario, nullptr, &notes, nullptr);
  if (!prepared.ok()) return prepared;
  return graph::Resolve(scenario);
}

StatusOr<graph::Config> LoadConfig(const ScenarioArgs& args) {
  StatusOr<LoadedScenario> loaded = LoadScenario(args);
  if (!loaded.ok()) return loaded.status();
  return std::move(loaded->config);
}

void PrintNotes(const std::vector<std::string>& notes) {
  for (const std::string& note : notes) std::cerr << "stepsim: note: " << note << "\n";
}

}  // namespace stepsim::tools
