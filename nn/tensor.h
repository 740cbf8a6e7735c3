// Tensors of the NN framework: ncnn-style shapes (w, h, d, c with 1..4 dims, batch 1)
// over contiguous NCHW float storage. Unlike ncnn there is no per-channel alignment
// padding (cstep == w*h*d), so a tensor's bytes can be copied to a GPU buffer as is.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "nn/weight_source.h"

namespace rplayer::nn {

enum class DType { kFloat32, kInt32 };

// ncnn's blob shape. dims == 1: w; 2: w x h; 3: w x h x c; 4: w x h x d x c. Unused
// extents are 1. dims == 0 is the empty (unknown) shape.
struct Shape {
  int dims = 0;
  int w = 1, h = 1, d = 1, c = 1;

  static Shape vec(int w) { return {1, w, 1, 1, 1}; }
  static Shape mat(int w, int h) { return {2, w, h, 1, 1}; }
  static Shape cube(int w, int h, int c) { return {3, w, h, 1, c}; }
  static Shape cube4(int w, int h, int d, int c) { return {4, w, h, d, c}; }
  // From NCHW-ordered extents without the batch (outermost first), e.g. {c, h, w}.
  static Shape from_outer_dims(const std::vector<int>& extents);

  bool empty() const { return dims == 0; }
  size_t total() const { return dims == 0 ? 0 : size_t(w) * h * d * c; }
  // Elements of one channel (the ncnn cstep without alignment).
  size_t channel_size() const { return size_t(w) * h * d; }
  // Extents outermost first, without the batch: dims 3 gives {c, h, w}.
  std::vector<int> outer_dims() const;
  // Extent of ncnn axis `axis` (0 = outermost, as in Concat/Softmax/Slice params).
  int axis_extent(int axis) const { return outer_dims()[axis]; }

  bool operator==(const Shape& o) const {
    return dims == o.dims && w == o.w && h == o.h && d == o.d && c == o.c;
  }
  bool operator!=(const Shape& o) const { return !(*this == o); }
  // "[3,227,227]" outermost first, as ncnn prints c,h,w.
  std::string str() const;
};

inline std::ostream& operator<<(std::ostream& os, const Shape& s) { return os << s.str(); }

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(Shape shape, float fill = 0.f, std::string name = {});
  Tensor(Shape shape, std::vector<float> values, std::string name = {});

  const std::string& name() const { return name_; }
  void set_name(std::string name) { name_ = std::move(name); }
  const Shape& shape() const { return shape_; }
  DType dtype() const { return dtype_; }
  // Changes the shape, keeping the element count; throws std::invalid_argument if not.
  void reshape(Shape shape);

  bool empty() const { return data_.empty(); }
  size_t size() const { return data_.size(); }
  float* data() { return data_.data(); }
  const float* data() const { return data_.data(); }
  std::vector<float>& values() { return data_; }
  const std::vector<float>& values() const { return data_; }
  float& operator[](size_t i) { return data_[i]; }
  float operator[](size_t i) const { return data_[i]; }

  float* channel(int q) { return data_.data() + q * shape_.channel_size(); }
  const float* channel(int q) const { return data_.data() + q * shape_.channel_size(); }
  // Row y of 2-D / 3-D tensors (of channel q for 3-D).
  float* row(int y, int q = 0) { return channel(q) + size_t(y) * shape_.w; }
  const float* row(int y, int q = 0) const { return channel(q) + size_t(y) * shape_.w; }
  float& at(int x, int y = 0, int q = 0) { return row(y, q)[x]; }
  float at(int x, int y = 0, int q = 0) const { return row(y, q)[x]; }

  bool all_finite() const;

  // Where a weight's values are stored in its model file; nullptr for computed tensors
  // and for weights whose stored form the GPU cannot decode (they are uploaded as the
  // decoded floats, marked as derived). Whoever changes the values must drop the source.
  const WeightSource* source() const { return source_.get(); }
  void set_source(std::shared_ptr<const WeightSource> s) { source_ = std::move(s); }

 private:
  std::string name_;
  Shape shape_;
  DType dtype_ = DType::kFloat32;
  std::vector<float> data_;
  std::shared_ptr<const WeightSource> source_;
};

// IEEE half to float (ncnn stores most weights as fp16).
float half_to_float(uint16_t h);
// Float to IEEE half, rounded to nearest even (overflow to infinity, NaN stays NaN).
uint16_t float_to_half(float f);

}  // namespace rplayer::nn
