// libFuzzer target: `stepsim check-trace` input, any bytes as a Chrome trace.
#include <cstdint>
#include <string>

#include "traces/trace_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const stepsim::traces::TraceCheck check =
      stepsim::traces::CheckChromeTrace(std::string(reinterpret_cast<const char*>(data), size));
  (void)check;
  return 0;
}
