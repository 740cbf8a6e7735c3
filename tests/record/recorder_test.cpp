// The recorder on the real driver and the modeled SoC.
#include "record/recorder.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "driver/v3d_driver.h"
#include "hw/isa/assembler.h"
#include "hw/v3d_regs.h"
#include "replay/signature.h"
#include "tests/common/soc_config.h"

namespace rplayer::record {
namespace {

using namespace std::chrono_literals;
using replay::ActionOp;

class RecorderTest : public ::testing::TestWithParam<std::string> {
 protected:
  RecorderTest()
      : soc(test::test_config(GetParam())), io(soc.port(hw::World::Normal)), rec(io) {}
  void SetUp() override {
    std::string err;
    drv = driver::V3dDriver::probe(rec, {}, &err);  // the recorder sits under the driver
    ASSERT_TRUE(drv) << err;
  }
  struct Bo {
    uint32_t handle, va;
    uint8_t* cpu;
  };
  Bo bo(uint32_t size, driver::BoUsage usage, bool writable, const std::string& label) {
    driver::CreateBo c;
    c.size = size;
    c.usage = usage;
    c.gpu_writable = writable;
    c.label = label;
    EXPECT_EQ(drv->create_bo(c), 0);
    Bo b{c.handle, c.gpu_va, nullptr};
    uint32_t sz;
    drv->mmap_bo(c.handle, &b.cpu, &sz);
    return b;
  }
  // out[i] = in[i] * 2 for 64 floats.
  void setup_job() {
    auto r = isa::assemble(R"(
      unif r0
      unif r1
      sreg r2, global_x
      shl r3, r2, #2
      add r4, r0, r3
      ld r5, [r4]
      fadd r5, r5, r5
      add r4, r1, r3
      st [r4], r5
      end
    )");
    ASSERT_TRUE(r.ok());
    code = bo(4096, driver::BoUsage::Code, false, "double");
    std::memcpy(code.cpu, r.words.data(), r.words.size() * 8);
    in = bo(3 * 4096, driver::BoUsage::Input, false, "in");
    out = bo(4096, driver::BoUsage::Output, true, "out");
    unif = bo(4096, driver::BoUsage::Uniforms, false, "uniforms");
    const uint32_t u[2] = {in.va, out.va};
    std::memcpy(unif.cpu, u, 8);
  }
  uint64_t run_job() {
    driver::SubmitCsd s;
    s.cfg[0] = 4 << 16;
    s.cfg[1] = 1 << 16;
    s.cfg[2] = 1 << 16;
    s.cfg[3] = 16;
    s.cfg[4] = 3;
    s.cfg[5] = code.va;
    s.cfg[6] = unif.va;
    s.bo_handles = {code.handle, in.handle, out.handle, unif.handle};
    EXPECT_EQ(drv->submit_csd(s), 0);
    EXPECT_EQ(drv->wait_seqno(s.seqno, 5s), 0) << drv->last_error();
    return s.seqno;
  }
  int count(const replay::Recording& r, ActionOp op) {
    return int(std::count_if(r.actions.begin(), r.actions.end(),
                             [&](const replay::Action& a) { return a.op == op; }));
  }

