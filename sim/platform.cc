#include "sim/platform.h"

#include <simgrid/s4u.hpp>
#include <xbt/log.h>

#include <string>

namespace stepsim::sim {

namespace sg4 = simgrid::s4u;

std::unique_ptr<sg4::Engine> StartEngine(bool verbose) {
  // SimGrid's own configuration messages stay quiet.
  static char program[] = "stepsim";
  static char quiet_config[] = "--log=xbt_cfg.thresh:warning";
#if defined(__SANITIZE_ADDRESS__) || STEPSIM_SANITIZE
  // AddressSanitizer cannot follow SimGrid's hand-made stack switches: use
  // threads. The context factory must be chosen when the engine starts.
  static char contexts[] = "--cfg=contexts/factory:thread";
  int argc = 3;
  static char* argv[] = {program, quiet_config, contexts, nullptr};
#else
  int argc = 2;
  static char* argv[] = {program, quiet_config, nullptr};
#endif
  auto engine = std::make_unique<sg4::Engine>(&argc, argv);
  if (!verbose) {
    xbt_log_control_set("root.thresh:critical");
    xbt_log_control_set("root.app:file:/dev/null");
  }
  engine->set_config("network/model:CM02");
  engine->set_config("network/crosstraffic:0");
  engine->set_config("network/TCP-gamma:0");
  return engine;
}

std::vector<sg4::Host*> BuildPlatform(int64_t ranks, double host_speed,
                                      const std::vector<PlatformLink>& links) {
  auto* zone = sg4::create_full_zone("cluster");
  std::vector<sg4::Host*> hosts;
  for (int64_t r = 0; r < ranks; ++r) {
    hosts.push_back(zone->create_host("rank" + std::to_string(r), host_speed));
  }
  for (const PlatformLink& l : links) {
    sg4::Link* link =
        zone->create_split_duplex_link("link" + std::to_string(l.a) + "-" + std::to_string(l.b),
                                       l.bandwidth)
            ->set_latency(l.latency);
    link->seal();
    zone->add_route(hosts[l.a]->get_netpoint(), hosts[l.b]->get_netpoint(), nullptr, nullptr,
                    {sg4::LinkInRoute(link, sg4::LinkInRoute::Direction::UP)}, true);
  }
  zone->seal();
  return hosts;
}

}  // namespace stepsim::sim
