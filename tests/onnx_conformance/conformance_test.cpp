// ONNX backend node tests (Debian's libonnx-testdata, a suite we did not write) for the
// operators in scope, run through the full GPU stack: modeled SoC, driver, runtime +
// JIT, NN GPU backend. Each case becomes one test; a summary per operator is printed.
//
// A case is "out of scope" only for reasons stated in kOutOfScope below (data types and
// layouts rplayer does not support); everything else must pass.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>

#include "driver/v3d_driver.h"
#include "hw/soc.h"
#include "nn/gpu/gpu_executor.h"
#include "nn/model_error.h"
#include "nn/onnx_loader.h"
#include "runtime/device.h"

namespace rplayer::test {
namespace {

namespace fs = std::filesystem;
constexpr const char* kDataDir = "/usr/share/libonnx-testdata/data/node";

// The ONNX operators in scope (issue: conformance against a suite we did not write).
// A case belongs to an operator when its model's single node has that op_type.
const std::set<std::string> kOps = {
    "Conv", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Relu",
    "LeakyRelu", "Clip", "Sigmoid", "Softmax", "Gemm", "MatMul", "Concat", "Add", "Sub",
    "Mul", "Div", "BatchNormalization", "Flatten", "Reshape", "Transpose", "Tanh",
    "HardSigmoid", "HardSwish", "Pad", "Identity", "Dropout", "Max", "Min", "Abs", "Exp",
    "Log", "Sqrt", "Neg", "LRN"};

// Name fragments of cases outside what rplayer's NN stack supports, with the reason.
const std::vector<std::pair<std::string, std::string>> kOutOfScope = {
    {"integer", "quantized integer operators"},
    {"uint8", "8-bit integer tensors"},
    {"int8", "8-bit integer tensors"},
    {"training_mode", "training-mode BatchNormalization"},
    {"convtranspose", "ConvTranspose is not an operator in scope"},
    {"_1d", "1-D spatial operators"},
    {"_3d_default", "3-D spatial operators"},
    {"with_argmax", "MaxPool's second (indices) output"},
    {"_expanded", "function-expanded variants (many auxiliary operators)"},
    {"allowzero", "Reshape allowzero (opset 14)"},
    {"dilations", "pooling dilations"},
    {"reflect_pad", "reflect padding"},
    {"edge_pad", "edge padding"},
    {"wrap_pad", "wrap padding"},
    {"_seq", "sequence types"},
    {"_opt", "optional types"},
    {"test_training", "training-mode Dropout (random mask, bool input)"},
    {"_bcast", "numpy broadcasting between two runtime tensors of different rank"},
    {"test_max_example", "Max/Min with other than two inputs"},
    {"test_min_example", "Max/Min with other than two inputs"},
    {"one_input", "Max/Min with other than two inputs"},
    {"matmul_4d", "batched MatMul beyond [1, M, K] x [1, K, N]"},
    {"_mask", "Dropout's mask output"},
};

bool out_of_scope(const std::string& name, std::string* why) {
  for (const auto& [frag, reason] : kOutOfScope) {
    if (name.find(frag) != std::string::npos) {
      *why = reason;
      return true;
    }
  }
  return false;
}

// The op_type of a node-test model with a single node in scope, or "".
std::string op_of(const fs::path& dir) {
  onnx::ModelProto m;
  std::ifstream f(dir / "model.onnx", std::ios::binary);
  if (!f || !m.ParseFromIstream(&f) || m.graph().node_size() != 1) return "";
  const std::string& t = m.graph().node(0).op_type();
  return kOps.count(t) ? t : "";
}

// An ONNX tensor as float values with its dims (outermost first).
struct Array {
  std::vector<int64_t> dims;
  std::vector<float> values;
  int type = 0;
};

bool read_tensor(const fs::path& p, onnx::TensorProto* t) {
  std::ifstream f(p, std::ios::binary);
  return f && t->ParseFromIstream(&f);
}

bool to_array(const onnx::TensorProto& t, Array* a, std::string* why) {
  a->dims.assign(t.dims().begin(), t.dims().end());
  a->type = t.data_type();
  size_t n = 1;
  for (int64_t d : a->dims) n *= size_t(d);
  a->values.resize(n);
  if (t.data_type() == onnx::TensorProto::FLOAT) {
    if (t.has_raw_data()) {
      if (t.raw_data().size() != n * 4) return *why = "bad raw size", false;
      std::memcpy(a->values.data(), t.raw_data().data(), n * 4);
    } else {
      if (size_t(t.float_data_size()) != n) return *why = "bad float_data size", false;
      for (size_t i = 0; i < n; ++i) a->values[i] = t.float_data(int(i));
    }
    return true;
  }
  *why = "tensor type " + std::to_string(t.data_type()) + " is not float";
  return false;
}

// Whether an operator takes its extra inputs as constants in rplayer's (ncnn-style)
// graph: weights, bias, BN statistics, clip bounds, shapes, pads. The test data gives
// fixed values for them, so baking them in as initializers keeps the model's meaning.
bool takes_constant_extras(const std::string& op_type) {
  static const std::set<std::string> k = {"Conv", "Gemm", "MatMul", "BatchNormalization",
                                          "Clip", "Reshape", "Pad", "Dropout"};
  return k.count(op_type) > 0;
}

// Element-wise operators do not care where the batch is: rplayer's graphs are batch-1
// (ncnn), so a case whose tensors lead with another extent gets a batch of 1 prepended
// to every input and output. Broadcasting is unchanged (it aligns from the right).
bool shape_agnostic(const std::string& op_type) {
  static const std::set<std::string> k = {"Relu", "LeakyRelu", "Sigmoid", "Tanh", "HardSigmoid",
                                          "HardSwish", "Abs", "Exp", "Log", "Neg", "Sqrt",
                                          "Clip", "Add", "Sub", "Mul", "Div", "Max", "Min",
                                          "Identity", "Dropout"};
  return k.count(op_type) > 0;
}

void prepend_batch(onnx::ValueInfoProto* v) {
  auto* shape = v->mutable_type()->mutable_tensor_type()->mutable_shape();
  auto* d = shape->add_dim();
  d->set_dim_value(1);
  for (int i = shape->dim_size() - 1; i > 0; --i) shape->mutable_dim()->SwapElements(i, i - 1);
}

struct CaseResult {
  enum Kind { Pass, Fail, OutOfScope } kind = Pass;
  std::string detail;
};

// One SoC + driver + device for the whole suite: cases are small.
struct Stack {
  Stack() : soc(config()), io(soc.port(hw::World::Normal)) {
    std::string err;
    drv = driver::V3dDriver::probe(io, {}, &err);
    if (!drv) throw std::runtime_error(err);
    dev = std::make_unique<runtime::Device>(*drv);
  }
  static hw::SocConfig config() {
    hw::SocConfig c;
    c.normal_bytes = 128ull << 20;
    c.secure_bytes = 16ull << 20;
    return c;
  }
  hw::ModeledSoc soc;
  driver::DirectHwIo io;
  std::unique_ptr<driver::V3dDriver> drv;
  std::unique_ptr<runtime::Device> dev;
};

Stack& stack() {
  static Stack s;
  return s;
}

CaseResult run_case(const fs::path& dir) {
  const std::string name = dir.filename().string();
  std::string why;
  if (out_of_scope(name, &why)) return {CaseResult::OutOfScope, why};
  onnx::ModelProto model;
  {
    std::ifstream f(dir / "model.onnx", std::ios::binary);
    if (!f || !model.ParseFromIstream(&f)) return {CaseResult::Fail, "cannot parse model.onnx"};
  }
  const fs::path data = dir / "test_data_set_0";
  auto& g = *model.mutable_graph();
  std::set<std::string> inits;
  for (const auto& i : g.initializer()) inits.insert(i.name());
  std::vector<std::string> input_names;
  for (const auto& in : g.input())
    if (!inits.count(in.name())) input_names.push_back(in.name());
  const std::string op_type = g.node_size() > 0 ? g.node(0).op_type() : "";
  bool add_batch = false;
  if (shape_agnostic(op_type) && g.input_size() > 0) {
    const auto& s0 = g.input(0).type().tensor_type().shape();
    add_batch = s0.dim_size() == 0 || s0.dim(0).dim_value() != 1;
  }

  // Inputs: feed the first (and, for element-wise ops, every) one; bake the others.
  std::map<std::string, nn::Tensor> feeds;
  for (size_t i = 0; i < input_names.size(); ++i) {
    onnx::TensorProto t;
    if (!read_tensor(data / ("input_" + std::to_string(i) + ".pb"), &t))
      return {CaseResult::Fail, "cannot read input_" + std::to_string(i)};
    if (i > 0 && takes_constant_extras(op_type)) {
      t.set_name(input_names[i]);
      *g.add_initializer() = t;
      continue;
    }
    Array a;
    if (!to_array(t, &a, &why)) return {CaseResult::OutOfScope, why};
    if (add_batch) a.dims.insert(a.dims.begin(), 1);
    if (a.dims.empty() || a.dims[0] != 1)
      return {CaseResult::OutOfScope, "input '" + input_names[i] + "' has no batch-1 leading dim"};
    std::vector<int> outer(a.dims.begin() + 1, a.dims.end());
    if (outer.empty() || outer.size() > 4)
      return {CaseResult::OutOfScope, "rank " + std::to_string(a.dims.size())};
    feeds.emplace(input_names[i], nn::Tensor(nn::Shape::from_outer_dims(outer), std::move(a.values),
                                             input_names[i]));
  }
  // Remove the baked inputs from the graph's input list.
  for (int i = g.input_size() - 1; i >= 0; --i) {
    const std::string& n = g.input(i).name();
    bool baked = false;
    for (const auto& init : g.initializer()) baked |= init.name() == n;
    if (baked && std::find(input_names.begin(), input_names.end(), n) != input_names.end() &&
        !feeds.count(n))
      g.mutable_input()->DeleteSubrange(i, 1);
  }

  if (add_batch) {
    for (auto& in : *g.mutable_input())
      if (feeds.count(in.name())) prepend_batch(&in);
    for (auto& out : *g.mutable_output()) prepend_batch(&out);
  }
  std::string bytes;
  model.SerializeToString(&bytes);
  std::map<std::string, nn::Tensor> outs;
  try {
    nn::Graph graph = nn::parse_onnx(std::vector<uint8_t>(bytes.begin(), bytes.end()), name);
    std::map<std::string, nn::Shape> shapes;
    for (const auto& [n, t] : feeds) shapes[n] = t.shape();
    graph.infer_shapes(shapes);
    nn::GpuExecutor exec(graph, *stack().dev);
    std::vector<std::string> want;
    for (const auto& o : g.output()) want.push_back(o.name());
    outs = exec.run(feeds, want);
  } catch (const nn::ModelError& e) {
    // The loader or backend refused the model: a supported operator must not do that.
    return {CaseResult::Fail, std::string("model error: ") + e.what()};
  } catch (const std::exception& e) {
    return {CaseResult::Fail, std::string("error: ") + e.what()};
  }

  for (int i = 0; i < g.output_size(); ++i) {
    onnx::TensorProto t;
    if (!read_tensor(data / ("output_" + std::to_string(i) + ".pb"), &t))
      return {CaseResult::Fail, "cannot read output_" + std::to_string(i)};
    Array want;
    if (!to_array(t, &want, &why)) return {CaseResult::OutOfScope, why};
    auto it = outs.find(g.output(i).name());
    if (it == outs.end()) return {CaseResult::Fail, "no output " + g.output(i).name()};
    const nn::Tensor& got = it->second;
    if (got.size() != want.values.size())
      return {CaseResult::Fail, "output size " + std::to_string(got.size()) + " != " +
                                    std::to_string(want.values.size())};
    for (size_t k = 0; k < got.size(); ++k) {
      const float a = got.data()[k], b = want.values[k];
      const bool both_nan = std::isnan(a) && std::isnan(b);
      if (!both_nan && !(std::fabs(a - b) <= 1e-4f + 1e-3f * std::fabs(b))) {
        std::ostringstream m;
        m << "output " << i << "[" << k << "] = " << a << ", expected " << b;
        return {CaseResult::Fail, m.str()};
      }
    }
  }
  return {CaseResult::Pass, ""};
}

struct Tally {
  int pass = 0, fail = 0, out = 0;
};
std::mutex g_mu;
std::map<std::string, Tally> g_tally;

class ConformanceCase : public ::testing::Test {
 public:
  ConformanceCase(fs::path dir, std::string op) : dir_(std::move(dir)), op_(std::move(op)) {}
  void TestBody() override {
    const CaseResult r = run_case(dir_);
    {
      std::lock_guard lk(g_mu);
      Tally& t = g_tally[op_];
      (r.kind == CaseResult::Pass ? t.pass : r.kind == CaseResult::Fail ? t.fail : t.out)++;
    }
    if (r.kind == CaseResult::OutOfScope) GTEST_SKIP() << "out of scope: " << r.detail;
    EXPECT_EQ(r.kind, CaseResult::Pass) << r.detail;
  }

