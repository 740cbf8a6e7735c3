// Decoding image files (JPEG, PNG, binary PPM/PGM, ...) into 8-bit interleaved pixels.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace rplayer::nn {

class ImageError : public std::runtime_error {
 public:
  explicit ImageError(const std::string& what) : std::runtime_error(what) {}
};

struct Image {
  int w = 0, h = 0;
  int channels = 0;             // 1 gray, 3 RGB
  std::vector<uint8_t> pixels;  // row-major, channels interleaved
};

// Larger images are refused (ImageError) before any pixel memory is allocated.
inline constexpr uint64_t kMaxImagePixels = 1ull << 26;  // 64 Mpx

// Loads `path` as gray (channels 1), RGB (3), or as stored (0: gray stays gray, anything
// with color becomes RGB). Throws ImageError naming the file if missing or undecodable.
Image load_image(const std::string& path, int channels = 0);
// Decodes an in-memory file; `name` labels errors.
Image decode_image(const std::vector<uint8_t>& bytes, const std::string& name, int channels = 0);

}  // namespace rplayer::nn
