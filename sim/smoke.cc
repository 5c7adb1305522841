#include "sim/smoke.h"

#include <simgrid/s4u.hpp>

namespace stepsim::sim {

double SimulateOneExecution(double flops, double flops_per_second) {
  int argc = 1;
  char name[] = "stepsim";
  char* argv[] = {name, nullptr};
  simgrid::s4u::Engine engine(&argc, argv);
  engine.set_config("network/model:CM02");
  auto* zone = simgrid::s4u::create_full_zone("gpus");
  simgrid::s4u::Host* host = zone->create_host("gpu0", flops_per_second);
  zone->seal();
  double finished = -1;
  simgrid::s4u::Actor::create("rank0", host, [flops, &finished] {
    simgrid::s4u::this_actor::execute(flops);
    finished = simgrid::s4u::Engine::get_clock();
  });
  engine.run();
  return finished;
}

}  // namespace stepsim::sim
