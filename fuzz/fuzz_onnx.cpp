// Target 5b: the ONNX loader (nn/onnx_loader.h): protobuf parsing, the walk of the wire
// format for weight offsets, and the conversion to the ncnn-style graph.
// Malformed models must be reported by exception, never crash.
#include <cstdint>
#include <exception>
#include <vector>

#include "nn/graph.h"
#include "nn/onnx_loader.h"

using namespace rplayer;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<uint8_t> bytes(data, data + size);
  try {
    nn::Graph g = nn::parse_onnx(bytes, "fuzz.onnx");
  } catch (const std::exception&) {
  }
  return 0;
}
