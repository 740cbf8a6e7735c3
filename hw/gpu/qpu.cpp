// QPU interpreter. Semantics and cost model: docs/isa.md (rpq ISA).
//
// Speed matters more here than anywhere else in the model, so:
//  - each 4 KiB code page is decoded once into an array of 8-byte DInstr (plus a sentinel
//    that moves on to the next page), kept until GpuMemory::generation() changes: this is
//    also the modeled instruction cache;
//  - data pages go through a direct-mapped micro-TLB of host page pointers, with fast paths
//    for "all active lanes in one page" and "16 consecutive words";
//  - a register row is a 16-lane value of four 128-bit vectors (Lanes below), so every op
//    is a few SIMD instructions, stored directly when all lanes are active and blended
//    with the exec mask otherwise;
//  - dispatch is threaded code (computed goto), measured ~5-10% faster than a switch on
//    memory-heavy loops and 1.7x on trivial ops;
//  - the interpreter loop keeps its state in locals so that register-file stores (uint32_t)
//    do not force reloads of members through `this`.

// ffma must round twice; never let the compiler contract a*b+c into an FMA. ISO mode
// (-std=c++20) already defaults to fp-contract=off; this guards GNU-mode or -march builds.
// Placed before every include so that all functions of this file share the same options
// (a mismatch would block inlining of header functions).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "hw/gpu/qpu.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <optional>
#include <type_traits>
#include <vector>

#include "hw/isa/isa.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace rplayer::hw {

const char* qpu_result_name(QpuResult r) {
  switch (r) {
    case QpuResult::Done:
      return "Done";
    case QpuResult::Stopped:
      return "Stopped";
    case QpuResult::IllegalInstr:
      return "IllegalInstr";
    case QpuResult::MaskStack:
      return "MaskStack";
    case QpuResult::FetchFault:
      return "FetchFault";
  }
  return "?";
}

namespace {

static_assert(std::endian::native == std::endian::little, "GPU memory is little-endian");

using isa::Op;

#define RP_INLINE inline __attribute__((always_inline))
#define LANES for (int l = 0; l < kL; ++l)

constexpr int kL = isa::kLanes;
constexpr uint32_t kFullMask = 0xffff;
constexpr uint32_t kPageShift = 12;
constexpr uint32_t kPageOffMask = 0xfff;
constexpr uint32_t kInstrPerPage = 4096 / isa::kInstrBytes;  // 512
constexpr uint32_t kIpcMask = (1u << 29) - 1;                // instruction index of a 32-bit VA
constexpr uint32_t kNoPage = 0xffffffffu;                    // VA pages are 20 bits
constexpr int kMaxBatches = 16;
constexpr uint32_t kMaxWgSize = kMaxBatches * kL;

// Decoded opcodes: the ISA opcode (0x00..0x57), with kImm set when operand b is the
// immediate, or one of two internal codes that the ISA leaves undefined.
enum : uint8_t {
  kImm = 0x80,
  kPageEnd = 0x7e,  // sentinel after the last instruction of a decoded page
  kTrap = 0x7f,     // illegal word: faults only when executed
};

constexpr uint8_t code(Op op) { return uint8_t(op); }

// A decoded instruction is the canonical word itself (so bits 0..7 are already the opcode
// with kImm, and the register fields sit at 8/14/20/26), except that traps and the page-end
// sentinel get internal opcodes and a branch's imm becomes its absolute target index. The
// fields come out of a register with a shift and a mask, already scaled to row offsets.
struct DInstr {
  uint32_t ctl;  // opcode | rd << 8 | ra << 14 | rb << 20 | rc << 26
  uint32_t imm;  // operand b, memory offset, sreg id, or absolute branch target
};
static_assert(sizeof(DInstr) == 8);

struct CodePage {
  uint32_t vpage = kNoPage;
  DInstr ins[kInstrPerPage + 1];
};

struct TlbEntry {
  uint32_t vpage = kNoPage;
  bool writable = false;
  uint8_t* ptr = nullptr;
};

enum class BatchState : uint8_t { Running, AtBarrier, Ended };

struct Batch {
  alignas(64) uint32_t r[isa::kNumRegs][kL];
  uint32_t pc;       // absolute instruction index (VA / 8)
  uint32_t unif_va;  // next uniform word
  uint32_t mask;     // exec mask, bit l = lane l
  int sp;            // mask stack depth
  uint16_t stack[isa::kMaskStackDepth];
  BatchState state;
};

// Modeled cycles beyond the 1 that every instruction costs (operand-b ops only; the others
// add theirs in their own case).
template <Op op>
constexpr uint64_t kExtraCycles = (op == Op::Fdiv || op == Op::Divu || op == Op::Remu) ? 7 : 0;

#if !defined(RP_THREADED_DISPATCH)
#if defined(__GNUC__)
#define RP_THREADED_DISPATCH 1
#else
#define RP_THREADED_DISPATCH 0
#endif
#endif

#if RP_THREADED_DISPATCH
// Handler address per decoded opcode; undefined codes go to the trap handler.
struct DispatchTable {
  struct Entry {
    uint32_t code;
    const void* target;
  };
  DispatchTable(const void* trap, const void* page_end, std::initializer_list<Entry> ops) {
    for (const void*& t : targets) t = trap;
    targets[kPageEnd] = page_end;
    for (const Entry& e : ops) targets[e.code] = e.target;
  }
  const void* operator[](uint32_t code) const { return targets[code]; }
  const void* targets[256];
};
#endif

// Why a batch stopped running: reached `bar`, `end`, or ended the workgroup with an error.
enum class Exit : uint8_t { Bar, End, Error };

RP_INLINE uint32_t load32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
RP_INLINE void store32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }

// A register row as one 16-lane value: four 128-bit GCC generic vectors (native SSE2 width
// on x86-64, NEON on Arm), so that values stay in registers and every op is one instruction
// per quarter. (64-byte generic vectors get lowered through the stack without AVX-512, and
// the loop vectorizer is unreliable inside one huge function.)
using V4u = uint32_t __attribute__((vector_size(16)));
using V4i = int32_t __attribute__((vector_size(16)));
using V4f = float __attribute__((vector_size(16)));

template <class P>
struct Lanes {
  P q[4];
};
using VU = Lanes<V4u>;
using VI = Lanes<V4i>;  // also comparison results: -1 (true) / 0 per lane
using VF = Lanes<V4f>;

#define RP_LAMBDA_INLINE __attribute__((always_inline))

