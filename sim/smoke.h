// The smallest SimGrid run: proves the engine links and keeps exact time.
// The real engine (platform, actors, ledger) builds on the same calls.
#ifndef STEPSIM_SIM_SMOKE_H_
#define STEPSIM_SIM_SMOKE_H_

namespace stepsim::sim {

// Creates a SimGrid engine with one host of `flops_per_second`, runs one
// actor that executes `flops`, and returns the simulated seconds it took.
// One engine per process: call at most once.
double SimulateOneExecution(double flops, double flops_per_second);

}  // namespace stepsim::sim

#endif  // STEPSIM_SIM_SMOKE_H_
