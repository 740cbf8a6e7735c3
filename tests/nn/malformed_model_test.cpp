// Malformed models and images must raise a clear error (file, line, layer, field),
// never crash.
#include <gtest/gtest.h>

#include <onnx/onnx_pb.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>

#include "nn/image.h"
#include "nn/model_error.h"
#include "nn/ncnn_loader.h"
#include "nn/onnx_loader.h"
#include "nn/param_dict.h"

namespace rplayer::nn {
namespace {

const std::string kShared = RPLAYER_SHARED_DIR;

// Runs `f`, expects a ModelError whose message contains every one of `parts`.
template <typename F>
void expect_error(F f, std::initializer_list<std::string> parts) {
  try {
    f();
    FAIL() << "expected ModelError";
  } catch (const ModelError& e) {
    for (const std::string& p : parts)
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos)
          << "message '" << e.what() << "' lacks '" << p << "'";
  }
}

Graph param(const std::string& text) { return parse_ncnn_param(text, "bad.param"); }

TEST(MalformedParam, WrongMagic) {
  expect_error([] { param("7767518\n1 1\nInput in 0 1 x\n"); },
               {"bad.param:1", "bad magic '7767518'", "7767517"});
  expect_error([] { param(""); }, {"bad.param", "bad magic"});
}

TEST(MalformedParam, CountsMismatch) {
  expect_error([] { param("7767517\n3 2\nInput in 0 1 x 0=4\nReLU r 1 1 x y\n"); },
               {"file ends after 2 layers", "header says 3"});
  expect_error([] { param("7767517\n2 1\nInput in 0 1 x 0=4\nReLU r 1 1 x y\n"); },
               {"declares 1 blobs", "use 2"});
  expect_error([] { param("7767517\ntwo 2\n"); }, {"bad.param:2", "<layer count> <blob count>"});
  expect_error([] { param("7767517\n2 2\nInput in 0 1 x 0=4\nReLU r 1 2 x y\n"); },
               {"bad.param:4", "layer r (ReLU)", "declares 1 inputs and 2 outputs"});
}

TEST(MalformedParam, UnknownLayerTypeIsNamed) {
  expect_error(
      [] { param("7767517\n2 2\nInput in 0 1 x 0=4\nFrobnicate f 1 1 x y 0=1\n"); },
      {"bad.param:4", "layer f (Frobnicate)", "unknown or unsupported layer type 'Frobnicate'"});
}

TEST(MalformedParam, BadNumbersNameTheField) {
  expect_error([] { param("7767517\n2 2\nInput in 0 1 x 0=4\nReLU r 1 1 x y 0=abc\n"); },
               {"bad.param:4", "layer r (ReLU)", "param 0", "bad integer 'abc'"});
  expect_error([] { param("7767517\n2 2\nInput in 0 1 x 0=4\nReLU r 1 1 x y 0=1.5x\n"); },
               {"param 0", "bad float '1.5x'"});
  expect_error([] { param("7767517\n2 2\nInput in 0 1 x 0=4\nReLU r 1 1 x y 0\n"); },
               {"bad param '0'", "<id>=<value>"});
  expect_error(
      [] { param("7767517\n2 2\nInput in 0 1 x 0=4\nSlice s 1 1 x y -23300=3,1,2\n"); },
      {"layer s (Slice)", "param -23300", "declares 3 values, has 2"});
  expect_error(
      [] { param("7767517\n2 2\nInput in 0 1 x 0=4\nSlice s 1 1 x y -23300=2,1,q\n"); },
      {"param -23300", "bad integer 'q' in array"});
  expect_error([] { param("7767517\n2 2\nInput in 0 1 x 0=4\nReLU r 1 1 x y 40=1\n"); },
               {"param id 40 out of range"});
}

TEST(MalformedParam, BadParamValuesNameTheLayer) {
  expect_error(
      [] { param("7767517\n2 2\nInput in 0 1 x 0=4\nConvolution c 1 1 x y 0=0 1=3 6=9\n"); },
      {"bad.param:4", "layer c (Convolution)", "param 0 (num_output) must be positive"});
  expect_error(
      [] { param("7767517\n2 2\nInput in 0 1 x 0=4\nConvolution c 1 1 x y 0=1 1=1 6=1 8=1\n"); },
      {"layer c (Convolution)", "int8"});
}

TEST(MalformedParam, UndefinedOrDuplicateBlobs) {
  expect_error([] { param("7767517\n2 3\nInput in 0 1 x 0=4\nReLU r 1 1 z y\n"); },
               {"bad.param:4", "layer r (ReLU)", "reads blob 'z'"});
  expect_error([] { param("7767517\n2 1\nInput in 0 1 x 0=4\nReLU r 1 1 x x\n"); },
               {"layer r (ReLU)", "writes blob 'x' already produced by layer in"});
}

// Found by fuzz/fuzz_ncnn: a layer listing one output blob twice made the error message
// read the producing layer past the end of the layer list (the layer is not in it yet).
TEST(MalformedParam, LayerWritingOneBlobTwice) {
  expect_error([] { param("7767517\n2 2\nInput in 0 1 x 0=4\nReLU r 1 2 x y y\n"); },
               {"layer r (ReLU)", "writes blob 'y' already produced by this layer"});
}

// Found by fuzz/fuzz_ncnn: "0=1e27" converted a float outside int's range to int
// (undefined behaviour); the int view of a float parameter now saturates.
TEST(MalformedParam, HugeFloatParamsSaturateAsInts) {
  EXPECT_EQ(ParamValue::of_float(1e27f).i, INT32_MAX);
  EXPECT_EQ(ParamValue::of_float(-1e27f).i, INT32_MIN);
  EXPECT_EQ(ParamValue::of_float(-7.9f).i, -7);
  EXPECT_EQ(ParamValue::of_floats({1e27f, std::nanf(""), 3.5f}).ints,
            (std::vector<int>{INT32_MAX, 0, 3}));
  Graph g = param("7767517\n1 1\nInput in 0 1 x 0=1e27 1=-4e20\n");
  EXPECT_EQ(g.layer(0).params.get_int(0, 0), INT32_MAX);
  EXPECT_EQ(g.layer(0).params.get_int(1, 0), INT32_MIN);
}

// Found by fuzz/fuzz_ncnn: a constant Gemm operand of N x K elements overflowed int.
TEST(MalformedParam, WeightCountOverflow) {
  expect_error(
      [] { param("7767517\n2 2\nInput in 0 1 x 0=4\nGemm g 1 1 x y 5=1 8=768160 9=3072\n"); },
      {"layer g (Gemm)", "B: 768160 x 3072 elements is too many"});
}

TEST(MalformedParam, MissingFile) {
  expect_error([] { load_ncnn_param("/nonexistent/model.param"); },
               {"/nonexistent/model.param", "cannot open"});
}

// A 2-layer net: conv weight (tagged, 8 values) + bias (raw, 2 values).
const char* kConvNet = "7767517\n2 2\nInput in 0 1 x 0=2 1=2 2=1\n"
                       "Convolution conv 1 1 x y 0=2 1=2 5=1 6=8\n";

std::vector<uint8_t> bytes_of(uint32_t tag, std::vector<float> v) {
  std::vector<uint8_t> b(4 + v.size() * 4);
  std::memcpy(b.data(), &tag, 4);
  std::memcpy(b.data() + 4, v.data(), v.size() * 4);
  return b;
}

TEST(MalformedBin, ReadsTaggedAndRawWeights) {
  Graph g = param(kConvNet);
  std::vector<uint8_t> bin = bytes_of(0, {1, 2, 3, 4, 5, 6, 7, 8});
  const std::vector<float> bias = {0.5f, -0.5f};
  bin.insert(bin.end(), reinterpret_cast<const uint8_t*>(bias.data()),
             reinterpret_cast<const uint8_t*>(bias.data()) + 8);
  parse_ncnn_bin(g, bin, "ok.bin");
  EXPECT_EQ(g.layer(1).weight("weight")->values(), (std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8}));
  EXPECT_EQ(g.layer(1).weight("bias")->values(), bias);

