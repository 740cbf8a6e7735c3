// `rplayer inspect` on a real recording: a small workload recorded with the Recorder,
// encoded and signed, then inspected as text, JSON and a Perfetto trace.
#include "tools/inspect.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "driver/v3d_driver.h"
#include "hw/isa/assembler.h"
#include "hw/isa/isa.h"
#include "keyring/keys.h"
#include "record/encoder.h"
#include "record/recorder.h"
#include "replay/decoder.h"
#include "tests/common/soc_config.h"
#include "tools/reg_names.h"
#include "tools/trace_export.h"

namespace rplayer::tools {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
constexpr uint32_t kN = 256;         // floats: one page per buffer
constexpr uint32_t kShaderB = 256;   // byte offset of the second kernel in the code page
constexpr uint32_t kShaderA2 = 512;  // byte offset of a copy of the first

// out = in * 2.
constexpr const char* kKernelA = R"(
    unif r0
    unif r1
    sreg r3, global_x
    shl r4, r3, #2
    add r5, r0, r4
    ld r6, [r5]
    fmul r6, r6, #2.0
    add r5, r1, r4
    st [r5], r6
    end
)";
constexpr size_t kKernelASize = 10;

// out = in + 1, with a forward branch over its first `end`: the disassembly must run on to the
// second one.
constexpr const char* kKernelB = R"(
    unif r0
    unif r1
    sreg r3, global_x
    ilt r9, r3, #0
    bany r9, done
    shl r4, r3, #2
    add r5, r0, r4
    ld r6, [r5]
    fadd r6, r6, #1.0
    add r5, r1, r4
    st [r5], r6
    end
done:
    end
)";
constexpr size_t kKernelBSize = 13;

// Three jobs: A (in -> out), B (out -> out), A again from a copy (out -> out). Two distinct
// shaders, in one code page, one of them at two addresses.
replay::Recording record_workload(const std::string& sku) {
  hw::ModeledSoc soc(test::test_config(sku));
  driver::DirectHwIo io(soc.port(hw::World::Normal));
  record::Recorder rec(io);
  std::string err;
  auto drv = driver::V3dDriver::probe(rec, {}, &err);
  EXPECT_TRUE(drv) << err;
  auto bo = [&](driver::BoUsage u, bool w, const char* label, uint8_t** cpu) {
    driver::CreateBo c;
    c.size = 4096;
    c.usage = u;
    c.gpu_writable = w;
    c.label = label;
    EXPECT_EQ(drv->create_bo(c), 0);
    uint32_t sz;
    drv->mmap_bo(c.handle, cpu, &sz);
    return c;
  };
  const isa::AsmResult a = isa::assemble(kKernelA), b = isa::assemble(kKernelB);
  EXPECT_TRUE(a.ok() && b.ok());
  uint8_t *pc, *pin, *pout, *pu1, *pu2;
  auto code = bo(driver::BoUsage::Code, false, "kernels", &pc);
  auto in = bo(driver::BoUsage::Input, false, "in", &pin);
  auto out = bo(driver::BoUsage::Output, true, "out", &pout);
  auto u1 = bo(driver::BoUsage::Uniforms, false, "u1", &pu1);
  auto u2 = bo(driver::BoUsage::Uniforms, false, "u2", &pu2);
  std::memcpy(pc, a.words.data(), a.words.size() * 8);
  std::memcpy(pc + kShaderB, b.words.data(), b.words.size() * 8);
  std::memcpy(pc + kShaderA2, a.words.data(), a.words.size() * 8);
  const uint32_t args1[2] = {in.gpu_va, out.gpu_va}, args2[2] = {out.gpu_va, out.gpu_va};
  std::memcpy(pu1, args1, 8);
  std::memcpy(pu2, args2, 8);
  for (uint32_t i = 0; i < kN; ++i) reinterpret_cast<float*>(pin)[i] = float(i);
  rec.start();
  for (int j = 0; j < 3; ++j) {
    driver::SubmitCsd s;
    s.cfg[0] = (kN / 64) << 16;
    s.cfg[1] = 1 << 16;
    s.cfg[2] = 1 << 16;
    s.cfg[3] = 64;
    s.cfg[4] = kN / 16 - 1;
    s.cfg[5] = code.gpu_va + (j == 0 ? 0 : j == 1 ? kShaderB : kShaderA2);
    s.cfg[6] = j == 0 ? u1.gpu_va : u2.gpu_va;
    s.bo_handles = {code.handle, in.handle, out.handle, u1.handle, u2.handle};
    EXPECT_EQ(drv->submit_csd(s), 0);
    EXPECT_EQ(drv->wait_seqno(s.seqno, 5s), 0);
  }
  EXPECT_TRUE(rec.bind("in", true, in.gpu_va, kN * 4, {kN}, &err)) << err;
  EXPECT_TRUE(rec.bind("out", false, out.gpu_va, kN * 4, {kN}, &err)) << err;
  replay::Recording r;
  EXPECT_TRUE(rec.finish(&r, &err)) << err;
  r.metadata = {{"workload", "inspect-test"}, {"stack", "hand-written kernels"}};
  const float* o = reinterpret_cast<const float*>(pout);
  EXPECT_EQ(o[3], (3.f * 2 + 1) * 2) << "the workload itself ran";
  return r;
}

