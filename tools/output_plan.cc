#include "tools/output_plan.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <streambuf>

#include "tools/cli_io.h"

namespace stepsim::tools {
namespace {

namespace fs = std::filesystem;

// Temporaries a signal handler removes: fixed storage, as a handler may
// only touch memory that needs no allocation.
constexpr int kMaxTemporaries = 16;
char g_temporaries[kMaxTemporaries][PATH_MAX];

extern "C" void RemoveTemporariesAndDie(int signal_number) {
  for (auto& path : g_temporaries) {
    if (path[0] != '\0') unlink(path);
  }
  std::signal(signal_number, SIG_DFL);
  std::raise(signal_number);
}

void Register(const std::string& path) {
  static const bool installed = [] {
    for (int s : {SIGINT, SIGTERM, SIGHUP}) {
      struct sigaction action {};
      action.sa_handler = RemoveTemporariesAndDie;
      sigemptyset(&action.sa_mask);
      sigaction(s, &action, nullptr);
    }
    return true;
  }();
  (void)installed;
  if (path.size() >= PATH_MAX) return;
  for (auto& slot : g_temporaries) {
    if (slot[0] == '\0') {
      std::memcpy(slot, path.c_str(), path.size() + 1);
      return;
    }
  }
}

void Unregister(const std::string& path) {
  for (auto& slot : g_temporaries) {
    if (path == slot) slot[0] = '\0';
  }
}

// An output stream onto a file descriptor that remembers the first write
// error (errno), so a full disk is reported as such.
class FdBuffer : public std::streambuf {
 public:
  explicit FdBuffer(int fd) : fd_(fd) { setp(buffer_, buffer_ + sizeof buffer_); }
  int error() const { return error_; }

 protected:
  int overflow(int c) override {
    if (!Drain()) return traits_type::eof();
    if (c != traits_type::eof()) {
      *pptr() = static_cast<char>(c);
      pbump(1);
    }
    return traits_type::not_eof(c);
  }
  int sync() override { return Drain() ? 0 : -1; }

 private:
  bool Drain() {
    const char* p = pbase();
    while (error_ == 0 && p < pptr()) {
      const ssize_t n = ::write(fd_, p, static_cast<size_t>(pptr() - p));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        error_ = n < 0 ? errno : EIO;
        break;
      }
      p += n;
    }
    setp(buffer_, buffer_ + sizeof buffer_);
    return error_ == 0;
  }

  int fd_;
  int error_ = 0;
  char buffer_[1 << 16];
};

// A file as the rules compare it: device and inode when it exists, else
// the canonical path it would have.
struct FileId {
  bool exists = false;
  dev_t device = 0;
  ino_t inode = 0;
  std::string canonical;
};

FileId Identify(const std::string& path) {
  FileId id;
  struct stat st {};
  if (stat(path.c_str(), &st) == 0) {
    id.exists = true;
    id.device = st.st_dev;
    id.inode = st.st_ino;
  }
  std::error_code ec;
  id.canonical = fs::weakly_canonical(fs::absolute(path, ec), ec).string();
  return id;
}

bool SameFile(const FileId& a, const FileId& b) {
  if (a.exists && b.exists) return a.device == b.device && a.inode == b.inode;
  return !a.canonical.empty() && a.canonical == b.canonical;
}

std::string ErrorText(int error) { return std::generic_category().message(error); }

mode_t DefaultMode() {
  const mode_t mask = umask(0);
  umask(mask);
  return 0666 & ~mask;
}

}  // namespace

OutputPlan::~OutputPlan() { RemoveTemporaries(); }

void OutputPlan::AddInput(const std::string& path) {
  if (!path.empty() && path != "-") inputs_.push_back(path);
}

void OutputPlan::AddOutput(const std::string& flag, const std::string& path) {
  Output output;
  output.flag = flag;
  output.path = path;
  outputs_.push_back(std::move(output));
}

bool OutputPlan::ToStdout() const {
  for (const Output& o : outputs_) {
    if (o.path == "-") return true;
  }
  return false;
}

OutputPlan::Output* OutputPlan::Find(const std::string& flag) {
  for (Output& o : outputs_) {
    if (o.flag == flag) return &o;
  }
  return nullptr;
}

Status OutputPlan::Prepare() {
  if (prepared_) return Status::Ok();
  prepared_ = true;
  const Output* on_stdout = nullptr;
  std::vector<std::pair<const Output*, FileId>> files;
  std::vector<FileId> inputs;
  for (const std::string& path : inputs_) inputs.push_back(Identify(path));
  for (const Output& o : outputs_) {
    if (o.path.empty()) continue;  // not asked for
    if (o.path == "-") {
      if (on_stdout != nullptr) {
        return Status::Invalid(on_stdout->flag + " and " + o.flag +
                               " both write to standard output (-); give one of them a file");
      }
      on_stdout = &o;
      continue;
    }
    const FileId id = Identify(o.path);
    for (const auto& [other, other_id] : files) {
      if (SameFile(id, other_id)) {
        return Status::Invalid(other->flag + " and " + o.flag + " both write " + o.path +
                               "; give each output its own file");
      }
    }
    for (size_t i = 0; i < inputs.size(); ++i) {
      if (SameFile(id, inputs[i])) {
        return Status::Invalid(o.flag + " " + o.path + ": is " +
                               (o.path == inputs_[i] ? "" : "the same file as ") +
                               (o.path == inputs_[i] ? "an input" : "the input " + inputs_[i]) +
                               " of this command; refusing to overwrite it");
      }
    }
    files.emplace_back(&o, id);
  }
  for (Output& o : outputs_) {
    if (o.path.empty() || o.path == "-") continue;
    Status s = PrepareFile(o);
    if (!s.ok()) {
      RemoveTemporaries();
      return s;
    }
  }
  return Status::Ok();
}

