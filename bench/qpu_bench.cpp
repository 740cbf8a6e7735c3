// Throughput of the QPU interpreter (hw/gpu/qpu.cpp), in 16-lane instructions per second.
//
// items_per_second counts issued instructions; "lane_ops_per_s" is 16 times that. Cases:
// an ALU-bound ffma chain, a streaming vector add over 1 MiB arrays, a conv-like inner loop
// (ldu4 weights + ld input + 4 ffma), and the conv loop on one vs two host threads (two
// QpuContexts sharing one memory) to show scaling.
#include <benchmark/benchmark.h>

#include <atomic>
#include <bit>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "hw/gpu/qpu.h"
#include "hw/isa/isa.h"

namespace rplayer::hw {
namespace {

using isa::Op;

// Identity-mapped flat memory: VA page n is bytes [n*4096, (n+1)*4096). Read-only after
// setup, so any number of threads can share it.
class FlatMemory : public GpuMemory {
 public:
  explicit FlatMemory(size_t bytes) : data_(bytes) {}
  uint8_t* page(uint32_t va_page, GpuAccess) override {
    const size_t off = size_t(va_page) << 12;
    return off + 4096 <= data_.size() ? data_.data() + off : nullptr;
  }
  uint64_t generation() const override { return 1; }
  uint8_t* at(uint32_t va) { return data_.data() + va; }
  void put_words(uint32_t va, const std::vector<uint64_t>& w) {
    std::memcpy(at(va), w.data(), w.size() * 8);
  }
  void put_f32(uint32_t va, float v) { std::memcpy(at(va), &v, 4); }

 private:
  std::vector<uint8_t> data_;
};

// Minimal program builder over isa::encode (independent of the assembler).
class Prog {
 public:
  size_t pc() const { return w_.size(); }
  const std::vector<uint64_t>& words() const { return w_; }
  void emit(Op op, int rd, int ra, int rb, int rc, uint32_t imm, bool imm_b) {
    isa::Instr in;
    in.op = op;
    in.imm_b = imm_b;
    in.rd = uint8_t(rd);
    in.ra = uint8_t(ra);
    in.rb = uint8_t(rb);
    in.rc = uint8_t(rc);
    in.imm = imm;
    w_.push_back(isa::encode(in));
  }
  void rrr(Op op, int d, int a, int b) { emit(op, d, a, b, 0, 0, false); }
  void rri(Op op, int d, int a, uint32_t imm) { emit(op, d, a, 0, 0, imm, true); }
  void rrrr(Op op, int d, int a, int b, int c) { emit(op, d, a, b, c, 0, false); }
  void rr(Op op, int d, int a) { emit(op, d, a, 0, 0, 0, false); }
  void movi(int d, uint32_t imm) { emit(Op::Mov, d, 0, 0, 0, imm, true); }
  void movf(int d, float f) { movi(d, std::bit_cast<uint32_t>(f)); }
  void sreg(int d, isa::Sreg s) { emit(Op::Sreg, d, 0, 0, 0, uint32_t(s), false); }
  void unif(int d) { emit(Op::Unif, d, 0, 0, 0, 0, false); }
  void load(Op op, int d, int a, uint32_t off) { emit(op, d, a, 0, 0, off, false); }
  void store(Op op, int a, uint32_t off, int c) { emit(op, 0, a, 0, c, off, false); }
  void branch(Op op, int c, size_t target) {
    emit(op, 0, 0, 0, c, uint32_t(int32_t(target) - int32_t(pc())), false);
  }
  void end() { emit(Op::End, 0, 0, 0, 0, 0, false); }

