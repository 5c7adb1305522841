// Overflow-checked integer arithmetic for byte and parameter counts.
//
// Every count in stepsim is an exact int64. Products of model dimensions can
// exceed 2^63 for absurd inputs, so arithmetic on them goes through these
// helpers, which throw Overflow instead of wrapping. Public graph/ and sim/
// entry points catch Overflow and return a Status: it never crosses a module
// boundary.
#ifndef STEPSIM_GRAPH_CHECKED_H_
#define STEPSIM_GRAPH_CHECKED_H_

#include <cstdint>
#include <stdexcept>

namespace stepsim {

struct Overflow : std::overflow_error {
  Overflow() : std::overflow_error("integer overflow in byte arithmetic") {}
};

inline int64_t Mul(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r)) throw Overflow();
  return r;
}
template <typename... Rest>
int64_t Mul(int64_t a, int64_t b, Rest... rest) {
  return Mul(Mul(a, b), rest...);
}

inline int64_t Add(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) throw Overflow();
  return r;
}
template <typename... Rest>
int64_t Add(int64_t a, int64_t b, Rest... rest) {
  return Add(Add(a, b), rest...);
}

inline int64_t Sub(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_sub_overflow(a, b, &r)) throw Overflow();
  return r;
}

// Ceiling division of non-negative a by positive b.
inline int64_t CeilDiv(int64_t a, int64_t b) { return a / b + (a % b != 0); }

}  // namespace stepsim

#endif  // STEPSIM_GRAPH_CHECKED_H_