  // fp16 tag: 8 halves (16 bytes, already 4-aligned).
  std::vector<uint8_t> h(4 + 16);
  const uint32_t tag = 0x01306B47;
  std::memcpy(h.data(), &tag, 4);
  const uint16_t halves[8] = {0x3C00, 0xC000, 0x3800, 0, 0x7BFF, 0x0001, 0x3C00, 0x3C00};
  std::memcpy(h.data() + 4, halves, 16);
  h.insert(h.end(), reinterpret_cast<const uint8_t*>(bias.data()),
           reinterpret_cast<const uint8_t*>(bias.data()) + 8);
  parse_ncnn_bin(g, h, "fp16.bin");
  const Tensor& w = *g.layer(1).weight("weight");
  EXPECT_FLOAT_EQ(w[0], 1.f);
  EXPECT_FLOAT_EQ(w[1], -2.f);
  EXPECT_FLOAT_EQ(w[2], 0.5f);
  EXPECT_FLOAT_EQ(w[4], 65504.f);
  EXPECT_FLOAT_EQ(w[5], 5.9604645e-8f);
}

TEST(MalformedBin, TruncatedNamesLayerAndWeight) {
  Graph g = param(kConvNet);
  std::vector<uint8_t> bin = bytes_of(0, {1, 2, 3, 4, 5, 6, 7, 8});
  expect_error([&] { parse_ncnn_bin(g, bin, "short.bin"); },
               {"short.bin", "layer conv (Convolution)", "weight 'bias'", "truncated",
                "needs 8 bytes"});
  bin.resize(20);
  expect_error([&] { parse_ncnn_bin(g, bin, "short.bin"); },
               {"weight 'weight'", "truncated", "offset 4"});
  expect_error([&] { parse_ncnn_bin(g, {}, "empty.bin"); },
               {"weight 'weight'", "storage tag"});
}