size_t count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
  return n;
}

struct Signed {
  replay::Recording rec;
  std::vector<uint8_t> bytes;
  keyring::TrustStore store;
};

// One recording per SKU for the whole binary: recording runs the modeled GPU.
const Signed& signed_recording(const std::string& sku) {
  static std::map<std::string, Signed> cache;
  auto it = cache.find(sku);
  if (it != cache.end()) return it->second;
  Signed s;
  s.rec = record_workload(sku);
  const keyring::KeyPair key = keyring::generate_keypair();
  s.bytes = record::encode_recording(s.rec, key);
  s.store.add(key.public_key, "test.pub");
  return cache.emplace(sku, std::move(s)).first->second;
}

class InspectTest : public ::testing::TestWithParam<std::string> {
 protected:
  const Signed& sig() { return signed_recording(GetParam()); }
  const hw::Sku& sku() { return *hw::find_sku(GetParam()); }
  InspectOutput run(const InspectOptions& opts = {}, bool trace = false) {
    return run_inspect(sig().bytes, sig().store, opts, trace);
  }
};

TEST_P(InspectTest, TextNamesRegistersAndListsTheConversation) {
  const InspectOutput o = run();
  ASSERT_EQ(o.exit_code, 0) << o.error;
  const std::string& t = o.out;
  EXPECT_NE(t.find("sku        " + GetParam()), std::string::npos) << t;
  EXPECT_NE(t.find("signed by  key " + keyring::key_id_hex(sig().store.entries()[0].key) +
                   " from test.pub"),
            std::string::npos);
  EXPECT_NE(t.find("workload  inspect-test"), std::string::npos);
  EXPECT_NE(t.find("W core0 CSD_QUEUED_CFG0 = 0x00040000"), std::string::npos) << t;
  EXPECT_NE(t.find("W core0 CSD_QUEUED_CFG5 = "), std::string::npos);
  EXPECT_NE(t.find("R core0 INT_STS == "), std::string::npos);
  EXPECT_NE(t.find("P core0 L2TCACTL & 0x"), std::string::npos);
  EXPECT_NE(t.find("IRQ line "), std::string::npos);
  EXPECT_NE(t.find("LOAD "), std::string::npos);
  EXPECT_EQ(count(t, "--- end of job "), 3u);
  EXPECT_NE(t.find("--- end of job 2 (seqno 3)"), std::string::npos);
  EXPECT_EQ(count(t, "; dispatch of job "), 3u);
  // No register of the conversation is left as a bare offset.
  EXPECT_EQ(t.find("core0 0x"), std::string::npos) << t;
  EXPECT_EQ(t.find("hub 0x"), std::string::npos) << t;
}