template <class F, class... T>
RP_INLINE auto map4(F f, const T&... x) -> Lanes<decltype(f(x.q[0]...))> {
  return {{f(x.q[0]...), f(x.q[1]...), f(x.q[2]...), f(x.q[3]...)}};
}

#define RP_LANES_BINOP(OP)                                                       \
  template <class P>                                                             \
  RP_INLINE auto operator OP(const Lanes<P>& a, const Lanes<P>& b) {             \
    return map4([](P x, P y) RP_LAMBDA_INLINE { return x OP y; }, a, b);         \
  }                                                                              \
  template <class P, class S, class = std::enable_if_t<std::is_arithmetic_v<S>>> \
  RP_INLINE auto operator OP(const Lanes<P>& a, S s) {                           \
    return map4([s](P x) RP_LAMBDA_INLINE { return x OP s; }, a);                \
  }
RP_LANES_BINOP(+)
RP_LANES_BINOP(-)
RP_LANES_BINOP(*)
RP_LANES_BINOP(/)
RP_LANES_BINOP(&)
RP_LANES_BINOP(|)
RP_LANES_BINOP(^)
RP_LANES_BINOP(<<)
RP_LANES_BINOP(>>)
RP_LANES_BINOP(==)
RP_LANES_BINOP(!=)
RP_LANES_BINOP(<)
RP_LANES_BINOP(<=)
RP_LANES_BINOP(>)
RP_LANES_BINOP(>=)
#undef RP_LANES_BINOP

template <class P>
RP_INLINE Lanes<P> operator~(const Lanes<P>& a) {
  return map4([](P x) RP_LAMBDA_INLINE { return ~x; }, a);
}

// Value conversion (float <-> int, truncating) and bit casts, per lane.
template <class To, class P>
RP_INLINE Lanes<To> convert(const Lanes<P>& a) {
  return map4([](P x) RP_LAMBDA_INLINE { return __builtin_convertvector(x, To); }, a);
}
template <class To, class P>
RP_INLINE Lanes<To> bitcast(const Lanes<P>& a) {
  return map4([](P x) RP_LAMBDA_INLINE { return (To)x; }, a);
}
RP_INLINE VF as_f(const VU& v) { return bitcast<V4f>(v); }
RP_INLINE VI as_i(const VU& v) { return bitcast<V4i>(v); }
RP_INLINE VU as_u(const VF& v) { return bitcast<V4u>(v); }
RP_INLINE VU as_u(const VI& v) { return bitcast<V4u>(v); }

RP_INLINE VU row(const uint32_t* p) {
  VU v;
  for (int i = 0; i < 4; ++i) std::memcpy(&v.q[i], p + 4 * i, 16);
  return v;
}
RP_INLINE void set_row(uint32_t* p, const VU& v) {
  for (int i = 0; i < 4; ++i) std::memcpy(p + 4 * i, &v.q[i], 16);
}
RP_INLINE VU splat(uint32_t x) {
  const V4u q = V4u{} + x;
  return {{q, q, q, q}};
}
RP_INLINE uint32_t lane(const VU& v, int l) {
  alignas(64) uint32_t a[kL];
  set_row(a, v);
  return a[l];
}
// m: comparison result (-1 / 0 per lane).
RP_INLINE VU sel(const VI& m, const VU& a, const VU& b) { return (as_u(m) & a) | (~as_u(m) & b); }
RP_INLINE VU bool01(const VI& m) { return as_u(m) & 1u; }

constexpr VU kLaneIndex = {{{0, 1, 2, 3}, {4, 5, 6, 7}, {8, 9, 10, 11}, {12, 13, 14, 15}}};

// Writes a register row: a plain store when every lane is active, else a blend with the
// expanded exec mask.
RP_INLINE void put(uint32_t* d, const VU& v, bool full, const VU& mv) {
  if (full) {
    set_row(d, v);
  } else {
    set_row(d, (v & mv) | (row(d) & ~mv));
  }
}

RP_INLINE VU expand_mask(uint32_t mask) {
  constexpr VU kBits = {{{1u << 0, 1u << 1, 1u << 2, 1u << 3},
                         {1u << 4, 1u << 5, 1u << 6, 1u << 7},
                         {1u << 8, 1u << 9, 1u << 10, 1u << 11},
                         {1u << 12, 1u << 13, 1u << 14, 1u << 15}}};
  return as_u((splat(mask) & kBits) != 0u);
}

// Bit l set iff v[l] != 0.
RP_INLINE uint32_t nz_bits(const uint32_t* v) {
#if defined(__SSE2__)
  const __m128i z = _mm_setzero_si128();
  const __m128i* p = reinterpret_cast<const __m128i*>(v);
  const __m128i e0 = _mm_cmpeq_epi32(_mm_loadu_si128(p + 0), z);
  const __m128i e1 = _mm_cmpeq_epi32(_mm_loadu_si128(p + 1), z);
  const __m128i e2 = _mm_cmpeq_epi32(_mm_loadu_si128(p + 2), z);
  const __m128i e3 = _mm_cmpeq_epi32(_mm_loadu_si128(p + 3), z);
  const __m128i e = _mm_packs_epi16(_mm_packs_epi32(e0, e1), _mm_packs_epi32(e2, e3));
  return ~uint32_t(_mm_movemask_epi8(e)) & kFullMask;
#else
  uint32_t bits = 0;
  LANES bits |= v[l] != 0 ? (1u << l) : 0u;
  return bits;
#endif
}

// --- Lane functions that need more than one expression; branch-free.

// Truncate toward zero, saturate to int32, NaN -> 0.
RP_INLINE VU ftoi(VU a) {
  const VF f = as_f(a);
  const VI lo = f < -2147483648.0f;
  const VI hi = f >= 2147483648.0f;
  // Out-of-range and NaN lanes convert 0 (an out-of-range conversion is undefined).
  const VF c = as_f(sel(lo | hi | (f != f), VU{}, a));
  const VU r = as_u(convert<V4i>(c));
  return sel(hi, splat(0x7fffffffu), sel(lo, splat(0x80000000u), r));
}

RP_INLINE VU itof(VU a) { return as_u(convert<V4f>(as_i(a))); }

// Unsigned to float with one rounding: the high half times 2^16 is exact, so the only
// rounding is the final add. (SSE2 has no unsigned conversion.)
RP_INLINE VU utof(VU a) {
  const VF hi = convert<V4f>(as_i(a >> 16)) * 65536.0f;
  const VF lo = convert<V4f>(as_i(a & 0xffffu));
  return as_u(hi + lo);
}

