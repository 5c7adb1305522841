#include "tools/child_simulation.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <string>

#include "sim/engine.h"
#include "sim/schedule.h"
#include "traces/run_report.h"

namespace stepsim::tools {

StatusOr<RunReport> SimulateInChild(const graph::Config& config) {
  // Children share the engine (SimGrid) loaded here once.
  if (Status loaded = sim::LoadEngine(); !loaded.ok()) return loaded;
  int fds[2];
  if (pipe(fds) != 0) return Status::Failed("cannot create a pipe");
  std::cout.flush();
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return Status::Failed("cannot fork");
  }
  if (pid == 0) {
    close(fds[0]);
    // The message: a status byte (0 ok, 1 invalid input, 2 failed), then the
    // serialized report or the error text.
    std::string payload;
    char code = 0;
    StatusOr<sim::Schedule> schedule = sim::BuildSchedule(config);
    Status status = schedule.ok() ? Status::Ok() : schedule.status();
    if (status.ok()) {
      StatusOr<sim::SimResult> result = sim::Simulate(config, *schedule, sim::SimOptions{});
      if (result.ok()) {
        StatusOr<RunReport> report = traces::ReportRun(config, *result);
        if (report.ok()) {
          report->SerializeToString(&payload);
        } else {
          status = report.status();
        }
      } else {
        status = result.status();
      }
    }
    if (!status.ok()) {
      code = status.code() == StatusCode::kInvalidInput ? 1 : 2;
      payload = status.message();
    }
    const std::string message = std::string(1, code) + payload;
    size_t written = 0;
    while (written < message.size()) {
      const ssize_t n = write(fds[1], message.data() + written, message.size() - written);
      if (n <= 0) break;
      written += static_cast<size_t>(n);
    }
    close(fds[1]);
    _exit(0);
  }
  close(fds[1]);
  std::string data;
  char buffer[1 << 16];
  for (ssize_t n; (n = read(fds[0], buffer, sizeof buffer)) > 0;) data.append(buffer, n);
  close(fds[0]);
  int wait_status = 0;
  waitpid(pid, &wait_status, 0);
  if (data.empty() || !WIFEXITED(wait_status)) {
    return Status::Failed("the simulation process died");
  }
  if (data[0] == 1) return Status::Invalid(data.substr(1));
  if (data[0] != 0) return Status::Failed(data.substr(1));
  RunReport report;
  if (!report.ParseFromString(data.substr(1))) {
    return Status::Failed("unreadable report from the simulation process");
  }
  return report;
}

}  // namespace stepsim::tools
