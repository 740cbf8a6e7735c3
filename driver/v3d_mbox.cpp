// The GPU ownership mailbox (docs/hw.md): announcing the driver at probe, and handing the
// GPU to the secure world and taking it back (suspend and resume) on the mailbox thread.
#include "driver/v3d_driver.h"
#include "hw/v3d_regs.h"

namespace rplayer::driver {

using namespace rplayer::v3d;

// Before touching the GPU: MBOX_ACK = 0 says a driver holds it, so claims from now on
// wait for our acknowledgement (the mailbox thread gives it once running). A claim made
// before that (CLAIM already 1) is waited out with the GPU left alone. The secure world
// writes CLAIM before reading ACK and we write ACK before reading CLAIM, so one of us
// always sees the other.
bool V3dDriver::announce(std::string* error) {
  bool demanded = false;
  for (int attempt = 0; attempt < 4; ++attempt) {  // bounded: each wait is bounded too
    io_.write(RegBlock::Mbox, MBOX_ACK, 0);
    if (!(io_.read(RegBlock::Mbox, MBOX_CLAIM) & 1)) {
      if (demanded) io_.write(RegBlock::Mbox, MBOX_DEMAND, 0);
      return true;
    }
    io_.write(RegBlock::Mbox, MBOX_ACK, 1);  // free while we wait
    // A driver waiting to start is GPU work waiting: at its next release a busy secure world
    // leaves the normal world its share before claiming again (FairShare), instead of
    // starving the probe.
    io_.write(RegBlock::Mbox, MBOX_DEMAND, 1);
    demanded = true;
    if (!io_.poll(RegBlock::Mbox, MBOX_CLAIM, 1, 0, opts_.secure_wait)) break;
  }
  *error = "the secure world holds the GPU (probe gave up waiting for its release)";
  return false;
}

void V3dDriver::mbox_loop() {
  const int line = sku_->mbox_irq_line();
  bool retry = false;  // a resume failed: try again on the next tick without an event
  while (!mbox_stop_) {
    const bool event = io_.wait_irq(line, opts_.irq_poll);
    if (!event && !retry) continue;
    if (event) {
      // Acknowledge before acting: a CLAIM change after this raises the line again, and
      // the handler acts on CLAIM's current level, not on the number of changes.
      const uint32_t ev = io_.read(RegBlock::Mbox, MBOX_EVENT);
      if (ev) io_.write(RegBlock::Mbox, MBOX_EVENT, ev);
    }
    retry = !handle_mailbox();
    io_.on_lock_released();  // a deferring HwIo must deliver the answer now
  }
}

bool V3dDriver::handle_mailbox() {
  if (io_.read(RegBlock::Mbox, MBOX_CLAIM) & 1) {
    claim_seen_ = true;
    if (!gpu_away()) suspend();
    // A release that came while we quiesced gets no ack: its event resumes us next.
    if (io_.read(RegBlock::Mbox, MBOX_CLAIM) & 1) io_.write(RegBlock::Mbox, MBOX_ACK, 1);
    return true;
  }
  if (!gpu_away()) {
    // A claim and its release both passed before we looked (busy, or not loaded yet).
    // If the GPU went to the secure world meanwhile, the switch reset it: the page table
    // base is gone. Then start over as after a suspend.
    const uint32_t pt_base = io_.read(RegBlock::Hub, MMU_PT_PA_BASE, ReadUse::Informational);
    if (pt_base == uint32_t(pt_pa_ >> PAGE_SHIFT)) {
      io_.write(RegBlock::Mbox, MBOX_ACK, 0);
      return true;
    }
    suspend();
  }
  if (!resume()) return false;
  bool told;
  {
    std::lock_guard lk(job_mu_);
    told = demand_told_;
    demand_told_ = false;
  }
  if (told) io_.write(RegBlock::Mbox, MBOX_DEMAND, 0);
  io_.write(RegBlock::Mbox, MBOX_ACK, 0);
  return true;
}

void V3dDriver::suspend() {
  {
    std::unique_lock lk(job_mu_);
    suspending_ = true;  // nothing new is dispatched; submissions queue up
    suspend_start_ = std::chrono::steady_clock::now();
    // The job on the GPU finishes, or fails and resets, within its own hang timer.
    done_cv_.wait(lk, [&] { return running_seqno_ == 0; });
  }
  bool taken;
  {
    // Waits out interrupt handlers and MMU flushes in progress; later ones see
    // gpu_away_ and keep off the registers.
    std::unique_lock g(gate_mu_);
    // Reads 0 if the secure world already switched without waiting for us.
    taken = io_.read(RegBlock::Hub, HUB_IDENT1, ReadUse::Informational) != sku_->hub_ident1;
    // No interrupt of ours may be pending into the secure session or the switch.
    io_.write(RegBlock::Core0, INT_MSK_SET, ~0u);
    io_.write(RegBlock::Hub, INT_MSK_SET, ~0u);
    gpu_away_ = true;
  }
  io_.on_lock_released();
  bool tell_demand;
  {
    std::lock_guard lk(job_mu_);
    ++stats_.suspends;
    if (taken) ++stats_.forced_takeovers;
    // Jobs left in the queue wait for the secure world: say so (before our ACK), as a
    // submission during the suspension does.
    tell_demand = !queue_.empty() && !demand_told_;
    if (tell_demand) demand_told_ = true;
  }
  if (tell_demand) io_.write(RegBlock::Mbox, MBOX_DEMAND, 1);
}

bool V3dDriver::gpu_is_back() {
  // Every normal-world read returns 0 while the GPU is secure or switching.
  if (io_.poll(RegBlock::Hub, HUB_IDENT1, ~0u, sku_->hub_ident1, opts_.resume_timeout)) return true;
  // A 7.1 the secure world left powered off reads 0 too; its SMS state tells them apart
  // (0 = IDLE is also what a refused read returns).
  return io_.has_block(RegBlock::Sms) &&
         (io_.read(RegBlock::Sms, SMS_TEE_CS) & SMS_STATE_MASK) != SMS_IDLE;
}

bool V3dDriver::resume() {
  {
    std::unique_lock g(gate_mu_);
    // The secure world releases only once the GPU is back; check anyway: writes to it
    // before would be refused (violations) and the init lost.
    if (!gpu_is_back()) return false;
    // Exactly as after probe: power (SMS reset on 7.1), MMU, cache range, interrupts.
    std::string err;
    if (!power_up(&err) || !init_hw_state()) return false;
    gpu_away_ = false;
  }
  {
    std::lock_guard lk(job_mu_);
    csd_completed_ = 0;  // the hardware's completed-job counter restarted
    suspending_ = false;
    claim_seen_ = false;
    ++stats_.resumes;
    stats_.suspended_us += uint64_t(std::chrono::duration_cast<std::chrono::microseconds>(
                                        std::chrono::steady_clock::now() - suspend_start_)
                                        .count());
  }
  job_cv_.notify_all();
  return true;
}

}  // namespace rplayer::driver
