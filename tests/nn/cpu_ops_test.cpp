// CPU reference kernels against small hand-computed cases, with ncnn semantics.
#include <gtest/gtest.h>

#include <cmath>

#include "nn/cpu_reference.h"
#include "nn/layer_spec.h"
#include "nn/model_error.h"

namespace rplayer::nn {
namespace {

Layer make(const std::string& type, const std::string& params = "",
           std::vector<Tensor> weights = {}) {
  Layer l;
  l.type = type;
  l.name = "t";
  // "id=v id=v ..." with ints, floats or "a,b,c" arrays.
  size_t pos = 0;
  while (pos < params.size()) {
    size_t end = params.find(' ', pos);
    if (end == std::string::npos) end = params.size();
    const std::string kv = params.substr(pos, end - pos);
    pos = end + 1;
    if (kv.empty()) continue;
    const int id = std::stoi(kv.substr(0, kv.find('=')));
    const std::string v = kv.substr(kv.find('=') + 1);
    if (v.find(',') != std::string::npos) {
      std::vector<float> f;
      size_t p = 0;
      while (p <= v.size()) {
        size_t e = v.find(',', p);
        if (e == std::string::npos) e = v.size();
        f.push_back(std::stof(v.substr(p, e - p)));
        p = e + 1;
      }
      l.params.set_floats(id, f);
    } else if (v.find('.') != std::string::npos) {
      l.params.set_float(id, std::stof(v));
    } else {
      l.params.set_int(id, std::stoi(v));
    }
  }
  l.weights = std::move(weights);
  l.outputs = {0};
  return l;
}

Tensor w(std::string name, std::vector<float> v) {
  const int n = int(v.size());
  return Tensor(Shape::vec(n), std::move(v), std::move(name));
}

Tensor run1(const Layer& l, const std::vector<Tensor>& ins) {
  std::vector<const Tensor*> p;
  for (const Tensor& t : ins) p.push_back(&t);
  return run_layer_cpu(l, p).at(0);
}

std::vector<float> iota(int n, float start = 0.f) {
  std::vector<float> v(n);
  for (int i = 0; i < n; i++) v[i] = start + float(i);
  return v;
}

void expect_values(const Tensor& t, const std::vector<float>& want, float tol = 1e-5f) {
  ASSERT_EQ(t.size(), want.size());
  for (size_t i = 0; i < want.size(); i++) EXPECT_NEAR(t[i], want[i], tol) << "at " << i;
}

TEST(CpuOps, Convolution3x3PadBiasRelu) {
  // 1 channel 3x3 input 1..9, all-ones 3x3 kernel, pad 1, bias -10, relu.
  const Tensor x(Shape::cube(3, 3, 1), iota(9, 1.f));
  const Layer l = make("Convolution", "0=1 1=3 4=1 5=1 6=9 9=1",
                       {w("weight", std::vector<float>(9, 1.f)), w("bias", {-10.f})});
  const Tensor y = run1(l, {x});
  EXPECT_EQ(y.shape(), Shape::cube(3, 3, 1));
  // Window sums: corners 12,16,24,28; edges 21,27,33,39; centre 45.
  expect_values(y, {2, 11, 6, 17, 35, 23, 14, 29, 18});
}

TEST(CpuOps, ConvolutionStrideDilationTwoChannels) {
  const Tensor x(Shape::cube(4, 4, 2), iota(32));
  // out0 = x0[tap] , out1 = x1 - x0 over a 2x2 kernel with dilation 2, stride 2.
  std::vector<float> k(2 * 2 * 4, 0.f);
  k[0] = 1.f;           // out0 <- ch0 tap (0,0)
  k[8 + 4 + 3] = 1.f;   // out1 <- ch1 tap (1,1)
  k[8 + 0 + 3] = -1.f;  // out1 <- -ch0 tap (1,1)
  const Layer l = make("Convolution", "0=2 1=2 2=2 3=2 6=16", {w("weight", k)});
  const Tensor y = run1(l, {x});
  EXPECT_EQ(y.shape(), Shape::cube(1, 1, 2));  // (4 - 3) / 2 + 1
  expect_values(y, {0.f, 16.f});
}

TEST(CpuOps, ConvolutionSamePaddingModes) {
  const Tensor x(Shape::cube(4, 4, 1), std::vector<float>(16, 1.f));
  for (int mode : {-233, -234}) {
    const Layer l = make("Convolution", "0=1 1=2 3=2 4=" + std::to_string(mode) + " 6=4",
                         {w("weight", {1, 1, 1, 1})});
    EXPECT_EQ(run1(l, {x}).shape(), Shape::cube(2, 2, 1));
  }
  // Odd total padding: SAME_UPPER puts the extra row/column at the end.
  const Tensor x5(Shape::cube(5, 5, 1), std::vector<float>(25, 1.f));
  const Layer upper = make("Convolution", "0=1 1=2 3=2 4=-233 6=4", {w("weight", {1, 1, 1, 1})});
  const Layer lower = make("Convolution", "0=1 1=2 3=2 4=-234 6=4", {w("weight", {1, 1, 1, 1})});
  const Tensor yu = run1(upper, {x5}), yl = run1(lower, {x5});
  EXPECT_EQ(yu.shape(), Shape::cube(3, 3, 1));
  EXPECT_FLOAT_EQ(yu.at(0, 0), 4.f);
  EXPECT_FLOAT_EQ(yu.at(2, 2), 1.f);
  EXPECT_FLOAT_EQ(yl.at(0, 0), 1.f);
  EXPECT_FLOAT_EQ(yl.at(2, 2), 4.f);
}

TEST(CpuOps, ConvolutionFusedActivations) {
  const Tensor x(Shape::cube(1, 1, 1), {-2.f});
  auto act = [&](const std::string& p, float in) {
    const Tensor xi(Shape::cube(1, 1, 1), {in});
    return run1(make("Convolution", "0=1 1=1 6=1 " + p, {w("weight", {1.f})}), {xi})[0];
  };
  EXPECT_FLOAT_EQ(act("9=1", -2.f), 0.f);
  EXPECT_FLOAT_EQ(act("9=2 10=0.1", -2.f), -0.2f);
  EXPECT_FLOAT_EQ(act("9=3 10=-1.0,1.5", -2.f), -1.f);
  EXPECT_FLOAT_EQ(act("9=3 10=-1.0,1.5", 2.f), 1.5f);
  EXPECT_NEAR(act("9=4", -2.f), 1.f / (1.f + std::exp(2.f)), 1e-6f);
  EXPECT_NEAR(act("9=5", 1.f), 1.f * std::tanh(std::log1p(std::exp(1.f))), 1e-6f);
  // hardswish alpha 1/6 beta 0.5: x * (x/6 + 0.5) inside [-3, 3].
  EXPECT_NEAR(act("9=6 10=0.1666667,0.5", 1.f), 1.f * (1.f / 6 + 0.5f), 1e-6f);
  EXPECT_FLOAT_EQ(act("9=6 10=0.1666667,0.5", -4.f), 0.f);
  EXPECT_FLOAT_EQ(act("9=6 10=0.1666667,0.5", 4.f), 4.f);
}

TEST(CpuOps, ConvolutionOnFlatBlobIsInnerProduct) {
  const Tensor x(Shape::vec(3), {1, 2, 3});
  const Layer l = make("Convolution", "0=2 1=1 5=1 6=6",
                       {w("weight", {1, 0, 0, 1, 1, 1}), w("bias", {0.5f, 0.f})});
  const Tensor y = run1(l, {x});
  EXPECT_EQ(y.shape(), Shape::vec(2));
  expect_values(y, {1.5f, 6.f});
}

TEST(CpuOps, DepthwiseAndGroupedConvolution) {
  const Tensor x(Shape::cube(2, 2, 2), {1, 2, 3, 4, 10, 20, 30, 40});
  const Layer dw = make("ConvolutionDepthWise", "0=2 1=2 6=8 7=2 5=1",
                        {w("weight", {1, 1, 1, 1, 1, 0, 0, 0}), w("bias", {0.f, 1.f})});
  expect_values(run1(dw, {x}), {10.f, 11.f});
  // group 2 with 4 outputs: two outputs per group.
  const Layer g = make("ConvolutionDepthWise", "0=4 1=1 6=4 7=2",
                       {w("weight", {1, 2, 3, 4})});
  const Tensor y = run1(g, {x});
  EXPECT_EQ(y.shape(), Shape::cube(2, 2, 4));
  EXPECT_FLOAT_EQ(y.at(0, 0, 1), 2.f);
  EXPECT_FLOAT_EQ(y.at(1, 1, 3), 160.f);
}

TEST(CpuOps, Deconvolution) {
  // 2x2 input, 2x2 kernel of ones, stride 2: each input pixel fills a 2x2 block.
  const Tensor x(Shape::cube(2, 2, 1), {1, 2, 3, 4});
  const Layer l = make("Deconvolution", "0=1 1=2 3=2 6=4", {w("weight", {1, 1, 1, 1})});
  const Tensor y = run1(l, {x});
  EXPECT_EQ(y.shape(), Shape::cube(4, 4, 1));
  expect_values(y, {1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4});
  // Stride 1 overlaps; pad 1 cuts the border: full 3x3 -> 1x1 centre = 1+2+3+4.
  const Layer c = make("Deconvolution", "0=1 1=2 4=1 6=4", {w("weight", {1, 1, 1, 1})});
  const Tensor yc = run1(c, {x});
  EXPECT_EQ(yc.shape(), Shape::cube(1, 1, 1));
  EXPECT_FLOAT_EQ(yc[0], 10.f);
}

TEST(CpuOps, PoolingFullPaddingIsCeilMode) {
  // 5x5, kernel 2, stride 2: valid gives 2x2, ncnn's full padding 3x3.
  const Tensor x(Shape::cube(5, 5, 1), iota(25));
  const Tensor full = run1(make("Pooling", "0=0 1=2 2=2"), {x});
  const Tensor valid = run1(make("Pooling", "0=0 1=2 2=2 5=1"), {x});
  EXPECT_EQ(full.shape(), Shape::cube(3, 3, 1));
  EXPECT_EQ(valid.shape(), Shape::cube(2, 2, 1));
  expect_values(valid, {6, 8, 16, 18});
  expect_values(full, {6, 8, 9, 16, 18, 19, 21, 23, 24});
  // Average over the tail window counts only real pixels (tail pad excluded).
  const Tensor avg = run1(make("Pooling", "0=1 1=2 2=2"), {x});
  EXPECT_FLOAT_EQ(avg.at(2, 0), (4.f + 9.f) / 2.f);
  EXPECT_FLOAT_EQ(avg.at(2, 2), 24.f);
}

TEST(CpuOps, AveragePoolingCountIncludePad) {
  const Tensor x(Shape::cube(2, 2, 1), {4, 4, 4, 4});
  // kernel 2, stride 1, pad 1, valid mode: 3x3 outputs.
  const Tensor ex = run1(make("Pooling", "0=1 1=2 2=1 3=1 5=1 6=0"), {x});
  const Tensor in = run1(make("Pooling", "0=1 1=2 2=1 3=1 5=1 6=1"), {x});
  EXPECT_EQ(ex.shape(), Shape::cube(3, 3, 1));
  EXPECT_FLOAT_EQ(ex.at(0, 0), 4.f);  // one real pixel / 1
  EXPECT_FLOAT_EQ(in.at(0, 0), 1.f);  // one real pixel / 4
  EXPECT_FLOAT_EQ(in.at(1, 1), 4.f);
  EXPECT_FLOAT_EQ(in.at(1, 0), 2.f);
}

TEST(CpuOps, PoolingSameGlobalAdaptive) {
  const Tensor x(Shape::cube(3, 3, 2), iota(18));
  const Tensor same = run1(make("Pooling", "0=0 1=2 2=2 5=2"), {x});
  EXPECT_EQ(same.shape(), Shape::cube(2, 2, 2));
  expect_values(same, {4, 5, 7, 8, 13, 14, 16, 17});
  const Tensor lower = run1(make("Pooling", "0=0 1=2 2=2 5=3"), {x});
  expect_values(lower, {0, 2, 6, 8, 9, 11, 15, 17});
  const Tensor gmax = run1(make("Pooling", "0=0 4=1"), {x});
  EXPECT_EQ(gmax.shape(), Shape::vec(2));
  expect_values(gmax, {8, 17});
  const Tensor gavg = run1(make("Pooling", "0=1 4=1"), {x});
  expect_values(gavg, {4, 13});
  const Tensor ad = run1(make("Pooling", "0=1 7=1 8=1 18=1"), {x});
  EXPECT_EQ(ad.shape(), Shape::cube(1, 1, 2));
  expect_values(ad, {4, 13});
}

TEST(CpuOps, InnerProductWithActivation) {
  const Tensor x(Shape::cube(1, 2, 1), {1, -1});
  const Layer l = make("InnerProduct", "0=3 1=1 2=6 9=1",
                       {w("weight", {1, 1, 1, -1, -1, 2}), w("bias", {0.f, 0.f, 1.f})});
  const Tensor y = run1(l, {x});
  EXPECT_EQ(y.shape(), Shape::vec(3));
  expect_values(y, {0.f, 2.f, 0.f});
}

TEST(CpuOps, GemmConstantB) {
  // A 2x3 (w=3, h=2), B^T constant 2x3, C per column.
  const Tensor a(Shape::mat(3, 2), {1, 2, 3, 4, 5, 6});
  Tensor bt(Shape::mat(3, 2), {1, 0, 0, 0, 1, 1}, "B");
  Tensor c(Shape::mat(2, 1), {10, 20}, "C");
  const Layer l = make("Gemm", "0=2.0 3=1 5=1 6=1 8=2 9=3 10=4", {bt, c});
  const Tensor y = run1(l, {a});
  EXPECT_EQ(y.shape(), Shape::mat(2, 2));
  expect_values(y, {2 * (1 + 10), 2 * (5 + 20), 2 * (4 + 10), 2 * (11 + 20)});
}

TEST(CpuOps, BinaryOpTypesAndBroadcast) {
  const Tensor a(Shape::cube(2, 1, 2), {1, 2, 3, 4});
  const Tensor b(Shape::cube(2, 1, 2), {2, 2, 2, 2});
  const std::vector<std::vector<float>> want = {
      {3, 4, 5, 6},  {-1, 0, 1, 2},    {2, 4, 6, 8}, {0.5f, 1, 1.5f, 2}, {2, 2, 3, 4},
      {1, 2, 2, 2},  {1, 4, 9, 16},    {1, 0, -1, -2}, {2, 1, 2.f / 3, 0.5f}, {2, 4, 8, 16}};
  for (int op = 0; op < 10; op++)
    expect_values(run1(make("BinaryOp", "0=" + std::to_string(op)), {a, b}), want[op]);
  // A vector matching the channel count broadcasts per channel.
  const Tensor per_c(Shape::vec(2), {10, 100});
  expect_values(run1(make("BinaryOp", "0=0"), {a, per_c}), {11, 12, 103, 104});
  // A vector matching w broadcasts along rows; order matters for sub.
  const Tensor per_w(Shape::vec(2), {10, 100});
  const Tensor m(Shape::mat(2, 3), iota(6));
  expect_values(run1(make("BinaryOp", "0=1"), {per_w, m}), {10, 99, 8, 97, 6, 95});
  // Size-1 axes broadcast.
  const Tensor c1(Shape::cube(1, 1, 2), {1, 2});
  expect_values(run1(make("BinaryOp", "0=2"), {a, c1}), {1, 2, 6, 8});
  // with_scalar.
  expect_values(run1(make("BinaryOp", "0=7 1=1 2=10.0"), {a}), {9, 8, 7, 6});
  EXPECT_THROW(run1(make("BinaryOp", "0=0"), {Tensor(Shape::vec(3)), Tensor(Shape::vec(2))}),
               ModelError);
}

TEST(CpuOps, Eltwise) {
  const Tensor a(Shape::vec(3), {1, 2, 3}), b(Shape::vec(3), {4, 0, -1});
  expect_values(run1(make("Eltwise", "0=0"), {a, b}), {4, 0, -3});
  expect_values(run1(make("Eltwise", "0=1"), {a, b}), {5, 2, 2});
  expect_values(run1(make("Eltwise", "0=1 1=2.0,-1.0"), {a, b}), {-2, 4, 7});
  expect_values(run1(make("Eltwise", "0=2"), {a, b}), {4, 2, 3});
}

TEST(CpuOps, Activations) {
  const Tensor x(Shape::vec(4), {-4, -1, 0.5f, 4});
  expect_values(run1(make("ReLU"), {x}), {0, 0, 0.5f, 4});
  expect_values(run1(make("ReLU", "0=0.1"), {x}), {-0.4f, -0.1f, 0.5f, 4});
  expect_values(run1(make("Clip", "0=-1.0 1=1.0"), {x}), {-1, -1, 0.5f, 1});
  expect_values(run1(make("Sigmoid"), {x}),
                {1 / (1 + std::exp(4.f)), 1 / (1 + std::exp(1.f)), 1 / (1 + std::exp(-0.5f)),
                 1 / (1 + std::exp(-4.f))});
  expect_values(run1(make("Swish"), {x}),
                {-4 / (1 + std::exp(4.f)), -1 / (1 + std::exp(1.f)),
                 0.5f / (1 + std::exp(-0.5f)), 4 / (1 + std::exp(-4.f))});
  // ncnn defaults: alpha 0.2, beta 0.5 for both.
  expect_values(run1(make("HardSigmoid"), {x}), {0, 0.3f, 0.6f, 1});
  expect_values(run1(make("HardSwish"), {x}), {0, -0.3f, 0.3f, 4});
  expect_values(run1(make("TanH"), {x}),
                {std::tanh(-4.f), std::tanh(-1.f), std::tanh(0.5f), std::tanh(4.f)});
  expect_values(
      run1(make("GELU"), {x}),
      {-4 * 0.5f * std::erfc(4 / std::sqrt(2.f)), -1 * 0.5f * std::erfc(1 / std::sqrt(2.f)),
       0.5f * 0.5f * std::erfc(-0.5f / std::sqrt(2.f)), 4 * 0.5f * std::erfc(-4 / std::sqrt(2.f))});
  expect_values(run1(make("UnaryOp", "0=4"), {x}), {16, 1, 0.25f, 16});
}

TEST(CpuOps, BatchNormScaleBias) {
  const Tensor x(Shape::cube(1, 2, 2), {1, 2, 3, 4});
  const Layer bn =
      make("BatchNorm", "0=2 1=0.0",
           {w("slope", {2, 1}), w("mean", {1, 0}), w("var", {4, 1}), w("bias", {0, 5})});
  expect_values(run1(bn, {x}), {0, 1, 8, 9});
  const Layer sc = make("Scale", "0=2 1=1", {w("scale", {2, 3}), w("bias", {1, 0})});
  expect_values(run1(sc, {x}), {3, 5, 9, 12});
  expect_values(run1(make("Bias", "0=2", {w("bias", {1, -1})}), {x}), {2, 3, 2, 3});
  const Layer pr = make("PReLU", "0=2", {w("slope", {0.5f, 2})});
  expect_values(run1(pr, {Tensor(Shape::cube(1, 1, 2), {-2, -2})}), {-1, -4});
}

TEST(CpuOps, SoftmaxAxes) {
  const Tensor x(Shape::mat(2, 2), {0, 0, 1, 3});
  const Tensor rows = run1(make("Softmax", "0=1"), {x});
  const float e2 = std::exp(2.f);
  expect_values(rows, {0.5f, 0.5f, 1 / (1 + e2), e2 / (1 + e2)});
  const Tensor cols = run1(make("Softmax", "0=0"), {x});
  const float e1 = std::exp(1.f), e3 = std::exp(3.f);
  expect_values(cols, {1 / (1 + e1), 1 / (1 + e3), e1 / (1 + e1), e3 / (1 + e3)});
}

TEST(CpuOps, ConcatSliceCrop) {
  const Tensor a(Shape::cube(2, 1, 1), {1, 2}), b(Shape::cube(2, 1, 2), {3, 4, 5, 6});
  Layer cat = make("Concat", "0=0");
  const Tensor y = run1(cat, {a, b});
  EXPECT_EQ(y.shape(), Shape::cube(2, 1, 3));
  expect_values(y, {1, 2, 3, 4, 5, 6});
  const Tensor m(Shape::mat(2, 2), {1, 2, 3, 4}), n(Shape::mat(1, 2), {9, 8});
  const Tensor yw = run1(make("Concat", "0=1"), {m, n});
  EXPECT_EQ(yw.shape(), Shape::mat(3, 2));
  expect_values(yw, {1, 2, 9, 3, 4, 8});

  Layer sl = make("Slice", "1=0");
  sl.params.set_ints(0, {1, -233});
  sl.outputs = {0, 1};
  const Tensor x(Shape::cube(1, 2, 3), iota(6));
  const std::vector<Tensor> parts = run_layer_cpu(sl, {&x});
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[1].shape(), Shape::cube(1, 2, 2));
  expect_values(parts[1], {2, 3, 4, 5});
  Layer slw = make("Slice", "1=-1");
  slw.params.set_ints(0, {-233, -233});
  slw.outputs = {0, 1};
  const std::vector<Tensor> halves = run_layer_cpu(slw, {&m});
  expect_values(halves[0], {1, 3});