Status OutputPlan::PrepareFile(Output& o) {
  const std::string where = o.flag + " " + o.path + ": ";
  mode_t mode = DefaultMode();
  o.target = o.path;
  struct stat st {};
  if (stat(o.path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return Status::Invalid(where + "is a directory, not a file");
    if (!S_ISREG(st.st_mode)) {
      return Status::Invalid(where + NotRegular(st.st_mode) +
                             ", not a regular file (use - for standard output)");
    }
    if (access(o.path.c_str(), W_OK) != 0) {
      return Status::Invalid(where + "cannot be written: " + ErrorText(errno));
    }
    mode = st.st_mode & 07777;
    std::error_code ec;
    const fs::path resolved = fs::canonical(o.path, ec);  // write through a symlink
    if (!ec) o.target = resolved.string();
  } else if (errno != ENOENT) {
    return Status::Invalid(o.flag + " " + OpenError(o.path, errno));
  }
  const fs::path target(o.target);
  const fs::path folder = target.has_parent_path() ? target.parent_path() : fs::path(".");
  struct stat folder_st {};
  if (stat(folder.c_str(), &folder_st) != 0) {
    return Status::Invalid(where + "folder " + folder.string() + " does not exist");
  }
  if (!S_ISDIR(folder_st.st_mode)) {
    return Status::Invalid(where + folder.string() + " is not a folder");
  }
  std::string name = target.filename().string();
  if (name.empty()) return Status::Invalid(where + "names a folder, not a file");
  if (name.size() > 200) name.resize(200);
  std::string temporary = (folder / ("." + name + ".XXXXXX")).string();
  const int fd = mkstemp(temporary.data());
  if (fd < 0) {
    return Status::Invalid(where + "cannot write in folder " + folder.string() + ": " +
                           ErrorText(errno));
  }
  Register(temporary);
  o.temporary = temporary;
  fchmod(fd, mode);
  close(fd);
  return Status::Ok();
}

Status OutputPlan::Write(const std::string& flag, std::string text) {
  return Stream(flag, [text = std::move(text)](std::ostream& out) { out << text; });
}

Status OutputPlan::Stream(const std::string& flag, std::function<void(std::ostream&)> write) {
  Output* o = Find(flag);
  if (o == nullptr || o->path.empty()) return Status::Ok();
  o->written = true;
  if (o->path == "-") {
    o->deferred = std::move(write);
    return Status::Ok();
  }
  if (o->temporary.empty()) {
    return Status::Failed(flag + ": written before OutputPlan::Prepare (a stepsim bug)");
  }
  const int fd = open(o->temporary.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (fd < 0) return Status::Failed(flag + " " + o->path + ": " + ErrorText(errno));
  FdBuffer buffer(fd);
  std::ostream out(&buffer);
  write(out);
  out.flush();
  const int error = buffer.error();
  if (close(fd) != 0 && error == 0) {
    return Status::Failed(flag + " " + o->path + ": write failed: " + ErrorText(errno));
  }
  if (error != 0) {
    return Status::Failed(flag + " " + o->path + ": write failed: " + ErrorText(error));
  }
  return Status::Ok();
}

Status OutputPlan::Commit() {
  for (Output& o : outputs_) {
    if (o.path.empty()) continue;
    if (!o.written) {
      RemoveTemporaries();
      return Status::Failed(o.flag + ": never written (a stepsim bug)");
    }
    if (o.path != "-") continue;
    o.deferred(std::cout);
    std::cout.flush();
    if (!std::cout) {
      const int error = errno;
      RemoveTemporaries();
      return Status::Failed(o.flag + ": writing to standard output failed" +
                            (error != 0 ? ": " + ErrorText(error) : std::string()));
    }
  }
  std::string renamed;
  for (Output& o : outputs_) {
    if (o.temporary.empty()) continue;
    if (std::rename(o.temporary.c_str(), o.target.c_str()) != 0) {
      const int error = errno;
      RemoveTemporaries();
      return Status::Failed(o.flag + " " + o.path + ": cannot be put in place: " +
                            ErrorText(error) +
                            (renamed.empty() ? "" : " (already written:" + renamed + ")"));
    }
    Unregister(o.temporary);
    o.temporary.clear();
    renamed += " " + o.path;
  }
  return Status::Ok();
}

void OutputPlan::RemoveTemporaries() {
  for (Output& o : outputs_) {
    if (o.temporary.empty()) continue;
    unlink(o.temporary.c_str());
    Unregister(o.temporary);
    o.temporary.clear();
  }
}

Status WriteOutput(const std::string& path, const std::string& text) {
  OutputPlan plan;
  plan.AddOutput("output", path);
  Status s = plan.Prepare();
  if (s.ok()) s = plan.Write("output", text);
  if (s.ok()) s = plan.Commit();
  return s;
}

}  // namespace stepsim::tools
