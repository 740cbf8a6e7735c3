// ONNX conversion: the opset-1 CNTK MNIST model (with its reference outputs) and
// small modern-opset models built here, checked against hand-computed results.
#include <gtest/gtest.h>

#include <onnx/onnx_pb.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <map>

#include "nn/cpu_reference.h"
#include "nn/model_error.h"
#include "nn/ncnn_loader.h"
#include "nn/onnx_loader.h"

namespace rplayer::nn {
namespace {

const std::string kShared = RPLAYER_SHARED_DIR;

// ---- a minimal .npz reader: a stored (uncompressed) zip of little-endian f4/i4 .npy ----
std::map<std::string, std::vector<float>> read_npz(const std::string& path) {
  const std::vector<uint8_t> z = read_file_bytes(path);
  std::map<std::string, std::vector<float>> out;
  size_t pos = 0;
  auto u16 = [&](size_t p) { return uint32_t(z.at(p)) | uint32_t(z.at(p + 1)) << 8; };
  auto u32 = [&](size_t p) { return u16(p) | u16(p + 2) << 16; };
  while (pos + 30 <= z.size() && u32(pos) == 0x04034b50) {
    if (u16(pos + 8) != 0) throw std::runtime_error(path + ": compressed npz entry");
    const uint32_t size = u32(pos + 18), name_len = u16(pos + 26), extra = u16(pos + 28);
    const std::string name(z.begin() + pos + 30, z.begin() + pos + 30 + name_len);
    const size_t data = pos + 30 + name_len + extra;
    // .npy: magic, version, header length, header text, then the array.
    const uint32_t header_len = u16(data + 8);
    const std::string header(z.begin() + data + 10, z.begin() + data + 10 + header_len);
    const bool is_f4 = header.find("'<f4'") != std::string::npos;
    if (!is_f4 && header.find("'<i4'") == std::string::npos)
      throw std::runtime_error(path + ": " + name + " is neither float32 nor int32");
    const size_t body = data + 10 + header_len, n = (data + size - body) / 4;
    std::vector<float> v(n);
    for (size_t i = 0; i < n; i++) {
      int32_t iv;
      std::memcpy(is_f4 ? static_cast<void*>(&v[i]) : &iv, z.data() + body + i * 4, 4);
      if (!is_f4) v[i] = float(iv);
    }
    out[name] = v;
    pos = data + size;
  }
  return out;
}

TEST(Onnx, MnistConvertsToNcnnLayers) {
  Graph g = load_onnx(kShared + "/models/mnist/model.onnx");
  std::map<std::string, int> types;
  for (const Layer& l : g.layers()) types[l.type]++;
  EXPECT_EQ(types["Input"], 1);
  EXPECT_EQ(types["Convolution"], 2);
  EXPECT_EQ(types["Pooling"], 2);
  EXPECT_EQ(types["ReLU"], 2);
  EXPECT_EQ(types["InnerProduct"], 1);  // MatMul with the folded constant weight
  EXPECT_EQ(types["BinaryOp"], 3);      // the three broadcast Adds
  EXPECT_EQ(types["MemoryData"], 3);
  const Layer& conv = g.layer(g.find_layer("Convolution28"));
  EXPECT_EQ(conv.params.get_int(4, 0), -233);  // auto_pad SAME_UPPER
  g.infer_shapes();
  EXPECT_EQ(g.blob_shape("Input3"), Shape::cube(28, 28, 1));
  EXPECT_EQ(g.blob_shape("Convolution28_Output_0"), Shape::cube(28, 28, 8));
  EXPECT_EQ(g.blob_shape("Pooling160_Output_0"), Shape::cube(4, 4, 16));
  EXPECT_EQ(g.blob_shape("Plus214_Output_0"), Shape::vec(10));
}

// The test data holds raw 0..255 pixels and one-hot labels.
TEST(Onnx, MnistMatchesReferenceLabels) {
  Graph g = load_onnx(kShared + "/models/mnist/model.onnx");
  const int labels[3] = {5, 0, 4};
  for (int i = 0; i < 3; i++) {
    auto npz = read_npz(kShared + "/models/mnist/test_data_" + std::to_string(i) + ".npz");
    ASSERT_EQ(npz["inputs.npy"].size(), 784u);
    ASSERT_EQ(npz["outputs.npy"].size(), 10u);
    const Tensor x(Shape::cube(28, 28, 1), npz["inputs.npy"]);
    const Tensor y = CpuExecutor(g).run("Input3", x, "Plus214_Output_0");
    int best = 0;
    for (int k = 0; k < 10; k++)
      if (y[k] > y[best]) best = k;
    EXPECT_EQ(best, labels[i]);
    EXPECT_EQ(npz["outputs.npy"][labels[i]], 1.f);
  }
}

// ---- building ONNX models -------------------------------------------------------
class Builder {
 public:
  explicit Builder(int opset) {
    m_.set_ir_version(7);
    m_.add_opset_import()->set_version(opset);
  }
  void input(const std::string& name, std::vector<int64_t> dims) {
    auto* in = m_.mutable_graph()->add_input();
    in->set_name(name);
    auto* t = in->mutable_type()->mutable_tensor_type();
    t->set_elem_type(onnx::TensorProto::FLOAT);
    for (int64_t d : dims) t->mutable_shape()->add_dim()->set_dim_value(d);
  }
  void init(const std::string& name, std::vector<int64_t> dims, std::vector<float> v,
            bool as_int64 = false) {
    auto* t = m_.mutable_graph()->add_initializer();
    t->set_name(name);
    for (int64_t d : dims) t->add_dims(d);
    if (as_int64) {
      t->set_data_type(onnx::TensorProto::INT64);
      for (float x : v) t->add_int64_data(int64_t(x));
    } else {
      t->set_data_type(onnx::TensorProto::FLOAT);
      // raw_data, as exporters write it.
      t->set_raw_data(std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4));
    }
  }
  onnx::NodeProto* node(const std::string& op, std::vector<std::string> ins,
                        const std::string& out) {
    auto* n = m_.mutable_graph()->add_node();
    n->set_op_type(op);
    n->set_name(op + "_" + out);
    for (const auto& i : ins) n->add_input(i);
    n->add_output(out);
    return n;
  }
  static void ints(onnx::NodeProto* n, const std::string& name, std::vector<int64_t> v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INTS);
    for (int64_t x : v) a->add_ints(x);
  }
  static void integer(onnx::NodeProto* n, const std::string& name, int64_t v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(v);
  }
  Graph build(const std::string& output) {
    m_.mutable_graph()->add_output()->set_name(output);
    std::string s;
    m_.SerializeToString(&s);
    return parse_onnx(std::vector<uint8_t>(s.begin(), s.end()), "built.onnx");
  }

