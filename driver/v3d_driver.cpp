// V3dDriver's probe and remove (after Linux v3d_drv.c): power-up, SKU identification,
// the page table's place in memory, the hardware state every (re)start sets up, the driver
// threads, errors and statistics, and the get_param ioctl. The rest of the class lives in
// v3d_bo.cpp, v3d_sched.cpp, v3d_irq.cpp and v3d_mbox.cpp.
#include "driver/v3d_driver.h"

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "hw/v3d_regs.h"

namespace rplayer::driver {

using namespace rplayer::v3d;

namespace {
constexpr uint64_t kPageTableBytes = 4u << 20;  // 1M PTEs: the whole 4 GiB VA space
constexpr uint64_t kPageTableOffset = 1u << 20;  // the window's first MiB stays with firmware
constexpr uint32_t kVaStart = 0x10000;          // GPU page 0 is never used
constexpr uint64_t kVaEnd = 1ull << 32;
}  // namespace

std::unique_ptr<V3dDriver> V3dDriver::probe(HwIo& io, const DriverOptions& opts,
                                            std::string* error) {
  std::unique_ptr<V3dDriver> d(new V3dDriver(io, opts));
  std::string err;
  if (!d->init(&err)) {
    if (error) *error = err;
    return nullptr;
  }
  return d;
}

V3dDriver::V3dDriver(HwIo& io, const DriverOptions& opts) : io_(io), opts_(opts) {}

bool V3dDriver::power_up(std::string* error) {
  // The platform tells the generation (Linux: the device-tree match data): an SMS block
  // means V3D 7.x, which starts powered off behind it.
  if (!io_.has_block(RegBlock::Sms)) return true;
  io_.write(RegBlock::Sms, SMS_TEE_CS, SMS_CLEAR_POWER_OFF);
  if (!io_.poll(RegBlock::Sms, SMS_TEE_CS, SMS_STATE_MASK, SMS_IDLE, opts_.poll_timeout)) {
    *error = "GPU power-up timed out: SMS TEE_CS never reached IDLE";
    return false;
  }
  if (!reset_sms()) {
    *error = "GPU reset timed out: SMS REE_CS stuck in reset";
    return false;
  }
  return true;
}

bool V3dDriver::reset_sms() {
  io_.write(RegBlock::Sms, SMS_REE_CS, set_field(SMS_RESET_REQUEST, 3, 0));
  return io_.poll(RegBlock::Sms, SMS_REE_CS, SMS_STATE_MASK, SMS_IDLE, opts_.poll_timeout);
}

bool V3dDriver::init(std::string* error) {
  mem_ = io_.memory();
  if (io_.has_block(RegBlock::Mbox) && !announce(error)) return false;
  if (!power_up(error)) return false;

  const uint32_t hub1 = io_.read(RegBlock::Hub, HUB_IDENT1);
  const uint32_t hub3 = io_.read(RegBlock::Hub, HUB_IDENT3);
  const uint32_t core0 = io_.read(RegBlock::Core0, CTL_IDENT0);
  const uint32_t core1 = io_.read(RegBlock::Core0, CTL_IDENT1);
  sku_ = hw::identify_sku(hub1, hub3, core0, core1);
  if (!sku_) {
    char buf[200];
    std::snprintf(buf, sizeof buf,
                  "unsupported GPU: V3D %u.%u.%u (HUB_IDENT1=0x%08x HUB_IDENT3=0x%08x "
                  "CTL_IDENT0=0x%08x CTL_IDENT1=0x%08x); supported: v3d-7.1, v3d-4.2",
                  get_field(hub1, 3, 0), get_field(hub1, 7, 4), get_field(hub3, 15, 8), hub1,
                  hub3, core0, core1);
    *error = buf;
    return false;
  }
  if (!(io_.read(RegBlock::Hub, HUB_IDENT2) & bit(8))) {
    *error = "GPU has no MMU";
    return false;
  }

  // Physical memory: page table and scratch page at fixed offsets into the window (which
  // need not start at PA 0: a cloud driver's window is the device's pool), the rest to the
  // page allocator.
  const uint64_t reserved = kPageTableOffset + kPageTableBytes + PAGE_SIZE;
  if (mem_.size < reserved + (16u << 20)) {
    *error = "not enough physical memory for the GPU";
    return false;
  }
  pt_pa_ = mem_.pa_base + kPageTableOffset;
  scratch_pa_ = pt_pa_ + kPageTableBytes;
  pt_ = reinterpret_cast<uint32_t*>(mem_.at(pt_pa_));
  std::memset(pt_, 0, kPageTableBytes);
  std::memset(mem_.at(scratch_pa_), 0, PAGE_SIZE);
  const uint64_t first = mem_.pa_base + reserved;
  pages_ = std::make_unique<PageAllocator>(first, (mem_.pa_base + mem_.size - first) / PAGE_SIZE);
  vas_ = std::make_unique<VaAllocator>(kVaStart, kVaEnd);

  if (!init_hw_state()) {
    *error = "GPU MMU flush timed out during probe";
    return false;
  }
  scheduler_ = std::thread([this] { scheduler_loop(); });
  for (int l = 0; l < sku_->num_irq_lines; ++l)
    irq_threads_.emplace_back([this, l] { irq_loop(l); });
  // The ownership mailbox, if the platform has one (the modeled SoC). Its line is
  // delivered to the normal world only, so a driver in the secure world never acts on it.
  if (io_.has_block(RegBlock::Mbox) && io_.num_irq_lines() > sku_->mbox_irq_line())
    mbox_thread_ = std::thread([this] { mbox_loop(); });
  return true;
}

bool V3dDriver::init_hw_state() {
  // v3d_mmu_set_page_table()
  io_.write(RegBlock::Hub, MMU_PT_PA_BASE, uint32_t(pt_pa_ >> PAGE_SHIFT));
  io_.write(RegBlock::Hub, MMU_CTL,
            MMU_CTL_ENABLE | MMU_CTL_PT_INVALID_ENABLE | MMU_CTL_PT_INVALID_ABORT |
                MMU_CTL_PT_INVALID_INT | MMU_CTL_WRITE_VIOLATION_ABORT |
                MMU_CTL_WRITE_VIOLATION_INT | MMU_CTL_CAP_EXCEEDED_ABORT |
                MMU_CTL_CAP_EXCEEDED_INT);
  io_.write(RegBlock::Hub, MMU_ILLEGAL_ADDR,
            uint32_t(scratch_pa_ >> PAGE_SHIFT) | MMU_ILLEGAL_ADDR_ENABLE);
  io_.write(RegBlock::Hub, MMUC_CONTROL, MMUC_CONTROL_ENABLE);
  // v3d_init_hw_state(): the L2T flush range covers everything.
  io_.write(RegBlock::Core0, CTL_L2TFLSTA, 0);
  io_.write(RegBlock::Core0, CTL_L2TFLEND, ~0u);
  // v3d_irq_enable(): mask everything, then unmask what the driver handles.
  const uint32_t core_bits = sku_->core_handled_bits();
  const uint32_t hub_bits = sku_->hub_fault_bits();
  io_.write(RegBlock::Core0, INT_MSK_SET, ~core_bits);
  io_.write(RegBlock::Core0, INT_MSK_CLR, core_bits);
  io_.write(RegBlock::Hub, INT_MSK_SET, ~hub_bits);
  io_.write(RegBlock::Hub, INT_MSK_CLR, hub_bits);
  return flush_mmu_hw();
}

V3dDriver::~V3dDriver() {
  // Hand-offs end first (a suspend or resume in progress completes, each bounded); a
  // later claim goes unanswered and the secure world switches after its timeout.
  mbox_stop_ = true;
  mbox_thread_started_ = mbox_thread_.joinable();
  if (mbox_thread_.joinable()) mbox_thread_.join();
  if (scheduler_.joinable()) {
    {
      std::unique_lock lk(job_mu_);
      done_cv_.wait(lk, [&] { return running_seqno_ == 0; });
      if (suspending_) {
        // The GPU is with the secure world and nobody will resume: queued jobs cannot run.
        for (const Job& j : queue_) {
          job_errors_[j.seqno] = {-ENODEV, "driver removed while the secure world owned the GPU"};
          completed_seqno_ = std::max(completed_seqno_, j.seqno);
          ++stats_.jobs_failed;
        }
        queue_.clear();
        done_cv_.notify_all();
      }
      // Let queued jobs finish (each is bounded by the hang timer), then stop.
      done_cv_.wait(lk, [&] { return queue_.empty() && running_seqno_ == 0; });
      stop_ = true;
    }
    job_cv_.notify_all();
    scheduler_.join();
  }
  stop_ = true;
  for (auto& t : irq_threads_) t.join();
  for (auto& [h, bo] : bos_)
    if (bo->cpu) munmap(bo->cpu, bo->info.size);
  if (sku_ && io_.has_block(RegBlock::Sms) && !gpu_away()) {
    // v3d_power_off_sms()
    io_.write(RegBlock::Sms, SMS_TEE_CS, SMS_POWER_OFF);
    io_.poll(RegBlock::Sms, SMS_TEE_CS, SMS_STATE_MASK, SMS_POWER_OFF_STATE, opts_.poll_timeout);
  }
  // Nobody in the normal world holds the GPU any more: a claim need not wait.
  if (mbox_thread_started_) io_.write(RegBlock::Mbox, MBOX_ACK, 1);
}

namespace {
// Like errno: each calling thread sees the error of its own last call.
thread_local std::string t_last_error;
}  // namespace

int V3dDriver::fail(int err, std::string msg) {
  t_last_error = std::move(msg);
  return err;
}

std::string V3dDriver::last_error() const { return t_last_error; }

std::vector<JobFault> V3dDriver::faults() const {
  std::lock_guard lk(job_mu_);
  return faults_;
}

DriverStats V3dDriver::stats() const {
  DriverStats s;
  {
    std::lock_guard lk(job_mu_);
    s = stats_;
  }
  std::lock_guard lk(bo_mu_);
  s.bos_live = bos_.size();
  return s;
}

// ---- ioctls ------------------------------------------------------------------------

int V3dDriver::get_param(Param p, uint64_t* value) {
  // While the secure world has the GPU its registers read 0 (and count as violations):
  // answer from the SKU, which matched these registers at probe.
  std::shared_lock g(gate_mu_);
  const bool away = gpu_away_;
  auto ident = [&](RegBlock b, uint32_t off, uint32_t sku_value) -> uint64_t {
    return away ? sku_value : io_.read(b, off);
  };
  switch (p) {
    case Param::HubIdent1:
      *value = ident(RegBlock::Hub, HUB_IDENT1, sku_->hub_ident1);
      return 0;
    case Param::HubIdent2:
      *value = ident(RegBlock::Hub, HUB_IDENT2, sku_->hub_ident2);
      return 0;
    case Param::HubIdent3:
      *value = ident(RegBlock::Hub, HUB_IDENT3, sku_->hub_ident3);
      return 0;
    case Param::CoreIdent0:
      *value = ident(RegBlock::Core0, CTL_IDENT0, sku_->core_ident0);
      return 0;
    case Param::CoreIdent1:
      *value = ident(RegBlock::Core0, CTL_IDENT1, sku_->core_ident1);
      return 0;
    case Param::CoreIdent2:
      *value = ident(RegBlock::Core0, CTL_IDENT2, sku_->core_ident2);
      return 0;
    case Param::SupportsCsd:
      *value = 1;
      return 0;
    case Param::NumQpus:
      *value = uint64_t(sku_->num_qpus());
      return 0;
    case Param::SharedBytes:
      *value = sku_->shared_bytes;
      return 0;
    case Param::Cfg4MinusOne:
      *value = sku_->csd_cfg4_minus_one;
      return 0;
  }
  return fail(-EINVAL, "get_param: unknown parameter " + std::to_string(uint32_t(p)));
}

}  // namespace rplayer::driver
