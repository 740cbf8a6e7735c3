// Interrupt threads and handlers (after Linux v3d_irq.c): CSD completion and QPU errors
// from the core, MMU faults from the hub.
#include "driver/v3d_driver.h"
#include "hw/v3d_regs.h"

namespace rplayer::driver {

using namespace rplayer::v3d;

void V3dDriver::irq_loop(int line) {
  const bool shared = sku_->num_irq_lines == 1;
  while (!stop_) {
    if (!io_.wait_irq(line, opts_.irq_poll)) continue;
    std::shared_lock g(gate_mu_);
    if (gpu_away_) {
      // Not ours (masked before the suspend, delivered to the secure world after the
      // switch): nothing to handle, and the registers must not be touched.
      g.unlock();
      std::this_thread::sleep_for(opts_.irq_poll);
      continue;
    }
    // Hub first: the core's CSDDONE wakes the submission thread, which then talks to the
    // GPU; acting on it last keeps a shared line's accesses in one order (a recording made
    // over a network must equal one made locally).
    if (shared || line == 0) handle_hub_irq();
    if (shared || line == core_line()) handle_core_irq();
  }
}

void V3dDriver::handle_core_irq() {
  // v3d_irq(): read the status, acknowledge it, then act.
  std::lock_guard ck(core_irq_mu_);
  const uint32_t sts = io_.read(RegBlock::Core0, INT_STS);
  if (!sts) return;
  io_.write(RegBlock::Core0, INT_CLR, sts);
  std::lock_guard lk(job_mu_);
  if (sts & sku_->core_int_csd_done) csd_done_ = true;
  const uint32_t qpu_bits = sku_->core_qpu_fault_bits();
  if (sts & sku_->core_fault_bits()) {
    csd_error_ = true;
    JobFault f;
    f.seqno = started_seqno_;
    f.qpu_error = sts & qpu_bits;
    f.hub_status = sts;
    faults_.push_back(f);
  }
  csd_cv_.notify_all();
}

void V3dDriver::handle_hub_irq() {
  std::lock_guard hk(hub_irq_mu_);
  handle_hub_irq_locked();
}

void V3dDriver::handle_hub_irq_locked() {
  const uint32_t sts = io_.read(RegBlock::Hub, INT_STS);
  if (!sts) return;
  io_.write(RegBlock::Hub, INT_CLR, sts);
  if (!(sts & sku_->hub_fault_bits())) return;
  // v3d_hub_irq(): report the faulting address, then clear the MMU error bits by
  // writing MMU_CTL back to itself. Aborted accesses let the job finish.
  JobFault f;
  f.va = io_.read(RegBlock::Hub, MMU_VIO_ADDR, ReadUse::Informational);
  f.vio_id = io_.read(RegBlock::Hub, MMU_VIO_ID, ReadUse::Informational);
  f.hub_status = sts;
  io_.write(RegBlock::Hub, MMU_CTL, io_.read(RegBlock::Hub, MMU_CTL));
  std::lock_guard lk(job_mu_);
  f.seqno = started_seqno_;  // one job at a time: the fault is the last started job's
  faults_.push_back(f);
  ++stats_.mmu_faults;
}

}  // namespace rplayer::driver
