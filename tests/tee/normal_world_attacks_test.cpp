// A hostile normal world on the SoC's normal-world bus (the socket protocol a normal-world
// process uses: tests/hw/remote_port_test.cpp covers that it cannot map the carve-out):
// GPU jobs whose DMA targets the carve-out fault without leaking or writing a byte, and
// while the secure world owns the GPU its register writes are refused and counted.
#include <gtest/gtest.h>

#include <sys/socket.h>

#include "hw/remote_port.h"
#include "hw/soc_server.h"
#include "hw/v3d_regs.h"
#include "tests/common/soc_config.h"
#include "tests/hw/harness.h"

namespace rplayer::test {
namespace {

using namespace rplayer::v3d;

std::unique_ptr<hw::RemoteSocPort> normal_bus(hw::SocServer& server) {
  int sv[2];
  EXPECT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
  EXPECT_TRUE(server.serve_connection(sv[0], hw::World::Normal));
  std::string err;
  auto port = hw::RemoteSocPort::connect_fd(sv[1], &err);
  EXPECT_TRUE(port) << err;
  return port;
}

class NormalWorldAttack : public ::testing::TestWithParam<std::string> {};

TEST_P(NormalWorldAttack, GpuDmaIntoTheCarveOutFaults) {
  Harness h(test_config(GetParam()));
  hw::SocServer server(h.soc());
  auto bus = normal_bus(server);
  ASSERT_TRUE(bus);
  h.use_port(bus.get());
  ASSERT_TRUE(h.init());
  const uint64_t secret_pa = h.soc().memory().secure_base() + 0x20000;
  *reinterpret_cast<uint32_t*>(h.cpu(secret_pa)) = 0x5EC2E7;
  // The normal world owns its page table: it maps a GPU page onto the carve-out, reads it
  // into a buffer of its own and writes over it.
  h.map(0x6000000, secret_pa, 1, true);
  ASSERT_TRUE(h.flush_mmu());
  Buffer out = h.alloc(4096);
  Buffer sh =
      h.load_shader("unif r0\nunif r1\nld r2, [r0]\nst [r1], r2\nmov r3, #7\nst [r0], r3\nend\n");
  Buffer un = h.load_uniforms({0x6000000, out.va});
  ASSERT_TRUE(h.dispatch(sh, un));
  EXPECT_EQ(h.read<uint32_t>(out, 1)[0], 0u) << "the secret did not leak";
  EXPECT_EQ(*reinterpret_cast<uint32_t*>(h.cpu(secret_pa)), 0x5EC2E7u) << "nor was it written";
  EXPECT_GE(h.soc().gpu().stats().gmp_violations, 2u);
  // 7.1 reports bus faults in the hub, 4.2 in the core.
  const bool reported = ((h.hub_int_seen | h.hub(INT_STS)) & h.sku().hub_int_gmpv) ||
                        ((h.core_int_seen | h.core(INT_STS)) & h.sku().core_int_gmpv);
  EXPECT_TRUE(reported) << "reported to the normal world";
  EXPECT_EQ(h.hub(MMU_VIO_ADDR), 0x6000000u);
}

TEST_P(NormalWorldAttack, RegisterWritesWhileTheGpuIsSecureAreRefusedAndCounted) {
  Harness h(test_config(GetParam()));
  hw::SocServer server(h.soc());
  auto bus = normal_bus(server);
  ASSERT_TRUE(bus);
  hw::SocPort& sec = h.soc().port(hw::World::Secure);
  sec.write32(hw::RegBlock::Tzpc, TZPC_GPU_SECURE, 1);
  for (int i = 0; i < 1000 && !h.soc().gpu().secure(); ++i)
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  ASSERT_TRUE(h.soc().gpu().secure());
  const uint64_t v0 = h.soc().gpu().stats().tz_violations;
  bus->write32(hw::RegBlock::Hub, MMU_PT_PA_BASE, 0x1234);
  bus->write32(hw::RegBlock::Tzpc, TZPC_GPU_SECURE, 0);  // trying to take it back
  EXPECT_EQ(bus->read32(hw::RegBlock::Hub, HUB_IDENT1), 0u);
  EXPECT_EQ(h.soc().gpu().stats().tz_violations, v0 + 3);
  EXPECT_NE(sec.read32(hw::RegBlock::Hub, MMU_PT_PA_BASE), 0x1234u);
  EXPECT_TRUE(h.soc().gpu().secure()) << "only the secure world switches the GPU";
}

INSTANTIATE_TEST_SUITE_P(Skus, NormalWorldAttack, ::testing::Values("v3d-7.1", "v3d-4.2"));

}  // namespace
}  // namespace rplayer::test