TEST_P(InspectTest, EachDistinctShaderIsDisassembledOnce) {
  const std::string t = run().out;
  EXPECT_NE(t.find("S0: region 0 (kernels), 10 instructions, ends at `end`"), std::string::npos)
      << t;
  EXPECT_NE(t.find("S1: region 0 (kernels), 13 instructions, ends at `end`"), std::string::npos)
      << t;
  EXPECT_EQ(count(t, "fmul r6, r6, #2.0"), 1u) << "A runs twice, is listed once";
  EXPECT_EQ(count(t, "fadd r6, r6, #1.0"), 1u);
  EXPECT_NE(t.find("bany r9, L12"), std::string::npos) << "the branch target is a label";
  EXPECT_NE(t.find("(listed under job 0)"), std::string::npos);
  EXPECT_NE(t.find("4x1x1 workgroups of 64"), std::string::npos);
}

TEST_P(InspectTest, JsonHasTheCounts) {
  InspectOptions opts;
  opts.json = true;
  const InspectOutput o = run(opts);
  ASSERT_EQ(o.exit_code, 0) << o.error;
  const json j = json::parse(o.out);
  const replay::Recording& rec = sig().rec;
  EXPECT_EQ(j["header"]["sku"]["name"], GetParam());
  EXPECT_TRUE(j["header"]["sku"]["identified"]);
  EXPECT_EQ(j["header"]["file_bytes"], sig().bytes.size());
  EXPECT_EQ(j["metadata"].size(), 2u);
  EXPECT_EQ(j["metadata"][0]["key"], "workload");
  ASSERT_EQ(j["regions"].size(), rec.regions.size());
  EXPECT_EQ(j["regions"][0]["kind"], "code");
  EXPECT_EQ(j["regions"][0]["label"], "kernels");
  ASSERT_EQ(j["bindings"].size(), 2u);
  EXPECT_EQ(j["bindings"][0]["name"], "in");
  EXPECT_EQ(j["bindings"][1]["direction"], "out");
  EXPECT_EQ(j["bindings"][1]["shape"], json::array({kN}));
  // Weight bindings: none in this hand-made recording, but the section is always there.
  ASSERT_TRUE(j.contains("weights"));
  EXPECT_EQ(j["weights"]["bindings"].size(), rec.weight_bindings.size());
  EXPECT_EQ(j["weights"]["omitted"], rec.weights_omitted);

  const json& st = j["stats"];
  EXPECT_EQ(st["jobs"], 3);
  EXPECT_EQ(st["dispatches"], 3);
  EXPECT_EQ(st["actions"], rec.actions.size());
  uint64_t sum = 0;
  for (const auto& [op, n] : st["actions_by_op"].items()) sum += n.get<uint64_t>();
  EXPECT_EQ(sum, rec.actions.size());
  EXPECT_EQ(st["actions_by_op"]["job_boundary"], 3);
  EXPECT_EQ(st["irq_waits"], st["actions_by_op"]["wait_irq"]);
  EXPECT_EQ(st["reads_checked"].get<uint64_t>() + st["reads_ignored"].get<uint64_t>(),
            st["actions_by_op"]["read"].get<uint64_t>());
  EXPECT_EQ(st["page_loads"], rec.loads.size());
  EXPECT_EQ(st["unique_blobs"], rec.blobs.size());
  EXPECT_EQ(st["page_bytes"], rec.blobs.size() * 4096);

  ASSERT_EQ(j["jobs"].size(), 3u);
  ASSERT_EQ(j["shaders"].size(), 2u);
  EXPECT_EQ(j["shaders"][0]["instructions"], kKernelASize);
  EXPECT_EQ(j["shaders"][1]["instructions"], kKernelBSize);
  EXPECT_EQ(j["shaders"][0]["jobs"], json::array({0, 2}));
  EXPECT_EQ(j["shaders"][1]["gpu_va"], rec.regions[0].gpu_va + kShaderB);
  EXPECT_EQ(j["shaders"][0]["addresses"],
            json::array({rec.regions[0].gpu_va, rec.regions[0].gpu_va + kShaderA2}))
      << "the same code at another address is the same shader";
  EXPECT_EQ(j["jobs"][1]["dispatches"][0]["shader"], "S1");
  EXPECT_EQ(j["jobs"][2]["dispatches"][0]["shader"], "S0");
  EXPECT_EQ(j["jobs"][0]["dispatches"][0]["cfg"].size(), size_t(sku().csd_num_cfg));

  ASSERT_EQ(j["actions"].size(), rec.actions.size());
  size_t cfg0 = 0;
  for (const json& a : j["actions"])
    if (a["op"] == "write" && a["reg"] == "CSD_QUEUED_CFG0") {
      ++cfg0;
      EXPECT_EQ(a["offset"], sku().csd_queued_cfg0);
      EXPECT_TRUE(a.contains("note"));
    }
  EXPECT_EQ(cfg0, 3u);
}

