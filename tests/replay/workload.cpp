#include "tests/replay/workload.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <thread>

#include "driver/v3d_driver.h"
#include "hw/isa/assembler.h"
#include "hw/v3d_regs.h"
#include "record/recorder.h"
#include "tests/common/soc_config.h"

namespace rplayer::replay::test {

using namespace std::chrono_literals;

// out[i] = in[i] * 2 + bias[i], three jobs (the second and third re-run on the output).
Recording record_workload(const std::string& sku, const std::vector<float>& input,
                          bool omit_weights) {
  hw::ModeledSoc soc(rplayer::test::test_config(sku));
  driver::DirectHwIo io(soc.port(hw::World::Normal));
  record::RecorderOptions opts;
  opts.omit_weights = omit_weights;
  record::Recorder rec(io, opts);
  std::string err;
  auto drv = driver::V3dDriver::probe(rec, {}, &err);
  EXPECT_TRUE(drv) << err;
  auto bo = [&](uint32_t size, driver::BoUsage u, bool w, const char* label, uint8_t** cpu,
                bool from_file = false) {
    driver::CreateBo c;
    c.size = size;
    c.usage = u;
    c.gpu_writable = w;
    c.label = label;
    if (from_file) {  // a range of the weights file, as the NN backend uploads weights
      c.has_weight_source = true;
      c.weight_model = workload_weights_path();
      c.weight_offset = kWeightsOffset;
      c.weight_length = size;
    }
    EXPECT_EQ(drv->create_bo(c), 0);
    uint32_t sz;
    drv->mmap_bo(c.handle, cpu, &sz);
    return c;
  };
  auto code = isa::assemble(R"(
      unif r0
      unif r1
      unif r2
      sreg r3, global_x
      shl r4, r3, #2
      add r5, r0, r4
      ld r6, [r5]
      add r5, r2, r4
      ld r7, [r5]
      ffma r6, r6, #2.0, r7
      add r5, r1, r4
      st [r5], r6
      end
  )");
  EXPECT_TRUE(code.ok());
  uint8_t *pc, *pin, *pout, *pbias, *pu1, *pu2;
  auto c = bo(4096, driver::BoUsage::Code, false, "kernel", &pc);
  auto in = bo(kN * 4, driver::BoUsage::Input, false, "in", &pin);
  auto out = bo(kN * 4, driver::BoUsage::Output, true, "out", &pout);
  auto bias = bo(kN * 4, driver::BoUsage::Weights, false, "bias", &pbias, true);
  auto u1 = bo(4096, driver::BoUsage::Uniforms, false, "u1", &pu1);
  auto u2 = bo(4096, driver::BoUsage::Uniforms, false, "u2", &pu2);
  std::memcpy(pc, code.words.data(), code.words.size() * 8);
  const std::vector<uint8_t> file = workload_weights_file();  // the bias, as stored
  std::memcpy(pbias, file.data() + kWeightsOffset, kN * 4);
  const uint32_t a1[3] = {in.gpu_va, out.gpu_va, bias.gpu_va};
  const uint32_t a2[3] = {out.gpu_va, out.gpu_va, bias.gpu_va};  // in place on the output
  std::memcpy(pu1, a1, 12);
  std::memcpy(pu2, a2, 12);
  std::memcpy(pin, input.data(), kN * 4);
  rec.start();
  for (int j = 0; j < 3; ++j) {
    driver::SubmitCsd s;
    s.cfg[0] = (kN / 64) << 16;
    s.cfg[1] = 1 << 16;
    s.cfg[2] = 1 << 16;
    s.cfg[3] = 64;
    s.cfg[4] = kN / 16 - 1;
    s.cfg[5] = c.gpu_va;
    s.cfg[6] = j == 0 ? u1.gpu_va : u2.gpu_va;
    s.bo_handles = {c.handle, in.handle, out.handle, bias.handle, u1.handle, u2.handle};
    EXPECT_EQ(drv->submit_csd(s), 0);
    EXPECT_EQ(drv->wait_seqno(s.seqno, 5s), 0);
  }
  EXPECT_TRUE(rec.bind("in", true, in.gpu_va, kN * 4, {kN}, &err)) << err;
  EXPECT_TRUE(rec.bind("out", false, out.gpu_va, kN * 4, {kN}, &err)) << err;
  Recording r;
  EXPECT_TRUE(rec.finish(&r, &err)) << err;
  return r;
}

std::vector<uint8_t> workload_weights_file(const std::vector<float>& bias) {
  std::vector<uint8_t> f(kWeightsOffset + kN * 4 + 32, 0);
  std::memcpy(f.data(), "rplayer workload weights", 24);
  std::memcpy(f.data() + kWeightsOffset, bias.data(), kN * 4);
  return f;
}

std::string workload_weights_path() {
  static const std::string path = [] {
    const std::string p = "/tmp/rplayer-workload-weights-" + std::to_string(getpid()) + ".bin";
    const std::vector<uint8_t> f = workload_weights_file();
    std::ofstream(p, std::ios::binary)
        .write(reinterpret_cast<const char*>(f.data()), std::streamsize(f.size()));
    return p;
  }();
  return path;
}

std::vector<float> recorded_bias() {
  std::vector<float> v(kN);
  for (uint32_t i = 0; i < kN; ++i) v[i] = float(i % 7) - 3.f;
  return v;
}

std::vector<float> expected(const std::vector<float>& in, const std::vector<float>& bias) {
  std::vector<float> v(kN);
  for (uint32_t i = 0; i < kN; ++i) {
    const float b = bias[i];
    float x = in[i] * 2.f + b;
    x = x * 2.f + b;
    v[i] = x * 2.f + b;
  }
  return v;
}

std::vector<float> ramp(float scale) {
  std::vector<float> v(kN);
  for (uint32_t i = 0; i < kN; ++i) v[i] = float(i) * scale - 100.f;
  return v;
}

ReplaySoc::ReplaySoc(const std::string& sku, bool secure) : soc(rplayer::test::test_config(sku)) {
  hw::SocPort& port = soc.port(secure ? hw::World::Secure : hw::World::Normal);
  if (secure) {
    port.write32(hw::RegBlock::Tzpc, v3d::TZPC_GPU_SECURE, 1);
    for (int i = 0; i < 1000 && !soc.gpu().secure(); ++i) std::this_thread::sleep_for(100us);
  }
  const uint64_t base = secure ? soc.memory().secure_base() : 32ull << 20;
  platform = std::make_unique<tee::SocPlatform>(port, base, 12ull << 20);
  oracle = std::make_unique<rplayer::test::EscapeOracle>(*platform, soc.gpu());
}

ReplaySoc::~ReplaySoc() {
  EXPECT_EQ(oracle->escapes(), 0u) << "escape: " << oracle->first_escape();
}

ReplayError ReplaySoc::run(const Recording& r, const std::vector<float>& in,
                           std::vector<float>* out, ReplayStats* st, const VerifyLimits& limits) {
  out->assign(kN, -1.f);
  TensorIn ti{"in", in.data(), kN * 4};
  TensorOut to{"out", out->data(), kN * 4};
  Replayer rp(*oracle, limits);
  return rp.run(r, {&ti, 1}, {&to, 1}, st);
}

}  // namespace rplayer::replay::test
