#include "runtime/jit/compiler.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include "hw/isa/disassembler.h"
#include "runtime/error.h"
#include "runtime/jit/lower.h"
#include "runtime/jit/passes.h"
#include "runtime/jit/regalloc.h"

namespace rplayer::runtime::jit {

namespace {

constexpr uint32_t kMaxWgSize = 256;
constexpr uint32_t kMaxGridDim = 0xffff;  // CFG0..2 count fields are 16 bits

uint64_t fnv(uint64_t h, const void* p, size_t n) {
  const auto* b = static_cast<const uint8_t*>(p);
  for (size_t i = 0; i < n; ++i) {
    h ^= b[i];
    h *= 1099511628211ull;
  }
  return h;
}
constexpr uint64_t kFnvBasis = 1469598103934665603ull;

uint32_t align16(uint32_t v) { return (v + 15) & ~15u; }

// Shared memory for workgroup size wg, and each region's offset.
uint64_t shared_layout(const Kernel& k, uint32_t wg, std::vector<uint32_t>* offsets) {
  uint64_t total = 0;
  for (const SharedDecl& s : k.shared) {
    if (offsets) offsets->push_back(uint32_t(total));
    total = align16(uint32_t(total + s.fixed_bytes + uint64_t(s.bytes_per_invocation) * wg));
  }
  return total;
}

// The workgroup size for this SKU. Auto prefers one batch per QPU of a slice (the unit
// that shares a workgroup's memory on V3D), Max the most invocations; both shrink by
// halves until the shared memory fits the SKU's per-workgroup budget.
uint32_t pick_workgroup_size(const Kernel& k, const Target& t) {
  auto fits = [&](uint32_t wg) { return shared_layout(k, wg, nullptr) <= t.shared_bytes; };
  uint32_t wg = 0;
  switch (k.wg_mode) {
    case WorkgroupMode::Fixed:
      wg = k.wg_size;
      if (!fits(wg))
        throw Error("kernel '" + k.name + "': needs " +
                    std::to_string(shared_layout(k, wg, nullptr)) +
                    " bytes of shared memory at workgroup size " + std::to_string(wg) + "; " +
                    t.sku + " has " + std::to_string(t.shared_bytes));
      return wg;
    case WorkgroupMode::Auto:
      wg = std::clamp<uint32_t>(16 * t.qpus_per_slice, 16, kMaxWgSize);
      break;
    case WorkgroupMode::Max:
      wg = kMaxWgSize;
      break;
  }
  while (wg > 1 && !fits(wg)) wg /= 2;
  if (!fits(wg))
    throw Error("kernel '" + k.name + "': needs " + std::to_string(shared_layout(k, 1, nullptr)) +
                " bytes of shared memory even for one invocation; " + t.sku + " has " +
                std::to_string(t.shared_bytes));
  return wg;
}

std::vector<uint64_t> emit(const MFunction& f, const RegAllocation& ra) {
  auto phys = [&](const MReg& r) -> uint8_t {
    return r.valid() ? uint8_t(ra.phys[r.vreg] + r.comp) : 0;
  };
  // Pass 1: drop labels, markers and moves that allocation made trivial; place labels.
  std::vector<int> label_pc(size_t(f.num_labels), -1);
  std::vector<const MInst*> kept;
  for (const MInst& m : f.code) {
    if (m.kind == MKind::Label) {
      label_pc[size_t(m.label)] = int(kept.size());
      continue;
    }
    if (m.kind != MKind::Op) continue;
    if (m.op == isa::Op::Mov && !m.imm_b && phys(m.rd) == phys(m.rb)) continue;
    kept.push_back(&m);
  }
  // Pass 2: encode.
  std::vector<uint64_t> words;
  words.reserve(kept.size());
  for (const MInst* m : kept) {
    isa::Instr in;
    in.op = m->op;
    in.imm_b = m->imm_b;
    in.rd = phys(m->rd);
    in.ra = phys(m->ra);
    in.rb = phys(m->rb);
    in.rc = phys(m->rc);
    in.imm = m->imm;
    if (m->label >= 0) in.imm = uint32_t(label_pc[size_t(m->label)] - int(words.size()));
    words.push_back(isa::encode(in));
  }
  return words;
}

}  // namespace

Target Target::from_sku(const hw::Sku& sku) {
  Target t;
  t.sku = std::string(sku.name);
  t.num_qpus = uint32_t(sku.num_qpus());
  t.qpus_per_slice = uint32_t(sku.qpus_per_slice);
  t.shared_bytes = sku.shared_bytes;
  t.register_budget = isa::kNumRegs;
  return t;
}

Specialization& Specialization::set(const std::string& name, uint32_t bits) {
  values_[name] = bits;
  return *this;
}

Specialization& Specialization::set_f32(const std::string& name, float v) {
  return set(name, std::bit_cast<uint32_t>(v));
}

uint64_t Specialization::hash() const {
  uint64_t h = kFnvBasis;
  for (const auto& [name, bits] : values_) {
    const uint32_t n = uint32_t(name.size());
    h = fnv(h, &n, 4);
    h = fnv(h, name.data(), name.size());
    h = fnv(h, &bits, 4);
  }
  return h;
}

std::string Specialization::str() const {
  std::string s;
  for (const auto& [name, bits] : values_) {
    if (!s.empty()) s += ",";
    s += name + "=" + std::to_string(bits);
  }
  return s;
}

uint32_t CompiledKernel::workgroups_for(uint64_t invocations) const {
  const uint64_t n = (invocations + wg_size - 1) / wg_size;
  if (n == 0 || n > kMaxGridDim)
    throw Error("kernel '" + name + "': " + std::to_string(invocations) + " invocations need " +
                std::to_string(n) + " workgroups of " + std::to_string(wg_size) +
                "; a grid dimension holds 1.." + std::to_string(kMaxGridDim));
  return uint32_t(n);
}

std::array<uint32_t, 7> CompiledKernel::csd_cfg(const DispatchGrid& g, uint32_t code_va,
                                                uint32_t uniforms_va) const {
  for (uint32_t d : {g.x, g.y, g.z})
    if (d == 0 || d > kMaxGridDim)
      throw Error("kernel '" + name + "': grid " + std::to_string(g.x) + "x" + std::to_string(g.y) +
                  "x" + std::to_string(g.z) + " out of range (each dimension 1.." +
                  std::to_string(kMaxGridDim) + ")");
  const uint64_t batches = uint64_t(batches_per_workgroup()) * g.x * g.y * g.z;
  if (batches > 0xffffffffull)
    throw Error("kernel '" + name + "': " + std::to_string(batches) + " batches overflow CFG4");
  return {g.x << 16,
          g.y << 16,
          g.z << 16,
          wg_size & 0xff,  // 256 is encoded as 0
          uint32_t(batches - 1),
          code_va,
          uniforms_va};
}

std::string CompiledKernel::disassembly() const { return isa::disassemble(code); }

CompiledKernel compile(const Kernel& kernel, const Specialization& spec, const Target& target,
                       const CompileOptions& options) {
  // Specialization values by declaration index; unknown names are mistakes.
  std::vector<uint32_t> spec_values;
  for (const SpecDecl& s : kernel.specs) spec_values.push_back(s.default_bits);
  for (const auto& [name, bits] : spec.values()) {
    bool found = false;
    for (size_t i = 0; i < kernel.specs.size(); ++i)
      if (kernel.specs[i].name == name) {
        spec_values[i] = bits;
        found = true;
      }
    if (!found)
      throw Error("kernel '" + kernel.name + "': no specialization constant named '" + name + "'");
  }
  if (target.register_budget < 4 || target.register_budget > isa::kNumRegs)
    throw Error("register budget " + std::to_string(target.register_budget) + " not in 4..64");

  const uint32_t wg = pick_workgroup_size(kernel, target);
  std::vector<uint32_t> shared_offsets;
  const uint64_t shared = shared_layout(kernel, wg, &shared_offsets);

  Kernel k = kernel;
  specialize(k, spec_values, shared_offsets, wg);
  optimize(k, options);
  const MFunction f = lower(k, options);
  const RegAllocation ra = allocate_registers(f, target.register_budget, kernel.name);

  CompiledKernel out;
  out.name = kernel.name;
  out.sku = target.sku;
  out.code = emit(f, ra);
  out.uniform_params = f.uniform_params;
  out.params = kernel.params;
  out.wg_size = wg;
  out.shared_bytes = uint32_t(shared);
  out.registers_used = ra.registers_used;
  out.max_pressure = ra.max_pressure;
  out.ir_hash = kernel.hash();
  out.spec_hash = spec.hash();
  uint64_t h = fnv(kFnvBasis, out.code.data(), out.code.size() * 8);
  h = fnv(h, out.uniform_params.data(), out.uniform_params.size() * 4);
  h = fnv(h, &out.wg_size, 4);
  h = fnv(h, &out.shared_bytes, 4);
  out.hash = h;
  return out;
}

}  // namespace rplayer::runtime::jit