// floor/ceil without SSE4.1 roundps: truncate through int for |x| < 2^23 (larger values,
// inf and NaN are already integral or pass through), then step by one. The result always
// has the sign of x (floor(-0.0) = -0.0, ceil(-0.5) = -0.0), so the sign bit is ORed back.
RP_INLINE VU fround(VU a, bool up) {
  const VI small = as_i(a & 0x7fffffffu) < 0x4b000000;
  const VF x = as_f(a);
  const VF tr = convert<V4f>(convert<V4i>(as_f(sel(small, a, VU{}))));
  const VU step = up ? as_u(tr < x) & 0x3f800000u   // +1.0f
                     : as_u(tr > x) & 0xbf800000u;  // -1.0f
  const VU r = as_u(tr + as_f(step)) | (a & 0x80000000u);
  return sel(small, r, a);
}

// IEEE half (bits 15..0 of h, upper bits zero) to fp32: exact for subnormals, inf and NaN
// (payload kept).
RP_INLINE VU half_to_float(VU h) {
  const VU sign = (h & 0x8000u) << 16;
  const VU em = h & 0x7fffu;
  const VU normal = (em << 13) + (112u << 23);
  const VU infnan = (em << 13) | 0x7f800000u;
  const VU sub = as_u(convert<V4f>(as_i(em)) * 0x1p-24f);  // mantissa * 2^-24
  const VI is_infnan = as_i(em) >= 0x7c00;
  const VI is_sub = as_i(em) < 0x400;
  return sel(is_infnan, infnan, sel(is_sub, sub, normal)) | sign;
}

// fp32 to IEEE half in bits 15..0, round to nearest even. Overflow gives inf; NaN keeps the
// top payload bits and is quieted (as x86 F16C and Arm do).
RP_INLINE VU float_to_half(VU a) {
  const VU sign = (a >> 16) & 0x8000u;
  const VU x = a & 0x7fffffffu;
  const VU nan = ((x >> 13) & 0x3ffu) | 0x7e00u;
  const VU big = sel(as_i(x) > 0x7f800000, nan, splat(0x7c00u));
  // Below 2^-14 the result is subnormal: an fp32 add at 0.5 (ulp 2^-24) rounds to nearest
  // even at exactly the half subnormal step.
  const VU sub = as_u(as_f(x) + 0.5f) - 0x3f000000u;
  // Normal: rebias the exponent ((15 - 127) << 23) and round the 13 dropped bits to even.
  const VU odd = (x >> 13) & 1u;
  const VU norm = (x + 0xc8000fffu + odd) >> 13;
  const VU r = sel(as_i(x) >= 0x47800000, big, sel(as_i(x) < 0x38800000, sub, norm));
  return (r & 0xffffu) | sign;
}

// --- Memory access helpers.

constexpr VU kLaneBytes = {{{0, 4, 8, 12}, {16, 20, 24, 28}, {32, 36, 40, 44}, {48, 52, 56, 60}}};

RP_INLINE bool all_zero(const VU& v) {
  const V4u o = (v.q[0] | v.q[1]) | (v.q[2] | v.q[3]);
#if defined(__SSE2__)
  const __m128i x = (__m128i)o;
  return _mm_movemask_epi8(_mm_cmpeq_epi32(x, _mm_setzero_si128())) == 0xffff;
#else
  return (o[0] | o[1] | o[2] | o[3]) == 0;
#endif
}

// Address of the first active lane (mask not empty).
RP_INLINE uint32_t first_active(const VU& av, uint32_t mask) {
  return mask & 1 ? av.q[0][0] : lane(av, std::countr_zero(mask));
}

// Reads 4 consecutive words at p + off[l] for each lane into out[k][l] (word k of lane l).
RP_INLINE void load_transpose(const uint8_t* p, const uint32_t* off, uint32_t (*out)[kL]) {
#if defined(__SSE2__)
  for (int g = 0; g < kL; g += 4) {
    const __m128i r0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + off[g + 0]));
    const __m128i r1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + off[g + 1]));
    const __m128i r2 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + off[g + 2]));
    const __m128i r3 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + off[g + 3]));
    const __m128i lo01 = _mm_unpacklo_epi32(r0, r1), lo23 = _mm_unpacklo_epi32(r2, r3);
    const __m128i hi01 = _mm_unpackhi_epi32(r0, r1), hi23 = _mm_unpackhi_epi32(r2, r3);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(&out[0][g]), _mm_unpacklo_epi64(lo01, lo23));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(&out[1][g]), _mm_unpackhi_epi64(lo01, lo23));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(&out[2][g]), _mm_unpacklo_epi64(hi01, hi23));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(&out[3][g]), _mm_unpackhi_epi64(hi01, hi23));
  }
#else
  LANES {
    uint32_t w[4];
    std::memcpy(w, p + off[l], 16);
    for (int k = 0; k < 4; ++k) out[k][l] = w[k];
  }
#endif
}

// rows: 4 register rows (word k of lane l at rows[k * 16 + l]) -> out[l][k].
RP_INLINE void transpose_rows(const uint32_t* rows, uint32_t (*out)[4]) {
#if defined(__SSE2__)
  for (int g = 0; g < kL; g += 4) {
    const __m128i r0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows + 0 * kL + g));
    const __m128i r1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows + 1 * kL + g));
    const __m128i r2 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows + 2 * kL + g));
    const __m128i r3 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows + 3 * kL + g));
    const __m128i lo01 = _mm_unpacklo_epi32(r0, r1), lo23 = _mm_unpacklo_epi32(r2, r3);
    const __m128i hi01 = _mm_unpackhi_epi32(r0, r1), hi23 = _mm_unpackhi_epi32(r2, r3);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out[g + 0]), _mm_unpacklo_epi64(lo01, lo23));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out[g + 1]), _mm_unpackhi_epi64(lo01, lo23));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out[g + 2]), _mm_unpacklo_epi64(hi01, hi23));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out[g + 3]), _mm_unpackhi_epi64(hi01, hi23));
  }
#else
  LANES {
    for (int k = 0; k < 4; ++k) out[l][k] = rows[k * kL + l];
  }
#endif
}

}  // namespace

struct QpuContext::Impl {
  // --- Caches, valid for generation gen_ of mem_.
  GpuMemory* mem_ = nullptr;
  uint64_t gen_ = 0;
  bool have_gen_ = false;
  uint64_t code_gen_ = 0;  // generation the code cache was filled at (flushed lazily)
  // Direct-mapped; 256 entries (1 MiB of reach) so that channel-strided NN loops do not
  // thrash it. Entries cost 16 bytes and are only cleared on a generation change.
  static constexpr int kTlbSize = 256;
  static constexpr int kCodeSlots = 64;
  TlbEntry tlb_[kTlbSize];
  std::unique_ptr<CodePage> code_[kCodeSlots];
  uint32_t unif_vpage_ = kNoPage;
  uint8_t* unif_ptr_ = nullptr;