TEST(MalformedBin, TrailingBytesAndInt8AreErrors) {
  Graph g = param(kConvNet);
  std::vector<uint8_t> bin = bytes_of(0, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  expect_error([&] { parse_ncnn_bin(g, bin, "long.bin"); }, {"4 bytes left"});
  std::vector<uint8_t> int8 = bytes_of(0x000D4B38, {0, 0});
  expect_error([&] { parse_ncnn_bin(g, int8, "int8.bin"); },
               {"layer conv", "weight 'weight'", "int8 weights are not supported"});
}

TEST(MalformedBin, WrongBinForParam) {
  // SqueezeNet's weights against the MNIST graph: sizes disagree somewhere.
  Graph g = load_ncnn_param(kShared + "/models/mnist/mnist.param");
  EXPECT_THROW(load_ncnn_bin(g, kShared + "/models/squeezenet_v1.1/squeezenet_v1.1.bin"),
               ModelError);
}

std::vector<uint8_t> serialize(const onnx::ModelProto& m) {
  std::string s;
  m.SerializeToString(&s);
  return std::vector<uint8_t>(s.begin(), s.end());
}

onnx::ModelProto relu_model(const std::string& op) {
  onnx::ModelProto m;
  m.set_ir_version(7);
  m.add_opset_import()->set_version(13);
  auto* g = m.mutable_graph();
  auto* in = g->add_input();
  in->set_name("x");
  auto* t = in->mutable_type()->mutable_tensor_type();
  t->set_elem_type(onnx::TensorProto::FLOAT);
  for (int d : {1, 2, 4, 4}) t->mutable_shape()->add_dim()->set_dim_value(d);
  auto* n = g->add_node();
  n->set_name("n0");
  n->set_op_type(op);
  n->add_input("x");
  n->add_output("y");
  g->add_output()->set_name("y");
  return m;
}

TEST(MalformedOnnx, GarbageAndUnsupported) {
  expect_error([] { parse_onnx({1, 2, 3, 255, 255}, "junk.onnx"); },
               {"junk.onnx", "not a valid ONNX model"});
  expect_error([] { parse_onnx(serialize(relu_model("Einsum")), "m.onnx"); },
               {"m.onnx", "node n0 (Einsum)", "unsupported operator Einsum"});
  EXPECT_NO_THROW(parse_onnx(serialize(relu_model("Relu")), "m.onnx"));
  expect_error([] { load_onnx("/nonexistent/model.onnx"); }, {"/nonexistent/model.onnx"});
}

// Found by fuzz/fuzz_onnx: an initializer's dimensions multiplied past 64 bits (signed
// overflow); negative dimensions are refused too.
TEST(MalformedOnnx, InitializerDimensionsOverflowOrNegative) {
  for (const auto& dims : {std::vector<int64_t>{int64_t(1) << 40, int64_t(1) << 40},
                           std::vector<int64_t>{-2, -3}}) {
    onnx::ModelProto m = relu_model("Relu");
    auto* w = m.mutable_graph()->add_initializer();
    w->set_name("w");
    w->set_data_type(onnx::TensorProto::FLOAT);
    for (int64_t d : dims) w->add_dims(d);
    EXPECT_THROW(parse_onnx(serialize(m), "m.onnx"), ModelError);
  }
}

// Found by fuzz/fuzz_onnx: a constant shape value beyond int64 (here INT64_MAX, which is
// 2^63 once stored as float) was converted to int64 (undefined behaviour).
TEST(MalformedOnnx, ShapeValueOutOfRange) {
  onnx::ModelProto m = relu_model("Reshape");
  m.mutable_graph()->mutable_node(0)->add_input("shape");
  auto* s = m.mutable_graph()->add_initializer();
  s->set_name("shape");
  s->set_data_type(onnx::TensorProto::INT64);
  s->add_dims(2);
  s->add_int64_data(1);
  s->add_int64_data(INT64_MAX);
  EXPECT_THROW(parse_onnx(serialize(m), "m.onnx"), ModelError);
}

TEST(MalformedOnnx, BadAttributeIsNamed) {
  onnx::ModelProto m = relu_model("MaxPool");
  auto* a = m.mutable_graph()->mutable_node(0)->add_attribute();
  a->set_name("kernel_shape");
  a->set_type(onnx::AttributeProto::INTS);
  a->add_ints(2);
  expect_error([&] { parse_onnx(serialize(m), "m.onnx"); },
               {"node n0 (MaxPool)", "attribute 'kernel_shape'", "expected 2 values"});
  a->add_ints(2);
  auto* pad = m.mutable_graph()->mutable_node(0)->add_attribute();
  pad->set_name("auto_pad");
  pad->set_type(onnx::AttributeProto::STRING);
  pad->set_s("SIDEWAYS");
  expect_error([&] { parse_onnx(serialize(m), "m.onnx"); },
               {"attribute 'auto_pad'", "'SIDEWAYS'"});
}

TEST(MalformedOnnx, ConvWeightMustBeConstant) {
  onnx::ModelProto m = relu_model("Conv");
  m.mutable_graph()->mutable_node(0)->add_input("w_dynamic");
  expect_error([&] { parse_onnx(serialize(m), "m.onnx"); },
               {"node n0 (Conv)", "input 1", "w_dynamic", "must be a constant"});
}

TEST(MalformedImage, MissingAndUndecodable) {
  try {
    load_image("/nonexistent/cat.jpg");
    FAIL();
  } catch (const ImageError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/cat.jpg"), std::string::npos);
  }
  try {
    decode_image({'n', 'o', 't', ' ', 'a', 'n', ' ', 'i', 'm', 'g'}, "junk.png");
    FAIL();
  } catch (const ImageError& e) {
    EXPECT_NE(std::string(e.what()).find("junk.png: cannot decode image"), std::string::npos)
        << e.what();
  }
  // Found by fuzz/fuzz_image: a JPEG Huffman table of more than 256 symbols overflows
  // stb_image 2.27's tables; it is refused before stb parses it.
  const std::vector<uint8_t> dht = {0xFF, 0xD8, 0xFF, 0xC4, 0x00, 0x13, 0x00, 0xFF, 0xFF, 0x00, 0,
                                    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,
                                    0,    0xFF, 0xD9};
  try {
    decode_image(dht, "huffman.jpg");
    FAIL();
  } catch (const ImageError& e) {
    EXPECT_NE(std::string(e.what()).find("huffman.jpg: cannot decode image: corrupt JPEG"),
              std::string::npos)
        << e.what();
  }
  // A PPM cut short.
  std::ifstream in(kShared + "/images/cat.ppm", std::ios::binary);
  std::vector<uint8_t> ppm((std::istreambuf_iterator<char>(in)), {});
  ppm.resize(1000);
  EXPECT_THROW(decode_image(ppm, "cut.ppm"), ImageError);
}

}  // namespace
}  // namespace rplayer::nn
