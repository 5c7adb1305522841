#include "sim/process_pool.h"

#include "sim/engine.h"

#include <poll.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <exception>
#include <iostream>
#include <vector>

namespace stepsim::sim {
namespace {

// A result on the wire: [int64 item][uint8 code][uint64 size][size bytes].
// Item -1 ends a task; item -2 ends a task that threw (the bytes say why).
constexpr int64_t kTaskDone = -1;
constexpr int64_t kTaskThrew = -2;
constexpr size_t kHeader = sizeof(int64_t) + 1 + sizeof(uint64_t);

uint8_t CodeOf(const Status& s) {
  if (s.ok()) return 0;
  return s.code() == StatusCode::kInvalidInput ? 1 : 2;
}

StatusOr<std::string> FromCode(uint8_t code, std::string bytes) {
  if (code == 0) return bytes;
  return code == 1 ? Status::Invalid(std::move(bytes)) : Status::Failed(std::move(bytes));
}

std::string Frame(int64_t item, const StatusOr<std::string>& result) {
  const std::string& bytes = result.ok() ? *result : result.status().message();
  std::string out(kHeader, '\0');
  const uint8_t code = result.ok() ? 0 : CodeOf(result.status());
  const uint64_t size = bytes.size();
  std::memcpy(out.data(), &item, sizeof item);
  out[sizeof item] = static_cast<char>(code);
  std::memcpy(out.data() + sizeof item + 1, &size, sizeof size);
  return out + bytes;
}

// Writes all of `data`; false if the other end is gone.
bool WriteAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

bool ReadExactly(int fd, void* out, size_t size) {
  char* p = static_cast<char*>(out);
  size_t done = 0;
  while (done < size) {
    const ssize_t n = read(fd, p + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

std::string ReadToEnd(int fd) {
  std::string data;
  char buffer[1 << 16];
  while (true) {
    const ssize_t n = read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return data;
    data.append(buffer, static_cast<size_t>(n));
  }
}

// Takes one complete frame off the front of `buffer`; false if incomplete.
bool TakeFrame(std::string* buffer, int64_t* item, uint8_t* code, std::string* bytes) {
  if (buffer->size() < kHeader) return false;
  uint64_t size = 0;
  std::memcpy(item, buffer->data(), sizeof *item);
  *code = static_cast<uint8_t>((*buffer)[sizeof *item]);
  std::memcpy(&size, buffer->data() + sizeof *item + 1, sizeof size);
  if (buffer->size() - kHeader < size) return false;
  *bytes = buffer->substr(kHeader, size);
  buffer->erase(0, kHeader + size);
  return true;
}

std::string DescribeExit(int status) {
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    const char* name = strsignal(sig);
    return "killed by signal " + std::to_string(sig) + (name ? std::string(" (") + name + ")" : "");
  }
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  return "stopped";
}

void FlushStdio() {
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
}

struct Worker {
  pid_t pid = -1;
  int tasks = -1;    // the caller writes task numbers here
  int results = -1;  // and reads frames from here
  std::string buffer;
  int64_t task = -1;  // running, or -1
  bool open = true;
};

[[noreturn]] void WorkerMain(int tasks, int results,
                             const std::function<void(int64_t, const Emit&)>& run_task) {
  const Emit emit = [results](int64_t item, const StatusOr<std::string>& result) {
    if (!WriteAll(results, Frame(item, result))) _exit(1);
  };
  int64_t task = 0;
  while (ReadExactly(tasks, &task, sizeof task) && task >= 0) {
    std::string end = Frame(kTaskDone, std::string());
    try {
      run_task(task, emit);
    } catch (const std::exception& e) {
      end = Frame(kTaskThrew, std::string(e.what()));
    } catch (...) {
      end = Frame(kTaskThrew, std::string("unknown exception"));
    }
    if (!WriteAll(results, end)) _exit(1);
  }
  _exit(0);
}

}  // namespace

StatusOr<std::string> RunInChild(const std::function<StatusOr<std::string>()>& work) {
  // Children simulate: they share the engine (SimGrid) loaded here once.
  if (Status loaded = LoadEngine(); !loaded.ok()) return loaded;
  int fds[2];
  if (pipe(fds) != 0) return Status::Failed(std::string("cannot create a pipe: ") + strerror(errno));
  FlushStdio();
  const pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return Status::Failed(std::string("cannot fork: ") + strerror(errno));
  }
  if (pid == 0) {
    close(fds[0]);
    StatusOr<std::string> result = Status::Failed("no result");
    try {
      result = work();
    } catch (const std::exception& e) {
      result = Status::Failed(std::string("internal error: ") + e.what());
    } catch (...) {
      result = Status::Failed("internal error: unknown exception");
    }
    _exit(WriteAll(fds[1], Frame(0, result)) ? 0 : 1);
  }
  close(fds[1]);
  std::string data = ReadToEnd(fds[0]);
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  int64_t item = 0;
  uint8_t code = 0;
  std::string bytes;
  if (!TakeFrame(&data, &item, &code, &bytes)) {
    return Status::Failed("the simulation process " + DescribeExit(status) +
                          " before it gave a result");
  }
  return FromCode(code, std::move(bytes));
}

int AvailableCores() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  const long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<int>(n) : 1;
}

Status RunPool(int64_t num_tasks, const PoolOptions& options,
               const std::function<void(int64_t task, const Emit& emit)>& run_task,
               const std::function<void(int64_t item, StatusOr<std::string> result)>& on_result) {
  if (num_tasks <= 0) return Status::Ok();
  const int64_t jobs = std::max<int64_t>(1, std::min<int64_t>(options.jobs, num_tasks));
  std::vector<Worker> workers;
  std::vector<std::string> lost;
  // Workers simulate: they share the engine (SimGrid) loaded here once.
  if (Status loaded = LoadEngine(); !loaded.ok()) return loaded;
  FlushStdio();
  for (int64_t w = 0; w < jobs; ++w) {
    int tasks[2], results[2];
    if (pipe(tasks) != 0) break;
    if (pipe(results) != 0) {
      close(tasks[0]);
      close(tasks[1]);
      break;
    }
    const pid_t pid = fork();
    if (pid < 0) {
      for (int fd : {tasks[0], tasks[1], results[0], results[1]}) close(fd);
      break;
    }
    if (pid == 0) {
      // Only this worker's own ends stay open, so each worker sees the end
      // of its task pipe when the caller goes away.
      for (const Worker& other : workers) {
        close(other.tasks);
        close(other.results);
      }
      close(tasks[1]);
      close(results[0]);
      WorkerMain(tasks[0], results[1], run_task);
    }
    close(tasks[0]);
    close(results[1]);
    workers.push_back(Worker{pid, tasks[1], results[0], "", -1, true});
  }
  if (workers.empty()) return Status::Failed(std::string("cannot start a worker process: ") +
                                             strerror(errno));

  int64_t next = 0;
  auto hand_out = [&](Worker& w) {
    int64_t task = next < num_tasks ? next++ : -1;
    w.task = task;
    const std::string bytes(reinterpret_cast<const char*>(&task), sizeof task);
    if (!WriteAll(w.tasks, bytes) && task >= 0) {
      lost.push_back("task " + std::to_string(task) + ": its worker process is gone");
      w.task = -1;
    }
  };
  {
    // SIGPIPE from a dead worker's task pipe becomes a failed write.
    struct sigaction ignore {}, previous {};
    ignore.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &ignore, &previous);
    for (Worker& w : workers) hand_out(w);
    size_t open = workers.size();
    std::vector<pollfd> fds;
    std::vector<size_t> index;
    while (open > 0) {
      fds.clear();
      index.clear();
      for (size_t i = 0; i < workers.size(); ++i) {
        if (!workers[i].open) continue;
        fds.push_back({workers[i].results, POLLIN, 0});
        index.push_back(i);
      }
      if (poll(fds.data(), fds.size(), -1) < 0) {
        if (errno == EINTR) continue;
        break;
      }
      for (size_t f = 0; f < fds.size(); ++f) {
        if (fds[f].revents == 0) continue;
        Worker& w = workers[index[f]];
        char buffer[1 << 16];
        const ssize_t n = read(w.results, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
          w.open = false;
          --open;
          close(w.results);
          close(w.tasks);
          int status = 0;
          while (waitpid(w.pid, &status, 0) < 0 && errno == EINTR) {
          }
          if (w.task >= 0) {
            lost.push_back("task " + std::to_string(w.task) + ": its worker process " +
                           DescribeExit(status));
            // The other workers take the remaining tasks.
          }
          w.pid = -1;
          continue;
        }
        w.buffer.append(buffer, static_cast<size_t>(n));
        int64_t item = 0;
        uint8_t code = 0;
        std::string bytes;
        while (TakeFrame(&w.buffer, &item, &code, &bytes)) {
          if (item == kTaskDone || item == kTaskThrew) {
            if (item == kTaskThrew) {
              lost.push_back("task " + std::to_string(w.task) + ": " + bytes);
            }
            hand_out(w);
          } else {
            on_result(item, FromCode(code, std::move(bytes)));
          }
        }
      }
    }
    sigaction(SIGPIPE, &previous, nullptr);
  }
  for (Worker& w : workers) {
    if (w.pid > 0) {
      close(w.tasks);
      close(w.results);
      int status = 0;
      while (waitpid(w.pid, &status, 0) < 0 && errno == EINTR) {
      }
    }
  }
  if (next < num_tasks) {
    lost.push_back("tasks " + std::to_string(next) + ".." + std::to_string(num_tasks - 1) +
                   ": no worker process was left to run them");
  }
  if (lost.empty()) return Status::Ok();
  return Status::Failed(JoinLines(lost));
}

}  // namespace stepsim::sim
