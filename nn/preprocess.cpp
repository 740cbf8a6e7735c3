#include "nn/preprocess.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <stdexcept>
#include <utility>

namespace rplayer::nn {
namespace {

constexpr int kCoefBits = 11;
constexpr int kCoefScale = 1 << kCoefBits;

short saturate_short(float x) {
  const int v = int(x + (x >= 0.f ? 0.5f : -0.5f));
  return short(std::min(std::max(v, SHRT_MIN), SHRT_MAX));
}

// Source index and fixed-point weights per destination coordinate, as ncnn computes
// them (double scale, float fraction, clamped at both ends).
void coefficients(int src, int dst, std::vector<int>& ofs, std::vector<short>& alpha) {
  const double scale = double(src) / dst;
  ofs.resize(dst);
  alpha.resize(dst * 2);
  for (int d = 0; d < dst; d++) {
    float f = float((d + 0.5) * scale - 0.5);
    int s = int(std::floor(f));
    f -= float(s);
    if (s < 0) {
      s = 0;
      f = 0.f;
    }
    if (s >= src - 1) {
      s = src - 2;
      f = 1.f;
    }
    ofs[d] = s;
    alpha[d * 2] = saturate_short((1.f - f) * kCoefScale);
    alpha[d * 2 + 1] = saturate_short(f * kCoefScale);
  }
}

}  // namespace

void resize_bilinear(const uint8_t* src, int srcw, int srch, int channels, uint8_t* dst, int w,
                     int h) {
  if (srcw < 2 || srch < 2) throw std::invalid_argument("resize_bilinear: source below 2x2");
  std::vector<int> xofs, yofs;
  std::vector<short> ialpha, ibeta;
  coefficients(srcw, w, xofs, ialpha);
  coefficients(srch, h, yofs, ibeta);
  const int rw = w * channels;
  std::vector<short> rows0(rw), rows1(rw);
  // Horizontal pass on one source row into 15-bit intermediates (>> 4).
  auto hresize = [&](int sy, short* rows) {
    const uint8_t* s = src + size_t(sy) * srcw * channels;
    for (int dx = 0; dx < w; dx++) {
      const uint8_t* p = s + xofs[dx] * channels;
      const short a0 = ialpha[dx * 2], a1 = ialpha[dx * 2 + 1];
      for (int k = 0; k < channels; k++)
        rows[dx * channels + k] = short((p[k] * a0 + p[k + channels] * a1) >> 4);
    }
  };
  int prev_sy = -2;
  for (int dy = 0; dy < h; dy++) {
    const int sy = yofs[dy];
    if (sy != prev_sy) {
      if (sy == prev_sy + 1) {
        std::swap(rows0, rows1);
        hresize(sy + 1, rows1.data());
      } else {
        hresize(sy, rows0.data());
        hresize(sy + 1, rows1.data());
      }
      prev_sy = sy;
    }
    const short b0 = ibeta[dy * 2], b1 = ibeta[dy * 2 + 1];
    uint8_t* d = dst + size_t(dy) * rw;
    for (int x = 0; x < rw; x++)
      d[x] = uint8_t((short((b0 * rows0[x]) >> 16) + short((b1 * rows1[x]) >> 16) + 2) >> 2);
  }
}

Tensor from_pixels_resize(const Image& img, PixelOrder order, int w, int h) {
  if (img.w <= 0 || img.h <= 0 || (img.channels != 1 && img.channels != 3) ||
      img.pixels.size() != size_t(img.w) * img.h * img.channels)
    throw std::invalid_argument("from_pixels_resize: malformed image");
  const int out_c = order == PixelOrder::kGray ? 1 : 3;
  // Convert pixel order first (ncnn's from_pixels does it while unpacking; the resize
  // is per channel, so the order of the two steps does not change the result).
  std::vector<uint8_t> px(size_t(img.w) * img.h * out_c);
  const size_t n = size_t(img.w) * img.h;
  for (size_t i = 0; i < n; i++) {
    const uint8_t* s = &img.pixels[i * img.channels];
    if (out_c == 1) {
      // ncnn's RGB2GRAY weights (77, 150, 29) / 256.
      px[i] = img.channels == 1 ? s[0] : uint8_t((s[0] * 77 + s[1] * 150 + s[2] * 29) >> 8);
    } else {
      const uint8_t r = s[0], g = img.channels == 3 ? s[1] : s[0],
                    b = img.channels == 3 ? s[2] : s[0];
      px[i * 3 + 0] = order == PixelOrder::kBGR ? b : r;
      px[i * 3 + 1] = g;
      px[i * 3 + 2] = order == PixelOrder::kBGR ? r : b;
    }
  }
  std::vector<uint8_t> resized;
  const uint8_t* planar_src = px.data();
  if (img.w != w || img.h != h) {
    resized.resize(size_t(w) * h * out_c);
    resize_bilinear(px.data(), img.w, img.h, out_c, resized.data(), w, h);
    planar_src = resized.data();
  }
  Tensor t(out_c == 1 ? Shape::cube(w, h, 1) : Shape::cube(w, h, 3));
  for (int q = 0; q < out_c; q++)
    for (size_t i = 0; i < size_t(w) * h; i++) t.channel(q)[i] = planar_src[i * out_c + q];
  return t;
}

void subtract_mean_normalize(Tensor& t, const std::vector<float>& mean,
                             const std::vector<float>& norm) {
  const int c = t.shape().c;
  for (int q = 0; q < c; q++) {
    float* p = t.channel(q);
    const size_t n = t.shape().channel_size();
    const float m = mean.empty() ? 0.f : mean[q];
    const float s = norm.empty() ? 1.f : norm[q];
    for (size_t i = 0; i < n; i++) {
      if (!mean.empty()) p[i] -= m;
      if (!norm.empty()) p[i] *= s;
    }
  }
}

Tensor preprocess_image(const Image& img, Preprocess p, int w, int h) {
  switch (p) {
    case Preprocess::kSqueezeNet: {
      Tensor t = from_pixels_resize(img, PixelOrder::kBGR, w, h);
      subtract_mean_normalize(t, {104.f, 117.f, 123.f}, {});
      return t;
    }
    case Preprocess::kMnistUnit: {
      Tensor t = from_pixels_resize(img, PixelOrder::kGray, w, h);
      subtract_mean_normalize(t, {}, {1.f / 255.f});
      return t;
    }
    case Preprocess::kMnistRaw:
      return from_pixels_resize(img, PixelOrder::kGray, w, h);
    case Preprocess::kNone:
      break;
  }
  throw std::invalid_argument("this model takes no image input");
}

Tensor preprocess_image(const std::string& path, Preprocess p, int w, int h) {
  return preprocess_image(load_image(path), p, w, h);
}

namespace {
constexpr std::pair<Preprocess, const char*> kPreprocessNames[] = {
    {Preprocess::kSqueezeNet, "squeezenet"},
    {Preprocess::kMnistUnit, "mnist-unit"},
    {Preprocess::kMnistRaw, "mnist-raw"},
    {Preprocess::kNone, "none"},
};
}  // namespace

const char* preprocess_name(Preprocess p) {
  for (const auto& [v, name] : kPreprocessNames)
    if (v == p) return name;
  return "none";
}

bool parse_preprocess(const std::string& name, Preprocess* p) {
  for (const auto& [v, n] : kPreprocessNames)
    if (name == n) return *p = v, true;
  return false;
}

}  // namespace rplayer::nn
