// Image decoding and ncnn-exact preprocessing (fixed-point bilinear resize, channel
// order, mean/scale).
#include <gtest/gtest.h>

#include <algorithm>

#include "nn/image.h"
#include "nn/preprocess.h"

namespace rplayer::nn {
namespace {

const std::string kShared = RPLAYER_SHARED_DIR;

TEST(Preprocess, BilinearMatchesNcnnFixedPoint) {
  // 2x2 -> 4x4, worked through ncnn's resize_bilinear_c1 by hand: 11-bit weights,
  // >> 4 after the horizontal pass, (b0*r0 >> 16) + (b1*r1 >> 16) + 2 >> 2 vertically.
  const uint8_t src[4] = {0, 100, 200, 255};
  uint8_t dst[16];
  resize_bilinear(src, 2, 2, 1, dst, 4, 4);
  const uint8_t row0[4] = {0, 25, 75, 100}, row1[4] = {50, 72, 117, 139};
  for (int x = 0; x < 4; x++) {
    EXPECT_EQ(dst[x], row0[x]) << x;
    EXPECT_EQ(dst[4 + x], row1[x]) << x;
  }
  // The last row mirrors the first pair of source rows' bottom.
  EXPECT_EQ(dst[12], 200);
  EXPECT_EQ(dst[15], 255);
}

TEST(Preprocess, BilinearKeepsConstantsAndIdentity) {
  std::vector<uint8_t> src(5 * 3 * 3, 77), dst(9 * 7 * 3);
  resize_bilinear(src.data(), 5, 3, 3, dst.data(), 9, 7);
  EXPECT_TRUE(std::all_of(dst.begin(), dst.end(), [](uint8_t v) { return v == 77; }));
  std::vector<uint8_t> ramp(6 * 4);
  for (size_t i = 0; i < ramp.size(); i++) ramp[i] = uint8_t(i * 10);
  std::vector<uint8_t> same(ramp.size());
  resize_bilinear(ramp.data(), 6, 4, 1, same.data(), 6, 4);
  EXPECT_EQ(same, ramp);
}

TEST(Preprocess, FromPixelsSwapsToBgrAndPlanes) {
  Image img;
  img.w = 2;
  img.h = 1;
  img.channels = 3;
  img.pixels = {10, 20, 30, 40, 50, 60};
  const Tensor t = from_pixels_resize(img, PixelOrder::kBGR, 2, 1);
  EXPECT_EQ(t.shape(), Shape::cube(2, 1, 3));
  EXPECT_EQ(t.values(), (std::vector<float>{30, 60, 20, 50, 10, 40}));
  const Tensor rgb = from_pixels_resize(img, PixelOrder::kRGB, 2, 1);
  EXPECT_EQ(rgb.values(), (std::vector<float>{10, 40, 20, 50, 30, 60}));
}

TEST(Preprocess, SqueezeNetInput) {
  const Image img = load_image(kShared + "/images/cat.ppm");
  EXPECT_EQ(img.w, 224);
  EXPECT_EQ(img.h, 224);
  EXPECT_EQ(img.channels, 3);
  const Tensor t = preprocess_image(img, Preprocess::kSqueezeNet, 227, 227);
  EXPECT_EQ(t.shape(), Shape::cube(227, 227, 3));
  // Channel 0 is blue minus 104: the top-left source pixel is (251, 248, 249) RGB.
  EXPECT_FLOAT_EQ(t.at(0, 0, 0), 249.f - 104.f);
  EXPECT_FLOAT_EQ(t.at(0, 0, 1), 248.f - 117.f);
  EXPECT_FLOAT_EQ(t.at(0, 0, 2), 251.f - 123.f);
  const Image jpg = load_image(kShared + "/images/cat.jpg");
  EXPECT_EQ(jpg.w, 480);
  EXPECT_EQ(jpg.h, 360);
}

TEST(Preprocess, MnistScales) {
  const Image img = load_image(kShared + "/images/digits/7.pgm");
  EXPECT_EQ(img.channels, 1);
  const Tensor unit = preprocess_image(img, Preprocess::kMnistUnit, 28, 28);
  const Tensor raw = preprocess_image(img, Preprocess::kMnistRaw, 28, 28);
  EXPECT_EQ(unit.shape(), Shape::cube(28, 28, 1));
  float mx = 0.f;
  for (size_t i = 0; i < raw.size(); i++) {
    EXPECT_NEAR(unit[i], raw[i] / 255.f, 1e-6f);
    mx = std::max(mx, raw[i]);
  }
  EXPECT_GT(mx, 200.f);
  EXPECT_LE(mx, 255.f);
}

// A 33-byte PNG header claiming 9000 x 9000 pixels (81 Mpx): refused before decoding.
TEST(Image, HugeHeaderIsRefusedBeforeAllocating) {
  const std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13,
                                    'I', 'H', 'D', 'R', 0, 0, 0x23, 0x28, 0, 0, 0x23, 0x28,
                                    8, 2, 0, 0, 0, 0, 0, 0, 0};
  try {
    decode_image(png, "huge.png");
    FAIL() << "decoded";
  } catch (const ImageError& e) {
    EXPECT_NE(std::string(e.what()).find("too large"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace rplayer::nn