 private:
  onnx::ModelProto m_;
};

std::vector<float> iota(int n) {
  std::vector<float> v(n);
  for (int i = 0; i < n; i++) v[i] = float(i);
  return v;
}

TEST(Onnx, ModernOpsetConvClipReshapeGemm) {
  Builder b(13);
  b.input("x", {1, 2, 2, 2});
  b.init("W", {2, 2, 1, 1}, {1, 0, 0, -1});
  b.init("B", {2}, {0.5f, 0.5f});
  b.init("lo", {}, {0.f});
  b.init("hi", {}, {3.f});
  b.init("shape", {2}, {1, -1}, true);
  std::vector<float> gw(16, 0.f);
  for (int k = 0; k < 8; k++) gw[k] = 1.f;
  gw[8] = 1.f;
  b.init("G", {2, 8}, gw);
  b.init("C", {2}, {1, 2});
  b.node("Conv", {"x", "W", "B"}, "conv");
  b.node("Clip", {"conv", "lo", "hi"}, "clip");
  b.node("Reshape", {"clip", "shape"}, "flat");
  Builder::integer(b.node("Gemm", {"flat", "G", "C"}, "y"), "transB", 1);
  Graph g = b.build("y");
  const Tensor x(Shape::cube(2, 2, 2), iota(8));
  const Tensor y = CpuExecutor(g).run("x", x, "y");
  ASSERT_EQ(y.shape(), Shape::vec(2));
  // conv: ch0 = x0 + .5 = .5 1.5 2.5 3.5, ch1 = -x1 + .5 < 0; clip to [0, 3].
  EXPECT_FLOAT_EQ(y[0], 0.5f + 1.5f + 2.5f + 3.f + 1.f);
  EXPECT_FLOAT_EQ(y[1], 0.5f + 2.f);
}

