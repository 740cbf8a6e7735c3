#include "replay/verifier.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "hw/sku.h"
#include "hw/v3d_regs.h"
#include "replay/checked_math.h"

namespace rplayer::replay {

using namespace rplayer::v3d;

namespace {

constexpr uint64_t kPage = 4096;

VerifyError fail(VerifyCode c, const char* field, int32_t index = -1) {
  VerifyError e;
  e.code = c, e.field = field, e.index = index;
  return e;
}

VerifyError fail_action(VerifyCode c, const char* field, int32_t at, const Action& a) {
  VerifyError e = fail(c, field, at);
  e.offset = a.offset, e.value = a.value;
  return e;
}

uint32_t block_size(const hw::Sku& s, Block b) {
  switch (b) {
    case Block::Hub: return 0x4000;
    case Block::Core0: return s.core_block_size;
    default: return 0;  // SMS, bridge and TZPC belong to the replayer
  }
}

// Registers a recording may write. Everything else (MMU, page table base, illegal
// address, interrupt masks and SET, hub INT_CLR, power, reset, TrustZone) is the
// replayer's: Replayer::setup_gpu() writes them and reads them back. Core INT_CLR is
// checked by value (interrupt_clear_allowed).
bool write_allowed(const hw::Sku& s, Block b, uint32_t off) {
  if (b != Block::Core0) return false;
  if (off == CTL_L2TCACTL || off == CTL_SLCACTL || off == INT_CLR) return true;
  return off >= s.csd_queued_cfg0 && off < s.csd_queued_cfg0 + 4u * uint32_t(s.csd_num_cfg);
}

// A recording acknowledges only job completion: fault bits stay set for the replayer's
// checks (Replayer::check_faults), whatever the recording writes.
bool interrupt_clear_allowed(const hw::Sku& s, uint32_t value) {
  return (value & ~s.core_int_csd_done) == 0;
}

// Regions sorted by address (verified not to overlap), for lookups in log time.
class RegionIndex {
 public:
  explicit RegionIndex(const Recording& rec) : rec_(rec), order_(rec.regions.size()) {
    for (uint32_t i = 0; i < order_.size(); ++i) order_[i] = i;
    std::sort(order_.begin(), order_.end(), [&](uint32_t a, uint32_t b) {
      return rec.regions[a].gpu_va < rec.regions[b].gpu_va;
    });
  }
  const std::vector<uint32_t>& order() const { return order_; }
  // True if [va, va + bytes) lies inside one region of `kind`.
  bool inside(uint32_t va, uint32_t bytes, RegionKind kind) const {
    auto it = std::upper_bound(order_.begin(), order_.end(), va,
                               [&](uint32_t v, uint32_t r) { return v < rec_.regions[r].gpu_va; });
    if (it == order_.begin()) return false;
    const Region& r = rec_.regions[*(it - 1)];
    return r.kind == kind && uint64_t(va) + bytes <= uint64_t(r.gpu_va) + r.size;
  }

