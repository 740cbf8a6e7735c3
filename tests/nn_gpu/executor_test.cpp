// GpuExecutor's behaviour beyond operator results: buffer usages and labels, aliasing and
// in-place Concat, activation fusion and its limits, intermediate blobs, and errors.
#include <gtest/gtest.h>

#include <set>

#include "nn/model_error.h"
#include "runtime/command_buffer.h"
#include "test_util.h"

namespace rplayer::nn {
namespace {

using testing::GpuStack;
using testing::make_graph;
using testing::make_inputs;

// Two branches joined by a Concat, activations after convolutions, a Split.
Graph branchy() {
  return make_graph({
      "Input in 0 1 data 0=20 1=18 2=4",
      "Convolution c0 1 1 data a 0=8 1=3 4=1 5=1 6=288",
      "ReLU r0 1 1 a b",
      "Split sp 1 2 b b1 b2",
      "Convolution c1 1 1 b1 c 0=6 1=1 5=1 6=48",
      "Clip k1 1 1 c d 0=0.0 1=0.5",
      "Convolution c2 1 1 b2 e 0=10 1=3 4=1 5=1 6=720 9=1",
      "Concat cat 2 1 d e f",
      "Pooling gp 1 1 f g 0=1 4=1",
      "InnerProduct fc 1 1 g h 0=5 1=1 2=80",
      "Softmax prob 1 1 h prob",
  });
}

TEST(GpuExecutor, MatchesCpuOnEveryBlob) {
  const Graph g = branchy();
  GpuStack s("v3d-7.1");
  GpuExecutorOptions opts;
  opts.fuse_activations = false;  // keeps every blob readable
  const GpuExecutor gpu(g, *s.dev, opts);
  std::vector<std::string> all;
  for (const Blob& b : g.blobs()) all.push_back(b.name);
  const auto in = make_inputs(g, 5);
  const auto got = gpu.run(in, all);
  const auto want = CpuExecutor(g).run(in, all);
  ASSERT_EQ(got.size(), all.size());
  for (const auto& [name, t] : want) EXPECT_TRUE(testing::close(got.at(name), t, 0, 0)) << name;
}

TEST(GpuExecutor, BuffersHaveTheirUsageAndLabel) {
  const Graph g = branchy();
  GpuStack s("v3d-7.1");
  const GpuExecutor gpu(g, *s.dev);
  std::map<std::string, driver::BoUsage> seen;
  for (const runtime::CommandBuffer* cb : {&gpu.prepare_command_buffer(), &gpu.command_buffer()})
    for (const auto& d : cb->dispatches())
      for (uint32_t h : d.bos) {
        const driver::BoInfo* info = s.drv->bo_info(h);
        ASSERT_NE(info, nullptr);
        seen[std::string(info->label)] = info->usage;
      }
  EXPECT_EQ(seen.at("data"), driver::BoUsage::Input);
  EXPECT_EQ(seen.at("prob"), driver::BoUsage::Output);
  // Weights as stored; what the prepare phase derives from them is scratch.
  EXPECT_EQ(seen.at("c0/weight"), driver::BoUsage::Weights);
  EXPECT_EQ(seen.at("c0/weight.packed"), driver::BoUsage::Scratch);
  EXPECT_EQ(seen.at("fc/bias"), driver::BoUsage::Weights);
  // Intermediates are scratch, named after the blob that owns the memory: the ReLU's
  // output (the convolution writes it), the Concat output (both branches write into it).
  EXPECT_EQ(seen.at("b"), driver::BoUsage::Scratch);
  EXPECT_EQ(seen.at("f"), driver::BoUsage::Scratch);
  EXPECT_EQ(seen.at("c0/border"), driver::BoUsage::Scratch);
  EXPECT_FALSE(seen.count("a")) << "fused away";
  EXPECT_FALSE(seen.count("b1")) << "Split outputs alias their input";
  EXPECT_FALSE(seen.count("d")) << "placed inside the Concat output";
  for (const auto& [label, usage] : seen)
    EXPECT_TRUE(usage != driver::BoUsage::Code && usage != driver::BoUsage::Uniforms) << label;
  EXPECT_EQ(s.drv->bo_info(gpu.command_buffer().uniform_buffer().handle())->usage,
            driver::BoUsage::Uniforms);
}

TEST(GpuExecutor, IoBindingsNameTheFixedBuffers) {
  const Graph g = branchy();
  GpuStack s("v3d-7.1");
  const GpuExecutor gpu(g, *s.dev);
  const auto io = gpu.io_bindings();
  ASSERT_EQ(io.size(), 2u);
  EXPECT_EQ(io[0].blob, "data");
  EXPECT_TRUE(io[0].is_input);
  EXPECT_EQ(io[0].bytes, 20u * 18 * 4 * 4);
  EXPECT_EQ(io[0].shape, Shape::cube(20, 18, 4));
  EXPECT_EQ(io[1].blob, "prob");
  EXPECT_FALSE(io[1].is_input);
  EXPECT_EQ(io[1].bytes, 5u * 4);
  // The bytes at those addresses are what run() wrote and read.
  const auto in = make_inputs(g, 3);
  gpu.run(in);
  for (const auto& b : io) {
    bool found = false;
    for (const auto& d : gpu.command_buffer().dispatches())
      for (uint32_t h : d.bos) {
        const driver::BoInfo* info = s.drv->bo_info(h);
        if (b.gpu_va < info->gpu_va || b.gpu_va + b.bytes > info->gpu_va + info->size) continue;
        EXPECT_EQ(std::string(info->label), b.blob);
        EXPECT_EQ(info->usage, b.is_input ? driver::BoUsage::Input : driver::BoUsage::Output);
        found = true;
      }
    EXPECT_TRUE(found) << b.blob;
  }
}

TEST(GpuExecutor, FusionAndInPlaceConcatSaveDispatches) {
  const Graph g = branchy();
  GpuStack s("v3d-4.2");
  GpuExecutorOptions plain;
  plain.fuse_activations = false;
  plain.zero_copy_concat_slice = false;
  const GpuExecutor fast(g, *s.dev), slow(g, *s.dev, plain);
  // Fused: ReLU and Clip; in place: the Concat's two copies.
  EXPECT_EQ(fast.num_dispatches() + 4, slow.num_dispatches());
  const auto in = make_inputs(g, 9);
  EXPECT_TRUE(testing::close(fast.run(in).at("prob"), slow.run(in).at("prob"), 0, 0));
}

TEST(GpuExecutor, FusedBlobsCanBeKept) {
  const Graph g = branchy();
  GpuStack s("v3d-7.1");
  const GpuExecutor fused(g, *s.dev);
  const auto in = make_inputs(g, 2);
  try {
    fused.run(in, {"a"});
    ADD_FAILURE() << "a fused-away blob was returned";
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("'a'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("keep_blobs"), std::string::npos) << e.what();
  }
  GpuExecutorOptions opts;
  opts.keep_blobs = {"a"};
  const GpuExecutor kept(g, *s.dev, opts);
  EXPECT_EQ(kept.num_dispatches(), fused.num_dispatches() + 1);  // only ReLU unfused
  EXPECT_TRUE(
      testing::close(kept.run(in, {"a"}).at("a"), CpuExecutor(g).run(in, {"a"}).at("a"), 0, 0));
}

TEST(GpuExecutor, RunsRepeatedlyWithNewInputs) {
  const Graph g = branchy();
  GpuStack s("v3d-7.1");
  const GpuExecutor gpu(g, *s.dev);
  for (uint32_t seed = 0; seed < 4; ++seed) {
    const auto in = make_inputs(g, seed);
    EXPECT_TRUE(testing::close(gpu.run(in).at("prob"), CpuExecutor(g).run(in).at("prob"), 0, 0));
    const GpuRunStats st = gpu.last_run_stats();
    // Only the first run prepares: the derived weights stay in place natively.
    const size_t prepare = seed == 0 ? gpu.num_prepare_dispatches() : 0;
    EXPECT_GT(gpu.num_prepare_dispatches(), 0u);
    EXPECT_EQ(st.prepare_dispatches, prepare);
    EXPECT_EQ(st.dispatches, gpu.num_dispatches() - gpu.num_prepare_dispatches() + prepare);
    EXPECT_EQ(st.bytes_in, 20u * 18 * 4 * 4);
    EXPECT_EQ(st.bytes_out, 5u * 4);
  }
}

TEST(GpuExecutor, UnsupportedLayersAreNamed) {
  const Graph g =
      make_graph({"Input in 0 1 x 0=8 1=8 2=2", "Deconvolution up 1 1 x y 0=2 1=2 3=2 6=16"});
  GpuStack s("v3d-7.1");
  try {
    GpuExecutor gpu(g, *s.dev);
    ADD_FAILURE() << "constructed";
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("layer up (Deconvolution)"), std::string::npos)
        << e.what();
  }
  const Graph pool =
      make_graph({"Input in 0 1 x 0=8 1=8 2=2", "Pooling p 1 1 x y 0=1 7=1 8=3 18=3"});
  try {
    GpuExecutor gpu(pool, *s.dev);
    ADD_FAILURE() << "constructed";
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("layer p (Pooling): adaptive pooling"), std::string::npos)
        << e.what();
  }
}

TEST(GpuExecutor, RejectsWrongInputs) {
  const Graph g = branchy();
  GpuStack s("v3d-7.1");
  const GpuExecutor gpu(g, *s.dev);
  EXPECT_THROW(gpu.run({}), ModelError);
  EXPECT_THROW(gpu.run({{"data", Tensor(Shape::cube(18, 20, 4))}}), ModelError);
  EXPECT_THROW(gpu.run(make_inputs(g, 1), {"no_such_blob"}), ModelError);
}

TEST(GpuExecutor, OutputsThatAliasInputsAreCopied) {
  const Graph g = make_graph({"Input in 0 1 x 0=5 1=4 2=3", "Reshape r 1 1 x y 0=60"});
  GpuStack s("v3d-7.1");
  const GpuExecutor gpu(g, *s.dev);
  EXPECT_EQ(gpu.num_dispatches(), 1u);
  const auto in = make_inputs(g, 4);
  const Tensor y = gpu.run(in).at("y");
  EXPECT_EQ(y.shape(), Shape::vec(60));
  EXPECT_EQ(y.values(), in.at("x").values());
}

}  // namespace
}  // namespace rplayer::nn
