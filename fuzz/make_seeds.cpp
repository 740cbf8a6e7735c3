// Writes the fuzzers' seed corpora at fuzz time (nothing is committed): real recordings
// made here on the modeled SoC through the driver and the recorder, recordings made by
// `rplayer record` (passed as arguments, re-signed with the fuzz key), real models and
// images from ../shared, and well-formed message sequences for the two wire protocols.
//
//   make_seeds OUT_DIR SHARED_DIR [RECORDING.rec ...]
//
// Creates OUT_DIR/{decode,replay,smc,soc_wire,ncnn,onnx,image}/.
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "driver/v3d_driver.h"
#include "fuzz/sealed_payload.h"
#include "hw/isa/assembler.h"
#include "hw/sku.h"
#include "hw/soc.h"
#include "hw/soc_wire.h"
#include "hw/v3d_regs.h"
#include "keyring/keys.h"
#include "link/shim_wire.h"
#include "nn/image.h"
#include "record/encoder.h"
#include "record/recorder.h"
#include "replay/decoder.h"
#include "replay/verifier.h"
#include "tee/smc_wire.h"
#include "tests/tee/toy_ta.h"

#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#include <stb/stb_image_write.h>

namespace fs = std::filesystem;
using namespace rplayer;
using Bytes = std::vector<uint8_t>;

namespace {

int written = 0;
std::string weights_path;  // the workload's "model file", written next to the corpora

void write(const fs::path& dir, const std::string& name, const Bytes& b) {
  fs::create_directories(dir);
  std::ofstream(dir / name, std::ios::binary)
      .write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
  ++written;
}

Bytes read(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(f), {});
}

Bytes prefixed(uint8_t first, const Bytes& rest) {
  Bytes b{first};
  b.insert(b.end(), rest.begin(), rest.end());
  return b;
}