 private:
  fs::path dir_;
  std::string op_;
};

class SummaryPrinter : public ::testing::EmptyTestEventListener {
  void OnTestProgramEnd(const ::testing::UnitTest&) override {
    std::printf("\nONNX node tests per operator (pass / fail / out of scope):\n");
    for (const auto& [op, t] : g_tally)
      std::printf("  %-18s %3d / %d / %d\n", op.c_str(), t.pass, t.fail, t.out);
  }
};

}  // namespace
}  // namespace rplayer::test

int main(int argc, char** argv) {
  using namespace rplayer::test;
  ::testing::InitGoogleTest(&argc, argv);
  if (!fs::is_directory(kDataDir)) {
    std::fprintf(stderr, "libonnx-testdata is not installed (%s)\n", kDataDir);
    return 1;
  }
  std::vector<std::pair<fs::path, std::string>> cases;
  for (const auto& e : fs::directory_iterator(kDataDir)) {
    if (!fs::exists(e.path() / "test_data_set_0")) continue;
    std::string op = op_of(e.path());
    if (!op.empty()) cases.emplace_back(e.path(), std::move(op));
  }
  std::sort(cases.begin(), cases.end());
  for (const auto& [c, op] : cases) {
    ::testing::RegisterTest(("Onnx" + op).c_str(), c.filename().string().c_str(), nullptr,
                            nullptr, __FILE__, __LINE__, [c = c, op = op]() -> ::testing::Test* {
                              return new ConformanceCase(c, op);
                            });
  }
  ::testing::UnitTest::GetInstance()->listeners().Append(new SummaryPrinter);
  return RUN_ALL_TESTS();
}
