// L2T cache: stores are invisible in DRAM until cleaned; loads are stale until
// invalidated.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "hw/l2t_cache.h"
#include "tests/hw/harness.h"
#include "tests/hw/kernels.h"

namespace rplayer::test {
namespace {

using namespace rplayer::v3d;
using hw::RegBlock;

class CacheTest : public ::testing::TestWithParam<std::string> {
 protected:
  CacheTest() : h(test_config(GetParam())) {}
  void SetUp() override {
    ASSERT_TRUE(h.init());
    src = h.alloc(4096);
    dst = h.alloc(4096);
    shader = h.load_shader(kCopyPlusOne);
    uniforms = h.load_uniforms({src.va, dst.va, 64});
    std::vector<uint32_t> v(64);
    for (int i = 0; i < 64; ++i) v[i] = i;
    h.write(src, v.data(), v.size() * 4);
  }
  DispatchOptions opts(bool invalidate, bool clean) {
    DispatchOptions o;
    o.wg[0] = 4;
    o.invalidate_before = invalidate;
    o.clean_after = clean;
    return o;
  }
  Harness h;
  Buffer src, dst, shader, uniforms;
};

TEST_P(CacheTest, DriverThatSkipsTheCleanReadsStaleOutput) {
  ASSERT_TRUE(h.dispatch(shader, uniforms, opts(true, false)));
  EXPECT_EQ(h.read<uint32_t>(dst, 64)[63], 0u) << "still in the L2T";
  ASSERT_TRUE(h.clean_caches());
  EXPECT_EQ(h.read<uint32_t>(dst, 64)[63], 64u);
}

TEST_P(CacheTest, TmuWriteCombinerFlushAloneWritesBack) {
  ASSERT_TRUE(h.dispatch(shader, uniforms, opts(true, false)));
  h.core(CTL_L2TCACTL, L2TCACTL_TMUWCF);
  ASSERT_GT(h.poll(RegBlock::Core0, CTL_L2TCACTL, L2TCACTL_TMUWCF, 0), 0);
  EXPECT_EQ(h.read<uint32_t>(dst, 64)[10], 11u);
}

TEST_P(CacheTest, LoadsAreStaleUntilInvalidated) {
  ASSERT_TRUE(h.dispatch(shader, uniforms, opts(true, true)));
  EXPECT_EQ(h.read<uint32_t>(dst, 64)[5], 6u);
  std::vector<uint32_t> v(64, 1000);
  h.write(src, v.data(), v.size() * 4);  // the CPU updates the input in DRAM
  ASSERT_TRUE(h.dispatch(shader, uniforms, opts(false, true)));
  EXPECT_EQ(h.read<uint32_t>(dst, 64)[5], 6u) << "GPU read its cached copy";
  ASSERT_TRUE(h.dispatch(shader, uniforms, opts(true, true)));
  EXPECT_EQ(h.read<uint32_t>(dst, 64)[5], 1001u);
}

TEST_P(CacheTest, ClearDiscardsDirtyLines) {
  ASSERT_TRUE(h.dispatch(shader, uniforms, opts(true, false)));
  h.core(CTL_L2TCACTL, L2TCACTL_L2TFLS | (L2TCACTL_FLM_CLEAR << L2TCACTL_FLM_SHIFT));
  ASSERT_GT(h.poll(RegBlock::Core0, CTL_L2TCACTL, L2TCACTL_L2TFLS, 0), 0);
  ASSERT_TRUE(h.clean_caches());
  EXPECT_EQ(h.read<uint32_t>(dst, 64)[63], 0u) << "the results were discarded";
}

TEST_P(CacheTest, FlushRangeOnlyTouchesPagesInRange) {
  ASSERT_TRUE(h.dispatch(shader, uniforms, opts(true, false)));
  h.core(CTL_L2TFLSTA, 0);
  h.core(CTL_L2TFLEND, uint32_t(dst.pa - 1));  // everything below dst
  h.core(CTL_L2TCACTL, L2TCACTL_L2TFLS | (L2TCACTL_FLM_CLEAN << L2TCACTL_FLM_SHIFT));
  ASSERT_GT(h.poll(RegBlock::Core0, CTL_L2TCACTL, L2TCACTL_L2TFLS, 0), 0);
  EXPECT_EQ(h.read<uint32_t>(dst, 64)[63], 0u);
  h.core(CTL_L2TFLEND, ~0u);
  ASSERT_TRUE(h.clean_caches());
  EXPECT_EQ(h.read<uint32_t>(dst, 64)[63], 64u);
}

// The clean's modeled cost scales with the dirty pages, counted as they change.
TEST(L2tCacheModel, DirtyPagesCountsEachDirtyPageOnce) {
  struct NullSink : hw::DmaSink {
    void on_dma(uint64_t, uint32_t, bool) override {}
  } sink;
  hw::PhysMemory mem(64 * 4096, 0);
  hw::FaultInjection faults;
  hw::L2tCache l2t(mem, faults, sink);
  l2t.frame(1, false);
  EXPECT_EQ(l2t.dirty_pages(), 0u);
  l2t.frame(1, true);
  l2t.frame(1, true);
  l2t.frame(2, true);
  l2t.frame(3, true);
  EXPECT_EQ(l2t.dirty_pages(), 3u);
  EXPECT_EQ(l2t.write_back(0, 2 * 4096), 2u);  // pages 1 and 2
  EXPECT_EQ(l2t.dirty_pages(), 1u);
  l2t.frame(1, true);
  EXPECT_EQ(l2t.invalidate(0, ~uint64_t(0), false), 0u);  // CLEAR: dirty data dropped
  EXPECT_EQ(l2t.dirty_pages(), 0u);
  l2t.frame(4, true);
  EXPECT_EQ(l2t.invalidate(0, ~uint64_t(0), true), 1u);
  EXPECT_EQ(l2t.dirty_pages(), 0u);
}

// Cache maintenance is GPU busy time: counted from the write that starts it to the
// moment its busy bit clears, and not while the GPU is idle.
TEST_P(CacheTest, MaintenanceIsCountedAsBusyTime) {
  ASSERT_TRUE(h.dispatch(shader, uniforms, opts(true, false)));
  const uint64_t before = h.soc().gpu().stats().maintenance_busy_ns;
  h.core(CTL_L2TCACTL, L2TCACTL_L2TFLS | (L2TCACTL_FLM_CLEAN << L2TCACTL_FLM_SHIFT));
  ASSERT_GT(h.poll(RegBlock::Core0, CTL_L2TCACTL, L2TCACTL_L2TFLS, 0), 0);
  const uint64_t after = h.soc().gpu().stats().maintenance_busy_ns;
  // The modeled L2T operation takes l2t_op_ns (5 us) +-25% jitter, times the test scale.
  const hw::GpuTiming timing = test_config(GetParam()).timing;
  EXPECT_GE(after - before, uint64_t(0.75 * timing.l2t_op_ns * timing.scale));
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  EXPECT_EQ(h.soc().gpu().stats().maintenance_busy_ns, after);
}

INSTANTIATE_TEST_SUITE_P(Skus, CacheTest, ::testing::Values("v3d-7.1", "v3d-4.2"));

}  // namespace
}  // namespace rplayer::test
