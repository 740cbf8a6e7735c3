#include "replay/verifier.h"

#include <algorithm>
#include <cstdio>

#include "hw/sku.h"
#include "hw/v3d_regs.h"

namespace rplayer::replay {

using namespace rplayer::v3d;

namespace {

constexpr uint64_t kPage = 4096;

VerifyError fail(VerifyCode c, const char* field, int32_t index = -1) { return {c, field, index}; }

uint32_t block_size(const hw::Sku& s, Block b) {
  switch (b) {
    case Block::Hub: return 0x4000;
    case Block::Core0: return s.core_block_size;
    default: return 0;  // SMS, bridge and TZPC belong to the replayer
  }
}

// Registers a recording may write. Everything else (MMU, page table base, illegal
// address, interrupt masks and SET, power, reset, TrustZone) is the replayer's.
bool write_allowed(const hw::Sku& s, Block b, uint32_t off) {
  if (b == Block::Hub) return off == INT_CLR;
  if (b != Block::Core0) return false;
  if (off == CTL_L2TCACTL || off == CTL_SLCACTL || off == INT_CLR) return true;
  return off >= s.csd_queued_cfg0 && off < s.csd_queued_cfg0 + 4u * uint32_t(s.csd_num_cfg);
}

const Region* region_at(const Recording& rec, uint32_t va, uint32_t bytes, RegionKind kind) {
  for (const Region& r : rec.regions)
    if (r.kind == kind && va >= r.gpu_va && uint64_t(va) + bytes <= uint64_t(r.gpu_va) + r.size)
      return &r;
  return nullptr;
}

VerifyError check_regions(const Recording& rec, const VerifyLimits& lim) {
  uint64_t total = 0;
  for (size_t i = 0; i < rec.regions.size(); ++i) {
    const Region& r = rec.regions[i];
    if (r.gpu_va % kPage || r.size % kPage) return fail(VerifyCode::RegionUnaligned, "region", int32_t(i));
    if (r.size == 0) return fail(VerifyCode::RegionEmpty, "region", int32_t(i));
    if (r.gpu_va < kPage || uint64_t(r.gpu_va) + r.size > (1ull << 32))
      return fail(VerifyCode::RegionWraps, "region", int32_t(i));
    total += r.size;
  }
  if (total > lim.max_memory_bytes) return fail(VerifyCode::MemoryQuota, "regions");
  // Overlap: compare neighbours in address order (regions are few; sort indices).
  std::vector<uint32_t> order(rec.regions.size());
  for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](uint32_t a, uint32_t b) { return rec.regions[a].gpu_va < rec.regions[b].gpu_va; });
  for (size_t i = 1; i < order.size(); ++i) {
    const Region& prev = rec.regions[order[i - 1]];
    if (uint64_t(prev.gpu_va) + prev.size > rec.regions[order[i]].gpu_va)
      return fail(VerifyCode::RegionOverlap, "region", int32_t(order[i]));
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
    uint64_t elems = 1;
    for (uint32_t d : b.shape) elems = std::min<uint64_t>(elems * d, 1ull << 40);
    if (b.shape.empty() || elems * 4 != b.bytes)
      return fail(VerifyCode::BindingSize, "binding.shape", int32_t(i));
  }
  return {};
}

VerifyError check_actions(const Recording& rec, const hw::Sku& s, const VerifyLimits& lim) {
  if (rec.actions.size() > lim.max_actions) return fail(VerifyCode::TooManyActions, "actions");
  const uint32_t cfg0 = s.csd_queued_cfg0;
  bool have5 = false, have6 = false;
  uint32_t cfg5 = 0, cfg6 = 0;
  int jobs = 0;
  for (size_t i = 0; i < rec.actions.size(); ++i) {
    const Action& a = rec.actions[i];
    const int32_t at = int32_t(i);
    switch (a.op) {
      case ActionOp::Write:
      case ActionOp::Read:
      case ActionOp::Poll: {
        const uint32_t size = block_size(s, a.block);
        if (size == 0) return fail(VerifyCode::BlockNotAllowed, "action.block", at);
        if (a.offset % 4 || a.offset >= size)
          return fail(VerifyCode::OffsetOutOfBlock, "action.offset", at);
        if (a.op == ActionOp::Poll && (a.timeout_us == 0 || a.timeout_us > lim.max_poll_us))
          return fail(VerifyCode::UnboundedPoll, "action.timeout", at);
        if (a.op != ActionOp::Write) break;
        if (!write_allowed(s, a.block, a.offset))
          return fail(VerifyCode::RegisterNotAllowed, "action.offset", at);
        if (a.block != Block::Core0) break;
        if (a.offset == cfg0 + 20) have5 = true, cfg5 = a.value;
        if (a.offset == cfg0 + 24) have6 = true, cfg6 = a.value;
        if (a.offset == cfg0) {  // starts a job: its shader and uniforms must be ours
          if (!have5 || !region_at(rec, cfg5 & ~7u, 8, RegionKind::Code))
            return fail(VerifyCode::ShaderOutsideCode, "CFG5", at);
          if (!have6 || !region_at(rec, cfg6 & ~3u, 4, RegionKind::Uniforms))
            return fail(VerifyCode::UniformsOutsideUniforms, "CFG6", at);
          ++jobs;
        }
        break;
      }
      case ActionOp::WaitIrq:
        if (a.line >= s.num_irq_lines) return fail(VerifyCode::BadIrqLine, "action.line", at);
        if (a.timeout_us == 0 || a.timeout_us > lim.max_irq_wait_us)
          return fail(VerifyCode::UnboundedIrqWait, "action.timeout", at);
        break;
      case ActionOp::LoadMemory:
        if (a.first > rec.loads.size() || a.count > rec.loads.size() - a.first)
          return fail(VerifyCode::BadLoad, "action.range", at);
        for (uint32_t k = a.first; k < a.first + a.count; ++k) {
          const PageLoad& l = rec.loads[k];
          const bool blob_ok = l.blob == kZeroBlob ||
                               (l.blob < rec.blobs.size() && rec.blobs[l.blob].data.size() == kPage);
          if (l.region >= rec.regions.size() || !blob_ok ||
              uint64_t(l.page) * kPage >= rec.regions[l.region].size)
            return fail(VerifyCode::BadLoad, "load", int32_t(k));
        }
        break;
      case ActionOp::JobBoundary:
        break;
    }
  }
  if (jobs == 0) return fail(VerifyCode::NoJobs, "actions");
  return {};
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
  }
  return "?";
}

const char* VerifyError::format(char* buf, size_t size) const {
  if (index >= 0)
    std::snprintf(buf, size, "%s[%d]: %s", field, int(index), message());
  else
    std::snprintf(buf, size, "%s: %s", field, message());
  return buf;
}

const hw::Sku* recording_sku(const Recording& rec) {
  return hw::identify_sku(rec.sku.hub_ident1, rec.sku.hub_ident3, rec.sku.core_ident0,
                          rec.sku.core_ident1);
}

VerifyError verify_recording(const Recording& rec, const SkuIdentity& present,
                             const VerifyLimits& limits) {
  const hw::Sku* sku = recording_sku(rec);
  if (!sku) return fail(VerifyCode::UnknownSku, "sku");
  if (!(rec.sku == present)) return fail(VerifyCode::SkuMismatch, "sku");
  if (VerifyError e = check_regions(rec, limits); !e.ok()) return e;
  if (VerifyError e = check_bindings(rec); !e.ok()) return e;
  return check_actions(rec, *sku, limits);
}

}  // namespace rplayer::replay
