// ncnn's benchmark graphs (../shared/models/bench/*.param): shape inference against the
// shape hints ncnnoptimize left in them (param -23330), and runs on the CPU reference
// with generated weights.
//
// Load, infer shapes and run (generated weights, finite outputs, each < 2 s):
//   alexnet blazeface efficientnet_b0 efficientnetv2_b0 FastestDet googlenet mnasnet
//   mobilenet mobilenet_ssd mobilenet_v2 mobilenet_v3 mobilenet_yolo mobilenetv2_yolov3
//   nanodet_m proxylessnasnet regnety_400m resnet18 resnet50 shufflenet shufflenet_v2
//   squeezenet squeezenet_ssd yolo-fastest-1.1 yolo-fastestv2 yolov4-tiny
// Load and infer shapes only (a run takes longer than 2 s on one core):
//   vgg16 (~2-2.5 s), vision_transformer (~10 s)
// Detection outputs have data-dependent row counts: their inferred shape is an upper
// bound, so their hints are not compared.
// The LLM graphs under bench/llm (RMSNorm, RotaryEmbed, SDPA, ...) are not supported.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <set>

#include "nn/cpu_reference.h"
#include "nn/layer_spec.h"
#include "nn/model_error.h"
#include "nn/ncnn_loader.h"
#include "nn/weight_generator.h"

namespace rplayer::nn {
namespace {

const std::string kBench = std::string(RPLAYER_SHARED_DIR) + "/models/bench/";

const std::vector<std::string> kRun = {
    "alexnet",         "blazeface",        "efficientnet_b0", "efficientnetv2_b0",
    "FastestDet",      "googlenet",        "mnasnet",         "mobilenet",
    "mobilenet_ssd",   "mobilenet_v2",     "mobilenet_v3",    "mobilenet_yolo",
    "mobilenetv2_yolov3", "nanodet_m",     "proxylessnasnet", "regnety_400m",
    "resnet18",        "resnet50",         "shufflenet",      "shufflenet_v2",
    "squeezenet",      "squeezenet_ssd",   "yolo-fastest-1.1", "yolo-fastestv2",
    "yolov4-tiny"};
const std::vector<std::string> kShapesOnly = {"vgg16", "vision_transformer"};

// Graphs whose Input layer declares no shape: benchncnn's input sizes.
std::map<std::string, Shape> input_shapes(const std::string& graph) {
  if (graph == "FastestDet") return {{"in0", Shape::cube(352, 352, 3)}};
  if (graph == "vision_transformer") return {{"input", Shape::cube(384, 384, 3)}};
  return {};
}

Graph load(const std::string& graph) {
  Graph g = load_ncnn_param(kBench + graph + ".param");
  g.infer_shapes(input_shapes(graph));
  return g;
}

// Every blob shape against the -23330 hints (count, then dims w h c per output).
int check_hints(const Graph& g) {
  int checked = 0;
  for (const Layer& l : g.layers()) {
    if (has_data_dependent_shape(l.type)) continue;
    const std::vector<int> hint = l.params.get_ints(30);
    for (size_t i = 0; i < l.outputs.size() && i * 4 + 3 < hint.size(); i++) {
      const int* h = &hint[i * 4];
      const Shape want = h[0] == 1 ? Shape::vec(h[1])
                         : h[0] == 2 ? Shape::mat(h[1], h[2])
                                     : Shape::cube(h[1], h[2], h[3]);
      EXPECT_EQ(g.blob(l.outputs[i]).shape, want)
          << g.source << " layer " << l.name << " blob " << g.blob(l.outputs[i]).name << ": "
          << g.blob(l.outputs[i]).shape.str() << " vs hint " << want.str();
      checked++;
    }
  }
  return checked;
}

TEST(BenchGraphs, EveryGraphIsClassified) {
  std::set<std::string> listed(kRun.begin(), kRun.end());
  listed.insert(kShapesOnly.begin(), kShapesOnly.end());
  for (const auto& e : std::filesystem::directory_iterator(kBench)) {
    if (e.path().extension() == ".param") {
      EXPECT_TRUE(listed.count(e.path().stem().string())) << e.path() << " is not classified";
    }
  }
}

TEST(BenchGraphs, ShapeInferenceMatchesHints) {
  int total = 0;
  for (const std::vector<std::string>* list : {&kRun, &kShapesOnly}) {
    for (const std::string& graph : *list) {
      SCOPED_TRACE(graph);
      const Graph g = load(graph);
      for (const Blob& b : g.blobs()) EXPECT_FALSE(b.shape.empty()) << b.name;
      total += check_hints(g);
    }
  }
  EXPECT_GT(total, 2000);
}

TEST(BenchGraphs, KnownOutputShapes) {
  EXPECT_EQ(load("squeezenet").blob_shape("output"), Shape::vec(1000));
  EXPECT_EQ(load("resnet50").blob_shape("output"), Shape::vec(1000));
  // Gemm yields N x M, here 1000 x 1.
  EXPECT_EQ(load("vision_transformer").blob_shape("output"), Shape::mat(1000, 1));
  EXPECT_EQ(load("mobilenet_v2").blob_shape("output"), Shape::vec(1000));
}

TEST(BenchGraphs, LlmDecodersNameTheUnsupportedLayerType) {
  try {
    load("llm/qwen3_0.6b_decoder.ncnn");
    ADD_FAILURE() << "loaded";
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("'RMSNorm'"), std::string::npos) << e.what();
  }
}

class BenchRun : public ::testing::TestWithParam<std::string> {};

TEST_P(BenchRun, RunsWithGeneratedWeights) {
  Graph g = load(GetParam());
  generate_weights(g);
  std::map<std::string, Tensor> inputs;
  for (int b : g.input_blobs()) {
    Tensor x(g.blob(b).shape);
    for (size_t i = 0; i < x.size(); i++) x[i] = float((i * 7919) % 255) / 255.f;
    inputs.emplace(g.blob(b).name, std::move(x));
  }
  const auto out = CpuExecutor(g).run(inputs);
  ASSERT_FALSE(out.empty());
  for (const auto& [name, t] : out) {
    EXPECT_TRUE(t.all_finite()) << name;
    if (has_data_dependent_shape(g.layer(g.blob(g.blob_index(name)).producer).type)) {
      EXPECT_LE(t.shape().h, g.blob_shape(name).h) << name;
      continue;
    }
    EXPECT_EQ(t.shape(), g.blob_shape(name)) << name;
    EXPECT_TRUE(std::any_of(t.values().begin(), t.values().end(), [](float v) { return v != 0; }))
        << name << " is all zeros";
  }
}

INSTANTIATE_TEST_SUITE_P(Graphs, BenchRun, ::testing::ValuesIn(kRun),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n)
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           return n;
                         });

}  // namespace
}  // namespace rplayer::nn
