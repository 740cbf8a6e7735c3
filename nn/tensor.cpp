#include "nn/tensor.h"

#include <cmath>
#include <cstring>
#include <stdexcept>

namespace rplayer::nn {

Shape Shape::from_outer_dims(const std::vector<int>& e) {
  switch (e.size()) {
    case 1: return vec(e[0]);
    case 2: return mat(e[1], e[0]);
    case 3: return cube(e[2], e[1], e[0]);
    case 4: return cube4(e[3], e[2], e[1], e[0]);
    default: throw std::invalid_argument("shape with " + std::to_string(e.size()) + " dims");
  }
}

std::vector<int> Shape::outer_dims() const {
  switch (dims) {
    case 1: return {w};
    case 2: return {h, w};
    case 3: return {c, h, w};
    case 4: return {c, d, h, w};
    default: return {};
  }
}

std::string Shape::str() const {
  std::string s = "[";
  bool first = true;
  for (int e : outer_dims()) {
    if (!first) s += ",";
    s += std::to_string(e);
    first = false;
  }
  return s + "]";
}

Tensor::Tensor(Shape shape, float fill, std::string name)
    : name_(std::move(name)), shape_(shape), data_(shape.total(), fill) {}

Tensor::Tensor(Shape shape, std::vector<float> values, std::string name)
    : name_(std::move(name)), shape_(shape), data_(std::move(values)) {
  if (data_.size() != shape_.total())
    throw std::invalid_argument("tensor " + name_ + ": " + std::to_string(data_.size()) +
                                " values for shape " + shape_.str());
}

void Tensor::reshape(Shape shape) {
  if (shape.total() != shape_.total())
    throw std::invalid_argument("cannot reshape " + shape_.str() + " to " + shape.str());
  shape_ = shape;
}

bool Tensor::all_finite() const {
  for (float v : data_)
    if (!std::isfinite(v)) return false;
  return true;
}

float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {
      // Subnormal half: normalize into a float exponent.
      exp = 127 - 15 + 1;
      while ((mant & 0x400) == 0) {
        mant <<= 1;
        exp--;
      }
      mant &= 0x3ff;
      bits = sign | (exp << 23) | (mant << 13);
    }
  } else if (exp == 0x1f) {
    bits = sign | 0x7f800000 | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

}  // namespace rplayer::nn

namespace rplayer::nn {

uint16_t float_to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000;
  const uint32_t abs = x & 0x7fffffff;
  if (abs > 0x7f800000) return uint16_t(sign | 0x7e00 | ((abs >> 13) & 0x3ff));  // NaN
  if (abs >= 0x477ff000) return uint16_t(sign | 0x7c00);  // >= 65520 rounds to infinity
  if (abs < 0x38800000) {
    // Zero or a half subnormal (units of 2^-24): the scaling is exact, nearbyint rounds
    // to nearest even; 1024 units is the smallest normal half, which the bits also spell.
    float a;
    std::memcpy(&a, &abs, 4);
    return uint16_t(sign | uint32_t(std::nearbyint(a * 16777216.f)));
  }
  uint32_t h = (((abs >> 23) - 112) << 10) | ((abs & 0x7fffff) >> 13);
  const uint32_t rest = abs & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) ++h;  // a carry moves into the exponent
  return uint16_t(sign | h);
}

const char* storage_type_name(StorageType t) {
  switch (t) {
    case StorageType::kFloat32: return "fp32";
    case StorageType::kFloat16: return "fp16";
  }
  return "?";
}

}  // namespace rplayer::nn
