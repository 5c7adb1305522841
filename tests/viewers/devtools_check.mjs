// Loads Chrome traces written by `stepsim run --chrome-trace` in the trace
// engine of Chrome DevTools' Performance panel (npm @paulirish/trace_engine,
// pinned in package-lock.json) and prints one JSON line per trace:
//   slices   X events in the file
//   dropped  of them, left out of the engine's per-thread trees
//   ops, misplaced   op slices that last, and those whose tree parent is not
//            their own step (zero-length ops sit where a viewer can put them)
//   flows    flows in the file (start events)
//   bound    of them, bound by the engine to their own two slices: the send
//            and the receive of the same transfer, or for a hand-off inside
//            a rank the steps of its micro-batch that produce and consume it
//   markers, kept    peak markers, and those in the trees
// Exit status 0 when nothing is dropped or misplaced and every flow and
// marker is kept, 1 otherwise, 2 when a trace cannot be read.
//
//   node tests/viewers/devtools_check.mjs TRACE.json...
import fs from 'node:fs';

import {analyzeEvents} from '@paulirish/trace_engine/analyze-trace.mjs';

function key(e) {
  return `${e.ts}|${e.pid}|${e.tid}|${e.cat}`;
}

async function check(file) {
  const events = JSON.parse(fs.readFileSync(file, 'utf8')).traceEvents;
  const {parsedTrace} = await analyzeEvents(events);
  const {entryToNode} = parsedTrace.data.Renderer;
  const engineFlows = parsedTrace.data.Flows.flows;

  const slices = events.filter(e => e.ph === 'X');
  const dropped = slices.filter(e => !entryToNode.has(e)).length;

  // Op slices of positive length must hang below their step.
  let ops = 0, misplaced = 0;
  for (const e of slices) {
    if (!e.args || e.args.step === undefined || !(e.dur > 0)) continue;
    ++ops;
    const parent = entryToNode.get(e)?.parent?.entry;
    if (!parent || parent.cat !== 'step' || parent.name !== e.args.step ||
        parent.pid !== e.pid || parent.tid !== e.tid) {
      ++misplaced;
    }
  }

  // The slice each flow event should bind to: the one event with its ts,
  // pid, tid and cat (check-trace makes sure there is one).
  const byKey = new Map();
  for (const e of slices) if (!byKey.has(key(e))) byKey.set(key(e), e);
  const starts = events.filter(e => e.ph === 's');
  const ends = new Map(events.filter(e => e.ph === 'f').map(e => [`${e.cat}|${e.name}|${e.id}`, e]));
  const enginePairs = new Set(engineFlows.filter(f => f.length === 2).map(([a, b]) => a));
  const engineNext = new Map(engineFlows.filter(f => f.length === 2).map(([a, b]) => [a, b]));
  let bound = 0;
  for (const s of starts) {
    const f = ends.get(`${s.cat}|${s.name}|${s.id}`);
    const from = byKey.get(key(s)), to = f && byKey.get(key(f));
    if (!from || !to) continue;
    const own = s.cat === 'pipeline'
        ? from.name === `send ${s.name}` && to.name === `recv ${s.name}` &&
            from.args.microbatch === to.args.microbatch &&
            from.args.from_stage === to.args.from_stage && from.args.to_stage === to.args.to_stage
        : from.cat === 'step' && to.cat === 'step' &&
            from.args.microbatch === s.args.microbatch && to.args.microbatch === s.args.microbatch &&
            from.pid === to.pid;
    if (own && enginePairs.has(from) && engineNext.get(from) === to) ++bound;
  }

  const markers = events.filter(e => e.ph === 'I' && e.cat === 'memory');
  const kept = markers.filter(e => entryToNode.has(e)).length;
  return {
    file, slices: slices.length, dropped, ops, misplaced, flows: starts.length, bound,
    markers: markers.length, kept,
  };
}

let failed = false;
for (const file of process.argv.slice(2)) {
  let r;
  try {
    r = await check(file);
  } catch (e) {
    console.error(`devtools_check: ${file}: ${e.message}`);
    process.exit(2);
  }
  console.log(JSON.stringify(r));
  failed ||= r.dropped > 0 || r.misplaced > 0 || r.bound !== r.flows || r.kept !== r.markers;
}
process.exit(failed ? 1 : 0);
