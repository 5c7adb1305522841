// The CPU time benchmarks measure: user plus system seconds of this process,
// and with `children` also of the child processes it has waited for.
#ifndef STEPSIM_TOOLS_CPU_TIME_H_
#define STEPSIM_TOOLS_CPU_TIME_H_

#include <sys/resource.h>

namespace stepsim::tools {

inline double CpuSeconds(bool children = false) {
  double total = 0;
  for (int who : {RUSAGE_SELF, RUSAGE_CHILDREN}) {
    if (who == RUSAGE_CHILDREN && !children) break;
    rusage u{};
    getrusage(who, &u);
    total += static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
             static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
  }
  return total;
}

}  // namespace stepsim::tools

#endif  // STEPSIM_TOOLS_CPU_TIME_H_
