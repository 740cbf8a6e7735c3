// Where a weight tensor's values are stored in its model file. The GPU backend uploads
// exactly those stored bytes (so that a device can supply the real weights at replay
// while the recording was made on others) and derives what its kernels need on the GPU;
// the CPU reference keeps using the decoded floats in the Tensor.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace rplayer::nn {

// A model file's whole contents, shared by every tensor read from it.
struct ModelFile {
  std::string path;  // or the name the bytes were given under when parsed from memory
  std::vector<uint8_t> bytes;
};

// The element encodings that the GPU backend can decode from storage as is.
enum class StorageType : uint8_t {
  kFloat32,  // IEEE binary32, little endian
  kFloat16,  // IEEE binary16, little endian
};
const char* storage_type_name(StorageType t);
inline uint32_t storage_element_size(StorageType t) { return t == StorageType::kFloat16 ? 2 : 4; }

struct WeightSource {
  std::shared_ptr<const ModelFile> file;
  uint64_t offset = 0;  // bytes into the file
  uint64_t length = 0;  // bytes: count * storage_element_size(storage)
  StorageType storage = StorageType::kFloat32;
  uint64_t count = 0;  // stored elements
  // 0: the tensor's values are the stored elements in order. R > 0: the tensor is the
  // [R][count / R] matrix whose stored form is its transpose [count / R][R] (ONNX MatMul
  // weights, which ncnn's InnerProduct reads the other way round).
  uint32_t transposed_rows = 0;

  std::span<const uint8_t> bytes() const { return {file->bytes.data() + offset, length}; }
};

}  // namespace rplayer::nn
