// Turning images into network inputs exactly as ncnn's examples do: ncnn's fixed-point
// bilinear resize (Mat::from_pixels_resize), then per-channel mean/scale.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nn/image.h"
#include "nn/tensor.h"

namespace rplayer::nn {

// ncnn's resize_bilinear_c1/c2/c3/c4 on interleaved 8-bit pixels: OpenCV-style half
// pixel mapping with 11-bit fixed-point weights, bit-exact with ncnn.
void resize_bilinear(const uint8_t* src, int srcw, int srch, int channels, uint8_t* dst, int w,
                     int h);

enum class PixelOrder { kRGB, kBGR, kGray };

// ncnn::Mat::from_pixels_resize: converts `img` to `order` (RGB images swap to BGR; gray
// expands to 3 channels), resizes to w x h and returns planar float c x h x w.
Tensor from_pixels_resize(const Image& img, PixelOrder order, int w, int h);

// ncnn::Mat::substract_mean_normalize: v = (v - mean[c]) * norm[c]; empty skips a step.
void subtract_mean_normalize(Tensor& t, const std::vector<float>& mean,
                             const std::vector<float>& norm);

enum class Preprocess {
  kSqueezeNet,    // BGR, bilinear to 227x227, minus (104, 117, 123)
  kMnistUnit,     // gray 28x28, / 255 (the ncnn MNIST model)
  kMnistRaw,      // gray 28x28, 0..255 (the ONNX MNIST model)
  kNone,          // generated inputs only
};

// Names for recordings' metadata (the replay TA preprocesses images itself):
// "squeezenet", "mnist-unit", "mnist-raw", "none".
const char* preprocess_name(Preprocess p);
bool parse_preprocess(const std::string& name, Preprocess* p);

// Loads `path` and applies `p` for an input of w x h.
Tensor preprocess_image(const std::string& path, Preprocess p, int w, int h);
Tensor preprocess_image(const Image& img, Preprocess p, int w, int h);

}  // namespace rplayer::nn
