// Device, buffers, shader cache and command buffers on the modeled SoC, including how GPU
// failures reach the caller and what record/replay relies on (a job stream fixed by shapes).
#include <gtest/gtest.h>

#include <thread>

#include "gpu_fixture.h"
#include "runtime/jit/shader_cache.h"

namespace rplayer::runtime {
namespace {

using namespace jit;
using namespace std::chrono_literals;
using testing::Gpu;
using testing::GpuTest;
using testing::random_floats;
using testing::sku_name;

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

Kernel relu_kernel() {
  KernelBuilder kb("relu");
  const Value in = kb.buffer("in"), out = kb.buffer("out"), n = kb.scalar("n", Type::U32);
  const Value i = kb.global_id_x();
  kb.if_(i < n, [&] { kb.store(out + i * 4u, max(kb.load(in + i * 4u), 0.0f)); });
  return kb.finish();
}

// out[0] = *(u32*)addr: reads wherever it is told to.
Kernel peek_kernel() {
  KernelBuilder kb("peek");
  const Value addr = kb.scalar("addr", Type::U32), out = kb.buffer("out");
  kb.store(out, kb.load(addr, 0, Type::U32));
  return kb.finish();
}

class RuntimeTest : public GpuTest {};

TEST_P(RuntimeTest, DeviceReportsTheSku) {
  const DeviceInfo& info = dev().info();
  EXPECT_EQ(info.sku, GetParam());
  const bool pi5 = GetParam() == "v3d-7.1";
  EXPECT_EQ(info.num_qpus, pi5 ? 16u : 8u);
  EXPECT_EQ(info.qpus_per_slice, 4u);
  EXPECT_EQ(info.shared_bytes, pi5 ? 32768u : 16384u);
  EXPECT_EQ(info.cfg4_minus_one, !pi5);
  EXPECT_FALSE(info.board.empty());
  EXPECT_EQ(dev().target().sku, GetParam());
  EXPECT_EQ(dev().target().shared_bytes, info.shared_bytes);
}

TEST_P(RuntimeTest, BuffersAreLabelledAndFreedWithTheirHandle) {
  const uint64_t before = gpu.drv->stats().bos_live;
  {
    Buffer b = dev().create_buffer(1000, driver::BoUsage::Weights, "conv1.weight");
    const driver::BoInfo* info = gpu.drv->bo_info(b.handle());
    ASSERT_TRUE(info);
    EXPECT_EQ(info->label, "conv1.weight");
    EXPECT_EQ(info->usage, driver::BoUsage::Weights);
    EXPECT_FALSE(info->gpu_writable) << "weights are the CPU's: read-only for the GPU";
    EXPECT_EQ(b.size(), 1000u);
    EXPECT_NE(b.gpu_va(), 0u);
    const std::vector<float> x = random_floats(250, 3);
    b.upload(x);
    EXPECT_EQ(b.download<float>(250), x);
    EXPECT_NE(error_of([&] { b.upload(x.data(), 1000, 4); }).find("overruns buffer 'conv1.weight'"),
              std::string::npos);
    EXPECT_THROW(b.download<float>(251), Error);
    Buffer moved = std::move(b);
    EXPECT_FALSE(b.valid());
    EXPECT_TRUE(moved.valid());
    EXPECT_EQ(gpu.drv->stats().bos_live, before + 1);
    Buffer code = dev().create_buffer(64, driver::BoUsage::Code, "k");
    EXPECT_FALSE(gpu.drv->bo_info(code.handle())->gpu_writable);
  }
  EXPECT_EQ(gpu.drv->stats().bos_live, before);
  EXPECT_NE(error_of([&] {
              dev().create_buffer(0, driver::BoUsage::Scratch, "empty");
            }).find("create_buffer 'empty'"),
            std::string::npos);
}

TEST_P(RuntimeTest, ShaderCacheCompilesAndUploadsOnce) {
  ShaderCache& cache = dev().shaders();
  const CachedKernel& a = cache.get(relu_kernel());
  const CachedKernel& b = cache.get(relu_kernel());
  EXPECT_EQ(&a, &b);
  EXPECT_EQ(cache.compilations(), 1u);
  EXPECT_EQ(cache.hits(), 1u);
  const driver::BoInfo* info = gpu.drv->bo_info(a.code.handle());
  ASSERT_TRUE(info);
  EXPECT_EQ(info->usage, driver::BoUsage::Code);
  EXPECT_EQ(info->label, "relu");
  EXPECT_EQ(0, std::memcmp(a.code.data(), a.compiled.code.data(), a.compiled.code.size() * 8));
  // Another specialization is another kernel.
  KernelBuilder kb("spec");
  kb.store(kb.buffer("o"), kb.spec_u32("V"));
  const Kernel k = kb.finish();
  cache.get(k, Specialization().set_u32("V", 1));
  cache.get(k, Specialization().set_u32("V", 2));
  cache.get(k, Specialization().set_u32("V", 1));
  EXPECT_EQ(cache.compilations(), 3u);
  EXPECT_EQ(cache.size(), 3u);
  // Concurrent users get one compilation.
  const Kernel p = peek_kernel();
  std::vector<const CachedKernel*> got(4);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < got.size(); ++t) threads.emplace_back([&, t] { got[t] = &cache.get(p); });
  for (std::thread& t : threads) t.join();
  for (const CachedKernel* g : got) EXPECT_EQ(g, got[0]);
  EXPECT_EQ(cache.compilations(), 4u);
}

TEST_P(RuntimeTest, ResubmissionReplaysTheSameJobStream) {
  const uint32_t n = 500;
  Buffer in = dev().create_buffer(n * 4, driver::BoUsage::Input, "in");
  Buffer out = dev().create_buffer(n * 4, driver::BoUsage::Output, "out");
  CommandBuffer cb(dev(), "net");
  const Kernel k = relu_kernel();
  cb.dispatch(k, Grid::invocations(n), {Arg::buffer(in), Arg::buffer(out), Arg::u32(n)});
  cb.barrier();
  cb.dispatch(k, Grid::invocations(n), {Arg::buffer(out), Arg::buffer(out), Arg::u32(n)});

  std::vector<std::array<uint32_t, 7>> cfgs;
  uint32_t unif_va = 0, unif_handle = 0;
  std::vector<uint32_t> unif_words;
  for (int round = 0; round < 3; ++round) {
    const std::vector<float> x = random_floats(n, 100 + round);
    in.upload(x);
    cb.submit();
    cb.wait();
    const auto y = out.download<float>(n);
    for (uint32_t i = 0; i < n; ++i) ASSERT_EQ(y[i], std::max(x[i], 0.0f)) << i;
    // The uniform buffer and every CFG value stay exactly the same across submits.
    std::vector<std::array<uint32_t, 7>> now;
    for (const CommandBuffer::Dispatch& d : cb.dispatches()) now.push_back(d.cfg);
    const Buffer& ub = cb.uniform_buffer();
    const auto words = ub.download<uint32_t>(6);
    if (round == 0) {
      cfgs = now;
      unif_va = ub.gpu_va();
      unif_handle = ub.handle();
      unif_words = words;
    }
    EXPECT_EQ(now, cfgs);
    EXPECT_EQ(ub.gpu_va(), unif_va);
    EXPECT_EQ(ub.handle(), unif_handle);
    EXPECT_EQ(words, unif_words);
  }
  // The uniforms are addresses and shapes, nothing from the data.
  EXPECT_EQ(unif_words,
            (std::vector<uint32_t>{in.gpu_va(), out.gpu_va(), n, out.gpu_va(), out.gpu_va(), n}));
  const auto& d0 = cb.dispatches()[0];
  EXPECT_EQ(d0.cfg[6], unif_va);
  EXPECT_EQ(d0.cfg[5], d0.kernel->code.gpu_va());
  EXPECT_EQ(cb.dispatches()[1].cfg[6], unif_va + 12);
  EXPECT_EQ(gpu.drv->bo_info(unif_handle)->usage, driver::BoUsage::Uniforms);
  EXPECT_EQ(gpu.drv->bo_info(unif_handle)->label, "net.uniforms");
  EXPECT_NE(
      error_of([&] {
        cb.dispatch(k, Grid::invocations(n), {Arg::buffer(in), Arg::buffer(out), Arg::u32(n)});
      }).find("dispatch after submit"),
      std::string::npos);
}

TEST_P(RuntimeTest, ArgumentsAreCheckedAgainstTheKernel) {
  Buffer b = dev().create_buffer(64, driver::BoUsage::Scratch, "b");
  CommandBuffer cb(dev(), "bad");
  const Kernel k = relu_kernel();
  EXPECT_NE(error_of([&] {
              cb.dispatch(k, Grid::invocations(4), {Arg::buffer(b)});
            }).find("1 arguments for 3 parameters"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              cb.dispatch(k, Grid::invocations(4), {Arg::buffer(b), Arg::u32(1), Arg::u32(4)});
            }).find("parameter 'out' takes a buffer"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              cb.dispatch(k, Grid::invocations(4), {Arg::buffer(b), Arg::buffer(b), Arg::f32(4)});
            }).find("parameter 'n' is u32, given f32"),
            std::string::npos);
  EXPECT_NE(
      error_of([&] {
        cb.dispatch(k, Grid::invocations(100000000), {Arg::buffer(b), Arg::buffer(b), Arg::u32(4)});
      }).find("grid dimension"),
      std::string::npos);
  EXPECT_TRUE(cb.dispatches().empty());
}

