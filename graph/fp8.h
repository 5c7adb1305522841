// FP8 storage (precision.fp8_recipe): the bytes an M x K tensor takes when
// a recipe keeps it for backward, with its scales, and the bytes of the
// cached FP8 weights. Layouts follow Transformer Engine's quantized tensors
// (transformer_engine/pytorch/csrc/quantizer.cpp, tensor/mxfp8_tensor.py,
// tensor/float8_blockwise_tensor.py get_scale_shape) and DeepSeek-V3's
// report (arXiv 2412.19437 section 3.3).
#ifndef STEPSIM_GRAPH_FP8_H_
#define STEPSIM_GRAPH_FP8_H_

#include <cstdint>

#include "scenario.pb.h"

namespace stepsim::graph {

using Fp8Recipe = Precision::Fp8Recipe;

inline bool UsesFp8(Fp8Recipe r) {
  return r != Precision::NONE && r != Precision::FP8_RECIPE_UNSPECIFIED;
}

// An [rows, width] activation kept for a GEMM's weight gradient: one byte
// an element plus the recipe's scales. Per-tensor recipes: one FP32 scale.
// MXFP8 (columnwise, as kept for wgrad): E8M0 bytes for every 32 rows of
// each column, padded to [R4(rows/32), R128(width)]. BLOCKWISE (columnwise
// 128x1 tiles): FP32 [ceil(rows/128), R4(width)]. DEEPSEEK_V3 (1x128 tiles
// per token): FP32 [rows, ceil(width/128)]. Throws Overflow.
int64_t Fp8TensorBytes(Fp8Recipe recipe, int64_t rows, int64_t width);

// The output gradient [rows, width] of an FP8 GEMM as its weight gradient
// holds it after B. Transformer Engine quantizes it for both GEMMs and
// keeps both usages (module/linear.py: grad_output_quantizer
// set_usage(rowwise=True, columnwise=True), then wgrad_store.put or the
// wgrad GEMM): per-tensor recipes the data and, before Blackwell, its
// transpose, with one FP32 scale; MXFP8 rowwise E8M0 scales
// [R128(rows), R4(width/32)] and columnwise [R4(rows/32), R128(width)];
// BLOCKWISE 1x128 rowwise FP32 scales [width/128, R4(rows)] and 128x1
// columnwise [rows/128, R4(width)]. DEEPSEEK_V3: only the wgrad GEMM's
// operand, in 128x1 tiles along the tokens it reduces over (report section
// 3.3.2, figure 6: the wgrad GEMM takes the gradient in FP8). Throws Overflow.
int64_t Fp8OutputGradBytes(Fp8Recipe recipe, int64_t rows, int64_t width,
                           int compute_capability);

// DeepSeek-V3's E5M6 format for the attention output (12 bits an element)
// with its power-of-two FP32 scales per 1x128 tile. Throws Overflow.
int64_t E5M6TensorBytes(int64_t rows, int64_t width);

// Bytes of the FP8 copies of `params` GEMM weights that Transformer Engine
// caches across micro-batches (rowwise data and its transpose, or
// columnwise data, with scales); 0 for NONE and DEEPSEEK_V3, whose weights
// are quantized per GEMM. `compute_capability` 100 and up (Blackwell) needs
// no transposed copy for per-tensor scaling. Throws Overflow.
int64_t Fp8WeightCacheBytes(Fp8Recipe recipe, int64_t params, int compute_capability);

// The multiple every GEMM dimension must be for the recipe (16 for
// per-tensor FP8, 32 for MXFP8, 128 for block scaling); 1 without FP8.
int64_t Fp8Alignment(Fp8Recipe recipe);

}  // namespace stepsim::graph

#endif  // STEPSIM_GRAPH_FP8_H_
