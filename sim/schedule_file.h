// Reading and writing schedule files (format: proto/schedule.proto).
#ifndef STEPSIM_SIM_SCHEDULE_FILE_H_
#define STEPSIM_SIM_SCHEDULE_FILE_H_

#include <string>
#include <string_view>

#include "graph/config.h"
#include "graph/status.h"
#include "sim/schedule.h"

namespace stepsim::sim {

// Parses a schedule file's text; `filename` picks the form (.textproto and
// .pbtxt: protobuf text; otherwise the compact line form) and names the
// place of errors ("file:line:col: message"). The schedule must fit the
// config: one line per pipeline rank, chunks within the layout's, micro-
// batches within batch.num_microbatches, and pass ValidateSchedule.
StatusOr<Schedule> ParseScheduleFile(std::string_view text, std::string_view filename,
                                     const graph::Config& config);

// The schedule in the compact line form, or as protobuf text when `proto`.
std::string FormatScheduleFile(const Schedule& schedule, bool proto);

}  // namespace stepsim::sim

#endif  // STEPSIM_SIM_SCHEDULE_FILE_H_
