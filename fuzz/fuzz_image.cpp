// Target 6: the image decoder the replay TA runs inside the TEE on bytes from the normal
// world (nn::decode_image, stb_image) and the preprocessing after it, as
// tee/replay_ta.cpp calls them.
//
// Input: byte 0 picks the preprocessing (bit 0: SqueezeNet 227x227 BGR, else MNIST 28x28
// gray; bit 1: unit or raw scale for MNIST) and byte 1 the channels asked of the decoder
// (0, 1 or 3); the rest is the encoded image. Undecodable images must raise ImageError.
#include <cstdint>
#include <exception>
#include <vector>

#include "nn/image.h"
#include "nn/preprocess.h"

using namespace rplayer;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const nn::Preprocess p = (data[0] & 1)   ? nn::Preprocess::kSqueezeNet
                           : (data[0] & 2) ? nn::Preprocess::kMnistUnit
                                           : nn::Preprocess::kMnistRaw;
  const int channels = (data[1] % 3 == 0) ? 0 : (data[1] % 3 == 1) ? 1 : 3;
  const int w = p == nn::Preprocess::kSqueezeNet ? 227 : 28;
  try {
    const nn::Image img = nn::decode_image(std::vector<uint8_t>(data + 2, data + size), "fuzz",
                                           channels);
    nn::Tensor t = nn::preprocess_image(img, p, w, w);
    (void)t;
  } catch (const std::exception&) {
  }
  return 0;
}