  hw::ModeledSoc soc;
  driver::DirectHwIo io;
  Recorder rec;
  std::unique_ptr<driver::V3dDriver> drv;
  Bo code{}, in{}, out{}, unif{};
};

TEST_P(RecorderTest, CapturesTheJobStreamAndIncrementalMemory) {
  setup_job();
  reinterpret_cast<float*>(in.cpu)[0] = 1.5f;  // one non-zero page of three
  rec.start();
  run_job();
  reinterpret_cast<float*>(in.cpu)[1] = 2.5f;  // the CPU changes one page between jobs
  run_job();
  run_job();  // and nothing before the third
  std::string err;
  ASSERT_TRUE(rec.bind("in", true, in.va, 256, {64}, &err)) << err;
  ASSERT_TRUE(rec.bind("out", false, out.va, 256, {64}, &err)) << err;
  replay::Recording r;
  ASSERT_TRUE(rec.finish(&r, &err)) << err;

  EXPECT_EQ(count(r, ActionOp::JobBoundary), 3);
  EXPECT_EQ(count(r, ActionOp::WaitIrq), 3) << "one CSDDONE per job";
  // Cache clean polls appear as single actions: two per job (TMUWCF, L2TFLS).
  EXPECT_EQ(count(r, ActionOp::Poll), 6);
  // CFG0 is written once per job, last of the CSD registers.
  const uint32_t cfg0 = soc.sku().csd_queued_cfg0;
  int cfg0_writes = 0;
  for (const auto& a : r.actions)
    cfg0_writes += a.op == ActionOp::Write && a.block == replay::Block::Core0 && a.offset == cfg0;
  EXPECT_EQ(cfg0_writes, 3);
  // No MMU setup or flush in the stream: the replayer owns those.
  for (const auto& a : r.actions) {
    if (a.op != ActionOp::Write || a.block != replay::Block::Hub) continue;
    EXPECT_NE(a.offset, v3d::MMU_PT_PA_BASE);
    EXPECT_NE(a.offset, v3d::MMUC_CONTROL);
  }
  // The interrupt status read is a control value: it must match at replay.
  bool status_read = false;
  for (const auto& a : r.actions)
    if (a.op == ActionOp::Read && a.block == replay::Block::Core0 && a.offset == v3d::INT_STS) {
      status_read = true;
      EXPECT_EQ(a.mask, ~0u);
      EXPECT_TRUE(a.value & soc.sku().core_int_csd_done);
    }
  EXPECT_TRUE(status_read);
  // Memory: first job loads code, uniforms and the one non-zero input page; the second
  // only the input page the CPU changed; the third nothing.
  ASSERT_EQ(count(r, ActionOp::LoadMemory), 2);
  std::vector<uint32_t> per_load;
  for (const auto& a : r.actions)
    if (a.op == ActionOp::LoadMemory) per_load.push_back(a.count);
  EXPECT_EQ(per_load[0], 3u);
  EXPECT_EQ(per_load[1], 1u);
  EXPECT_EQ(r.blobs.size(), 4u);
  // The output is GPU-writable: its pages count as seen at the start, not as elided.
  EXPECT_GE(rec.stats().zero_pages_elided, 2u) << "the two zero input pages";
  // Regions carry the stack's classification and labels.
  ASSERT_EQ(r.regions.size(), 4u);
  int inputs = 0;
  for (const auto& reg : r.regions) {
    if (reg.kind == replay::RegionKind::Input) {
      ++inputs;
      EXPECT_EQ(reg.label, "in");
      EXPECT_EQ(reg.size, 3u * 4096);
      EXPECT_FALSE(reg.gpu_writable);
    }
    if (reg.kind == replay::RegionKind::Code) {
      EXPECT_EQ(reg.label, "double");
    }
  }
  EXPECT_EQ(inputs, 1);
  ASSERT_EQ(r.bindings.size(), 2u);
  EXPECT_TRUE(r.bindings[0].is_input);
  EXPECT_EQ(r.regions[r.bindings[1].region].kind, replay::RegionKind::Output);
}

TEST_P(RecorderTest, NothingIsRecordedOutsideTheWindow) {
  setup_job();
  run_job();
  rec.start();
  replay::Recording r;
  std::string err;
  EXPECT_FALSE(rec.finish(&r, &err));
  EXPECT_NE(err.find("no GPU job"), std::string::npos);
}

TEST_P(RecorderTest, FreeingARecordedBufferInTheWindowIsAnError) {
  setup_job();
  rec.start();
  run_job();
  ASSERT_EQ(drv->free_bo(in.handle), 0);
  replay::Recording r;
  std::string err;
  EXPECT_FALSE(rec.finish(&r, &err));
  EXPECT_NE(err.find("'in' was freed"), std::string::npos) << err;
}

TEST_P(RecorderTest, BindingOutsideAnyBufferIsRefused) {
  setup_job();
  std::string err;
  EXPECT_FALSE(rec.bind("x", true, 0x100, 16, {4}, &err));
  EXPECT_FALSE(rec.bind("y", true, in.va + 3 * 4096 - 8, 16, {4}, &err)) << "crosses the end";
}

// Weights buffers that hold a model-file range become signed weight bindings: the file
// by size and BLAKE2b digest, each range by offset, length and digest. Buffers the stack
// derived itself (no range) get no binding.
TEST_P(RecorderTest, WeightBuffersBecomeBindingsWithDigests) {
  const std::filesystem::path file =
      std::filesystem::temp_directory_path() / ("rplayer-rec-weights-" + std::to_string(getpid()));
  std::vector<uint8_t> bytes(10000);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = uint8_t(i * 7 + 3);
  std::ofstream(file, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  setup_job();
  driver::CreateBo w;
  w.size = 5000;
  w.usage = driver::BoUsage::Weights;
  w.gpu_writable = false;
  w.label = "conv/weight";
  w.has_weight_source = true;
  w.weight_model = file.string();
  w.weight_offset = 1000;
  w.weight_length = 5000;
  ASSERT_EQ(drv->create_bo(w), 0);
  const Bo derived = bo(4096, driver::BoUsage::Weights, false, "derived");
  rec.start();
  run_job();
  replay::Recording r;
  std::string err;
  ASSERT_TRUE(rec.finish(&r, &err)) << err;
  std::filesystem::remove(file);
  EXPECT_EQ(r.weights_file.name, file.filename().string());
  EXPECT_EQ(r.weights_file.size, bytes.size());
  EXPECT_EQ(r.weights_file.digest, replay::content_digest(bytes));
  ASSERT_EQ(r.weight_bindings.size(), 1u) << "the derived buffer has no file range";
  const replay::WeightBinding& b = r.weight_bindings[0];
  EXPECT_EQ(r.regions[b.region].label, "conv/weight");
  EXPECT_EQ(b.offset, 1000u);
  EXPECT_EQ(b.length, 5000u);
  EXPECT_EQ(b.digest, replay::content_digest(std::span<const uint8_t>(bytes).subspan(1000, 5000)));
  (void)derived;
}

INSTANTIATE_TEST_SUITE_P(Skus, RecorderTest, ::testing::Values("v3d-7.1", "v3d-4.2"));

}  // namespace
}  // namespace rplayer::record