  // --- Current workgroup.
  std::unique_ptr<Batch[]> batches_{new Batch[kMaxBatches]};
  std::vector<uint8_t> shared_;
  uint32_t shared_size_ = 0;
  uint32_t shared_mask_ = 0;  // shared_size_ - 1 when it is a power of two
  bool shared_pow2_ = true;
  uint32_t wg_size_ = 0;
  uint32_t wg_[3] = {};
  uint32_t num_wg_[3] = {};
  uint32_t qpu_ = 0;
  const std::atomic<bool>* stop_ = nullptr;

  void sync_generation() {
    const uint64_t g = mem_->generation();
    if (have_gen_ && g == gen_) return;
    have_gen_ = true;
    gen_ = g;
    for (TlbEntry& e : tlb_) e = TlbEntry{};
    unif_vpage_ = kNoPage;
    // Code pages may be executing right now: they are dropped at the next code lookup.
  }

  // --- Data pages.
  RP_INLINE uint8_t* data_page(uint32_t vpage, bool write) {
    const TlbEntry& e = tlb_[vpage & (kTlbSize - 1)];
    if (e.vpage == vpage && (e.writable || !write)) return e.ptr;
    return tlb_fill(vpage, write);
  }

  __attribute__((noinline)) uint8_t* tlb_fill(uint32_t vpage, bool write) {
    sync_generation();
    uint8_t* p = mem_->page(vpage, write ? GpuAccess::Write : GpuAccess::Read);
    // Faults are not cached: the MMU sees (and reports) every aborted access.
    if (p) tlb_[vpage & (kTlbSize - 1)] = TlbEntry{vpage, write, p};
    return p;
  }

  RP_INLINE uint32_t load_word(uint32_t a) {
    const uint8_t* p = data_page(a >> kPageShift, false);
    return p ? load32(p + (a & kPageOffMask)) : 0u;
  }
  RP_INLINE void store_word(uint32_t a, uint32_t v) {
    uint8_t* p = data_page(a >> kPageShift, true);
    if (p) store32(p + (a & kPageOffMask), v);
  }

  // Per-lane data accesses. `av` holds word-aligned addresses; only lanes in `mask` (not
  // empty; mv is its expansion) access memory. Loads return garbage in other lanes, which
  // put() blends away. Fast paths: every active lane in one page (one TLB lookup), and
  // within that, 16 consecutive words (one 64-byte copy).

  RP_INLINE VU load_lanes(const VU& av, uint32_t mask, const VU& mv) {
    const uint32_t a0 = first_active(av, mask);
    if (all_zero(((av ^ a0) & mv) >> kPageShift)) {
      const uint8_t* p = data_page(a0 >> kPageShift, false);
      if (!p) return VU{};
      const uint32_t off0 = a0 & kPageOffMask;
      if (mask == kFullMask && off0 <= 4096 - 64 && all_zero(av ^ (kLaneBytes + a0))) {
        return row(reinterpret_cast<const uint32_t*>(p + off0));
      }
      alignas(64) uint32_t off[kL], out[kL];
      set_row(off, av & kPageOffMask);
      LANES out[l] = load32(p + off[l]);
      return row(out);
    }
    alignas(64) uint32_t a[kL], out[kL];
    set_row(a, av);
    LANES out[l] = (mask >> l) & 1 ? load_word(a[l]) : 0u;
    return row(out);
  }

  // Loads 4 words per active lane into the rows d, d + 16, d + 32, d + 48 (rd..rd+3).
  RP_INLINE void load4_lanes(const VU& av, uint32_t mask, bool full, const VU& mv, uint32_t* d) {
    const uint32_t a0 = first_active(av, mask);
    const VU cross = as_u((av & kPageOffMask) > (4096 - 16));
    alignas(64) uint32_t off[kL];
    alignas(64) uint32_t o[4][kL];
    if (full) {
      if (all_zero(((av ^ a0) >> kPageShift) | cross)) {
        const uint8_t* p = data_page(a0 >> kPageShift, false);
        if (!p) {
          std::memset(d, 0, 4 * kL * 4);
          return;
        }
        set_row(off, av & kPageOffMask);
        // Addresses are in off[]: rd..rd+3 may include ra.
        load_transpose(p, off, reinterpret_cast<uint32_t(*)[kL]>(d));
        return;
      }
    } else if (all_zero((((av ^ a0) >> kPageShift) | cross) & mv)) {
      const uint8_t* p = data_page(a0 >> kPageShift, false);
      if (p) {
        // Inactive lanes read lane a0's words, so every read stays inside the page.
        set_row(off, sel(as_i(mv), av, splat(a0)) & kPageOffMask);
        load_transpose(p, off, o);
      } else {
        std::memset(o, 0, sizeof(o));
      }
      for (int k = 0; k < 4; ++k) put(d + kL * k, row(o[k]), false, mv);
      return;
    }
    set_row(off, av);
    LANES {
      for (int k = 0; k < 4; ++k) o[k][l] = (mask >> l) & 1 ? load_word(off[l] + 4 * k) : 0u;
    }
    for (int k = 0; k < 4; ++k) put(d + kL * k, row(o[k]), full, mv);
  }

  RP_INLINE void store_lanes(const VU& av, uint32_t mask, const VU& mv, const uint32_t* data) {
    const uint32_t a0 = first_active(av, mask);
    alignas(64) uint32_t a[kL];
    if (all_zero(((av ^ a0) & mv) >> kPageShift)) {
      uint8_t* p = data_page(a0 >> kPageShift, true);
      if (!p) return;
      const uint32_t off0 = a0 & kPageOffMask;
      if (mask == kFullMask && off0 <= 4096 - 64 && all_zero(av ^ (kLaneBytes + a0))) {
        std::memcpy(p + off0, data, 64);
        return;
      }
      set_row(a, av & kPageOffMask);
      // Ascending lane order: with equal addresses the highest lane wins.
      if (mask == kFullMask) {
        LANES store32(p + a[l], data[l]);
      } else {
        for (uint32_t m = mask; m; m &= m - 1) {
          const int l = std::countr_zero(m);
          store32(p + a[l], data[l]);
        }
      }
      return;
    }
    set_row(a, av);
    for (uint32_t m = mask; m; m &= m - 1) {
      const int l = std::countr_zero(m);
      store_word(a[l], data[l]);
    }
  }