// The replay tests' workload (tests/replay/workload.cpp): out = in x 2 + bias, three jobs.
replay::Recording record_workload(const std::string& sku, uint32_t n, bool omit_weights) {
  hw::SocConfig cfg;
  cfg.sku = sku;
  cfg.normal_bytes = 64ull << 20;
  cfg.secure_bytes = 16ull << 20;
  cfg.timing.scale = 0.5;
  hw::ModeledSoc soc(cfg);
  driver::DirectHwIo io(soc.port(hw::World::Normal));
  record::RecorderOptions opts;
  opts.omit_weights = omit_weights;
  opts.irq_timeout_us = 100000;  // within the replay fuzzer's limits
  record::Recorder rec(io, opts);
  std::string err;
  auto drv = driver::V3dDriver::probe(rec, {}, &err);
  if (!drv) throw std::runtime_error("probe: " + err);
  auto bo = [&](uint32_t size, driver::BoUsage u, bool w, const char* label, uint8_t** cpu) {
    driver::CreateBo c;
    c.size = size;
    c.usage = u;
    c.gpu_writable = w;
    c.label = label;
    if (u == driver::BoUsage::Weights) {  // as the NN backend uploads weights: a file range
      c.has_weight_source = true;
      c.weight_model = weights_path;
      c.weight_offset = 64;
      c.weight_length = size;
    }
    if (drv->create_bo(c) != 0) throw std::runtime_error("create_bo");
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
  if (!code.ok()) throw std::runtime_error("assemble");
  uint8_t *pc, *pin, *pout, *pbias, *pu1, *pu2;
  auto c = bo(4096, driver::BoUsage::Code, false, "kernel", &pc);
  auto in = bo(n * 4, driver::BoUsage::Input, false, "in", &pin);
  auto out = bo(n * 4, driver::BoUsage::Output, true, "out", &pout);
  auto bias = bo(n * 4, driver::BoUsage::Weights, false, "bias", &pbias);
  auto u1 = bo(4096, driver::BoUsage::Uniforms, false, "u1", &pu1);
  auto u2 = bo(4096, driver::BoUsage::Uniforms, false, "u2", &pu2);
  std::memcpy(pc, code.words.data(), code.words.size() * 8);
  Bytes weights(64 + n * 4 + 32, 0);
  for (uint32_t i = 0; i < n; ++i) {
    const float b = float(i % 7) - 3.f, x = float(i) * 0.5f;
    std::memcpy(weights.data() + 64 + 4 * i, &b, 4);
    std::memcpy(pin + 4 * i, &x, 4);
  }
  std::memcpy(pbias, weights.data() + 64, n * 4);
  std::ofstream(weights_path, std::ios::binary)
      .write(reinterpret_cast<const char*>(weights.data()), std::streamsize(weights.size()));
  const uint32_t a1[3] = {in.gpu_va, out.gpu_va, bias.gpu_va};
  const uint32_t a2[3] = {out.gpu_va, out.gpu_va, bias.gpu_va};
  std::memcpy(pu1, a1, 12);
  std::memcpy(pu2, a2, 12);
  rec.start();
  for (int j = 0; j < 3; ++j) {
    driver::SubmitCsd s;
    s.cfg[0] = (n / 64) << 16;
    s.cfg[1] = 1 << 16;
    s.cfg[2] = 1 << 16;
    s.cfg[3] = 64;
    s.cfg[4] = n / 16 - 1;
    s.cfg[5] = c.gpu_va;
    s.cfg[6] = j == 0 ? u1.gpu_va : u2.gpu_va;
    s.bo_handles = {c.handle, in.handle, out.handle, bias.handle, u1.handle, u2.handle};
    if (drv->submit_csd(s) != 0 || drv->wait_seqno(s.seqno, std::chrono::seconds(5)) != 0)
      throw std::runtime_error("job");
  }
  if (!rec.bind("in", true, in.gpu_va, n * 4, {n}, &err) ||
      !rec.bind("out", false, out.gpu_va, n * 4, {n}, &err))
    throw std::runtime_error("bind: " + err);
  replay::Recording r;
  if (!rec.finish(&r, &err)) throw std::runtime_error("finish: " + err);
  return r;
}

// Bounds every wait and the budget to what the replay fuzzer allows.
void fit_replay_limits(replay::Recording& r) {
  for (replay::Action& a : r.actions)
    if (a.op == replay::ActionOp::Poll || a.op == replay::ActionOp::WaitIrq)
      a.timeout_us = std::min(a.timeout_us, 200000u);
  for (auto& [k, v] : r.metadata)
    if (k == replay::kBudgetKey) v = "1000";
}

void recording_seeds(const fs::path& out, const std::string& name, const Bytes& file,
                     bool for_replay) {
  write(out / "decode", name + ".raw", prefixed(0, file));
  const Bytes payload = fuzz::payload_of(file);
  write(out / "decode", name + ".payload", prefixed(1, payload));
  if (for_replay) write(out / "replay", name + ".payload", payload);
}

// ---- wire protocol sequences -----------------------------------------------------------

Bytes smc_message(uint8_t flags, const tee::wire::Header& h, const Bytes& payload = {}) {
  Bytes m{flags};
  const size_t len = sizeof h + payload.size();
  m.push_back(uint8_t(len));
  m.push_back(uint8_t(len >> 8));
  const auto* p = reinterpret_cast<const uint8_t*>(&h);
  m.insert(m.end(), p, p + sizeof h);
  m.insert(m.end(), payload.begin(), payload.end());
  return m;
}

void smc_seeds(const fs::path& dir) {
  using namespace tee;
  auto open = wire::make_header(wire::Op::kOpenSession);
  std::memcpy(open.uuid, &tee::test::kToyUuid, 16);
  open.param_types = TEE_PARAM_TYPES(TEE_PARAM_TYPE_VALUE_OUTPUT, 0, 0, 0);
  auto add = wire::make_header(wire::Op::kInvoke);
  add.session = 1;
  add.cmd = tee::test::kCmdAdd;
  add.param_types = TEE_PARAM_TYPES(TEE_PARAM_TYPE_VALUE_INPUT, TEE_PARAM_TYPE_VALUE_OUTPUT,
                                    TEE_PARAM_TYPE_VALUE_INOUT, TEE_PARAM_TYPE_NONE);
  add.params[0].a = 2, add.params[0].b = 3;
  auto echo = wire::make_header(wire::Op::kInvoke);
  echo.session = 1;
  echo.cmd = tee::test::kCmdEcho;
  echo.param_types =
      TEE_PARAM_TYPES(TEE_PARAM_TYPE_MEMREF_INPUT, TEE_PARAM_TYPE_MEMREF_OUTPUT, 0, 0);
  echo.params[0].size = 16;
  echo.params[1].size = 32;
  Bytes sixteen(16, 'x');
  echo.payload_bytes = 16;
  add.payload_bytes = 0;
  auto reg = wire::make_header(wire::Op::kRegisterShm);
  auto inv = wire::make_header(wire::Op::kInvoke);  // invert a window of the shm
  inv.session = 1;
  inv.cmd = tee::test::kCmdInvert;
  inv.param_types = TEE_PARAM_TYPES(TEE_PARAM_TYPE_MEMREF_INOUT, 0, 0, 0);
  inv.params[0].shm_id = 1;
  inv.params[0].offset = 100;
  inv.params[0].size = 200;
  auto rel = wire::make_header(wire::Op::kReleaseShm);
  rel.shm_id = 1;
  auto close = wire::make_header(wire::Op::kCloseSession);
  close.session = 1;
  Bytes s;
  for (const Bytes& m : {smc_message(2, open), smc_message(2, add), smc_message(2, echo, sixteen),
                         smc_message(3, reg), smc_message(2, inv), smc_message(2, rel),
                         smc_message(2, close)})
    s.insert(s.end(), m.begin(), m.end());
  write(dir, "session", s);
  write(dir, "open", smc_message(2, open));
  write(dir, "shm", smc_message(3, reg));
}

Bytes soc_request(uint8_t flags, hw::wire::Op op, uint32_t block = 0, uint32_t offset = 0,
                  uint32_t value = 0, uint32_t line = 0, uint64_t timeout = 0) {
  hw::wire::Request r = hw::wire::make_request(op);
  r.block = block, r.offset = offset, r.value = value, r.line = line, r.timeout_us = timeout;
  Bytes b{flags};
  const auto* p = reinterpret_cast<const uint8_t*>(&r);
  b.insert(b.end(), p, p + sizeof r);
  return b;
}

void soc_wire_seeds(const fs::path& dir) {
  using hw::wire::Op;
  for (uint8_t world : {0, 1}) {
    Bytes s{world, 0};
    for (const Bytes& m :
         {soc_request(1, Op::Hello), soc_request(1, Op::Read32, 0, 0x4),
          soc_request(1, Op::Read32, 1, 0x0), soc_request(1, Op::Write32, 0, 0x1200, 1),
          soc_request(1, Op::Write32Posted, 1, 0x50, 0),
          soc_request(1, Op::WaitIrq, 0, 0, 0, 0, 500), soc_request(1, Op::Read32, 4, 0x0),
          soc_request(1, Op::Clone)})
      s.insert(s.end(), m.begin(), m.end());
    write(dir, world ? "secure" : "normal", s);
  }
}

// ---- models and images -----------------------------------------------------------------

void ncnn_seeds(const fs::path& dir, const fs::path& shared) {
  auto pair = [&](const fs::path& param, const fs::path& bin, size_t bin_max,
                  const std::string& name) {
    const Bytes text = read(param);
    Bytes b(4);
    const uint32_t n = uint32_t(text.size());
    std::memcpy(b.data(), &n, 4);
    b.insert(b.end(), text.begin(), text.end());
    if (!bin.empty()) {
      Bytes w = read(bin);
      w.resize(std::min(w.size(), bin_max));
      b.insert(b.end(), w.begin(), w.end());
    }
    write(dir, name, b);
  };
  const fs::path models = shared / "models";
  if (fs::exists(models / "mnist/mnist.param"))
    pair(models / "mnist/mnist.param", models / "mnist/mnist.bin", SIZE_MAX, "mnist");
  if (fs::exists(models / "squeezenet_v1.1/squeezenet_v1.1.param"))  // the first layers' weights
    pair(models / "squeezenet_v1.1/squeezenet_v1.1.param",
         models / "squeezenet_v1.1/squeezenet_v1.1.bin", 64 << 10, "squeezenet");
  if (fs::exists(models / "bench"))
    for (const auto& e : fs::directory_iterator(models / "bench"))
      if (e.path().extension() == ".param") pair(e.path(), {}, 0, e.path().stem().string());
}

void onnx_seeds(const fs::path& dir, const fs::path& shared) {
  const fs::path mnist = shared / "models/mnist/model.onnx";
  if (fs::exists(mnist)) write(dir, "mnist.onnx", read(mnist));
  // A sample of the ONNX operator tests (Debian's libonnx-testdata): one small model per op.
  const fs::path node = "/usr/share/libonnx-testdata/data/node";
  if (!fs::exists(node)) return;
  std::vector<fs::path> models;
  for (const auto& e : fs::directory_iterator(node))
    if (fs::exists(e.path() / "model.onnx")) models.push_back(e.path());
  std::sort(models.begin(), models.end());
  for (size_t i = 0; i < models.size(); i += 8)
    write(dir, models[i].filename().string() + ".onnx", read(models[i] / "model.onnx"));
}

void to_vector(void* ctx, void* data, int size) {
  auto* v = static_cast<Bytes*>(ctx);
  v->insert(v->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
}

void image_seeds(const fs::path& dir, const fs::path& shared) {
  const fs::path images = shared / "images";
  for (const char* name : {"cat.jpg", "cat.ppm"})
    if (fs::exists(images / name))
      write(dir, std::string(name), prefixed(1, prefixed(0, read(images / name))));
  if (fs::exists(images / "digits"))
    for (const auto& e : fs::directory_iterator(images / "digits"))
      write(dir, "digit-" + e.path().filename().string(), prefixed(0, prefixed(1, read(e.path()))));
  // Small re-encodings of the cat in every format stb writes (fast executions).
  if (!fs::exists(images / "cat.jpg")) return;
  const nn::Image cat = nn::load_image((images / "cat.jpg").string(), 3);
  const int w = 48, h = 32;
  Bytes px(size_t(w) * h * 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c)
        px[(size_t(y) * w + x) * 3 + c] =
            cat.pixels[(size_t(y * cat.h / h) * cat.w + x * cat.w / w) * 3 + c];
  Bytes b;
  stbi_write_png_to_func(to_vector, &b, w, h, 3, px.data(), w * 3);
  write(dir, "small.png", prefixed(1, prefixed(0, b)));
  b.clear();
  stbi_write_jpg_to_func(to_vector, &b, w, h, 3, px.data(), 80);
  write(dir, "small.jpg", prefixed(1, prefixed(0, b)));
  b.clear();
  stbi_write_bmp_to_func(to_vector, &b, w, h, 3, px.data());
  write(dir, "small.bmp", prefixed(0, prefixed(3, b)));
  b.clear();
  stbi_write_tga_to_func(to_vector, &b, w, h, 3, px.data());
  write(dir, "small.tga", prefixed(1, prefixed(1, b)));
  b.clear();
  stbi_write_hdr_to_func(to_vector, &b, 8, 8, 3, std::vector<float>(8 * 8 * 3, 0.5f).data());
  write(dir, "small.hdr", prefixed(0, prefixed(0, b)));
}

}  // namespace

// GPUShim sessions (fuzz_shim.cpp's input: a SKU byte, then u16-length-prefixed request
// frames): a driver's MMU setup, a page-table page mapping pool pages, and a job running
// through them; and the same with a foreign entry.
void shim_seeds(const fs::path& dir) {
  using link::ShimOp;
  using link::ShimOpKind;
  hw::SocConfig c;  // as fuzz_shim.cpp's Target::config
  c.normal_bytes = 16ull << 20;
  c.secure_bytes = 8ull << 20;
  uint64_t pool = 0;
  {
    hw::ModeledSoc soc(c);
    pool = soc.memory().secure_base();
  }
  const uint64_t table = pool + (1u << 20), scratch = table + (4u << 20);
  auto w = [](hw::RegBlock b, uint32_t off, uint32_t v) {
    ShimOp op;
    op.kind = ShimOpKind::Write, op.block = uint8_t(b), op.offset = off, op.a = v;
    return op;
  };
  auto pte = [](uint64_t pa) { return uint32_t(pa >> 12) | v3d::PTE_VALID | v3d::PTE_WRITEABLE; };
  for (int sku = 0; sku < 2; ++sku) {
    const hw::Sku& s = *hw::find_sku(sku ? "v3d-4.2" : "v3d-7.1");
    for (bool foreign : {false, true}) {
      std::vector<ShimOp> setup = {
          w(hw::RegBlock::Hub, v3d::MMU_PT_PA_BASE, uint32_t(table >> 12)),
          w(hw::RegBlock::Hub, v3d::MMU_ILLEGAL_ADDR,
            uint32_t(scratch >> 12) | v3d::MMU_ILLEGAL_ADDR_ENABLE),
          w(hw::RegBlock::Hub, v3d::MMU_CTL,
            v3d::MMU_CTL_ENABLE | v3d::MMU_CTL_PT_INVALID_ENABLE | v3d::MMU_CTL_PT_INVALID_ABORT)};
      std::vector<uint32_t> ptes(1024, 0);
      ptes[16] = pte(foreign ? 0x200000 : pool + 64 * 4096);
      ptes[17] = pte(pool + 65 * 4096);
      std::vector<ShimOp> job = {
          link::page_op(table, reinterpret_cast<uint8_t*>(ptes.data()), true)};
      const uint32_t c0 = s.csd_queued_cfg0;
      for (auto [off, v] :
           std::vector<std::pair<uint32_t, uint32_t>>{{c0 + 4, 1u << 16},
                                                      {c0 + 8, 1u << 16},
                                                      {c0 + 12, 16},
                                                      {c0 + 16, s.csd_cfg4_minus_one ? 0u : 1u},
                                                      {c0 + 20, 16 * 4096},
                                                      {c0 + 24, 17 * 4096},
                                                      {c0, 1u << 16}})
        job.push_back(w(hw::RegBlock::Core0, off, v));
      ShimOp wait;
      wait.kind = ShimOpKind::Wait, wait.block = uint8_t(s.num_irq_lines - 1),
      wait.timeout_us = 10000;
      job.push_back(wait);
      Bytes seed = {uint8_t(sku)};
      uint32_t seq = 0;
      for (const auto& ops : {setup, job}) {
        Bytes frame;
        link::encode_request(seq++, ops, &frame);
        seed.push_back(uint8_t(frame.size())), seed.push_back(uint8_t(frame.size() >> 8));
        seed.insert(seed.end(), frame.begin(), frame.end());
      }
      write(dir, std::string("session-") + (sku ? "v42" : "v71") + (foreign ? "-foreign" : ""),
            seed);
    }
  }
}

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s OUT_DIR SHARED_DIR [RECORDING.rec ...]\n", argv[0]);
    return 2;
  }
  const fs::path out = argv[1], shared = argv[2];
  fs::create_directories(out);
  weights_path = (out / "workload-weights.bin").string();
  try {
    // Recordings made here: both SKUs, with weights (replayable by the replay fuzzer) and
    // without (weight bindings), signed by any key: payload_of drops the signature.
    const keyring::KeyPair key = keyring::keypair_from_seed({1});
    for (const char* sku : {"v3d-7.1", "v3d-4.2"}) {
      for (bool omit : {false, true}) {
        replay::Recording r = record_workload(sku, 1024, omit);
        fit_replay_limits(r);
        const Bytes file = record::encode_recording(r, key);
        recording_seeds(out, std::string("workload-") + sku + (omit ? "-omit" : ""), file, !omit);
      }
      // A one-page variant: fewer page loads, faster replays.
      replay::Recording r = record_workload(sku, 256, false);
      fit_replay_limits(r);
      recording_seeds(out, std::string("small-") + sku, record::encode_recording(r, key), true);
    }
    // Recordings from `rplayer record` (real networks), signed by its key: re-signed with
    // the fuzz key so that the raw mode's signature check passes on the unmutated seed.
    for (int i = 3; i < argc; ++i) {
      Bytes file = read(argv[i]);
      if (!fuzz::resign_with_fuzz_key(file)) continue;
      const std::string name = fs::path(argv[i]).stem().string();
      recording_seeds(out, name, file, false);
      // For the replay target too, with its waits and budget cut to the target's limits
      // (recordings that carry their weights: the target passes no model file).
      replay::Recording r;
      const replay::PublicKey pk = fuzz::fuzz_public_key();
      if (!replay::decode_recording(file, {&pk, 1}, &r).ok() || r.weights_omitted) continue;
      fit_replay_limits(r);
      write(out / "replay", name + ".payload", fuzz::payload_of(record::encode_recording(r, key)));
    }
    smc_seeds(out / "smc");
    soc_wire_seeds(out / "soc_wire");
    ncnn_seeds(out / "ncnn", shared);
    onnx_seeds(out / "onnx", shared);
    image_seeds(out / "image", shared);
    shim_seeds(out / "shim");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_seeds: %s\n", e.what());
    return 1;
  }
  std::printf("make_seeds: %d seed files in %s\n", written, out.c_str());
  return 0;
}
