#include "graph/fp8.h"

#include "graph/checked.h"

namespace stepsim::graph {
namespace {

int64_t RoundUp(int64_t x, int64_t multiple) { return CeilDiv(x, multiple) * multiple; }

}  // namespace

int64_t Fp8TensorBytes(Fp8Recipe recipe, int64_t rows, int64_t width) {
  const int64_t data = Mul(rows, width);
  switch (recipe) {
    case Precision::DELAYED:
    case Precision::TENSORWISE:
      return Add(data, 4);  // scale_inv, one FP32 for the tensor
    case Precision::MXFP8:
      return Add(data, Mul(RoundUp(CeilDiv(rows, 32), 4), RoundUp(width, 128)));
    case Precision::BLOCKWISE:
      return Add(data, Mul(4, CeilDiv(rows, 128), RoundUp(width, 4)));
    case Precision::DEEPSEEK_V3:
      return Add(data, Mul(4, rows, CeilDiv(width, 128)));
    default:
      return data;
  }
}

int64_t Fp8OutputGradBytes(Fp8Recipe recipe, int64_t rows, int64_t width,
                           int compute_capability) {
  const int64_t data = Mul(rows, width);
  switch (recipe) {
    case Precision::DELAYED:
    case Precision::TENSORWISE:
      return Add(Mul(data, compute_capability >= 100 ? 1 : 2), 4);
    case Precision::MXFP8:
      return Add(Mul(2, data), Add(Mul(RoundUp(rows, 128), RoundUp(CeilDiv(width, 32), 4)),
                                   Mul(RoundUp(CeilDiv(rows, 32), 4), RoundUp(width, 128))));
    case Precision::BLOCKWISE:
      return Add(Mul(2, data), Mul(4, Add(Mul(CeilDiv(width, 128), RoundUp(rows, 4)),
                                          Mul(CeilDiv(rows, 128), RoundUp(width, 4)))));
    case Precision::DEEPSEEK_V3:
      return Add(data, Mul(4, width, CeilDiv(rows, 128)));
    default:
      return data;
  }
}

int64_t E5M6TensorBytes(int64_t rows, int64_t width) {
  return Add(CeilDiv(Mul(rows, width, 12), 8), Mul(4, rows, CeilDiv(width, 128)));
}

int64_t Fp8WeightCacheBytes(Fp8Recipe recipe, int64_t params, int compute_capability) {
  switch (recipe) {
    case Precision::DELAYED:
    case Precision::TENSORWISE:
      return Mul(params, compute_capability >= 100 ? 1 : 2);
    case Precision::MXFP8:
      // Rowwise and columnwise data, each with one E8M0 scale per 32.
      return Add(Mul(params, 2), Mul(2, CeilDiv(params, 32)));
    case Precision::BLOCKWISE:
      // Rowwise and columnwise 128x128 blocks with one FP32 scale each.
      return Add(Mul(params, 2), Mul(8, CeilDiv(params, 128 * 128)));
    default:
      return 0;
  }
}

int64_t Fp8Alignment(Fp8Recipe recipe) {
  switch (recipe) {
    case Precision::DELAYED:
    case Precision::TENSORWISE: return 16;
    case Precision::MXFP8: return 32;
    case Precision::BLOCKWISE:
    case Precision::DEEPSEEK_V3: return 128;
    default: return 1;
  }
}

}  // namespace stepsim::graph
