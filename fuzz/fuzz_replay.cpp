// Target 2: decoder + verifier + replayer on the modeled SoC, under the escape oracle.
//
// The input is a payload (sealed_payload.h) that the harness signs with the trusted fuzz
// key; seeds are real recordings (fuzz/make_seeds.cpp). A recording that decodes and
// verifies is replayed by replay::Replayer in the secure world of one hw::ModeledSoc
// (reused across executions: every run powers, identifies and resets the GPU, and the
// oracles below check that nothing of a run survives it) through tee::SocPlatform wrapped
// by the EscapeOracle, which aborts on the first GPU access to a page the replayer does
// not hold or a job started with the MMU off.
//
// Further oracles, from docs/threat-model.md: on failure the outputs are all zero; after
// every run (ok or not) the replayer holds no page and the pool is all zero.
//
// Executions stay short: an 8 MiB page pool (4 MiB of it the page table), a 2 MiB quota,
// 200 ms polls and interrupt waits, a 1 s run budget, 4096 actions.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "fuzz/sealed_payload.h"
#include "hw/soc.h"
#include "hw/v3d_regs.h"
#include "replay/decoder.h"
#include "replay/replayer.h"
#include "tee/soc_platform.h"
#include "tests/common/escape_oracle.h"

using namespace rplayer;

namespace {

// The replayer's page table alone takes 4 MiB (contiguous); regions are capped at 2 MiB.
constexpr uint64_t kPoolBytes = 8ull << 20;

replay::VerifyLimits fuzz_limits() {
  replay::VerifyLimits l;
  l.max_memory_bytes = 2ull << 20;
  l.max_actions = 4096;
  l.max_poll_us = 200000;  // a real network's longest job takes tens of ms under ASan
  l.max_irq_wait_us = 200000;
  l.max_page_copies = 2048;
  l.max_replay_ms = 1000;
  return l;
}

struct Target {
  explicit Target(const char* sku) : soc(config(sku)) {
    hw::SocPort& port = soc.port(hw::World::Secure);
    port.write32(hw::RegBlock::Tzpc, v3d::TZPC_GPU_SECURE, 1);
    for (int i = 0; i < 1000 && !soc.gpu().secure(); ++i)
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    if (!soc.gpu().secure()) std::abort();
    platform = std::make_unique<tee::SocPlatform>(port, soc.memory().secure_base(), kPoolBytes);
    oracle = std::make_unique<test::EscapeOracle>(*platform, soc.gpu(), /*abort_on_escape=*/true);
  }
  static hw::SocConfig config(const char* sku) {
    hw::SocConfig c;
    c.sku = sku;
    c.normal_bytes = 8ull << 20;
    c.secure_bytes = 16ull << 20;
    c.device_threads = 1;
    c.timing.scale = 0.1;  // fast but still asynchronous: the replayer's waits are real
    return c;
  }
  hw::ModeledSoc soc;
  std::unique_ptr<tee::SocPlatform> platform;
  std::unique_ptr<test::EscapeOracle> oracle;
};

// One SoC per SKU, picked by the recording's IDENT values (the replayer refuses the other).
Target& target_for(const replay::Recording& rec) {
  static Target v71("v3d-7.1"), v42("v3d-4.2");
  return rec.sku == replay::SkuIdentity{v42.soc.sku().hub_ident1, v42.soc.sku().hub_ident3,
                                        v42.soc.sku().core_ident0, v42.soc.sku().core_ident1}
             ? v42
             : v71;
}

// How far executions got, printed at exit when FUZZ_REPLAY_STATS is set (e.g. over a
// corpus with -runs=0): how much of the fuzzing reached the GPU.
struct Reach {
  uint64_t execs = 0, decoded = 0, verified = 0, replayed_ok = 0, jobs = 0;
  uint64_t by_code[32] = {};
  ~Reach() {
    if (!std::getenv("FUZZ_REPLAY_STATS")) return;
    std::fprintf(
        stderr, "reach: %llu execs, %llu decoded, %llu verified, %llu replayed ok, %llu GPU jobs\n",
        (unsigned long long)execs, (unsigned long long)decoded, (unsigned long long)verified,
        (unsigned long long)replayed_ok, (unsigned long long)jobs);
    for (int c = 1; c < 32; ++c)
      if (by_code[c]) {
        replay::ReplayError e;
        e.code = replay::ReplayCode(c);
        std::fprintf(stderr, "  %-40s %llu\n", e.message(), (unsigned long long)by_code[c]);
      }
  }
};
Reach reach;

[[noreturn]] void fail(const char* what, const replay::ReplayError& e) {
  char buf[256];
  std::fprintf(stderr, "ORACLE: %s (replay: %s)\n", what, e.format(buf, sizeof buf));
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<uint8_t> file = fuzz::seal_payload({data, size});
  const replay::PublicKey trusted[] = {fuzz::fuzz_public_key()};
  replay::Recording rec;
  ++reach.execs;
  if (!replay::decode_recording(file, trusted, &rec, 16ull << 20).ok()) return 0;
  ++reach.decoded;
  // Cheap rejection before touching the SoC: the replayer verifies again itself.
  const replay::VerifyLimits limits = fuzz_limits();
  if (!replay::verify_recording(rec, rec.sku, limits).ok()) return 0;
  ++reach.verified;

  Target& t = target_for(rec);
  // Inputs: a fixed pattern in every input binding; outputs: buffers pre-filled with
  // garbage, so that "zeroed on failure" is observable.
  std::vector<std::vector<uint8_t>> in_bufs, out_bufs;
  std::vector<replay::TensorIn> ins;
  std::vector<replay::TensorOut> outs;
  in_bufs.reserve(rec.bindings.size());
  out_bufs.reserve(rec.bindings.size());
  for (const replay::Binding& b : rec.bindings) {
    if (b.is_input) {
      in_bufs.emplace_back(b.bytes);
      for (size_t i = 0; i < b.bytes; ++i) in_bufs.back()[i] = uint8_t(i * 7 + 1);
      ins.push_back({b.name.c_str(), in_bufs.back().data(), b.bytes});
    } else {
      out_bufs.emplace_back(b.bytes, 0xa5);
      outs.push_back({b.name.c_str(), out_bufs.back().data(), b.bytes});
    }
  }
  replay::ReplayStats stats;
  replay::ReplayError e;
  {
    replay::Replayer rp(*t.oracle, limits);
    e = rp.run(rec, ins, outs, &stats);
  }
  reach.jobs += e.ok() ? stats.jobs : e.jobs;
  ++(e.ok() ? reach.replayed_ok : reach.by_code[size_t(e.code) & 31]);
  if (!e.ok())
    for (const auto& o : out_bufs)
      for (uint8_t byte : o)
        if (byte != 0) fail("an output was not zeroed after a failed replay", e);
  if (t.platform->pages_in_use() != 0) fail("pages still held after the replay", e);
  // SocPlatform::pool_is_clean, a page at a time (its byte loop is slow under ASan).
  static const uint8_t zero[4096] = {};
  const uint64_t base = t.soc.memory().secure_base();
  for (uint64_t pa = base; pa < base + kPoolBytes; pa += 4096)
    if (std::memcmp(t.platform->page(pa), zero, sizeof zero) != 0)
      fail("the page pool holds data after the replay", e);
  return 0;
}