 private:
  std::vector<uint64_t> w_;
};

constexpr uint32_t kCodeVa = 0x1000;
constexpr uint32_t kUnifVa = 0x8000;
constexpr uint32_t kDataVa = 0x10000;

struct Workload {
  FlatMemory mem;
  DispatchParams params;
  explicit Workload(size_t bytes) : mem(bytes) {}
};

// ALU bound: 8 independent ffma chains, 32 ffma per loop iteration.
std::unique_ptr<Workload> make_ffma(uint32_t iters) {
  auto w = std::make_unique<Workload>(1 << 16);
  Prog p;
  p.sreg(0, isa::Sreg::Lane);
  p.rr(Op::Itof, 1, 0);
  p.movf(2, 0.999f);
  p.movf(3, 0.001f);
  for (int k = 0; k < 8; ++k) p.rrr(Op::Fadd, 10 + k, 1, 3);
  p.movi(5, iters);
  const size_t loop = p.pc();
  for (int rep = 0; rep < 4; ++rep)
    for (int k = 0; k < 8; ++k) p.rrrr(Op::Ffma, 10 + k, 10 + k, 2, 3);
  p.rri(Op::Sub, 5, 5, 1);
  p.branch(Op::Bany, 5, loop);
  p.end();
  w->mem.put_words(kCodeVa, p.words());
  w->params.shader_va = kCodeVa;
  w->params.uniforms_va = kUnifVa;
  w->params.wg_size = 64;
  w->params.num_wg[0] = 4;
  return w;
}

// Streaming c[i] = a[i] + b[i] over three 1 MiB arrays; each invocation strides through.
constexpr uint32_t kStreamFloats = 1 << 18;  // 1 MiB per array
std::unique_ptr<Workload> make_stream() {
  const uint32_t bytes = kStreamFloats * 4;
  const uint32_t a = kDataVa, b = a + bytes, c = b + bytes;
  auto w = std::make_unique<Workload>(c + bytes);
  const uint32_t wg_size = 256, num_wg = 16;
  const uint32_t threads = wg_size * num_wg;
  const uint32_t iters = kStreamFloats / threads;
  Prog p;
  p.sreg(0, isa::Sreg::GlobalX);
  p.rri(Op::Shl, 0, 0, 2);  // byte offset
  p.movi(5, iters);
  const size_t loop = p.pc();
  p.load(Op::Ld, 1, 0, a);
  p.load(Op::Ld, 2, 0, b);
  p.rrr(Op::Fadd, 3, 1, 2);
  p.store(Op::St, 0, c, 3);
  p.rri(Op::Add, 0, 0, threads * 4);
  p.rri(Op::Sub, 5, 5, 1);
  p.branch(Op::Bany, 5, loop);
  p.end();
  w->mem.put_words(kCodeVa, p.words());
  for (uint32_t i = 0; i < kStreamFloats; ++i) {
    w->mem.put_f32(a + 4 * i, float(i));
    w->mem.put_f32(b + 4 * i, 1.0f);
  }
  w->params.shader_va = kCodeVa;
  w->params.uniforms_va = kUnifVa;
  w->params.wg_size = wg_size;
  w->params.num_wg[0] = num_wg;
  return w;
}

// Conv-like: each invocation owns one output pixel (per lane) and 4 output channels; the
// loop runs over input channels: 4 weights by ldu4 (same for all lanes), one input value
// by ld, then 4 ffma. The uniform stream gives the weight and input base addresses.
constexpr uint32_t kConvIn = 256;  // input channels
std::unique_ptr<Workload> make_conv(uint32_t num_wg) {
  const uint32_t wg_size = 64;
  const uint32_t pixels = wg_size * num_wg;
  const uint32_t weights = kDataVa;
  const uint32_t input = weights + kConvIn * 16;
  const uint32_t output = input + kConvIn * pixels * 4;
  auto w = std::make_unique<Workload>(output + pixels * 16 + 4096);
  Prog p;
  p.unif(1);  // weights base
  p.unif(2);  // input base
  p.unif(3);  // output base
  p.sreg(0, isa::Sreg::GlobalX);
  p.rri(Op::Shl, 4, 0, 2);
  p.rrr(Op::Add, 2, 2, 4);  // &input[0][pixel]
  p.movi(5, kConvIn);
  const size_t loop = p.pc();
  p.load(Op::Ldu4, 8, 1, 0);
  p.load(Op::Ld, 12, 2, 0);
  for (int k = 0; k < 4; ++k) p.rrrr(Op::Ffma, 20 + k, 12, 8 + k, 20 + k);
  p.rri(Op::Add, 1, 1, 16);
  p.rri(Op::Add, 2, 2, pixels * 4);
  p.rri(Op::Sub, 5, 5, 1);
  p.branch(Op::Bany, 5, loop);
  p.rri(Op::Shl, 4, 0, 4);
  p.rrr(Op::Add, 3, 3, 4);
  p.store(Op::St4, 3, 0, 20);
  p.end();
  w->mem.put_words(kCodeVa, p.words());
  const uint32_t unif[3] = {weights, input, output};
  std::memcpy(w->mem.at(kUnifVa), unif, sizeof(unif));
  for (uint32_t i = 0; i < kConvIn * 4; ++i) w->mem.put_f32(weights + 4 * i, 0.01f * (i % 7));
  for (uint32_t i = 0; i < kConvIn * pixels; ++i) w->mem.put_f32(input + 4 * i, 0.5f);
  w->params.shader_va = kCodeVa;
  w->params.uniforms_va = kUnifVa;
  w->params.wg_size = wg_size;
  w->params.num_wg[0] = num_wg;
  return w;
}

// Runs workgroups [first, end) of the X dimension with one context.
QpuCounters run_range(QpuContext& ctx, Workload& w, uint32_t first, uint32_t end, uint32_t qpu) {
  std::atomic<bool> stop{false};
  QpuCounters c;
  for (uint32_t x = first; x < end; ++x) {
    const QpuResult r = ctx.run_workgroup(w.params, x, 0, 0, qpu, w.mem, stop, c);
    if (r != QpuResult::Done) std::abort();
  }
  return c;
}

void report(benchmark::State& state, uint64_t instructions) {
  state.SetItemsProcessed(int64_t(instructions));
  state.counters["lane_ops_per_s"] =
      benchmark::Counter(double(instructions) * isa::kLanes, benchmark::Counter::kIsRate);
}

void run_single(benchmark::State& state, Workload& w) {
  QpuContext ctx;
  uint64_t instructions = 0;
  for (auto _ : state) instructions += run_range(ctx, w, 0, w.params.num_wg[0], 0).instructions;
  report(state, instructions);
}

void BM_FfmaChain(benchmark::State& state) {
  auto w = make_ffma(4096);
  run_single(state, *w);
}
BENCHMARK(BM_FfmaChain)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_StreamAdd1MiB(benchmark::State& state) {
  auto w = make_stream();
  run_single(state, *w);
}
BENCHMARK(BM_StreamAdd1MiB)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_ConvInner(benchmark::State& state) {
  auto w = make_conv(64);
  run_single(state, *w);
}
BENCHMARK(BM_ConvInner)->Unit(benchmark::kMillisecond)->UseRealTime();

// The conv loop split over `threads` host threads, each with its own QpuContext, all on one
// shared memory (as the device's two worker threads).
void BM_ConvThreads(benchmark::State& state) {
  const uint32_t threads = uint32_t(state.range(0));
  auto w = make_conv(256);
  std::vector<QpuContext> ctx(threads);
  uint64_t instructions = 0;
  for (auto _ : state) {
    std::vector<QpuCounters> c(threads);
    std::vector<std::thread> pool;
    const uint32_t n = w->params.num_wg[0];
    for (uint32_t t = 0; t < threads; ++t) {
      pool.emplace_back(
          [&, t] { c[t] = run_range(ctx[t], *w, n * t / threads, n * (t + 1) / threads, t); });
    }
    for (std::thread& th : pool) th.join();
    for (const QpuCounters& k : c) instructions += k.instructions;
  }
  report(state, instructions);
}
BENCHMARK(BM_ConvThreads)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace rplayer::hw

BENCHMARK_MAIN();