 private:
  const Recording& rec_;
  std::vector<uint32_t> order_;
};

VerifyError check_regions(const Recording& rec, const RegionIndex& index, const VerifyLimits& lim) {
  uint64_t total = 0;  // at most 16384 regions of < 4 GiB: no overflow
  for (size_t i = 0; i < rec.regions.size(); ++i) {
    const Region& r = rec.regions[i];
    if (r.gpu_va % kPage || r.size % kPage)
      return fail(VerifyCode::RegionUnaligned, "region", int32_t(i));
    if (r.size == 0) return fail(VerifyCode::RegionEmpty, "region", int32_t(i));
    if (r.gpu_va < kPage || uint64_t(r.gpu_va) + r.size > (1ull << 32))
      return fail(VerifyCode::RegionWraps, "region", int32_t(i));
    total += r.size;
  }
  if (total > lim.max_memory_bytes) return fail(VerifyCode::MemoryQuota, "regions");
  const std::vector<uint32_t>& order = index.order();
  for (size_t i = 1; i < order.size(); ++i) {
    const Region& prev = rec.regions[order[i - 1]];
    if (uint64_t(prev.gpu_va) + prev.size > rec.regions[order[i]].gpu_va) {
      VerifyError e = fail(VerifyCode::RegionOverlap, "region", int32_t(order[i]));
      e.other = int32_t(order[i - 1]);
      return e;
    }
  }
  return {};
}

VerifyError check_bindings(const Recording& rec) {
  for (size_t i = 0; i < rec.bindings.size(); ++i) {
    const Binding& b = rec.bindings[i];
    if (b.region >= rec.regions.size())
      return fail(VerifyCode::BindingOutsideRegion, "binding.region", int32_t(i));
    const Region& r = rec.regions[b.region];
    if (uint64_t(b.offset) + b.bytes > r.size)
      return fail(VerifyCode::BindingOutsideRegion, "binding.bytes", int32_t(i));
    if (b.is_input ? r.kind != RegionKind::Input
                   : (r.kind != RegionKind::Output || !r.gpu_writable))
      return fail(VerifyCode::BindingKind, "binding", int32_t(i));
    // 4-byte elements: the product of the extents must be exactly bytes / 4 (checked:
    // a shape whose product wraps must not pass as a small one).
    const uint64_t elems = element_count(b.shape, b.bytes / 4);
    if (elems == 0 || elems * 4 != b.bytes)
      return fail(VerifyCode::BindingSize, "binding.shape", int32_t(i));
  }
  return {};
}

// A weight binding fills a read-only Weights region from offset 0: one per region, no
// longer than the region (the decoder checked the file range).
VerifyError check_weight_bindings(const Recording& rec) {
  std::vector<bool> bound(rec.regions.size(), false);
  for (size_t i = 0; i < rec.weight_bindings.size(); ++i) {
    const WeightBinding& w = rec.weight_bindings[i];
    if (w.region >= rec.regions.size())
      return fail(VerifyCode::WeightBindingKind, "weights.region", int32_t(i));
    const Region& r = rec.regions[w.region];
    if (r.kind != RegionKind::Weights || r.gpu_writable)
      return fail(VerifyCode::WeightBindingKind, "weights.region", int32_t(i));
    if (w.length > r.size) return fail(VerifyCode::WeightBindingSize, "weights.length", int32_t(i));
    if (bound[w.region])
      return fail(VerifyCode::WeightBindingOverlap, "weights.region", int32_t(i));
    bound[w.region] = true;
  }
  return {};
}

// Each page-load entry once; each LoadMemory action then only checks its range, so
// verification stays linear in the file however the actions share the table.
VerifyError check_loads(const Recording& rec) {
  for (size_t k = 0; k < rec.loads.size(); ++k) {
    const PageLoad& l = rec.loads[k];
    const bool blob_ok = l.blob == kZeroBlob ||
                         (l.blob < rec.blobs.size() && rec.blobs[l.blob].data.size() == kPage);
    if (l.region >= rec.regions.size() || !blob_ok ||
        uint64_t(l.page) * kPage >= rec.regions[l.region].size)
      return fail(VerifyCode::BadLoad, "load", int32_t(k));
  }
  return {};
}

VerifyError check_actions(const Recording& rec, const hw::Sku& s, const RegionIndex& index,
                          const VerifyLimits& lim) {
  if (rec.actions.size() > lim.max_actions) return fail(VerifyCode::TooManyActions, "actions");
  const uint32_t cfg0 = s.csd_queued_cfg0;
  bool have5 = false, have6 = false;
  uint32_t cfg5 = 0, cfg6 = 0;
  uint64_t jobs = 0, copies = 0;
  for (size_t i = 0; i < rec.actions.size(); ++i) {
    const Action& a = rec.actions[i];
    const int32_t at = int32_t(i);
    switch (a.op) {
      case ActionOp::Write:
      case ActionOp::Read:
      case ActionOp::Poll: {
        const uint32_t size = block_size(s, a.block);
        if (size == 0) return fail_action(VerifyCode::BlockNotAllowed, "action.block", at, a);
        if (a.offset % 4 || a.offset >= size)
          return fail_action(VerifyCode::OffsetOutOfBlock, "action.offset", at, a);
        if (a.op == ActionOp::Poll && (a.timeout_us == 0 || a.timeout_us > lim.max_poll_us))
          return fail_action(VerifyCode::UnboundedPoll, "action.timeout", at, a);
        if (a.op != ActionOp::Write) break;
        if (!write_allowed(s, a.block, a.offset))
          return fail_action(VerifyCode::RegisterNotAllowed, "action.offset", at, a);
        if (a.offset == INT_CLR && !interrupt_clear_allowed(s, a.value))
          return fail_action(VerifyCode::InterruptClearNotAllowed, "action.value", at, a);
        if (a.offset == cfg0 + 20) have5 = true, cfg5 = a.value;
        if (a.offset == cfg0 + 24) have6 = true, cfg6 = a.value;
        if (a.offset == cfg0) {  // starts a job: its shader and uniforms must be ours
          if (!have5 || !index.inside(cfg5 & ~7u, 8, RegionKind::Code))
            return fail_action(VerifyCode::ShaderOutsideCode, "CFG5", at, a);
          if (!have6 || !index.inside(cfg6 & ~3u, 4, RegionKind::Uniforms))
            return fail_action(VerifyCode::UniformsOutsideUniforms, "CFG6", at, a);
          ++jobs;
        }
        break;
      }
      case ActionOp::WaitIrq:
        if (a.line >= s.num_irq_lines)
          return fail_action(VerifyCode::BadIrqLine, "action.line", at, a);
        if (a.timeout_us == 0 || a.timeout_us > lim.max_irq_wait_us)
          return fail_action(VerifyCode::UnboundedIrqWait, "action.timeout", at, a);
        break;
      case ActionOp::LoadMemory:
        if (a.first > rec.loads.size() || a.count > rec.loads.size() - a.first)
          return fail(VerifyCode::BadLoad, "action.range", at);
        copies += a.count;  // at most 10^6 actions x 2^32: no overflow
        if (copies > lim.max_page_copies) return fail(VerifyCode::TooMuchWork, "action.count", at);
        break;
      case ActionOp::JobBoundary:
        break;
    }
  }
  if (jobs == 0) return fail(VerifyCode::NoJobs, "actions");
  return {};
}

// Decimal milliseconds, 1 to 10 digits, no sign or spaces; 0 if malformed.
uint64_t parse_ms(const std::string& v) {
  if (v.empty() || v.size() > 10) return 0;
  uint64_t ms = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return 0;
    ms = ms * 10 + uint64_t(c - '0');
  }
  return ms;
}

const std::string* find_metadata(const Recording& rec, const char* key) {
  for (const auto& [k, v] : rec.metadata)
    if (k == key) return &v;
  return nullptr;
}

}  // namespace