TEST_P(InspectTest, ActionsOptionLimitsTheListingOnly) {
  InspectOptions opts;
  opts.max_actions = 5;
  EXPECT_EQ(count(run(opts).out, "\n  ["), 5u);
  EXPECT_NE(run(opts).out.find("more (--actions N lists more)"), std::string::npos);
  opts.json = true;
  const json j = json::parse(run(opts).out);
  EXPECT_EQ(j["actions"].size(), 5u);
  EXPECT_EQ(j["actions_total"], sig().rec.actions.size());
  EXPECT_EQ(j["stats"]["jobs"], 3) << "statistics still cover everything";
  EXPECT_EQ(j["shaders"].size(), 2u);
}

TEST_P(InspectTest, TraceHasOneEventPerJobOnNonOverlappingTracks) {
  const InspectOutput o = run({}, true);
  ASSERT_TRUE(o.trace);
  // As written to the file, and read back.
  const json tr = json::parse(o.trace->dump());
  ASSERT_TRUE(tr.contains("traceEvents"));
  const json& ev = tr["traceEvents"];
  std::map<std::string, size_t> by_cat;
  std::map<int, std::string> names;
  std::map<int, uint64_t> track_end;
  size_t instants = 0;
  for (const json& e : ev) {
    ASSERT_TRUE(e.contains("ph") && e.contains("pid") && e.contains("tid") && e.contains("name"));
    const std::string ph = e["ph"];
    const int tid = e["tid"];
    if (ph == "M") {
      if (e["name"] == "thread_name") names[tid] = e["args"]["name"];
      continue;
    }
    if (ph == "i") {
      ++instants;
      continue;
    }
    ASSERT_EQ(ph, "X");
    ++by_cat[e["cat"]];
    const uint64_t ts = e["ts"], dur = e["dur"];
    EXPECT_GT(dur, 0u);
    // Events on one track follow each other (a viewer would nest or drop overlapping ones).
    EXPECT_GE(ts, track_end[tid]) << e.dump();
    track_end[tid] = ts + dur;
  }
  EXPECT_EQ(by_cat["job"], 3u);
  EXPECT_EQ(instants, 3u) << "one per dispatch";
  const replay::Recording& rec = sig().rec;
  size_t polls = 0, irqs = 0, loads = 0;
  for (const replay::Action& a : rec.actions) {
    polls += a.op == replay::ActionOp::Poll;
    irqs += a.op == replay::ActionOp::WaitIrq;
    loads += a.op == replay::ActionOp::LoadMemory;
  }
  EXPECT_EQ(by_cat["poll"], polls);
  EXPECT_EQ(by_cat["irq"], irqs);
  EXPECT_EQ(by_cat["memory"], loads);
  EXPECT_GE(by_cat["registers"], 3u);
  EXPECT_EQ(names[kTrackJobs], "jobs");
  EXPECT_EQ(names[kTrackRegisters], "register bursts");
  EXPECT_EQ(names[kTrackPolls], "polls");
  EXPECT_EQ(names[kTrackInterrupts], "interrupts");
  EXPECT_EQ(names[kTrackMemory], "memory syncs");
}