TEST_P(RuntimeTest, MmuFaultIsReportedByWait) {
  Buffer out = dev().create_buffer(64, driver::BoUsage::Output, "out");
  CommandBuffer cb(dev(), "faulty");
  cb.dispatch(peek_kernel(), Grid::workgroups(1), {Arg::u32(0x7654000), Arg::buffer(out)});
  cb.submit();
  std::string err = error_of([&] { cb.wait(); });
  // The driver may record the fault just after the job's fence (its interrupt thread
  // races the completion); check_faults() catches the late report.
  for (int i = 0; i < 1000 && err == "(no error)"; ++i) {
    std::this_thread::sleep_for(1ms);
    err = error_of([&] { cb.check_faults(); });
  }
  EXPECT_NE(err.find("command buffer 'faulty': dispatch #0 (kernel 'peek', job "),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("MMU fault at VA 0x07654000"), std::string::npos) << err;
  // A good dispatch afterwards is fine.
  Buffer src = dev().create_buffer(64, driver::BoUsage::Input, "src");
  src.as<uint32_t>()[0] = 77;
  CommandBuffer ok(dev(), "ok");
  ok.dispatch(peek_kernel(), Grid::workgroups(1), {Arg::u32(src.gpu_va()), Arg::buffer(out)});
  ok.submit();
  EXPECT_NO_THROW(ok.wait());
  EXPECT_EQ(out.as<uint32_t>()[0], 77u);
}

TEST_P(RuntimeTest, HangIsReportedByWaitAndTheDeviceRecovers) {
  driver::DriverOptions opts;
  opts.job_timeout = 30ms;
  Gpu g(GetParam(), opts);
  Buffer out = g.dev->create_buffer(64, driver::BoUsage::Output, "out");
  Buffer src = g.dev->create_buffer(64, driver::BoUsage::Input, "src");
  src.as<uint32_t>()[0] = 5;
  CommandBuffer cb(*g.dev, "hangs");
  cb.dispatch(peek_kernel(), Grid::workgroups(1), {Arg::u32(src.gpu_va()), Arg::buffer(out)});
  g.soc.faults().hang_dispatches = 1;
  cb.submit();
  const std::string err = error_of([&] { cb.wait(); });
  EXPECT_NE(err.find("dispatch #0 (kernel 'peek'"), std::string::npos) << err;
  EXPECT_NE(err.find("hung"), std::string::npos) << err;
  cb.submit();  // the same recording again, on the reset GPU
  EXPECT_NO_THROW(cb.wait());
  EXPECT_EQ(out.as<uint32_t>()[0], 5u);
}

RPLAYER_ALL_SKUS(RuntimeTest);

}  // namespace
}  // namespace rplayer::runtime
