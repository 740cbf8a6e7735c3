// ncnn .param parsing: structure, typed params (ints, floats, arrays, negative keys),
// ParamDict accessors with defaults, and the Graph built from it.
#include <gtest/gtest.h>

#include <cmath>

#include "nn/graph.h"
#include "nn/model_error.h"
#include "nn/ncnn_loader.h"
#include "nn/weight_generator.h"

namespace rplayer::nn {
namespace {

const char* kNet = R"(7767517
6 8
Input            data   0 1 data 0=8 1=6 2=3
Convolution      conv   1 1 data conv 0=4 1=3 4=1 5=1 6=108 9=2 -23310=1,1.000000e-01
Split            split  1 2 conv a b
Slice            slice  1 2 a s0 s1 -23300=2,1,-233 1=0
Pooling          pool   1 1 s1 pool 0=1 1=1 2=1 5=1 -23330=4,3,8,6,3
Concat           cat    2 1 b pool out 0=-3
)";

TEST(ParamParser, ParsesLayersBlobsAndParams) {
  Graph g = parse_ncnn_param(kNet, "net.param");
  ASSERT_EQ(g.layers().size(), 6u);
  EXPECT_EQ(g.blobs().size(), 8u);  // data conv a b s0 s1 pool out
  const Layer& conv = g.layer(1);
  EXPECT_EQ(conv.type, "Convolution");
  EXPECT_EQ(conv.name, "conv");
  EXPECT_EQ(conv.params.get_int(0, 0), 4);
  EXPECT_EQ(conv.params.get_int(6, 0), 108);
  EXPECT_EQ(conv.params.get_int(11, conv.params.get_int(1, 0)), 3);  // default chain
  EXPECT_EQ(conv.params.get_int(7, 1), 1);                           // absent: default
  // -23310 is the array form of id 10 (activation_params), here one float.
  ASSERT_TRUE(conv.params.has(10));
  EXPECT_EQ(conv.params.get_floats(10), std::vector<float>{0.1f});
  EXPECT_FLOAT_EQ(conv.params.get_float(10, 0.f), 0.1f);

  const Layer& slice = g.layer(3);
  EXPECT_EQ(slice.params.get_ints(0), (std::vector<int>{1, -233}));
  EXPECT_EQ(slice.params.values().at(0).kind, ParamValue::Kind::kIntArray);
  const Layer& pool = g.layer(4);
  EXPECT_EQ(pool.params.get_ints(30), (std::vector<int>{3, 8, 6, 3}));
  EXPECT_EQ(g.layer(5).params.get_int(0, 0), -3);  // negative value

  EXPECT_EQ(g.input_blobs(), std::vector<int>{g.find_blob("data")});
  EXPECT_EQ(g.output_blobs(), (std::vector<int>{g.find_blob("s0"), g.find_blob("out")}));
  EXPECT_EQ(g.blob(g.find_blob("conv")).consumers, std::vector<int>{2});
  EXPECT_EQ(g.blob(g.find_blob("a")).producer, 2);
}

TEST(ParamParser, InfersShapes) {
  Graph g = parse_ncnn_param(kNet, "net.param");
  g.infer_shapes();
  EXPECT_EQ(g.blob_shape("data"), Shape::cube(8, 6, 3));
  EXPECT_EQ(g.blob_shape("conv"), Shape::cube(8, 6, 4));
  EXPECT_EQ(g.blob_shape("s0"), Shape::cube(8, 6, 1));
  EXPECT_EQ(g.blob_shape("s1"), Shape::cube(8, 6, 3));
  EXPECT_EQ(g.blob_shape("pool"), Shape::cube(8, 6, 3));
  // Concat axis -3 on 3-D blobs is the channel axis.
  EXPECT_EQ(g.blob_shape("out"), Shape::cube(8, 6, 7));
  // Along w the channel counts differ, which must fail naming the layer.
  g.layers()[5].params.set_int(0, 2);
  try {
    g.infer_shapes();
    FAIL() << "expected ModelError";
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("layer cat (Concat)"), std::string::npos) << e.what();
  }
  // A different input shape flows through.
  g.layers()[5].params.set_int(0, 0);
  g.infer_shapes({{"data", Shape::cube(5, 5, 3)}});
  EXPECT_EQ(g.blob_shape("out"), Shape::cube(5, 5, 7));
}

TEST(ParamParser, FloatAndIntSpellings) {
  Graph g = parse_ncnn_param(R"(7767517
2 2
Input in 0 1 x 0=4
Clip  c  1 1 x y 0=-1.5 1=2e0 -23305=3,1,2.5,-3
)",
                             "t.param");
  const ParamDict& p = g.layer(1).params;
  EXPECT_EQ(p.values().at(0).kind, ParamValue::Kind::kFloat);
  EXPECT_FLOAT_EQ(p.get_float(0, 0.f), -1.5f);
  EXPECT_FLOAT_EQ(p.get_float(1, 0.f), 2.f);
  // One float in an array makes it a float array; ints read as truncated.
  EXPECT_EQ(p.get_floats(5), (std::vector<float>{1.f, 2.5f, -3.f}));
  EXPECT_EQ(p.get_ints(5), (std::vector<int>{1, 2, -3}));
  EXPECT_EQ(p.get_int(0, 0), -1);  // a float read as int converts
  EXPECT_EQ(p.str(), "0=-1.500000e+00 1=2.000000e+00 -23305=3,1.000000e+00,2.500000e+00,"
                     "-3.000000e+00");
}

TEST(ParamParser, ToleratesBlankLinesAndFewerBlobsThanDeclared) {
  Graph g = parse_ncnn_param("7767517\n\n2 9\n  Input in 0 1 x 0=4\n\nReLU r 1 1 x y\n", "t");
  EXPECT_EQ(g.layers().size(), 2u);
}

TEST(ParamParser, GeneratedWeightsAreDeterministicAndShaped) {
  Graph a = parse_ncnn_param(kNet, "net.param");
  Graph b = parse_ncnn_param(kNet, "net.param");
  generate_weights(a, 42);
  generate_weights(b, 42);
  const Layer& conv = a.layer(1);
  ASSERT_EQ(conv.weights.size(), 2u);
  EXPECT_EQ(conv.weights[0].name(), "weight");
  EXPECT_EQ(conv.weights[0].size(), 108u);
  EXPECT_EQ(conv.weights[1].name(), "bias");
  EXPECT_EQ(conv.weights[1].size(), 4u);
  EXPECT_EQ(conv.weights[0].values(), b.layer(1).weights[0].values());
  generate_weights(b, 43);
  EXPECT_NE(conv.weights[0].values(), b.layer(1).weights[0].values());
  const float bound = std::sqrt(3.f / 27.f);
  for (float v : conv.weights[0].values()) {
    EXPECT_LE(std::fabs(v), bound);
  }
}

}  // namespace
}  // namespace rplayer::nn