TEST_P(InspectTest, TamperedFileGivesTheDecodersError) {
  std::vector<uint8_t> bad = sig().bytes;
  bad[replay::kSectionsStart + 2] ^= 1;  // inside METADATA
  replay::Recording r;
  char buf[256];
  const std::string expect =
      replay::decode_recording(bad, sig().store.keys(), &r).format(buf, sizeof buf);
  const InspectOutput o = run_inspect(bad, sig().store, {}, true);
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_EQ(o.error, expect);
  EXPECT_NE(o.error.find("METADATA"), std::string::npos) << o.error;
  EXPECT_TRUE(o.out.empty());
  EXPECT_FALSE(o.trace);
}

TEST_P(InspectTest, ForeignKeyIsRejected) {
  keyring::TrustStore other;
  other.add(keyring::generate_keypair().public_key);
  const InspectOutput o = run_inspect(sig().bytes, other, {}, false);
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_NE(o.error.find("SIGNATURE"), std::string::npos) << o.error;
}

INSTANTIATE_TEST_SUITE_P(Skus, InspectTest, ::testing::Values("v3d-7.1", "v3d-4.2"));

// ---- recordings the decoder accepts but no recorder would write ----------------------
// Signed means "from a trusted recorder", not "sensible": inspect explains, never trusts.

class OddRecording : public ::testing::Test {
 protected:
  OddRecording() { ins_.rec = signed_recording("v3d-7.1").rec; }
  replay::Action* cfg_write(int n, int job) {
    const uint32_t off = hw::find_sku("v3d-7.1")->csd_queued_cfg0 + 4 * uint32_t(n);
    for (replay::Action& a : ins_.rec.actions)
      if (a.op == replay::ActionOp::Write && a.offset == off && job-- == 0) return &a;
    return nullptr;
  }
  // Analyses and renders every way; returns the text.
  std::string all() {
    analyze(&ins_);
    const std::string t = render_text(ins_, {});
    EXPECT_NO_THROW(json::parse(render_json(ins_, {}).dump()));
    const json tr = chrome_trace(ins_);
    size_t jobs = 0;
    for (const json& e : tr["traceEvents"]) jobs += e.value("cat", "") == "job";
    EXPECT_EQ(jobs, ins_.jobs.size());
    return t;
  }
  Inspection ins_;
};

TEST_F(OddRecording, ShaderOutsideCode) {
  cfg_write(5, 0)->value = ins_.rec.regions[1].gpu_va;  // the input buffer
  const std::string t = all();
  EXPECT_EQ(ins_.jobs[0].dispatches[0].shader, -1);
  EXPECT_NE(t.find("is in no code region"), std::string::npos) << t;
  EXPECT_EQ(ins_.shaders.size(), 2u) << "the other jobs still have theirs";
}

TEST_F(OddRecording, CodeNeverLoaded) {
  ins_.rec.regions[0].size = 2 * 4096;
  cfg_write(5, 1)->value = ins_.rec.regions[0].gpu_va + 4096;
  const std::string t = all();
  EXPECT_EQ(ins_.jobs[1].dispatches[0].shader, -1);
  EXPECT_NE(t.find("no code loaded at"), std::string::npos) << t;
}

