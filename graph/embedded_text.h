// Text files compiled into stepsim (model presets, framework profiles): the
// generated *_data.cc files define arrays of these (graph/embed_text.cmake).
#ifndef STEPSIM_GRAPH_EMBEDDED_TEXT_H_
#define STEPSIM_GRAPH_EMBEDDED_TEXT_H_

namespace stepsim::graph {

struct EmbeddedText {
  const char* filename;
  const char* text;
};

}  // namespace stepsim::graph

#endif  // STEPSIM_GRAPH_EMBEDDED_TEXT_H_