  // data: the four source rows rc..rc+3.
  RP_INLINE void store4_lanes(const VU& av, uint32_t mask, const VU& mv, const uint32_t* data) {
    const uint32_t a0 = first_active(av, mask);
    alignas(64) uint32_t a[kL];
    const VU cross = as_u((av & kPageOffMask) > (4096 - 16));
    if (all_zero((((av ^ a0) >> kPageShift) | cross) & mv)) {
      uint8_t* p = data_page(a0 >> kPageShift, true);
      if (!p) return;
      set_row(a, av & kPageOffMask);
      alignas(64) uint32_t w[kL][4];  // lane-major words
      transpose_rows(data, w);
      for (uint32_t m = mask; m; m &= m - 1) {
        const int l = std::countr_zero(m);
        std::memcpy(p + a[l], w[l], 16);
      }
      return;
    }
    set_row(a, av);
    for (uint32_t m = mask; m; m &= m - 1) {
      const int l = std::countr_zero(m);
      for (int k = 0; k < 4; ++k) store_word(a[l] + 4 * k, data[k * kL + l]);
    }
  }

  RP_INLINE uint32_t shared_offset(uint32_t a) const {
    return (shared_pow2_ ? (a & shared_mask_) : (a % shared_size_)) & ~3u;
  }

  // --- Uniform stream. false on an MMU abort.
  bool fetch_uniform(uint32_t va, uint32_t* out) {
    const uint32_t vpage = va >> kPageShift;
    if (vpage != unif_vpage_) {
      sync_generation();
      uint8_t* p = mem_->page(vpage, GpuAccess::Uniform);
      if (!p) return false;
      unif_vpage_ = vpage;
      unif_ptr_ = p;
    }
    *out = load32(unif_ptr_ + (va & kPageOffMask & ~3u));
    return true;
  }

  // --- Code pages. nullptr on an MMU abort.
  const CodePage* code_page(uint32_t vpage) {
    if (code_gen_ != gen_) flush_code();
    CodePage* cp = code_[vpage % kCodeSlots].get();
    if (cp && cp->vpage == vpage) return cp;
    return code_fill(vpage);
  }

  void flush_code() {
    for (auto& cp : code_)
      if (cp) cp->vpage = kNoPage;
    code_gen_ = gen_;
  }

  __attribute__((noinline)) const CodePage* code_fill(uint32_t vpage) {
    sync_generation();
    if (code_gen_ != gen_) flush_code();
    const uint8_t* p = mem_->page(vpage, GpuAccess::Exec);
    if (!p) return nullptr;
    std::unique_ptr<CodePage>& slot = code_[vpage % kCodeSlots];
    if (!slot) slot = std::make_unique<CodePage>();
    CodePage& cp = *slot;
    cp.vpage = vpage;
    for (uint32_t i = 0; i < kInstrPerPage; ++i) {
      uint64_t w;
      std::memcpy(&w, p + i * isa::kInstrBytes, 8);
      const std::optional<isa::Instr> in = isa::decode(w);
      DInstr& d = cp.ins[i];
      if (!in) {
        d = DInstr{kTrap, 0};
        continue;
      }
      d = DInstr{uint32_t(w), in->imm};
      switch (in->op) {
        case Op::B:
        case Op::Bany:
        case Op::Ball:
        case Op::Bnone:
          d.imm = (vpage * kInstrPerPage + i + in->imm) & kIpcMask;
          break;
        default:
          break;
      }
    }
    cp.ins[kInstrPerPage] = DInstr{kPageEnd, 0};
    return &cp;
  }

  Exit run_batch(Batch& b, uint32_t bi, bool alone, QpuCounters& counters, QpuResult* err);
  QpuResult run(const DispatchParams& params, QpuCounters& counters);
};