TEST_F(OddRecording, ShaderWithoutEndStopsAtTheLoadedCode) {
  const uint64_t mov = isa::encode({isa::Op::Mov, true, 1, 0, 0, 0, 1});
  const std::vector<uint64_t> page(512, mov);
  for (const replay::PageLoad& l : ins_.rec.loads)
    if (l.region == 0) std::memcpy(ins_.rec.blobs[l.blob].data.data(), page.data(), 4096);
  const std::string t = all();
  ASSERT_EQ(ins_.shaders.size(), 3u) << "each job now starts at another point of the same page";
  EXPECT_EQ(ins_.shaders[0].words.size(), 512u);
  EXPECT_FALSE(ins_.shaders[0].ended);
  EXPECT_EQ(ins_.shaders[1].words.size(), 512u - kShaderB / 8);
  EXPECT_EQ(ins_.shaders[2].words.size(), 512u - kShaderA2 / 8);
  EXPECT_NE(t.find("512 instructions, runs to the end of the loaded code"), std::string::npos);
}

TEST_F(OddRecording, RecordingStopsInsideAJob) {
  ins_.rec.actions.pop_back();  // the last JobBoundary
  const std::string t = all();
  ASSERT_EQ(ins_.jobs.size(), 3u);
  EXPECT_EQ(ins_.jobs[2].seqno, -1);
  EXPECT_EQ(ins_.stats.jobs, 2u);
  EXPECT_NE(t.find("no end: the recording stops"), std::string::npos) << t;
}

TEST_F(OddRecording, UnknownSku) {
  ins_.rec.sku.hub_ident1 = 0;
  ins_.rec.sku_name = "v3d-9.9";
  const std::string t = all();
  EXPECT_EQ(ins_.sku, nullptr);
  EXPECT_NE(t.find("unknown SKU"), std::string::npos);
  EXPECT_NE(t.find("W core0 0x0930 = 0x00040000"), std::string::npos) << t;
  EXPECT_EQ(ins_.stats.dispatches, 0u);
  EXPECT_EQ(ins_.jobs.size(), 3u);
}

// ---- register names ----------------------------------------------------------------

TEST(RegNames, EveryBlockHasUniqueOffsetsThatNameBack) {
  for (const hw::Sku& s : hw::all_skus()) {
    for (uint8_t b = 0; b <= uint8_t(replay::Block::Tzpc); ++b) {
      const auto block = replay::Block(b);
      const auto table = register_table(block, &s);
      ASSERT_FALSE(table.empty());
      for (size_t i = 0; i < table.size(); ++i) {
        if (i) {
          EXPECT_LT(table[i - 1].first, table[i].first) << table[i].second;
        }
        EXPECT_EQ(register_name(block, table[i].first, &s), table[i].second);
      }
    }
  }
}

TEST(RegNames, CsdRegistersFollowTheSku) {
  const hw::Sku* v7 = hw::find_sku("v3d-7.1");
  const hw::Sku* v4 = hw::find_sku("v3d-4.2");
  EXPECT_EQ(register_label(replay::Block::Core0, 0x930, v7), "CSD_QUEUED_CFG0");
  EXPECT_EQ(register_label(replay::Block::Core0, 0x930, v4), "CSD_CURRENT_CFG4");
  EXPECT_EQ(register_label(replay::Block::Core0, 0x904, v4), "CSD_QUEUED_CFG0");
  EXPECT_EQ(register_label(replay::Block::Core0, v7->csd_queued_cfg0 + 28, v7), "CSD_QUEUED_CFG7");
  EXPECT_EQ(register_label(replay::Block::Core0, v4->csd_queued_cfg0 + 28, v4),
            "CSD_CURRENT_CFG0");  // 4.2 has CFG0..6 only
  EXPECT_EQ(register_label(replay::Block::Core0, v4->csd_current_id0 + 4, v4), "CSD_CURRENT_ID1");
  EXPECT_EQ(register_label(replay::Block::Core0, 0x930, nullptr), "0x0930");
  EXPECT_EQ(register_label(replay::Block::Core0, 0x900, nullptr), "CSD_STATUS");
}

