// Target 5a: the ncnn loader, .param text and .bin weights (nn/ncnn_loader.h).
//
// Input: u32 little-endian length of the .param text, the text, then the .bin bytes.
// The loader's contract is to report malformed models by exception (ModelError, or a
// standard exception for bad arguments), never to crash or touch memory out of bounds.
#include <cstdint>
#include <cstring>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include "nn/graph.h"
#include "nn/ncnn_loader.h"

using namespace rplayer;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  uint32_t param_len;
  std::memcpy(&param_len, data, 4);
  param_len = uint32_t(std::min<size_t>(param_len, size - 4));
  const std::string_view text(reinterpret_cast<const char*>(data + 4), param_len);
  const std::vector<uint8_t> bin(data + 4 + param_len, data + size);
  try {
    nn::Graph g = nn::parse_ncnn_param(text, "fuzz.param");
    nn::parse_ncnn_bin(g, bin, "fuzz.bin");
  } catch (const std::exception&) {
  }
  return 0;
}
