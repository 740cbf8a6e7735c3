#include "hw/v3d_gpu.h"

#include <algorithm>

#include "hw/v3d_regs.h"

namespace rplayer::hw {

using namespace rplayer::v3d;

namespace {

constexpr uint32_t kMmuCtlConfig =
    MMU_CTL_ENABLE | MMU_CTL_TLB_STATS_ENABLE | MMU_CTL_WRITE_VIOLATION_EXCEPTION |
    MMU_CTL_WRITE_VIOLATION_INT | MMU_CTL_WRITE_VIOLATION_ABORT | MMU_CTL_PT_INVALID_ENABLE |
    MMU_CTL_PT_INVALID_EXCEPTION | MMU_CTL_PT_INVALID_INT | MMU_CTL_PT_INVALID_ABORT |
    MMU_CTL_CAP_EXCEEDED_EXCEPTION | MMU_CTL_CAP_EXCEEDED_INT | MMU_CTL_CAP_EXCEEDED_ABORT;
constexpr uint32_t kMmuCtlStatus =
    MMU_CTL_WRITE_VIOLATION | MMU_CTL_PT_INVALID | MMU_CTL_CAP_EXCEEDED;

// Model-defined performance counter sources (docs/hw.md).
enum PerfSource : uint32_t {
  kSrcCycles = 0,
  kSrcQpuInstructions = 1,
  kSrcCsdJobs = 2,
  kSrcWorkgroups = 3,
  kSrcTlbHits = 4,
  kSrcTlbMisses = 5,
  kSrcL2tHits = 6,
  kSrcL2tMisses = 7,
  kSrcL2tWritebacks = 8,
};

}  // namespace

V3dGpu::V3dGpu(const Sku& sku, PhysMemory& mem, IrqLines& irq, EventQueue& events,
               FaultInjection& faults, const GpuTiming& timing, int device_threads)
    : sku_(sku),
      mem_(mem),
      irq_(irq),
      events_(events),
      faults_(faults),
      timing_(timing),
      rng_(timing.seed),
      power_(sku.has_sms ? Power::Off : Power::On),
      sms_state_(sku.has_sms ? SMS_POWER_OFF_STATE : SMS_IDLE),
      mmu_(mem, *this),
      l2t_(mem, faults, *this) {
  reset_registers();
  // The ownership mailbox talks to the normal world whoever owns the GPU.
  if (irq_.count() > sku_.mbox_irq_line())
    irq_.set_line_delivery(sku_.mbox_irq_line(), IrqDelivery::Normal);
  csd_ = std::make_unique<CsdEngine>(
      std::max(1, device_threads), *this, exec_mu_,
      CsdEngine::Callbacks{
          [this](const std::shared_ptr<CsdJob>& j) { on_job_done(j); },
          [this](const std::shared_ptr<CsdJob>& j, uint32_t q, QpuResult r) {
            on_qpu_fault(j, q, r);
          }});
}

V3dGpu::~V3dGpu() {
  events_.cancel_all();
  csd_.reset();  // joins the workers before the state they use goes away
}

bool V3dGpu::has_block(RegBlock b) const {
  switch (b) {
    case RegBlock::Hub:
    case RegBlock::Core0:
    case RegBlock::Tzpc:
    case RegBlock::Mbox: return true;
    case RegBlock::Sms: return sku_.has_sms;
    case RegBlock::Bridge: return sku_.bridge_revision != 0;
  }
  return false;
}

uint32_t V3dGpu::block_size(RegBlock b) const {
  switch (b) {
    case RegBlock::Hub: return 0x4000;
    case RegBlock::Core0: return sku_.core_block_size;
    case RegBlock::Sms: return 0x700;
    case RegBlock::Bridge: return 0x100;
    case RegBlock::Tzpc: return 0x100;
    case RegBlock::Mbox: return 0x100;
  }
  return 0;
}

std::chrono::nanoseconds V3dGpu::latency(uint32_t ns) {
  std::uniform_real_distribution<double> d(1.0 - timing_.jitter, 1.0 + timing_.jitter);
  std::lock_guard lk(rng_mu_);  // also called from CSD workers
  return std::chrono::nanoseconds(int64_t(double(ns) * timing_.scale * d(rng_)));
}

// ---- access control ----------------------------------------------------------------

bool V3dGpu::reachable(World w, RegBlock b, bool* violation) const {
  *violation = false;
  // The mailbox is how the worlds negotiate ownership: it must work in every state.
  if (b == RegBlock::Mbox) return true;
  if (b == RegBlock::Tzpc) {
    *violation = w != World::Secure;
    return !*violation;
  }
  // While secure, and during a switch in either direction, the normal world is out.
  if ((secure_.load() || world_switching_) && w == World::Normal) {
    *violation = true;
    return false;
  }
  if (b == RegBlock::Hub || b == RegBlock::Core0) return power_ == Power::On;
  return true;
}

uint32_t V3dGpu::read(World w, RegBlock b, uint32_t off) {
  uint32_t v = 0;
  bool dropped = true;
  {
    std::lock_guard lk(reg_mu_);
    bool violation;
    if (!has_block(b) || off % 4 || off >= block_size(b)) {
      // unknown offset: reads 0
    } else if (!reachable(w, b, &violation)) {
      if (violation)
        ++stats_.tz_violations;
      else
        ++stats_.unpowered_accesses;
    } else {
      bool known = true;
      switch (b) {
        case RegBlock::Hub: v = read_hub(off, &known); break;
        case RegBlock::Core0: v = read_core(off, &known); break;
        case RegBlock::Sms: v = read_sms(off, &known); break;
        case RegBlock::Bridge:
          v = off == BRIDGE_REVISION ? sku_.bridge_revision : 0;
          known = off <= BRIDGE_SW_INIT_1;
          break;
        case RegBlock::Tzpc:
          if (off == TZPC_GPU_SECURE) v = secure_.load();
          else if (off == TZPC_STATUS)
            v = (world_switching_ ? TZPC_STATUS_SWITCHING : 0) |
                (secure_.load() ? TZPC_STATUS_SECURE : 0);
          else if (off == TZPC_VIOLATIONS) v = uint32_t(stats_.tz_violations);
          else known = false;
          break;
        case RegBlock::Mbox:
          if (off == MBOX_CLAIM) v = mbox_claim_;
          else if (off == MBOX_ACK) v = mbox_ack_;
          else if (off == MBOX_EVENT) v = mbox_event_;
          else if (off == MBOX_DEMAND) v = mbox_demand_;
          else known = false;
          break;
      }
      dropped = !known;
    }
  }
  emit({BusEvent::Kind::RegRead, w, b, off, v, 0, 0, dropped});
  return v;
}

void V3dGpu::write(World w, RegBlock b, uint32_t off, uint32_t v) {
  bool handled = false;
  bool bridge_reset = false;
  {
    std::lock_guard lk(reg_mu_);
    bool violation;
    if (!has_block(b) || off % 4 || off >= block_size(b)) {
      ++stats_.unknown_writes;
    } else if (!reachable(w, b, &violation)) {
      if (violation)
        ++stats_.tz_violations;
      else
        ++stats_.unpowered_accesses;
    } else {
      switch (b) {
        case RegBlock::Hub: handled = write_hub(w, off, v); break;
        case RegBlock::Core0: handled = write_core(off, v); break;
        case RegBlock::Sms: handled = write_sms(w, off, v); break;
        case RegBlock::Bridge:
          handled = off == sku_.bridge_sw_init_reg;
          if (handled) {
            if (v & BRIDGE_SW_INIT_V3D) {
              power_ = Power::InReset;
              if (csd_current_) csd_current_->stop = true;
            } else if (power_ == Power::InReset || power_ == Power::Dead) {
              bridge_reset = true;
            }
          }
          break;
        case RegBlock::Tzpc: handled = write_tzpc(off, v); break;
        case RegBlock::Mbox: handled = write_mbox(w, off, v); break;
      }
      if (!handled) ++stats_.unknown_writes;
    }
  }
  emit({BusEvent::Kind::RegWrite, w, b, off, v, 0, 0, !handled});
  if (bridge_reset) {
    // Releasing SW_INIT brings the core out of reset with reset values, unless a
    // reset failure is injected, in which case it never answers again.
    if (FaultInjection::take(faults_.fail_resets)) {
      std::lock_guard lk(reg_mu_);
      power_ = Power::Dead;
      return;
    }
    full_reset();
    std::lock_guard lk(reg_mu_);
    power_ = Power::On;
  }
}

// ---- interrupts --------------------------------------------------------------------

uint32_t V3dGpu::read_int(const IntGroup& g, uint32_t off, bool* known) const {
  switch (off) {
    case INT_STS: return g.sts;
    case INT_MSK_STS: return g.msk;
    case INT_SET:
    case INT_CLR:
    case INT_MSK_SET:
    case INT_MSK_CLR: return 0;  // write-only
  }
  *known = false;
  return 0;
}

bool V3dGpu::write_int(IntGroup& g, uint32_t off, uint32_t v) {
  switch (off) {
    case INT_SET: g.sts |= v; break;
    case INT_CLR: g.sts &= ~v; break;
    case INT_MSK_SET: g.msk |= v; break;
    case INT_MSK_CLR: g.msk &= ~v; break;
    default: return false;
  }
  update_irq_lines();
  return true;
}

void V3dGpu::raise_hub(uint32_t bits) { raise(hub_int_, bits); }
void V3dGpu::raise_core(uint32_t bits) { raise(core_int_, bits); }

void V3dGpu::raise(IntGroup& g, uint32_t bits) {
  if (FaultInjection::take(faults_.drop_interrupts)) return;
  g.sts |= bits;
  if (FaultInjection::take(faults_.late_interrupts)) {
    // The status is visible to a poll now; the line follows later (a slow interrupt path).
    line_holdoff_until_ = std::chrono::steady_clock::now() +
                          std::chrono::microseconds(faults_.late_interrupt_us.load());
    events_.schedule(line_holdoff_until_, [this, e = epoch_] {
      std::lock_guard lk(reg_mu_);
      if (e == epoch_) update_irq_lines();
    });
  }
  update_irq_lines();
}

void V3dGpu::update_irq_lines() {
  // A late interrupt (fault injection) holds the lines until its time.
  if (line_holdoff_until_ != std::chrono::steady_clock::time_point{} &&
      std::chrono::steady_clock::now() < line_holdoff_until_)
    return;
  const bool hub = hub_int_.sts & ~hub_int_.msk;
  const bool core = core_int_.sts & ~core_int_.msk;
  if (sku_.num_irq_lines >= 2) {
    irq_.set_level(0, hub);
    irq_.set_level(1, core);
  } else {
    irq_.set_level(0, hub || core);
  }
}

// ---- hub ---------------------------------------------------------------------------

uint32_t V3dGpu::read_hub(uint32_t off, bool* known) {
  switch (off) {
    case HUB_AXICFG: return axicfg_;
    case HUB_UIFCFG: return uifcfg_;
    case HUB_IDENT0: return sku_.hub_ident0;
    case HUB_IDENT1: return sku_.hub_ident1;
    case HUB_IDENT2: return sku_.hub_ident2;
    case HUB_IDENT3: return sku_.hub_ident3;
    case MMUC_CONTROL: return mmuc_control_ | (mmuc_flushing_ ? MMUC_CONTROL_FLUSHING : 0);
    case MMU_CTL: return mmu_ctl_ | (tlb_clearing_ ? MMU_CTL_TLB_CLEARING : 0);
    case MMU_PT_PA_BASE: return pt_base_;
    case MMU_HIT:
    case MMU_MISSES: {
      if (!(mmu_ctl_ & MMU_CTL_TLB_STATS_ENABLE)) return 0;
      std::lock_guard lk(mem_mu_);
      return uint32_t(off == MMU_HIT ? mmu_.tlb_hits() : mmu_.tlb_misses());
    }
    case MMU_STALLS: return 0;
    case MMU_ADDR_CAP: return addr_cap_;
    case MMU_SHOOT_DOWN: return 0;
    case MMU_BYPASS_START: return bypass_start_;
    case MMU_BYPASS_END: return bypass_end_;
    case MMU_VIO_ID: return vio_id_;
    case MMU_ILLEGAL_ADDR: return illegal_addr_;
    case MMU_VIO_ADDR: return vio_addr_;
    case MMU_DEBUG_INFO: return sku_.mmu_debug_info;
  }
  if (off >= INT_STS && off <= INT_MSK_CLR) return read_int(hub_int_, off, known);
  *known = false;
  return 0;
}

bool V3dGpu::write_hub(World, uint32_t off, uint32_t v) {
  switch (off) {
    case HUB_AXICFG: axicfg_ = v; return true;
    case HUB_UIFCFG: uifcfg_ = v; return true;
    case MMUC_CONTROL:
      mmuc_control_ = v & MMUC_CONTROL_ENABLE;
      if ((v & (MMUC_CONTROL_FLUSH | sku_.mmuc_clear_bit)) && !mmuc_flushing_) {
        mmuc_flushing_ = true;
        account_maintenance();  // busy from now: before the completion can be scheduled
        const auto d = FaultInjection::take(faults_.slow_mmu_flushes)
                           ? std::chrono::microseconds(faults_.mmu_flush_delay_us.load())
                           : latency(timing_.mmuc_flush_ns);
        events_.schedule_after(d, [this, e = epoch_] { finish_mmu_maintenance(e, false); });
      }
      sync_mmu_config();
      return true;
    case MMU_CTL:
      mmu_ctl_ = (mmu_ctl_ & kMmuCtlStatus & ~v) | (v & kMmuCtlConfig);
      if ((v & MMU_CTL_TLB_CLEAR) && !tlb_clearing_) {
        tlb_clearing_ = true;
        account_maintenance();
        events_.schedule_after(latency(timing_.tlb_clear_ns),
                               [this, e = epoch_] { finish_mmu_maintenance(e, true); });
      }
      sync_mmu_config();
      return true;
    case MMU_PT_PA_BASE: pt_base_ = v & mask(27, 0); sync_mmu_config(); return true;
    case MMU_ADDR_CAP:
      addr_cap_ = v & (MMU_ADDR_CAP_ENABLE | mask(11, 0));
      sync_mmu_config();
      return true;
    case MMU_SHOOT_DOWN:
      if (v & MMU_SHOOT_DOWN_SHOOT) {
        std::lock_guard lk(mem_mu_);
        mmu_.shoot_down(v & mask(27, 0));
        bump_generation();
      }
      return true;
    case MMU_BYPASS_START: bypass_start_ = v; return true;
    case MMU_BYPASS_END: bypass_end_ = v; return true;
    case MMU_ILLEGAL_ADDR:
      illegal_addr_ = v & (MMU_ILLEGAL_ADDR_ENABLE | mask(27, 0));
      sync_mmu_config();
      return true;
  }
  if (off >= INT_SET && off <= INT_MSK_CLR) return write_int(hub_int_, off, v);
  return false;  // read-only or unknown
}

void V3dGpu::sync_mmu_config() {
  std::lock_guard lk(mem_mu_);
  mmu_cfg_.enabled = mmu_ctl_ & MMU_CTL_ENABLE;
  mmu_cfg_.mmuc_enabled = mmuc_control_ & MMUC_CONTROL_ENABLE;
  mmu_cfg_.pt_base_pfn = pt_base_;
  mmu_cfg_.cap_enabled = addr_cap_ & MMU_ADDR_CAP_ENABLE;
  mmu_cfg_.cap_mib = addr_cap_ & mask(11, 0);
  mmu_cfg_.gpu_secure = secure_.load();
  mmu_ctl_mem_ = mmu_ctl_;
  illegal_addr_mem_ = illegal_addr_;
  bump_generation();
}

bool V3dGpu::stale(uint64_t epoch) {
  std::lock_guard lk(reg_mu_);
  return epoch != epoch_;
}

void V3dGpu::finish_mmu_maintenance(uint64_t epoch, bool tlb) {
  if (stale(epoch)) return;  // a reset came in between and already did it
  {
    std::lock_guard lk(mem_mu_);
    if (tlb)
      mmu_.clear_tlb();
    else
      mmu_.flush_mmuc();
  }
  bump_generation();
  std::lock_guard lk(reg_mu_);
  if (epoch == epoch_) (tlb ? tlb_clearing_ : mmuc_flushing_) = false;
  account_maintenance();
}

// ---- core --------------------------------------------------------------------------

uint64_t V3dGpu::event_total(uint32_t src) {
  switch (src) {
    case kSrcCycles: return stats_.qpu_cycles / std::max(1, sku_.num_qpus());
    case kSrcQpuInstructions: return stats_.qpu_instructions;
    case kSrcCsdJobs: return stats_.jobs_completed;
    case kSrcWorkgroups: return stats_.workgroups;
  }
  std::lock_guard lk(mem_mu_);
  switch (src) {
    case kSrcTlbHits: return mmu_.tlb_hits();
    case kSrcTlbMisses: return mmu_.tlb_misses();
    case kSrcL2tHits: return l2t_.hits();
    case kSrcL2tMisses: return l2t_.misses();
    case kSrcL2tWritebacks: return l2t_.pages_written_back();
  }
  return 0;
}

uint32_t V3dGpu::read_core(uint32_t off, bool* known) {
  const uint32_t ncfg = uint32_t(sku_.csd_num_cfg);
  if (off >= sku_.csd_queued_cfg0 && off < sku_.csd_queued_cfg0 + 4 * ncfg)
    return csd_cfg_[(off - sku_.csd_queued_cfg0) / 4];
  if (off >= sku_.csd_current_cfg0 && off < sku_.csd_current_cfg0 + 4 * ncfg) {
    const uint32_t i = (off - sku_.csd_current_cfg0) / 4;
    if (!csd_current_) return 0;
    if (i == 4) {  // remaining batches, in the CFG4 encoding
      const uint32_t rem = csd_current_->batches_remaining();
      return sku_.csd_cfg4_minus_one ? rem - (rem > 0) : rem;
    }
    return csd_current_->cfg[i];
  }
  if (off == sku_.csd_current_id0) return csd_current_ ? csd_current_->next_wg.load() : 0;
  if (off == sku_.csd_current_id0 + 4) return 0;
  if (off >= PCTR_0_SRC_0_3 && off < PCTR_0_SRC_0_3 + 32)
    return pctr_src_[(off - PCTR_0_SRC_0_3) / 4];
  if (off >= PCTR_0_PCTR0 && off < PCTR_0_PCTR0 + 4 * kNumPerfCounters) {
    const uint32_t n = (off - PCTR_0_PCTR0) / 4;
    if (!(pctr_en_ & bit(n))) return pctr_frozen_[n];
    const uint32_t width = sku_.pctr_src_bits;
    const uint32_t src = (pctr_src_[n / 4] >> (8 * (n % 4))) & ((1u << width) - 1);
    return uint32_t(event_total(src) - pctr_base_[n]);
  }
  switch (off) {
    case CTL_IDENT0: return sku_.core_ident0;
    case CTL_IDENT1: return sku_.core_ident1;
    case CTL_IDENT2: return sku_.core_ident2;
    case CTL_MISCCFG: return misccfg_;
    case CTL_L2CACTL: return l2cactl_;
    case CTL_SLCACTL: return 0;  // invalidations complete at once
    case CTL_L2TCACTL:
      return (l2tfls_busy_ ? L2TCACTL_L2TFLS : 0) | (tmuwcf_busy_ ? L2TCACTL_TMUWCF : 0) |
             (l2tcactl_flm_ << L2TCACTL_FLM_SHIFT);
    case CTL_L2TFLSTA: return l2tflsta_;
    case CTL_L2TFLEND: return l2tflend_;
    case CTL_ERR_STAT: return err_stat_;
    case CSD_STATUS: {
      const uint32_t active = (csd_current_ ? 1 : 0) + (csd_queued_ ? 1 : 0);
      return set_field(csd_completed_ & 0xff, 11, 4) | set_field(active, 3, 2) |
             (csd_current_ ? CSD_STATUS_HAVE_CURRENT : 0) |
             (csd_queued_ ? CSD_STATUS_HAVE_QUEUED : 0);
    }
    case PCTR_0_EN: return pctr_en_;
    case PCTR_0_CLR: return 0;
    case PCTR_0_OVERFLOW: return pctr_overflow_;
  }
  if (off >= INT_STS && off <= INT_MSK_CLR) return read_int(core_int_, off, known);
  *known = false;
  return 0;
}

bool V3dGpu::write_core(uint32_t off, uint32_t v) {
  const uint32_t ncfg = uint32_t(sku_.csd_num_cfg);
  if (off >= sku_.csd_queued_cfg0 && off < sku_.csd_queued_cfg0 + 4 * ncfg) {
    const uint32_t i = (off - sku_.csd_queued_cfg0) / 4;
    csd_cfg_[i] = v;
    if (i == 0) submit_csd();  // the CFG0 write starts the job
    return true;
  }
  if (off >= PCTR_0_SRC_0_3 && off < PCTR_0_SRC_0_3 + 32) {
    pctr_src_[(off - PCTR_0_SRC_0_3) / 4] = v;
    return true;
  }
  switch (off) {
    case CTL_MISCCFG: misccfg_ = v; return true;
    case CTL_L2CACTL: l2cactl_ = v & (L2CACTL_L2CENA | L2CACTL_L2CDIS); return true;
    case CTL_SLCACTL:
      bump_generation();  // drops the QPUs' instruction and uniform caches
      return true;
    case CTL_L2TCACTL: {
      uint32_t dirty;
      {
        std::lock_guard lk(mem_mu_);
        dirty = l2t_.dirty_pages();
      }
      const uint32_t cost = timing_.l2t_op_ns + timing_.l2t_per_page_ns * dirty;
      if ((v & L2TCACTL_TMUWCF) && !tmuwcf_busy_) {
        tmuwcf_busy_ = true;
        account_maintenance();  // busy from now: before the completion can be scheduled
        events_.schedule_after(latency(timing_.tmuwcf_ns + timing_.l2t_per_page_ns * dirty),
                               [this, e = epoch_] { finish_l2t_op(e, true, 0, 0, ~uint64_t(0)); });
      }
      if ((v & L2TCACTL_L2TFLS) && !l2tfls_busy_) {
        l2tfls_busy_ = true;
        account_maintenance();
        l2tcactl_flm_ = (v & L2TCACTL_FLM_MASK) >> L2TCACTL_FLM_SHIFT;
        const uint32_t flm = l2tcactl_flm_;
        const uint64_t lo = l2tflsta_, hi = l2tflend_ == ~0u ? ~uint64_t(0) : l2tflend_;
        events_.schedule_after(latency(cost), [this, e = epoch_, flm, lo, hi] {
          finish_l2t_op(e, false, flm, lo, hi);
        });
      }
      account_maintenance();
      return true;
    }
    case CTL_L2TFLSTA: l2tflsta_ = v; return true;
    case CTL_L2TFLEND: l2tflend_ = v; return true;
    case CTL_ERR_STAT: err_stat_ &= ~v; return true;
    case PCTR_0_EN: {
      for (int n = 0; n < kNumPerfCounters; ++n) {
        const uint32_t src = (pctr_src_[n / 4] >> (8 * (n % 4))) & ((1u << sku_.pctr_src_bits) - 1);
        const bool was = pctr_en_ & bit(n), now = v & bit(n);
        if (!was && now) pctr_base_[n] = event_total(src) - pctr_frozen_[n];
        if (was && !now) pctr_frozen_[n] = uint32_t(event_total(src) - pctr_base_[n]);
      }
      pctr_en_ = v;
      return true;
    }
    case PCTR_0_CLR:
      for (int n = 0; n < kNumPerfCounters; ++n) {
        if (!(v & bit(n))) continue;
        const uint32_t src = (pctr_src_[n / 4] >> (8 * (n % 4))) & ((1u << sku_.pctr_src_bits) - 1);
        pctr_base_[n] = event_total(src);
        pctr_frozen_[n] = 0;
      }
      return true;
    case PCTR_0_OVERFLOW: pctr_overflow_ &= ~v; return true;
  }
  if (off >= INT_SET && off <= INT_MSK_CLR) return write_int(core_int_, off, v);
  return false;
}

void V3dGpu::finish_l2t_op(uint64_t epoch, bool tmuwcf, uint32_t flm, uint64_t lo,
                           uint64_t hi) {
  if (stale(epoch)) return;
  {
    // Exclusive: no workgroup may hold a pointer into a frame that goes away.
    std::unique_lock ex(exec_mu_);
    {
      std::lock_guard lk(mem_mu_);
      if (tmuwcf) {
        l2t_.write_back(0, ~uint64_t(0));
      } else if (flm == L2TCACTL_FLM_FLUSH) {
        l2t_.invalidate(lo, hi, true);
      } else if (flm == L2TCACTL_FLM_CLEAR) {
        l2t_.invalidate(lo, hi, false);
      } else if (flm == L2TCACTL_FLM_CLEAN) {
        l2t_.write_back(lo, hi);
      }
    }
    bump_generation();
  }
  std::lock_guard lk(reg_mu_);
  if (epoch != epoch_) return;
  (tmuwcf ? tmuwcf_busy_ : l2tfls_busy_) = false;
  account_maintenance();
  // A dispatch queued behind the maintenance starts now (the L2T stalled it).
  if (csd_current_ && !csd_current_->started_flag && !l2tfls_busy_ && !tmuwcf_busy_)
    start_job(csd_current_);
}

// Wall time with any cache or MMU maintenance operation in flight: the GPU is busy
// then too (the driver polls for it), so it is part of the device time.
void V3dGpu::account_maintenance() {
  const bool busy = l2tfls_busy_ || tmuwcf_busy_ || mmuc_flushing_ || tlb_clearing_;
  const auto now = std::chrono::steady_clock::now();
  if (busy && !maintenance_since_) {
    maintenance_since_ = now;
  } else if (!busy && maintenance_since_) {
    stats_.maintenance_busy_ns += uint64_t(
        std::chrono::duration_cast<std::chrono::nanoseconds>(now - *maintenance_since_).count());
    maintenance_since_.reset();
  }
}

// ---- CSD ---------------------------------------------------------------------------

void V3dGpu::submit_csd() {
  auto job = std::make_shared<CsdJob>();
  std::copy(std::begin(csd_cfg_), std::end(csd_cfg_), job->cfg);
  job->id = next_job_id_++;
  uint64_t total = 1;
  for (int i = 0; i < 3; ++i) {
    job->params.num_wg[i] = csd_cfg_[i] >> 16;
    job->wg_offset[i] = csd_cfg_[i] & 0xffff;
    total *= job->params.num_wg[i];
  }
  const uint32_t wg_size = (csd_cfg_[3] & 0xff) ? (csd_cfg_[3] & 0xff) : 256;
  job->params.wg_size = wg_size;
  job->params.shader_va = csd_cfg_[5] & ~7u;
  job->params.uniforms_va = csd_cfg_[6] & ~3u;
  job->params.shared_bytes = sku_.shared_bytes;
  job->batches_per_wg = (wg_size + 15) / 16;
  job->batch_budget = csd_cfg_[4] + (sku_.csd_cfg4_minus_one ? 1 : 0);
  const uint64_t total_batches = total * job->batches_per_wg;
  job->completes = job->batch_budget <= total_batches;
  const uint64_t runnable =
      (uint64_t(job->batch_budget) + job->batches_per_wg - 1) / job->batches_per_wg;
  job->total_wgs = uint32_t(std::min<uint64_t>(total, ~0u));
  job->runnable_wgs = uint32_t(std::min<uint64_t>(runnable, job->total_wgs));
  job->num_qpus = uint32_t(sku_.num_qpus());
  job->hung = FaultInjection::take(faults_.hang_dispatches);
  ++stats_.jobs_submitted;

  if (!csd_current_) {
    csd_current_ = job;
    if (!l2tfls_busy_ && !tmuwcf_busy_) start_job(job);
  } else if (!csd_queued_) {
    csd_queued_ = job;
  } else {
    err_stat_ |= ERR_CSD_QUEUE_OVERFLOW;
  }
}

void V3dGpu::start_job(const std::shared_ptr<CsdJob>& job) {
  job->started_flag = true;
  // Observers (an escape oracle) learn whether the job runs translated by the MMU.
  emit({BusEvent::Kind::JobStart, secure_.load() ? World::Secure : World::Normal, RegBlock::Core0,
        sku_.csd_queued_cfg0, (mmu_ctl_ & MMU_CTL_ENABLE) ? 1u : 0u, 0, 0, false});
  csd_->start(job);
}

void V3dGpu::on_job_done(const std::shared_ptr<CsdJob>& job) {
  events_.schedule_after(latency(timing_.csd_irq_ns), [this, job] { finish_csd(job); });
}

void V3dGpu::finish_csd(const std::shared_ptr<CsdJob>& job) {
  std::lock_guard lk(reg_mu_);
  if (csd_current_ != job) return;  // reset in between
  ++stats_.jobs_completed;
  stats_.workgroups += job->wgs_done.load();
  stats_.qpu_instructions += job->instructions.load();
  stats_.qpu_cycles += job->cycles.load();
  stats_.device_busy_ns += uint64_t(job->busy_ns.load());
  ++csd_completed_;
  raise_core(sku_.core_int_csd_done);
  csd_current_ = std::move(csd_queued_);
  csd_queued_.reset();
  if (csd_current_ && !l2tfls_busy_ && !tmuwcf_busy_) start_job(csd_current_);
}

void V3dGpu::on_qpu_fault(const std::shared_ptr<CsdJob>& job, uint32_t qpu, QpuResult) {
  std::lock_guard lk(reg_mu_);
  if (csd_current_ != job) return;
  err_stat_ |= ERR_QPU_FAULT;
  raise_core(bit(sku_.core_int_qpu_shift + qpu % 12));
  // The dispatch stays current and never completes: the driver's hang timer resets.
}

// ---- DMA path ----------------------------------------------------------------------

void V3dGpu::on_dma(uint64_t pa, uint32_t bytes, bool write) {
  if (BusTap* t = tap_.load(std::memory_order_relaxed))
    t->on_bus_event({write ? BusEvent::Kind::DmaWrite : BusEvent::Kind::DmaRead,
                     secure_.load() ? World::Secure : World::Normal, RegBlock::Hub, 0, 0, pa,
                     bytes, false});
}

uint8_t* V3dGpu::page(uint32_t vpn, GpuAccess access) {
  const bool write = access == GpuAccess::Write;
  MmuFault f;
  uint8_t* p = nullptr;
  {
    std::lock_guard lk(mem_mu_);
    uint64_t ppn = 0;
    f = mmu_.translate(vpn, write, mmu_cfg_, &ppn);
    if (f == MmuFault::None) {
      p = l2t_.frame(ppn, write);
    } else if (f != MmuFault::Bus) {
      const uint32_t abort_bit = f == MmuFault::PtInvalid        ? MMU_CTL_PT_INVALID_ABORT
                                 : f == MmuFault::WriteViolation ? MMU_CTL_WRITE_VIOLATION_ABORT
                                                                 : MMU_CTL_CAP_EXCEEDED_ABORT;
      const uint64_t scratch = illegal_addr_mem_ & mask(27, 0);
      if (!(mmu_ctl_mem_ & abort_bit) && (illegal_addr_mem_ & MMU_ILLEGAL_ADDR_ENABLE) &&
          mmu_.bus_allows(scratch, mmu_cfg_.gpu_secure))
        p = l2t_.frame(scratch, write);  // redirected to the scratch page
    }
  }
  if (f != MmuFault::None) report_mmu_fault(f, vpn, access);
  return p;
}

void V3dGpu::report_mmu_fault(MmuFault f, uint32_t vpn, GpuAccess access) {
  std::lock_guard lk(reg_mu_);
  vio_addr_ = vpn << PAGE_SHIFT;  // VA width 32: no shift (MMU_DEBUG_INFO)
  vio_id_ = uint32_t(access);
  switch (f) {
    case MmuFault::PtInvalid:
      ++stats_.mmu_faults;
      mmu_ctl_ |= MMU_CTL_PT_INVALID;
      if (mmu_ctl_ & MMU_CTL_PT_INVALID_INT) raise_hub(HUB_INT_MMU_PTI);
      break;
    case MmuFault::WriteViolation:
      ++stats_.mmu_faults;
      mmu_ctl_ |= MMU_CTL_WRITE_VIOLATION;
      if (mmu_ctl_ & MMU_CTL_WRITE_VIOLATION_INT) raise_hub(HUB_INT_MMU_WRV);
      break;
    case MmuFault::CapExceeded:
      ++stats_.mmu_faults;
      mmu_ctl_ |= MMU_CTL_CAP_EXCEEDED;
      if (mmu_ctl_ & MMU_CTL_CAP_EXCEEDED_INT) raise_hub(HUB_INT_MMU_CAP);
      break;
    case MmuFault::Bus:
      ++stats_.gmp_violations;
      if (sku_.hub_int_gmpv) raise_hub(sku_.hub_int_gmpv);
      else raise_core(sku_.core_int_gmpv);
      break;
    case MmuFault::None: break;
  }
}

// ---- power, reset, worlds ----------------------------------------------------------

uint32_t V3dGpu::read_sms(uint32_t off, bool* known) {
  if (off != SMS_REE_CS && off != SMS_TEE_CS) {
    *known = false;
    return 0;
  }
  const uint32_t mode = secure_.load() ? 1 : 0;
  return sms_state_ | set_field(mode, 7, 6) | set_field(mode, 5, 4);
}

std::chrono::nanoseconds V3dGpu::power_latency(uint32_t ns) {
  return latency(ns) + std::chrono::microseconds(faults_.power_delay_us.load());
}

bool V3dGpu::write_sms(World w, uint32_t off, uint32_t v) {
  const auto delay = [this](uint32_t ns) { return power_latency(ns); };
  if (off == SMS_REE_CS) {
    if ((v & SMS_STATE_MASK) == SMS_RESET_REQUEST && sms_state_ == SMS_IDLE) {
      // IDLE -> ISOLATING_FOR_RESET -> RESETTING -> IDLE, each step taking time.
      sms_state_ = SMS_ISOLATING_FOR_RESET;
      if (csd_current_) csd_current_->stop = true;
      events_.schedule_after(delay(timing_.reset_ns / 2), [this] {
        std::chrono::nanoseconds d;
        {
          std::lock_guard lk(reg_mu_);
          sms_state_ = SMS_RESETTING;
          power_ = Power::InReset;
          d = power_latency(timing_.reset_ns / 2);
        }
        events_.schedule_after(d, [this] { sms_transition(SMS_IDLE, true, true, false); });
      });
    }
    return true;
  }
  if (off != SMS_TEE_CS) return false;
  if (v & (SMS_SVP_MODE_ENTER | SMS_SVP_MODE_EXIT)) {
    if (w != World::Secure) {
      ++stats_.tz_violations;  // only the secure world may move the GPU between worlds
    } else if (!world_switching_ && bool(v & SMS_SVP_MODE_ENTER) != secure_.load()) {
      const bool to_secure = v & SMS_SVP_MODE_ENTER;
      world_switching_ = true;
      events_.schedule_after(latency(timing_.world_switch_ns),
                             [this, to_secure] { finish_world_switch(to_secure); });
    }
  }
  if ((v & SMS_CLEAR_POWER_OFF) && sms_state_ == SMS_POWER_OFF_STATE && !power_up_pending_) {
    power_up_pending_ = true;
    events_.schedule_after(delay(timing_.power_ns),
                           [this] { sms_transition(SMS_IDLE, true, true, false); });
  }
  if ((v & SMS_POWER_OFF) && sms_state_ == SMS_IDLE) {
    sms_state_ = SMS_ISOLATING_FOR_POWER_OFF;
    if (csd_current_) csd_current_->stop = true;
    events_.schedule_after(delay(timing_.power_ns / 2), [this] {
      sms_transition(SMS_POWER_OFF_STATE, true, false, true);
    });
  }
  return true;
}

void V3dGpu::sms_transition(uint32_t state_after, bool do_reset, bool power_on, bool power_off) {
  if (do_reset && power_on && FaultInjection::take(faults_.fail_resets)) {
    std::lock_guard lk(reg_mu_);
    power_up_pending_ = false;
    power_ = Power::Dead;  // stuck: the state machine never leaves RESETTING
    sms_state_ = SMS_RESETTING;
    return;
  }
  if (do_reset) full_reset();
  std::lock_guard lk(reg_mu_);
  if (power_on) power_up_pending_ = false;
  sms_state_ = state_after;
  if (power_on) power_ = Power::On;
  if (power_off) power_ = Power::Off;
}

bool V3dGpu::write_tzpc(uint32_t off, uint32_t v) {
  if (off != TZPC_GPU_SECURE) return false;
  const bool to_secure = v & 1;
  if (to_secure != secure_.load() && !world_switching_) {
    world_switching_ = true;
    events_.schedule_after(latency(timing_.world_switch_ns),
                           [this, to_secure] { finish_world_switch(to_secure); });
  }
  return true;
}

bool V3dGpu::write_mbox(World w, uint32_t off, uint32_t v) {
  // Each register has one writer; the other world's writes are ignored like writes to
  // a read-only register (not violations: both worlds may use the block).
  const bool secure = w == World::Secure;
  if (off == MBOX_CLAIM && secure) {
    if ((v & 1) != mbox_claim_) {
      mbox_claim_ = v & 1;
      mbox_event_ |= MBOX_EVENT_CLAIM_CHANGED;
    }
  } else if (off == MBOX_ACK && !secure) {
    mbox_ack_ = v & 1;
  } else if (off == MBOX_EVENT && !secure) {
    mbox_event_ &= ~v;
  } else if (off == MBOX_DEMAND && !secure) {
    mbox_demand_ = v & 1;
  } else {
    return false;
  }
  if (irq_.count() > sku_.mbox_irq_line()) irq_.set_level(sku_.mbox_irq_line(), mbox_event_ != 0);
  return true;
}

void V3dGpu::finish_world_switch(bool to_secure) {
  // Nothing of one world's GPU state may survive into the other: stop, drop caches
  // and TLB without write-back, reset every register.
  full_reset();
  secure_.store(to_secure);
  irq_.set_delivery(to_secure);
  std::lock_guard lk(reg_mu_);
  sync_mmu_config();
  world_switching_ = false;
  ++stats_.world_switches;
}

void V3dGpu::full_reset() {
  {
    std::lock_guard lk(reg_mu_);
    if (csd_current_) csd_current_->stop = true;
    if (csd_queued_) csd_queued_->stop = true;
    csd_current_.reset();
    csd_queued_.reset();
  }
  csd_->abort();
  {
    std::unique_lock ex(exec_mu_);
    {
      std::lock_guard lk(mem_mu_);
      mmu_.reset();
      l2t_.invalidate(0, ~uint64_t(0), false);
    }
    bump_generation();
  }
  std::lock_guard lk(reg_mu_);
  reset_registers();
  ++epoch_;
  ++stats_.resets;
}

void V3dGpu::reset_registers() {
  axicfg_ = uifcfg_ = 0;
  hub_int_ = IntGroup{};
  core_int_ = IntGroup{};
  mmuc_control_ = 0;
  mmuc_flushing_ = false;
  mmu_ctl_ = 0;
  tlb_clearing_ = false;
  pt_base_ = addr_cap_ = illegal_addr_ = bypass_start_ = bypass_end_ = 0;
  vio_id_ = vio_addr_ = 0;
  misccfg_ = l2cactl_ = l2tcactl_flm_ = 0;
  l2tflsta_ = 0;
  l2tflend_ = 0;
  l2tfls_busy_ = tmuwcf_busy_ = false;
  account_maintenance();
  err_stat_ = 0;
  pctr_en_ = pctr_overflow_ = 0;
  std::fill(std::begin(pctr_src_), std::end(pctr_src_), 0);
  std::fill(std::begin(pctr_base_), std::end(pctr_base_), 0);
  std::fill(std::begin(pctr_frozen_), std::end(pctr_frozen_), 0);
  std::fill(std::begin(csd_cfg_), std::end(csd_cfg_), 0);
  csd_completed_ = 0;
  update_irq_lines();
  sync_mmu_config();
}

GpuStats V3dGpu::stats() {
  std::lock_guard lk(reg_mu_);
  GpuStats s = stats_;
  std::lock_guard mk(mem_mu_);
  s.tlb_hits = mmu_.tlb_hits();
  s.tlb_misses = mmu_.tlb_misses();
  s.l2t_hits = l2t_.hits();
  s.l2t_misses = l2t_.misses();
  s.l2t_writebacks = l2t_.pages_written_back();
  s.modeled_busy_ns = s.qpu_cycles * 1000 / (uint64_t(sku_.num_qpus()) * sku_.clock_mhz);
  return s;
}

}  // namespace rplayer::hw