  const Tensor img(Shape::cube(3, 3, 2), iota(18));
  const Tensor c1 = run1(make("Crop", "0=1 1=1 2=1 3=2 4=1 5=1"), {img});
  EXPECT_EQ(c1.shape(), Shape::cube(2, 1, 1));
  expect_values(c1, {13, 14});
  Layer np = make("Crop");
  np.params.set_ints(9, {1});
  np.params.set_ints(10, {-1});
  np.params.set_ints(11, {1});  // rows 1..2 of every channel
  expect_values(run1(np, {img}), {3, 4, 5, 12, 13, 14});
}

TEST(CpuOps, ReshapeFlattenPermuteShuffle) {
  const Tensor x(Shape::cube(3, 2, 2), iota(12));
  const Tensor r = run1(make("Reshape", "0=-1 1=4"), {x});
  EXPECT_EQ(r.shape(), Shape::mat(3, 4));
  EXPECT_EQ(run1(make("Reshape", "0=0 1=0 2=-1"), {x}).shape(), Shape::cube(3, 2, 2));
  EXPECT_EQ(run1(make("Flatten"), {x}).shape(), Shape::vec(12));
  // order 1 (h w c): transpose each channel.
  const Tensor p1 = run1(make("Permute", "0=1"), {x});
  EXPECT_EQ(p1.shape(), Shape::cube(2, 3, 2));
  expect_values(p1, {0, 3, 1, 4, 2, 5, 6, 9, 7, 10, 8, 11});
  // order 3 (c w h): NCHW -> NHWC.
  const Tensor p3 = run1(make("Permute", "0=3"), {x});
  EXPECT_EQ(p3.shape(), Shape::cube(2, 3, 2));
  expect_values(p3, {0, 6, 1, 7, 2, 8, 3, 9, 4, 10, 5, 11});
  const Tensor p5 = run1(make("Permute", "0=5"), {x});
  EXPECT_EQ(p5.shape(), Shape::cube(2, 2, 3));
  expect_values(p5, {0, 6, 3, 9, 1, 7, 4, 10, 2, 8, 5, 11});
  // ShuffleChannel group 2 over 4 channels: 0 2 1 3.
  const Tensor c(Shape::cube(1, 1, 4), {0, 1, 2, 3});
  expect_values(run1(make("ShuffleChannel", "0=2"), {c}), {0, 2, 1, 3});
  expect_values(run1(make("ShuffleChannel", "0=2 1=1"), {c}), {0, 2, 1, 3});
  const Tensor c6(Shape::cube(1, 1, 6), iota(6));
  expect_values(run1(make("ShuffleChannel", "0=3"), {c6}), {0, 2, 4, 1, 3, 5});
  expect_values(run1(make("ShuffleChannel", "0=3 1=1"), {c6}), {0, 3, 1, 4, 2, 5});
}

TEST(CpuOps, Padding) {
  const Tensor x(Shape::cube(2, 2, 1), {1, 2, 3, 4});
  const Tensor k = run1(make("Padding", "0=1 1=0 2=0 3=1 4=0 5=9.0"), {x});
  EXPECT_EQ(k.shape(), Shape::cube(3, 3, 1));
  expect_values(k, {9, 9, 9, 1, 2, 9, 3, 4, 9});
  expect_values(run1(make("Padding", "0=1 1=0 2=0 3=1 4=1"), {x}), {1, 2, 2, 1, 2, 2, 3, 4, 4});
  const Tensor r = run1(make("Padding", "0=0 1=0 2=1 3=1 4=2"),
                        {Tensor(Shape::cube(3, 1, 1), {1, 2, 3})});
  expect_values(r, {2, 1, 2, 3, 2});
  const Tensor ch = run1(make("Padding", "7=1 8=1 5=-1.0"), {x});
  EXPECT_EQ(ch.shape(), Shape::cube(2, 2, 3));
  expect_values(ch, {-1, -1, -1, -1, 1, 2, 3, 4, -1, -1, -1, -1});
}

TEST(CpuOps, Interp) {
  const Tensor x(Shape::cube(2, 2, 1), {0, 1, 2, 3});
  const Tensor nn = run1(make("Interp", "0=1 1=2.0 2=2.0"), {x});
  EXPECT_EQ(nn.shape(), Shape::cube(4, 4, 1));
  expect_values(nn, {0, 0, 1, 1, 0, 0, 1, 1, 2, 2, 3, 3, 2, 2, 3, 3});
  const Tensor bl = run1(make("Interp", "0=2 3=4 4=4"), {x});
  // Half-pixel centres: x coords -0.25 (clamped 0), 0.25, 0.75, 1.25 (clamped 1).
  expect_values(bl, {0, 0.25f, 0.75f, 1, 0.5f, 0.75f, 1.25f, 1.5f, 1.5f, 1.75f, 2.25f, 2.5f,
                     2, 2.25f, 2.75f, 3});
  const Tensor ac = run1(make("Interp", "0=2 3=3 4=3 6=1"), {x});
  expect_values(ac, {0, 0.5f, 1, 1, 1.5f, 2, 2, 2.5f, 3});
}

TEST(CpuOps, ReductionLrnLayerNorm) {
  const Tensor x(Shape::cube(2, 1, 2), {1, 3, 5, 7});
  Layer mean = make("Reduction", "0=3 1=0 4=1 5=1");
  mean.params.set_ints(3, {1, 2});
  const Tensor m = run1(mean, {x});
  EXPECT_EQ(m.shape(), Shape::cube(1, 1, 2));
  expect_values(m, {2, 6});
  Layer sum = make("Reduction", "0=0 1=1");
  EXPECT_EQ(run1(sum, {x}).shape(), Shape::vec(1));
  expect_values(run1(sum, {x}), {16});
  Layer mx = make("Reduction", "0=4 1=0 4=0 5=1");
  mx.params.set_ints(3, {0});
  expect_values(run1(mx, {x}), {5, 7});

  // LRN across 3 channels, local_size 3: x / (1 + alpha/3 * sum sq)^beta.
  const Tensor c(Shape::cube(1, 1, 3), {1, 2, 3});
  const Tensor l = run1(make("LRN", "0=0 1=3 2=3.0 3=1.0 4=1.0"), {c});
  expect_values(l, {1.f / (1 + 5), 2.f / (1 + 14), 3.f / (1 + 13)});

  const Tensor r(Shape::mat(2, 2), {1, 3, 4, 2});
  const Layer ln = make("LayerNorm", "0=2 1=0.0 2=1", {w("gamma", {1, 2}), w("beta", {0, 1})});
  expect_values(run1(ln, {r}), {-1, 3, 1, -1});
}

TEST(CpuOps, MultiHeadAttentionSelf) {
  // embed 2, 1 head, identity projections: output = softmax(q k^T / sqrt 2) v.
  const std::vector<float> eye = {1, 0, 0, 1}, zero = {0, 0};
  const Layer l = make("MultiHeadAttention", "0=2 1=1 2=4",
                       {w("q_weight", eye), w("q_bias", zero), w("k_weight", eye),
                        w("k_bias", zero), w("v_weight", eye), w("v_bias", zero),
                        w("out_weight", eye), w("out_bias", zero)});
  const Tensor x(Shape::mat(2, 2), {1, 0, 0, 1});
  const Tensor y = run_layer_cpu(l, {&x, &x, &x})[0];
  const float s = 1 / std::sqrt(2.f), p = std::exp(s) / (std::exp(s) + 1);
  expect_values(y, {p, 1 - p, 1 - p, p});
}

TEST(CpuOps, PriorBox) {
  const Tensor feat(Shape::cube(1, 1, 1)), image(Shape::cube(10, 10, 3));
  Layer l = make("PriorBox", "9=-233 10=-233 13=0.5");
  l.params.set_floats(0, {4});
  l.params.set_floats(1, {16});
  l.params.set_floats(2, {4});
  const Tensor y = run_layer_cpu(l, {&feat, &image})[0];
  EXPECT_EQ(y.shape(), Shape::mat(16, 2));
  // min box, sqrt(min*max) box, aspect 4 and its flip, around the centre (5, 5).
  expect_values(y, {0.3f, 0.3f, 0.7f, 0.7f, 0.1f, 0.1f, 0.9f, 0.9f, 0.1f, 0.4f, 0.9f, 0.6f,
                    0.4f, 0.1f, 0.6f, 0.9f, 0.1f, 0.1f, 0.2f, 0.2f, 0.1f, 0.1f, 0.2f, 0.2f,
                    0.1f, 0.1f, 0.2f, 0.2f, 0.1f, 0.1f, 0.2f, 0.2f});
}

TEST(CpuOps, DetectionOutputNms) {
  const Tensor loc(Shape::vec(8), 0.f);
  const Tensor conf(Shape::vec(4), {0.1f, 0.9f, 0.2f, 0.8f});
  const Tensor prior(Shape::mat(8, 2), {0, 0, 0.5f, 0.5f, 0.05f, 0.05f, 0.55f, 0.55f,
                                        0.1f, 0.1f, 0.2f, 0.2f, 0.1f, 0.1f, 0.2f, 0.2f});
  auto run = [&](const std::string& p) {
    return run_layer_cpu(make("DetectionOutput", p), {&loc, &conf, &prior})[0];
  };
  // IoU of the two boxes is 0.68: suppressed at 0.5, kept at 0.7.
  const Tensor one = run("0=2 1=0.5 4=0.25");
  EXPECT_EQ(one.shape(), Shape::mat(6, 1));
  expect_values(one, {1, 0.9f, 0, 0, 0.5f, 0.5f});
  const Tensor two = run("0=2 1=0.7 4=0.25");
  EXPECT_EQ(two.shape(), Shape::mat(6, 2));
  EXPECT_FLOAT_EQ(two.at(1, 1), 0.8f);
  EXPECT_EQ(run("0=2 1=0.7 4=0.95").shape(), Shape::mat(6, 0));
}

TEST(CpuOps, Yolov3DetectionOutput) {
  // One 1x1 cell, one anchor, one class; mask and anchors_scale written as float bits
  // the way ncnn's converters store them.
  Tensor x(Shape::cube(1, 1, 6), {0, 0, 0, 0, 10, 10});
  Layer l = make("Yolov3DetectionOutput", "0=1 1=1 2=0.5");
  l.params.set_floats(4, {0, 0, 2, 4});
  l.params.set_ints(5, {1065353216});  // 1.0f: anchor 1
  l.params.set_ints(6, {1082130432});  // 4.0f: net size 4 x 1
  const Tensor y = run_layer_cpu(l, {&x})[0];
  const float conf = 1.f / (1.f + std::exp(-10.f)) / (1.f + std::exp(-10.f));
  expect_values(y, {1, conf, 0.25f, 0.f, 0.75f, 1.f});
  x[4] = -10.f;  // below the confidence threshold: no rows
  EXPECT_EQ(run_layer_cpu(l, {&x})[0].shape(), Shape::mat(6, 0));
}

TEST(CpuOps, UnknownTypeAndBadInputsNameTheLayer) {
  const Tensor x(Shape::vec(2));
  try {
    run1(make("RMSNorm"), {x});
    FAIL();
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("layer t (RMSNorm)"), std::string::npos);
  }
  EXPECT_THROW(run1(make("Convolution", "0=1 1=3 6=9", {w("weight", std::vector<float>(9))}), {x}),
               ModelError);
}

}  // namespace
}  // namespace rplayer::nn