TEST(RegNames, KnownAndUnknownOffsets) {
  const hw::Sku* s = hw::find_sku("v3d-7.1");
  EXPECT_EQ(register_label(replay::Block::Hub, 0x0050, s), "INT_STS");
  EXPECT_EQ(register_label(replay::Block::Core0, 0x0050, s), "INT_STS");
  EXPECT_EQ(register_label(replay::Block::Hub, 0x1200, s), "MMU_CTL");
  EXPECT_EQ(register_label(replay::Block::Core0, 0x0030, s), "L2TCACTL");
  EXPECT_EQ(register_label(replay::Block::Core0, 0x0664, s), "PCTR_0_SRC_4_7");
  EXPECT_EQ(register_label(replay::Block::Core0, 0x06fc, s), "PCTR_0_PCTR31");
  EXPECT_EQ(register_label(replay::Block::Sms, 0x0400, s), "SMS_TEE_CS");
  EXPECT_EQ(register_label(replay::Block::Bridge, 0x000c, s), "BRIDGE_SW_INIT_1");
  EXPECT_EQ(register_label(replay::Block::Tzpc, 0x0008, s), "TZPC_VIOLATIONS");
  EXPECT_EQ(register_label(replay::Block::Hub, 0x0abc, s), "0x0abc");
  EXPECT_EQ(register_label(replay::Block::Tzpc, 0x0010, s), "0x0010");
  EXPECT_EQ(block_name(replay::Block::Core0), "core0");
}

// ---- where the keys come from ------------------------------------------------------

class TrustTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("inspect_trust_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_ / "trusted");
    key_ = keyring::generate_keypair().public_key;
    keyring::save_public_key(dir_ / "trusted" / "a.pub", key_);
    saved_cwd_ = std::filesystem::current_path();
    std::filesystem::current_path(dir_);
    ::unsetenv("RPLAYER_TRUST");
    ::unsetenv("RPLAYER_KEYS");
  }
  void TearDown() override {
    std::filesystem::current_path(saved_cwd_);
    std::filesystem::remove_all(dir_);
    ::unsetenv("RPLAYER_TRUST");
  }
  std::filesystem::path dir_, saved_cwd_;
  replay::PublicKey key_{};
};

TEST_F(TrustTest, ExplicitKeysAndStores) {
  keyring::TrustStore s;
  std::string err;
  ASSERT_TRUE(resolve_trust_store({(dir_ / "trusted" / "a.pub").string()}, "", &s, &err)) << err;
  ASSERT_EQ(s.entries().size(), 1u);
  EXPECT_EQ(s.entries()[0].key, key_);
  ASSERT_TRUE(resolve_trust_store({}, (dir_ / "trusted").string(), &s, &err)) << err;
  EXPECT_EQ(s.entries().size(), 1u);
  EXPECT_FALSE(resolve_trust_store({"nope.pub"}, "", &s, &err));
  EXPECT_FALSE(resolve_trust_store({}, "no-such-dir", &s, &err));
  EXPECT_NE(err.find("no-such-dir"), std::string::npos);
}

TEST_F(TrustTest, DefaultStoreIsKeysTrustedOrTheEnvironment) {
  keyring::TrustStore s;
  std::string err;
  // The cwd has trusted/ but no keys/trusted.
  EXPECT_FALSE(resolve_trust_store({}, "", &s, &err));
  EXPECT_NE(err.find("keys/trusted"), std::string::npos) << err;
  EXPECT_NE(err.find("--key"), std::string::npos) << err;
  EXPECT_NE(err.find("$RPLAYER_TRUST"), std::string::npos) << err;
  ::setenv("RPLAYER_TRUST", (dir_ / "trusted").c_str(), 1);
  ASSERT_TRUE(resolve_trust_store({}, "", &s, &err)) << err;
  EXPECT_EQ(s.entries().size(), 1u);
  ::unsetenv("RPLAYER_TRUST");
  std::filesystem::create_directories("keys");
  std::filesystem::rename("trusted", "keys/trusted");
  ASSERT_TRUE(resolve_trust_store({}, "", &s, &err)) << err;
  EXPECT_EQ(s.entries()[0].key, key_);
}

}  // namespace
}  // namespace rplayer::tools