// The interpreter loop: runs batch `bi` until bar (unless it is the only live batch), end or
// an error. All hot state lives in locals and is written back on exit.
Exit QpuContext::Impl::run_batch(Batch& b, uint32_t bi, bool alone, QpuCounters& counters,
                                 QpuResult* err) {
  uint8_t* const rbase = reinterpret_cast<uint8_t*>(b.r);
  uint32_t mask = b.mask;
  bool full = mask == kFullMask;
  VU mv = expand_mask(mask);
  alignas(64) uint32_t t[kL];

  uint64_t n = 0, extra = 0, mem_ops = 0, sfu_ops = 0;
  const std::atomic<bool>& stop = *stop_;

  const CodePage* page = code_page(b.pc / kInstrPerPage);
  if (!page) {
    *err = QpuResult::FetchFault;
    return Exit::Error;
  }
  const DInstr* ip = page->ins + b.pc % kInstrPerPage;
  Exit exit = Exit::Error;

#define RP_FAIL(result) \
  do {                  \
    *err = (result);    \
    goto out;           \
  } while (0)

  // Taken branch: poll stop, then go to absolute instruction `target`.
#define RP_JUMP(target)                                                    \
  do {                                                                     \
    const uint32_t tgt_ = (target);                                        \
    if (stop.load(std::memory_order_relaxed)) RP_FAIL(QpuResult::Stopped); \
    if (tgt_ / kInstrPerPage != page->vpage) {                             \
      const CodePage* np_ = code_page(tgt_ / kInstrPerPage);               \
      if (!np_) RP_FAIL(QpuResult::FetchFault);                            \
      page = np_;                                                          \
    }                                                                      \
    ip = page->ins + tgt_ % kInstrPerPage;                                 \
  } while (0)

#define RP_SET_MASK(m)        \
  do {                        \
    mask = (m);               \
    full = mask == kFullMask; \
    mv = expand_mask(mask);   \
  } while (0)

  // Register rows named by the instruction fields (byte offset = index * 64).
#define RD reinterpret_cast<uint32_t*>(rbase + ((ctl >> 2) & 0xfc0))
#define RA reinterpret_cast<uint32_t*>(rbase + ((ctl >> 8) & 0xfc0))
#define RB reinterpret_cast<uint32_t*>(rbase + ((ctl >> 14) & 0xfc0))
#define RC reinterpret_cast<uint32_t*>(rbase + ((ctl >> 20) & 0xfc0))
  // Source rows; b is a local: the register row or the broadcast immediate.
#define A row(RA)
#define C row(RC)
#define FA as_f(row(RA))
#define FB as_f(b)
#define FC as_f(row(RC))
#define PUT(v) put(RD, (v), full, mv)

  // An op with operand b, in its register and immediate forms; EXPR yields the VU for rd.
#define RP_B(NAME, EXPR)             \
  RP_OP(NAME) {                      \
    extra += kExtraCycles<Op::NAME>; \
    const VU b = row(RB);            \
    PUT(EXPR);                       \
    RP_NEXT;                         \
  }                                  \
  RP_OP_IMM(NAME) {                  \
    extra += kExtraCycles<Op::NAME>; \
    const VU b = splat(imm);         \
    PUT(EXPR);                       \
    RP_NEXT;                         \
  }

  // Shifts: an immediate count is uniform, which SSE2 shifts handle in one instruction.
#define RP_SHIFT(NAME, EXPR_V, EXPR_S) \
  RP_OP(NAME) {                        \
    const VU b = row(RB) & 31u;        \
    PUT(EXPR_V);                       \
    RP_NEXT;                           \
  }                                    \
  RP_OP_IMM(NAME) {                    \
    const uint32_t b = imm & 31u;      \
    PUT(EXPR_S);                       \
    RP_NEXT;                           \
  }

  // Lanes one at a time (no vector form: integer division, libm).
#define RP_SCALAR_B(NAME, EXPR)            \
  RP_OP(NAME) {                            \
    extra += kExtraCycles<Op::NAME>;       \
    const uint32_t* pa = RA;               \
    const uint32_t* pb = RB;               \
    LANES {                                \
      const uint32_t a = pa[l], b = pb[l]; \
      t[l] = (EXPR);                       \
    }                                      \
    PUT(row(t));                           \
    RP_NEXT;                               \
  }                                        \
  RP_OP_IMM(NAME) {                        \
    extra += kExtraCycles<Op::NAME>;       \
    const uint32_t* pa = RA;               \
    const uint32_t b = imm;                \
    LANES {                                \
      const uint32_t a = pa[l];            \
      t[l] = (EXPR);                       \
    }                                      \
    PUT(row(t));                           \
    RP_NEXT;                               \
  }

#define RP_UN(NAME, EXPR) \
  RP_OP(NAME) {           \
    PUT(EXPR);            \
    RP_NEXT;              \
  }

  // Special function unit, as the host's libm.
#define RP_SFU(NAME, EXPR)                         \
  RP_OP(NAME) {                                    \
    ++sfu_ops;                                     \
    extra += 3;                                    \
    const uint32_t* pa = RA;                       \
    LANES {                                        \
      const float x = std::bit_cast<float>(pa[l]); \
      t[l] = std::bit_cast<uint32_t>(float(EXPR)); \
    }                                              \
    PUT(row(t));                                   \
    RP_NEXT;                                       \
  }

  // Dispatch. Threaded code (computed goto, a GNU extension): every handler ends with its
  // own indirect jump on the next opcode, which the branch predictor tracks per handler.
  // The switch form is the portable fallback.
#if RP_THREADED_DISPATCH
  uint32_t ctl, imm;
#define RP_NEXT                  \
  do {                           \
    uint64_t w_;                 \
    std::memcpy(&w_, ip++, 8);   \
    ctl = uint32_t(w_);          \
    imm = uint32_t(w_ >> 32);    \
    ++n;                         \
    goto* kDispatch[ctl & 0xff]; \
  } while (0)
#define RP_OP(NAME) L_##NAME:
#define RP_OP_IMM(NAME) L_imm_##NAME:
#define RP_OP_RAW(NAME) L_##NAME:
#define RP_OP_TRAP \
  L_Trap:
#define RP_TABLE_ENTRY(name, mnem, opcode, fmt) \
  {opcode, &&L_##name}, RP_TABLE_IMM_##fmt(name, opcode)
#define RP_TABLE_IMM_None(name, opcode)
#define RP_TABLE_IMM_Branch(name, opcode)
#define RP_TABLE_IMM_BranchC(name, opcode)
#define RP_TABLE_IMM_C(name, opcode)
#define RP_TABLE_IMM_D(name, opcode)
#define RP_TABLE_IMM_DSreg(name, opcode)
#define RP_TABLE_IMM_DA(name, opcode)
#define RP_TABLE_IMM_Load(name, opcode)
#define RP_TABLE_IMM_Store(name, opcode)
#define RP_TABLE_IMM_DB(name, opcode) {opcode | kImm, &&L_imm_##name},
#define RP_TABLE_IMM_DAB(name, opcode) {opcode | kImm, &&L_imm_##name},
#define RP_TABLE_IMM_DABC(name, opcode) {opcode | kImm, &&L_imm_##name},
  static const DispatchTable kDispatch(&&L_Trap, &&L_PageEnd,
                                       {RPLAYER_ISA_OPCODES(RP_TABLE_ENTRY)});
#define RP_DISPATCH_BEGIN RP_NEXT;
#define RP_DISPATCH_END
#else
#define RP_NEXT break
#define RP_OP(NAME) case code(Op::NAME):
#define RP_OP_IMM(NAME) case code(Op::NAME) | kImm:
#define RP_OP_RAW(NAME) case k##NAME:
#define RP_OP_TRAP \
  case kTrap:      \
  default:
#define RP_DISPATCH_BEGIN                                        \
  for (;;) {                                                     \
    uint64_t w_;                                                 \
    std::memcpy(&w_, ip++, 8);                                   \
    const uint32_t ctl = uint32_t(w_), imm = uint32_t(w_ >> 32); \
    ++n;                                                         \
    switch (ctl & 0xff) {
#define RP_DISPATCH_END \
  }                     \
  }
#endif

  RP_DISPATCH_BEGIN
  // --- control
  RP_OP(Nop) { RP_NEXT; }
  RP_OP(End) {
    exit = Exit::End;
    goto out;
  }
  RP_OP(Bar) {
    extra += 2;
    if (stop.load(std::memory_order_relaxed)) RP_FAIL(QpuResult::Stopped);
    if (alone) RP_NEXT;  // nobody to wait for
    exit = Exit::Bar;
    goto out;
  }
  RP_OP(B) {
    RP_JUMP(imm);
    RP_NEXT;
  }
  RP_OP(Bany) {
    if (nz_bits(RC) & mask) RP_JUMP(imm);
    RP_NEXT;
  }
  RP_OP(Ball) {
    if ((~nz_bits(RC) & mask) == 0) RP_JUMP(imm);  // also taken with no active lane
    RP_NEXT;
  }
  RP_OP(Bnone) {
    if ((nz_bits(RC) & mask) == 0) RP_JUMP(imm);
    RP_NEXT;
  }
  RP_OP(If) {
    if (b.sp == isa::kMaskStackDepth) RP_FAIL(QpuResult::MaskStack);
    b.stack[b.sp++] = uint16_t(mask);
    RP_SET_MASK(mask & nz_bits(RC));
    RP_NEXT;
  }
  RP_OP(Else) {
    if (b.sp == 0) RP_FAIL(QpuResult::MaskStack);
    RP_SET_MASK(b.stack[b.sp - 1] & ~mask);  // the if's other lanes, among those before it
    RP_NEXT;
  }
  RP_OP(Endif) {
    if (b.sp == 0) RP_FAIL(QpuResult::MaskStack);
    RP_SET_MASK(b.stack[--b.sp]);
    RP_NEXT;
  }
  RP_OP(Unif) {
    extra += 1;
    uint32_t v;
    if (!fetch_uniform(b.unif_va, &v)) RP_FAIL(QpuResult::FetchFault);
    b.unif_va += 4;
    PUT(splat(v));
    RP_NEXT;
  }
  RP_OP(Sreg) {
    const uint32_t local = bi * kL;
    VU v;
    switch (isa::Sreg(imm)) {
      case isa::Sreg::Lane:
        v = kLaneIndex;
        break;
      case isa::Sreg::Batch:
        v = splat(bi);
        break;
      case isa::Sreg::LocalId:
        v = kLaneIndex + local;
        break;
      case isa::Sreg::WgX:
        v = splat(wg_[0]);
        break;
      case isa::Sreg::WgY:
        v = splat(wg_[1]);
        break;
      case isa::Sreg::WgZ:
        v = splat(wg_[2]);
        break;
      case isa::Sreg::NumWgX:
        v = splat(num_wg_[0]);
        break;
      case isa::Sreg::NumWgY:
        v = splat(num_wg_[1]);
        break;
      case isa::Sreg::NumWgZ:
        v = splat(num_wg_[2]);
        break;
      case isa::Sreg::WgSize:
        v = splat(wg_size_);
        break;
      case isa::Sreg::Qpu:
        v = splat(qpu_);
        break;
      case isa::Sreg::GlobalX:
        v = kLaneIndex + (wg_[0] * wg_size_ + local);
        break;
      default:
        v = VU{};
        break;  // decode rejects undefined ids
    }
    PUT(v);
    RP_NEXT;
  }
  RP_B(Mov, b)
  RP_B(Sel, sel(C != 0, A, b))

  // --- integer
  RP_B(Add, A + b)
  RP_B(Sub, A - b)
  RP_B(Mul, A * b)
  RP_B(Mad, A * b + C)
  RP_B(And, A & b)
  RP_B(Or, A | b)
  RP_B(Xor, A ^ b)
  RP_SHIFT(Shl, A << b, A << b)
  RP_SHIFT(Shr, A >> b, A >> b)
  RP_SHIFT(Asr, as_u(as_i(A) >> as_i(b)), as_u(as_i(A) >> int(b)))
  RP_B(Min, sel(as_i(A) < as_i(b), A, b))
  RP_B(Max, sel(as_i(A) > as_i(b), A, b))
  RP_B(Minu, sel(A < b, A, b))
  RP_B(Maxu, sel(A > b, A, b))
  RP_SCALAR_B(Divu, b ? a / b : 0xffffffffu)
  RP_SCALAR_B(Remu, b ? a % b : a)

  // --- comparisons
  RP_B(Ieq, bool01(A == b))
  RP_B(Ine, bool01(A != b))
  RP_B(Ilt, bool01(as_i(A) < as_i(b)))
  RP_B(Ile, bool01(as_i(A) <= as_i(b)))
  RP_B(Ult, bool01(A < b))
  RP_B(Ule, bool01(A <= b))
  RP_B(Feq, bool01(FA == FB))
  RP_B(Fne, bool01(FA != FB))  // IEEE: true when either is NaN
  RP_B(Flt, bool01(FA < FB))
  RP_B(Fle, bool01(FA <= FB))

  // --- float
  RP_B(Fadd, as_u(FA + FB))
  RP_B(Fsub, as_u(FA - FB))
  RP_B(Fmul, as_u(FA * FB))
  RP_B(Fdiv, as_u(FA / FB))
  RP_B(Fmin, sel(FB < FA, b, A))
  RP_B(Fmax, sel(FA < FB, b, A))
  RP_B(Ffma, as_u(VF(FA * FB) + FC))  // product rounded first: not fused
  RP_UN(Fneg, A ^ 0x80000000u)
  RP_UN(Fabs, A & 0x7fffffffu)
  RP_UN(Ffloor, fround(A, false))
  RP_UN(Fceil, fround(A, true))
  RP_UN(Ftoi, ftoi(A))
  RP_UN(Itof, itof(A))
  RP_UN(Utof, utof(A))
  RP_UN(F16lo, half_to_float(A & 0xffffu))
  RP_UN(F16hi, half_to_float(A >> 16))
  RP_UN(Ftof16, float_to_half(A))

  // --- SFU
  RP_SFU(Fexp, std::exp(x))
  RP_SFU(Flog, std::log(x))
  RP_SFU(Frcp, 1.0f / x)
  RP_SFU(Frsq, 1.0f / std::sqrt(x))
  RP_SFU(Fsqrt, std::sqrt(x))
  RP_SFU(Ftanh, std::tanh(x))

  // --- memory
  RP_OP(Ld) {
    ++mem_ops;
    extra += 3;
    if (!mask) RP_NEXT;
    PUT(load_lanes((A + imm) & ~3u, mask, mv));
    RP_NEXT;
  }
  RP_OP(Ld4) {
    ++mem_ops;
    extra += 6;
    if (!mask) RP_NEXT;
    load4_lanes((A + imm) & ~3u, mask, full, mv, RD);
    RP_NEXT;
  }
  RP_OP(St) {
    ++mem_ops;
    extra += 3;
    if (!mask) RP_NEXT;
    store_lanes((A + imm) & ~3u, mask, mv, RC);
    RP_NEXT;
  }
  RP_OP(St4) {
    ++mem_ops;
    extra += 6;
    if (!mask) RP_NEXT;
    store4_lanes((A + imm) & ~3u, mask, mv, RC);
    RP_NEXT;
  }
  RP_OP(Ldu) {
    ++mem_ops;
    extra += 1;
    if (!mask) RP_NEXT;
    PUT(splat(load_word((RA[std::countr_zero(mask)] + imm) & ~3u)));
    RP_NEXT;
  }
  RP_OP(Ldu4) {
    ++mem_ops;
    extra += 2;
    if (!mask) RP_NEXT;
    const uint32_t a = (RA[std::countr_zero(mask)] + imm) & ~3u;
    V4u w = {};
    const uint8_t* p;
    if ((a & kPageOffMask) <= 4096 - 16 && (p = data_page(a >> kPageShift, false))) {
      std::memcpy(&w, p + (a & kPageOffMask), 16);
    } else {
      for (int k = 0; k < 4; ++k) w[k] = load_word(a + 4 * k);  // crossing or fault
    }
    uint32_t* d = RD;
    // Splats by scalar broadcast: GCC and clang both have it (__builtin_shuffle is GCC's).
    const V4u s[4] = {V4u{} + w[0], V4u{} + w[1], V4u{} + w[2], V4u{} + w[3]};
    for (int k = 0; k < 4; ++k) put(d + kL * k, VU{{s[k], s[k], s[k], s[k]}}, full, mv);
    RP_NEXT;
  }
  RP_OP(Lds) {
    ++mem_ops;
    extra += 1;
    if (!mask) RP_NEXT;
    if (shared_size_ == 0) {
      PUT(VU{});
      RP_NEXT;
    }
    const uint32_t* pa = RA;
    const uint8_t* s = shared_.data();
    LANES t[l] = load32(s + shared_offset(pa[l] + imm));
    PUT(row(t));
    RP_NEXT;
  }
  RP_OP(Sts) {
    ++mem_ops;
    extra += 1;
    if (!mask || shared_size_ == 0) RP_NEXT;
    const uint32_t* pa = RA;
    const uint32_t* pc = RC;
    uint8_t* s = shared_.data();
    // Ascending lane order: with equal addresses the highest lane wins.
    for (uint32_t m = mask; m; m &= m - 1) {
      const int l = std::countr_zero(m);
      store32(s + shared_offset(pa[l] + imm), pc[l]);
    }
    RP_NEXT;
  }

  // --- internal
  RP_OP_RAW(PageEnd) {
    --n;  // not an instruction
    if (stop.load(std::memory_order_relaxed)) RP_FAIL(QpuResult::Stopped);
    const CodePage* np = code_page((page->vpage + 1) & (kIpcMask / kInstrPerPage));
    if (!np) RP_FAIL(QpuResult::FetchFault);
    page = np;
    ip = page->ins;
    RP_NEXT;
  }
  RP_OP_TRAP {
    --n;  // never issued
    RP_FAIL(QpuResult::IllegalInstr);
  }
  RP_DISPATCH_END

out:
  b.pc = page->vpage * kInstrPerPage + uint32_t(ip - page->ins);
  b.mask = mask;
  counters.instructions += n;
  counters.cycles += n + extra;
  counters.mem_ops += mem_ops;
  counters.sfu_ops += sfu_ops;
  return exit;

#undef RP_FAIL
#undef RP_JUMP
#undef RP_SET_MASK
#undef RD
#undef RA
#undef RB
#undef RC
#undef A
#undef C
#undef FA
#undef FB
#undef FC
#undef PUT
#undef RP_B
#undef RP_SHIFT
#undef RP_SCALAR_B
#undef RP_UN
#undef RP_SFU
#undef RP_NEXT
#undef RP_OP
#undef RP_OP_IMM
#undef RP_OP_RAW
#undef RP_OP_TRAP
#undef RP_DISPATCH_BEGIN
#undef RP_DISPATCH_END
}

QpuResult QpuContext::Impl::run(const DispatchParams& params, QpuCounters& counters) {
  if (wg_size_ == 0) return QpuResult::Done;
  const uint32_t nb = (wg_size_ + kL - 1) / kL;

  shared_size_ = params.shared_bytes;
  shared_pow2_ = std::has_single_bit(shared_size_);
  shared_mask_ = shared_size_ - 1;
  // Padding so that a word access at any wrapped offset stays inside the buffer even when
  // the size is not a multiple of 4.
  shared_.assign(shared_size_ ? size_t(shared_size_) + 8 : 0, 0);

  const uint32_t start_pc = (params.shader_va / isa::kInstrBytes) & kIpcMask;
  for (uint32_t i = 0; i < nb; ++i) {
    Batch& b = batches_[i];
    std::memset(b.r, 0, sizeof(b.r));
    b.pc = start_pc;
    b.unif_va = params.uniforms_va;
    const uint32_t lanes = std::min<uint32_t>(kL, wg_size_ - i * kL);
    b.mask = lanes == kL ? kFullMask : (1u << lanes) - 1;
    b.sp = 0;
    b.state = BatchState::Running;
  }

  uint32_t live = nb;
  for (;;) {
    // Run every runnable batch until it waits at a barrier or ends.
    for (uint32_t i = 0; i < nb; ++i) {
      Batch& b = batches_[i];
      if (b.state != BatchState::Running) continue;
      QpuResult err = QpuResult::Done;
      switch (run_batch(b, i, live == 1, counters, &err)) {
        case Exit::End:
          b.state = BatchState::Ended;
          --live;
          break;
        case Exit::Bar:
          b.state = BatchState::AtBarrier;
          break;
        case Exit::Error:
          return err;
      }
    }
    if (live == 0) return QpuResult::Done;
    // Every live batch now waits at a barrier: release them all.
    for (uint32_t i = 0; i < nb; ++i)
      if (batches_[i].state == BatchState::AtBarrier) batches_[i].state = BatchState::Running;
  }
}

QpuContext::QpuContext() : impl_(std::make_unique<Impl>()) {}
QpuContext::~QpuContext() = default;

QpuResult QpuContext::run_workgroup(const DispatchParams& params, uint32_t x, uint32_t y,
                                    uint32_t z, uint32_t qpu_index, GpuMemory& mem,
                                    const std::atomic<bool>& stop, QpuCounters& counters) {
  Impl& s = *impl_;
  // Another memory object: nothing cached is meaningful any more.
  const bool new_mem = s.mem_ != &mem;
  s.mem_ = &mem;
  if (new_mem) s.have_gen_ = false;
  s.sync_generation();
  if (new_mem || s.code_gen_ != s.gen_) s.flush_code();
  s.wg_size_ = std::min(params.wg_size, kMaxWgSize);  // the CSD validates; stay in bounds
  s.wg_[0] = x;
  s.wg_[1] = y;
  s.wg_[2] = z;
  for (int i = 0; i < 3; ++i) s.num_wg_[i] = params.num_wg[i];
  s.qpu_ = qpu_index;
  s.stop_ = &stop;
  return s.run(params, counters);
}

}  // namespace rplayer::hw
