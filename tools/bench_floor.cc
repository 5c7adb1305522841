// stepsim_floor: the honest floor of a stepsim simulation, a bare SimGrid
// program that runs the same plan (tools/bench_floor.h) on the same
// platform (sim/platform.h) with the same SimGrid calls as the engine: the
// same actors, sleeps, mailboxes (one per channel, each with its receiver
// set for eager delivery), detached sends and waited receives, and nothing
// else: no memory model, no outputs. stepsim_bench runs it as its own
// process, so its start-up (loading SimGrid) is measured as stepsim's is.
//
//   stepsim_floor WORKLOAD     prints the simulated end time in seconds
//
// Wall-clock time is what a benchmark measures; nothing here prints it.
#include "tools/bench_floor.h"

#include <cstdio>
#include <simgrid/s4u.hpp>
#include <string>
#include <utility>
#include <vector>

#include "sim/platform.h"

namespace {

namespace sg4 = simgrid::s4u;
using stepsim::tools::FloorChannel;
using stepsim::tools::FloorHeader;
using stepsim::tools::FloorRank;
using stepsim::tools::FloorStep;

struct Rank {
  FloorRank info;
  std::vector<FloorStep> steps;
};

template <typename T>
bool Read(std::FILE* in, T* out, size_t count = 1) {
  return std::fread(out, sizeof(T), count, in) == count;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: stepsim_floor WORKLOAD\n");
    return 2;
  }
  std::FILE* in = std::fopen(argv[1], "rb");
  if (in == nullptr) {
    std::fprintf(stderr, "stepsim_floor: %s: cannot be opened\n", argv[1]);
    return 2;
  }
  FloorHeader header;
  bool ok = Read(in, &header);
  std::vector<stepsim::sim::PlatformLink> links(ok ? header.links : 0);
  ok = ok && Read(in, links.data(), links.size());
  std::vector<std::pair<FloorChannel, std::string>> channels(ok ? header.wire_channels : 0);
  for (auto& [channel, name] : channels) {
    ok = ok && Read(in, &channel);
    name.resize(ok ? channel.name_bytes : 0);
    ok = ok && Read(in, name.data(), name.size());
  }
  std::vector<Rank> ranks(ok ? header.ranks : 0);
  for (Rank& rank : ranks) {
    ok = ok && Read(in, &rank.info);
    rank.steps.resize(ok ? rank.info.steps : 0);
    ok = ok && Read(in, rank.steps.data(), rank.steps.size());
  }
  std::fclose(in);
  if (!ok) {
    std::fprintf(stderr, "stepsim_floor: %s: truncated workload\n", argv[1]);
    return 2;
  }

  const auto engine = stepsim::sim::StartEngine(false);
  const std::vector<sg4::Host*> hosts =
      stepsim::sim::BuildPlatform(header.ranks, header.host_speed, links);
  std::vector<sg4::Mailbox*> mailboxes(header.channels, nullptr);
  std::vector<int> payloads(header.channels, 0);
  // What the engine keeps of each transfer: its times on the wire.
  std::vector<std::pair<double, double>> times(header.channels, {-1.0, -1.0});
  std::vector<sg4::CommPtr> unfinished;
  std::vector<sg4::ActorPtr> actors;
  for (int64_t r = 0; r < header.ranks; ++r) {
    actors.push_back(sg4::Actor::create("rank" + std::to_string(r), hosts[r], [&, r] {
      for (const FloorStep& step : ranks[r].steps) {
        if (step.input >= 0) {
          int* payload = nullptr;
          const sg4::CommPtr comm = mailboxes[step.input]->get_async<int>(&payload);
          comm->wait();
          times[*payload] = {comm->get_start_time(), comm->get_finish_time()};
          if (times[*payload].second < 0) unfinished.push_back(comm);
        }
        sg4::this_actor::sleep_for(step.duration);
        if (step.output >= 0) {
          payloads[step.output] = static_cast<int>(step.output);
          mailboxes[step.output]
              ->put_init(&payloads[step.output], header.fixed_p2p ? 0 : step.bytes)
              ->detach();
        }
      }
      if (ranks[r].info.tail_seconds > 0) sg4::this_actor::sleep_for(ranks[r].info.tail_seconds);
    }));
  }
  for (const auto& [channel, name] : channels) {
    mailboxes[channel.channel] = sg4::Mailbox::by_name(name);
    mailboxes[channel.channel]->set_receiver(actors[channel.receiver]);
  }
  engine->run();
  std::printf("%.17g\n", sg4::Engine::get_clock());
  return 0;
}
