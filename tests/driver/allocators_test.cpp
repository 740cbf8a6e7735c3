#include <gtest/gtest.h>

#include <set>

#include "driver/page_allocator.h"
#include "driver/va_allocator.h"

namespace rplayer::driver {
namespace {

TEST(PageAllocator, HandsOutDistinctScatteredPagesUntilExhausted) {
  PageAllocator a(0x100000, 256);
  auto p = a.alloc(200);
  ASSERT_TRUE(p);
  std::set<uint64_t> uniq(p->begin(), p->end());
  EXPECT_EQ(uniq.size(), 200u);
  for (uint64_t pa : *p) {
    EXPECT_EQ(pa % 4096, 0u);
    EXPECT_GE(pa, 0x100000u);
    EXPECT_LT(pa, 0x100000u + 256 * 4096);
  }
  EXPECT_FALSE(a.alloc(57)) << "only 56 left";
  EXPECT_EQ(a.free_pages(), 56u);
  a.free(*p);
  EXPECT_EQ(a.free_pages(), 256u);
}

TEST(VaAllocator, KeepsGuardPagesAndMergesFreedRanges) {
  VaAllocator v(0x10000, 0x10000 + 16 * 4096);
  auto a = v.alloc(4096), b = v.alloc(2 * 4096);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(*a, 0x10000u);
  EXPECT_EQ(*b, 0x10000u + 2 * 4096) << "one guard page after a";
  EXPECT_FALSE(v.alloc(13 * 4096));
  v.free(*a, 4096);
  v.free(*b, 2 * 4096);
  auto c = v.alloc(15 * 4096);  // everything is one range again
  ASSERT_TRUE(c);
  EXPECT_EQ(*c, 0x10000u);
}

}  // namespace
}  // namespace rplayer::driver