const char* VerifyError::message() const {
  switch (code) {
    case VerifyCode::Ok: return "ok";
    case VerifyCode::UnknownSku: return "recorded on an unsupported GPU";
    case VerifyCode::SkuMismatch: return "recorded on another GPU than the one present";
    case VerifyCode::TooManyActions: return "too many actions";
    case VerifyCode::RegionUnaligned: return "region not page-aligned";
    case VerifyCode::RegionEmpty: return "empty region";
    case VerifyCode::RegionWraps: return "region at page 0 or past the 4 GiB address space";
    case VerifyCode::RegionOverlap: return "regions overlap";
    case VerifyCode::MemoryQuota: return "regions exceed the replay memory quota";
    case VerifyCode::BlockNotAllowed: return "access to a register block the replayer owns";
    case VerifyCode::RegisterNotAllowed: return "write to a register outside the allowlist";
    case VerifyCode::InterruptClearNotAllowed:
      return "INT_CLR may acknowledge only the job-done interrupt, never a fault";
    case VerifyCode::OffsetOutOfBlock: return "register offset outside its block";
    case VerifyCode::ShaderOutsideCode: return "job shader address outside every code region";
    case VerifyCode::UniformsOutsideUniforms:
      return "job uniforms address outside every uniform region";
    case VerifyCode::UnboundedPoll: return "poll without a bounded timeout";
    case VerifyCode::UnboundedIrqWait: return "interrupt wait without a bounded timeout";
    case VerifyCode::BadIrqLine: return "interrupt line the GPU does not have";
    case VerifyCode::BadLoad: return "memory load outside its region or blobs";
    case VerifyCode::BindingOutsideRegion: return "tensor binding outside its region";
    case VerifyCode::BindingKind: return "tensor binding in the wrong kind of region";
    case VerifyCode::BindingSize: return "tensor binding size does not match its shape";
    case VerifyCode::NoJobs: return "no GPU job in the recording";
    case VerifyCode::TooMuchWork:
      return "the memory loads of one run exceed the policy";
    case VerifyCode::BadBudget:
      return "replay budget malformed or over the policy's maximum (replay_budget_ms)";
    case VerifyCode::SkuNameMismatch:
      return "the SKU name does not match the GPU the recording identifies";
    case VerifyCode::WeightBindingKind:
      return "weight binding for a region that is not a read-only Weights region";
    case VerifyCode::WeightBindingSize:
      return "weight binding longer than its region";
    case VerifyCode::WeightBindingOverlap:
      return "two weight bindings for one region";
  }
  return "?";
}

