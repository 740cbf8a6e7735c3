// L2T cache: stores are invisible in DRAM until cleaned; loads are stale until
// invalidated.
#include <gtest/gtest.h>

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

INSTANTIATE_TEST_SUITE_P(Skus, CacheTest, ::testing::Values("v3d-7.1", "v3d-4.2"));

}  // namespace
}  // namespace rplayer::test
