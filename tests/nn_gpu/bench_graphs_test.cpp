// ncnn's benchmark graphs (../shared/models/bench) with generated weights, end to end on
// the GPU, against the CPU reference on every output.
//
// Run here (all bit-identical to the CPU reference; the LRN graphs get a tolerance for
// the pow approximation):
//   squeezenet mobilenet mobilenet_v2 mobilenet_v3 resnet18 shufflenet_v2 googlenet
//   alexnet mnasnet efficientnet_b0 resnet50 shufflenet regnety_400m proxylessnasnet
//   blazeface nanodet_m yolo-fastestv2 FastestDet
// Also run on v3d-4.2: mobilenet_v2, shufflenet_v2.
// Not run:
//   vgg16: its 553 MB of weights need more buffer pages than the driver can map into one
//     process (one CPU mapping per scattered 4 KiB page, vm.max_map_count 65530);
//     RPLAYER_NN_GPU_VGG16=1 tries it anyway.
//   efficientnetv2_b0 (Reduction), mobilenet_ssd and squeezenet_ssd (PriorBox,
//   DetectionOutput), mobilenet_yolo and mobilenetv2_yolov3 (DeconvolutionDepthWise,
//   Yolov3DetectionOutput), yolo-fastest-1.1 and yolov4-tiny (Yolov3DetectionOutput),
//   vision_transformer (LayerNorm, MultiHeadAttention, GELU): layer types without a GPU
//   encoder.
#include <gtest/gtest.h>

#include <cctype>
#include <cstdlib>

#include "nn/ncnn_loader.h"
#include "test_util.h"

namespace rplayer::nn {
namespace {

using testing::GpuStack;
using testing::kShared;

struct BenchCase {
  std::string graph;
  std::string sku = "v3d-7.1";
};

Graph load_bench(const std::string& name) {
  Graph g = load_ncnn_param(kShared + "/models/bench/" + name + ".param");
  std::map<std::string, Shape> shapes;
  if (name == "FastestDet") shapes = {{"in0", Shape::cube(352, 352, 3)}};
  g.infer_shapes(shapes);
  // Through the weight cache, as load_model does: the weights then come from a file.
  generate_weights_file(g, "bench/" + name);
  return g;
}

void PrintTo(const BenchCase& c, std::ostream* os) { *os << c.graph << " on " << c.sku; }

class BenchGraphs : public ::testing::TestWithParam<BenchCase> {};

TEST_P(BenchGraphs, MatchCpuReference) {
  const BenchCase& c = GetParam();
  if (c.graph == "vgg16" && !std::getenv("RPLAYER_NN_GPU_VGG16"))
    GTEST_SKIP() << "vgg16 needs more mapped buffer pages than one process may have";
  if (testing::kQuick && c.graph != "shufflenet_v2" && c.graph != "blazeface")
    GTEST_SKIP() << "big graph in a sanitizer build";
  const Graph g = load_bench(c.graph);
  bool has_lrn = false;
  for (const Layer& l : g.layers()) has_lrn = has_lrn || l.type == "LRN";
  GpuStack s(c.sku, c.graph == "vgg16" ? 1ull << 30 : 512ull << 20);
  const GpuExecutor gpu(g, *s.dev);
  const auto in = testing::make_inputs(g, 1, 0.f, 1.f);
  const auto got = gpu.run(in);
  const auto want = CpuExecutor(g).run(in);
  ASSERT_EQ(got.size(), want.size());
  for (const auto& [name, t] : want) {
    ASSERT_TRUE(got.count(name)) << name;
    EXPECT_TRUE(testing::close(got.at(name), t, has_lrn ? 1e-5 : 0, has_lrn ? 1e-7 : 0));
    EXPECT_TRUE(got.at(name).all_finite()) << name;
  }
}

std::vector<BenchCase> cases() {
  std::vector<BenchCase> v;
  for (const char* g : {"squeezenet", "mobilenet", "mobilenet_v2", "mobilenet_v3", "resnet18",
                        "shufflenet_v2", "googlenet", "alexnet", "mnasnet", "efficientnet_b0",
                        "resnet50", "shufflenet", "regnety_400m", "proxylessnasnet", "blazeface",
                        "nanodet_m", "yolo-fastestv2", "FastestDet", "vgg16"})
    v.push_back({g});
  v.push_back({"mobilenet_v2", "v3d-4.2"});
  v.push_back({"shufflenet_v2", "v3d-4.2"});
  return v;
}

INSTANTIATE_TEST_SUITE_P(Graphs, BenchGraphs, ::testing::ValuesIn(cases()), [](const auto& info) {
  std::string n = info.param.graph + "_" + info.param.sku;
  for (char& ch : n)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return n;
});

}  // namespace
}  // namespace rplayer::nn