TEST(Onnx, TransposePoolFlattenMatMulAndConstants) {
  Builder b(13);
  b.input("x", {1, 2, 2, 3});
  b.init("two", {}, {2.f});
  b.init("ten", {}, {10.f});
  b.init("bias", {2, 1, 1}, {100.f, 200.f});
  b.init("M", {2, 3}, {1, 0, 0, 0, 0, 1});
  b.node("Mul", {"x", "two"}, "dbl");            // scalar constant
  b.node("Sub", {"ten", "dbl"}, "rsub");         // constant first: 10 - 2x
  b.node("Add", {"rsub", "bias"}, "biased");     // per-channel numpy broadcast
  b.node("GlobalAveragePool", {"biased"}, "gap");
  b.node("Flatten", {"gap"}, "flat");
  b.node("MatMul", {"flat", "M"}, "mm");
  Builder::ints(b.node("Transpose", {"biased"}, "nhwc"), "perm", {0, 2, 3, 1});
  Graph g = b.build("mm");
  const Tensor x(Shape::cube(3, 2, 2), iota(12));
  auto out = CpuExecutor(g).run({{"x", x}}, {"mm", "nhwc"});
  // Channel means of 10 - 2x: ch0 mean x 2.5 -> 5; ch1 mean x 8.5 -> -7.
  const Tensor& mm = out.at("mm");
  ASSERT_EQ(mm.shape(), Shape::vec(3));
  EXPECT_FLOAT_EQ(mm[0], 105.f);
  EXPECT_FLOAT_EQ(mm[1], 0.f);
  EXPECT_FLOAT_EQ(mm[2], 193.f);
  const Tensor& nhwc = out.at("nhwc");
  EXPECT_EQ(nhwc.shape(), Shape::cube(2, 3, 2));
  EXPECT_FLOAT_EQ(nhwc[0], 110.f);  // (h0, w0, c0)
  EXPECT_FLOAT_EQ(nhwc[1], 200.f + 10.f - 12.f);  // (h0, w0, c1)
}

TEST(Onnx, PadAndPoolingAttributes) {
  Builder b(11);
  b.input("x", {1, 1, 3, 3});
  b.init("pads", {8}, {0, 0, 1, 1, 0, 0, 0, 0}, true);
  b.node("Pad", {"x", "pads"}, "padded");
  auto* mp = b.node("MaxPool", {"padded"}, "y");
  Builder::ints(mp, "kernel_shape", {2, 2});
  Builder::ints(mp, "strides", {2, 2});
  Builder::integer(mp, "ceil_mode", 1);
  Graph g = b.build("y");
  const Tensor x(Shape::cube(3, 3, 1), iota(9));
  const Tensor y = CpuExecutor(g).run("x", x, "y");
  // Padded 4x4 with a zero row/column in front; 2x2 windows.
  EXPECT_EQ(y.shape(), Shape::cube(2, 2, 1));
  EXPECT_EQ(y.values(), (std::vector<float>{0, 2, 6, 8}));
}

TEST(Onnx, UnsupportedShapesAreReported) {
  Builder b(13);
  b.input("x", {2, 3});  // batch 2
  b.node("Relu", {"x"}, "y");
  EXPECT_THROW(b.build("y"), ModelError);
}

}  // namespace
}  // namespace rplayer::nn
