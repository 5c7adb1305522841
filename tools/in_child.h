// Runs work in a forked child process and brings its result back: SimGrid
// allows one engine per process, so each simulation of a benchmark or a
// comparison runs in its own child.
#ifndef STEPSIM_TOOLS_IN_CHILD_H_
#define STEPSIM_TOOLS_IN_CHILD_H_

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <optional>
#include <type_traits>

namespace stepsim::tools {

// `work()` in a child; its value (a trivially copyable T) crosses back
// through a pipe. nullopt when the child could not start or died first.
template <typename Work>
auto InChild(Work work) -> std::optional<decltype(work())> {
  using T = decltype(work());
  static_assert(std::is_trivially_copyable_v<T>, "InChild returns plain data");
  int fds[2];
  if (pipe(fds) != 0) return std::nullopt;
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return std::nullopt;
  }
  if (pid == 0) {
    close(fds[0]);
    const T value = work();
    _exit(write(fds[1], &value, sizeof value) == static_cast<ssize_t>(sizeof value) ? 0 : 1);
  }
  close(fds[1]);
  T value{};
  const bool got = read(fds[0], &value, sizeof value) == static_cast<ssize_t>(sizeof value);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!got || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return std::nullopt;
  return value;
}

}  // namespace stepsim::tools

#endif  // STEPSIM_TOOLS_IN_CHILD_H_