const char* VerifyError::format(char* buf, size_t size) const {
  char idx[16] = "";
  if (index >= 0) std::snprintf(idx, sizeof idx, "[%d]", int(index));
  if (code == VerifyCode::SkuMismatch && recorded_sku)
    std::snprintf(buf, size, "%s: recorded on %s, the GPU present is %s", field, recorded_sku,
                  present_sku);
  else if (code == VerifyCode::RegionOverlap && other >= 0)
    std::snprintf(buf, size, "%s%s: %s (with region %d)", field, idx, message(), int(other));
  else if (offset || value)  // an action: the register and value concerned
    std::snprintf(buf, size, "%s%s: %s (register 0x%04x, value 0x%08x)", field, idx, message(),
                  offset, value);
  else
    std::snprintf(buf, size, "%s%s: %s", field, idx, message());
  return buf;
}

const hw::Sku* recording_sku(const Recording& rec) {
  return hw::identify_sku(rec.sku.hub_ident1, rec.sku.hub_ident3, rec.sku.core_ident0,
                          rec.sku.core_ident1);
}

VerifyLimits limits_for_pool(uint64_t pool_bytes) {
  VerifyLimits l;
  constexpr uint64_t kReserved = 8ull << 20;  // the page table (4 MiB), scratch, slack
  l.max_memory_bytes = pool_bytes > kReserved ? pool_bytes - kReserved : 0;
  return l;
}

uint64_t replay_budget_us(const Recording& rec, const VerifyLimits& limits) {
  const std::string* v = find_metadata(rec, kBudgetKey);
  if (!v) return uint64_t(limits.max_replay_ms) * 1000;
  const uint64_t ms = parse_ms(*v);
  return ms <= limits.max_replay_ms ? ms * 1000 : 0;
}

VerifyError verify_recording(const Recording& rec, const SkuIdentity& present,
                             const VerifyLimits& limits) {
  const hw::Sku* sku = recording_sku(rec);
  if (!sku) return fail(VerifyCode::UnknownSku, "sku");
  if (rec.sku_name.size() != sku->name.size() ||
      std::memcmp(rec.sku_name.data(), sku->name.data(), sku->name.size()) != 0)
    return fail(VerifyCode::SkuNameMismatch, "sku_name");
  if (!(rec.sku == present)) {
    VerifyError e = fail(VerifyCode::SkuMismatch, "sku");
    const hw::Sku* there = hw::identify_sku(present.hub_ident1, present.hub_ident3,
                                            present.core_ident0, present.core_ident1);
    e.recorded_sku = sku->name.data();  // the SKU table's names are NUL-terminated literals
    e.present_sku = there ? there->name.data() : "an unknown GPU";
    return e;
  }
  if (replay_budget_us(rec, limits) == 0) return fail(VerifyCode::BadBudget, kBudgetKey);
  const RegionIndex index(rec);
  if (VerifyError e = check_regions(rec, index, limits); !e.ok()) return e;
  if (VerifyError e = check_bindings(rec); !e.ok()) return e;
  if (VerifyError e = check_weight_bindings(rec); !e.ok()) return e;
  if (VerifyError e = check_loads(rec); !e.ok()) return e;
  return check_actions(rec, *sku, index, limits);
}

}  // namespace rplayer::replay
