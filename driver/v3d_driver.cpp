#include "driver/v3d_driver.h"

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
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
  for (int l = 0; l < sku_->num_irq_lines; ++l) irq_threads_.emplace_back([this, l] { irq_loop(l); });
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
  const uint32_t core_bits = sku_->core_int_csd_done | sku_->core_fault_bits();
  const uint32_t hub_bits = sku_->hub_fault_bits();
  io_.write(RegBlock::Core0, INT_MSK_SET, ~core_bits);
  io_.write(RegBlock::Core0, INT_MSK_CLR, core_bits);
  io_.write(RegBlock::Hub, INT_MSK_SET, ~hub_bits);
  io_.write(RegBlock::Hub, INT_MSK_CLR, hub_bits);
  return flush_mmu_hw();
}

bool V3dDriver::flush_mmu() {
  // While the secure world has the GPU its TLB is not ours to flush, and the resume
  // re-initializes the MMU (flush included) before any job runs.
  std::shared_lock g(gate_mu_);
  if (gpu_away_) return true;
  return flush_mmu_hw();
}

bool V3dDriver::flush_mmu_hw() {
  bool ok;
  {
    std::lock_guard lk(mmu_mu_);
    // v3d_mmu_flush_all(): the PTE cache first, then the TLB.
    io_.write(RegBlock::Hub, MMUC_CONTROL, MMUC_CONTROL_FLUSH | MMUC_CONTROL_ENABLE);
    ok = io_.poll(RegBlock::Hub, MMUC_CONTROL, MMUC_CONTROL_FLUSHING, 0, opts_.poll_timeout);
    if (ok) {
      io_.write(RegBlock::Hub, MMU_CTL, io_.read(RegBlock::Hub, MMU_CTL) | MMU_CTL_TLB_CLEAR);
      ok = io_.poll(RegBlock::Hub, MMU_CTL, MMU_CTL_TLB_CLEARING, 0, opts_.poll_timeout);
    }
  }
  // Another thread may touch the hardware now: a deferring HwIo must commit here.
  io_.on_lock_released();
  std::lock_guard jk(job_mu_);
  ++stats_.mmu_flushes;
  return ok;
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
    case Param::HubIdent1: *value = ident(RegBlock::Hub, HUB_IDENT1, sku_->hub_ident1); return 0;
    case Param::HubIdent2: *value = ident(RegBlock::Hub, HUB_IDENT2, sku_->hub_ident2); return 0;
    case Param::HubIdent3: *value = ident(RegBlock::Hub, HUB_IDENT3, sku_->hub_ident3); return 0;
    case Param::CoreIdent0: *value = ident(RegBlock::Core0, CTL_IDENT0, sku_->core_ident0); return 0;
    case Param::CoreIdent1: *value = ident(RegBlock::Core0, CTL_IDENT1, sku_->core_ident1); return 0;
    case Param::CoreIdent2: *value = ident(RegBlock::Core0, CTL_IDENT2, sku_->core_ident2); return 0;
    case Param::SupportsCsd: *value = 1; return 0;
    case Param::NumQpus: *value = uint64_t(sku_->num_qpus()); return 0;
    case Param::SharedBytes: *value = sku_->shared_bytes; return 0;
    case Param::Cfg4MinusOne: *value = sku_->csd_cfg4_minus_one; return 0;
  }
  return fail(-EINVAL, "get_param: unknown parameter " + std::to_string(uint32_t(p)));
}

int V3dDriver::create_bo(CreateBo& args) {
  if (args.size == 0 || args.size > (1u << 30))
    return fail(-EINVAL, "create_bo: size " + std::to_string(args.size) + " out of range");
  if (mem_.fd < 0) return fail(-ENODEV, "create_bo: physical memory cannot be mapped");
  const uint32_t size = (args.size + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
  const uint32_t npages = size / PAGE_SIZE;
  auto bo = std::make_unique<Bo>();
  {
    std::lock_guard lk(bo_mu_);
    auto pages = pages_->alloc(npages);
    if (!pages) return fail(-ENOMEM, "create_bo: out of GPU memory for '" + args.label + "'");
    auto va = vas_->alloc(size);
    if (!va) {
      pages_->free(*pages);
      return fail(-ENOMEM, "create_bo: out of GPU address space");
    }
    bo->pages = std::move(*pages);
    bo->info.gpu_va = *va;
  }
  // CPU view: reserve a contiguous range, then map each physical page into it.
  void* base = mmap(nullptr, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  bool mapped = base != MAP_FAILED;
  for (uint32_t i = 0; mapped && i < npages;) {
    uint32_t j = i + 1;
    while (j < npages && bo->pages[j] == bo->pages[i] + uint64_t(j - i) * PAGE_SIZE) ++j;
    void* p = mmap(static_cast<uint8_t*>(base) + size_t(i) * PAGE_SIZE, size_t(j - i) * PAGE_SIZE,
                   PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, mem_.fd,
                   off_t(bo->pages[i] - mem_.pa_base));
    mapped = p != MAP_FAILED;
    i = j;
  }
  if (!mapped) {
    if (base != MAP_FAILED) munmap(base, size);
    std::lock_guard lk(bo_mu_);
    pages_->free(bo->pages);
    vas_->free(bo->info.gpu_va, size);
    return fail(-ENOMEM, std::string("create_bo: mmap failed: ") + std::strerror(errno));
  }
  bo->cpu = static_cast<uint8_t*>(base);
  std::memset(bo->cpu, 0, size);  // never hand out another buffer's old contents

  bo->label = args.label;
  bo->info.size = size;
  bo->info.usage = args.usage;
  bo->info.gpu_writable = args.gpu_writable;
  bo->info.label = bo->label;
  bo->info.pages = bo->pages.data();
  bo->info.num_pages = npages;
  if (args.has_weight_source) {
    bo->weight_model = args.weight_model;
    bo->weight_source = {bo->weight_model, args.weight_offset, args.weight_length};
    bo->info.weight_source = &bo->weight_source;
  }
  {
    std::lock_guard lk(bo_mu_);
    bo->info.handle = next_handle_++;
    const uint32_t flags = PTE_VALID | (args.gpu_writable ? PTE_WRITEABLE : 0);
    for (uint32_t i = 0; i < npages; ++i)
      pt_[(bo->info.gpu_va >> PAGE_SHIFT) + i] = flags | uint32_t(bo->pages[i] >> PAGE_SHIFT);
  }
  if (!flush_mmu()) {
    // Undo everything: the PTEs first (the next successful flush, which every later
    // buffer's creation needs before its first use, publishes them cleared), then the
    // CPU mapping, the pages and the VA range. Nothing references this range yet.
    {
      std::lock_guard lk(bo_mu_);
      for (uint32_t i = 0; i < npages; ++i) pt_[(bo->info.gpu_va >> PAGE_SHIFT) + i] = 0;
    }
    munmap(bo->cpu, size);
    std::lock_guard lk(bo_mu_);
    pages_->free(bo->pages);
    vas_->free(bo->info.gpu_va, size);
    return fail(-ETIMEDOUT, "create_bo: MMU flush timed out for '" + args.label + "'");
  }
  io_.on_bo_mapped(bo->info);
  args.handle = bo->info.handle;
  args.gpu_va = bo->info.gpu_va;
  std::lock_guard lk(bo_mu_);
  bos_[args.handle] = std::move(bo);
  return 0;
}

int V3dDriver::mmap_bo(uint32_t handle, uint8_t** ptr, uint32_t* size) {
  std::lock_guard lk(bo_mu_);
  auto it = bos_.find(handle);
  if (it == bos_.end()) return fail(-ENOENT, "mmap_bo: no BO " + std::to_string(handle));
  *ptr = it->second->cpu;
  *size = it->second->info.size;
  return 0;
}

const BoInfo* V3dDriver::bo_info(uint32_t handle) {
  std::lock_guard lk(bo_mu_);
  auto it = bos_.find(handle);
  return it == bos_.end() ? nullptr : &it->second->info;
}

int V3dDriver::free_bo(uint32_t handle) {
  uint64_t last;
  {
    std::lock_guard lk(bo_mu_);
    auto it = bos_.find(handle);
    if (it == bos_.end()) return fail(-ENOENT, "free_bo: no BO " + std::to_string(handle));
    last = it->second->last_seqno;
  }
  // The GPU may still use it: wait for its last job (bounded by the hang timer).
  if (last) wait_seqno(last, Micros(std::chrono::seconds(30)));
  std::unique_ptr<Bo> bo;
  {
    std::lock_guard lk(bo_mu_);
    auto it = bos_.find(handle);
    if (it == bos_.end()) return fail(-ENOENT, "free_bo: no BO " + std::to_string(handle));
    bo = std::move(it->second);
    bos_.erase(it);
    for (uint32_t i = 0; i < bo->info.num_pages; ++i)
      pt_[(bo->info.gpu_va >> PAGE_SHIFT) + i] = 0;
  }
  const bool flushed = flush_mmu();
  io_.on_bo_unmapped(bo->info);
  munmap(bo->cpu, bo->info.size);
  {
    std::lock_guard lk(bo_mu_);
    pages_->free(bo->pages);
    vas_->free(bo->info.gpu_va, bo->info.size);
  }
  return flushed ? 0 : fail(-ETIMEDOUT, "free_bo: MMU flush timed out");
}

int V3dDriver::submit_csd(SubmitCsd& args) {
  {
    std::lock_guard lk(bo_mu_);
    for (uint32_t h : args.bo_handles)
      if (!bos_.count(h)) return fail(-ENOENT, "submit_csd: no BO " + std::to_string(h));
  }
  const uint32_t wg_size = (args.cfg[3] & 0xff) ? (args.cfg[3] & 0xff) : 256;
  const uint64_t batches = uint64_t((wg_size + 15) / 16) * (args.cfg[0] >> 16) *
                           (args.cfg[1] >> 16) * (args.cfg[2] >> 16);
  if (batches == 0 || uint64_t(args.cfg[4]) + 1 != batches)
    return fail(-EINVAL, "submit_csd: CFG4 (" + std::to_string(args.cfg[4]) +
                             ") is not the batch count minus one (" +
                             std::to_string(batches) + " batches)");
  bool tell_demand = false;
  {
    std::lock_guard lk(job_mu_);
    Job job{args, next_seqno_++};
    args.seqno = job.seqno;
    {
      std::lock_guard bk(bo_mu_);
      for (uint32_t h : args.bo_handles) bos_[h]->last_seqno = job.seqno;
    }
    queue_.push_back(std::move(job));
    ++stats_.jobs_submitted;
    job_cv_.notify_all();
    // Work waits for the secure world: say so once per hand-off, so that it can leave us
    // our share of the GPU before it claims it again (MBOX_DEMAND, docs/hw.md).
    tell_demand = suspending_ && !demand_told_;  // suspensions come from the mailbox
    if (tell_demand) demand_told_ = true;
  }
  if (tell_demand) io_.write(RegBlock::Mbox, MBOX_DEMAND, 1);
  return 0;
}

int V3dDriver::wait_seqno(uint64_t seqno, Micros timeout) {
  std::unique_lock lk(job_mu_);
  if (!done_cv_.wait_for(lk, timeout, [&] { return completed_seqno_ >= seqno; })) {
    t_last_error = "wait: job " + std::to_string(seqno) + " not done in time";
    return -ETIMEDOUT;
  }
  auto it = job_errors_.find(seqno);
  if (it != job_errors_.end()) {
    t_last_error = "job " + std::to_string(seqno) + " failed: " + it->second.message;
    return it->second.err;
  }
  return 0;
}

int V3dDriver::wait_bo(uint32_t handle, Micros timeout) {
  uint64_t last;
  {
    std::lock_guard lk(bo_mu_);
    auto it = bos_.find(handle);
    if (it == bos_.end()) return fail(-ENOENT, "wait_bo: no BO " + std::to_string(handle));
    last = it->second->last_seqno;
  }
  return last ? wait_seqno(last, timeout) : 0;
}

// ---- job execution (submission thread) --------------------------------------------

void V3dDriver::invalidate_caches() {
  // v3d_invalidate_caches(): the hardware stalls L2T accesses until the flush is done,
  // so there is no wait; then the slice caches (instructions, uniforms, texture).
  io_.write(RegBlock::Core0, CTL_L2TCACTL,
            L2TCACTL_L2TFLS | (L2TCACTL_FLM_FLUSH << L2TCACTL_FLM_SHIFT));
  io_.write(RegBlock::Core0, CTL_SLCACTL, 0x0f0f0f0f);
}

bool V3dDriver::clean_caches() {
  // v3d_clean_caches(): drain the TMU write combiner, then write the L2T back.
  io_.write(RegBlock::Core0, CTL_L2TCACTL, L2TCACTL_TMUWCF);
  if (!io_.poll(RegBlock::Core0, CTL_L2TCACTL, L2TCACTL_TMUWCF, 0, opts_.poll_timeout))
    return false;
  io_.write(RegBlock::Core0, CTL_L2TCACTL,
            L2TCACTL_L2TFLS | (L2TCACTL_FLM_CLEAN << L2TCACTL_FLM_SHIFT));
  return io_.poll(RegBlock::Core0, CTL_L2TCACTL, L2TCACTL_L2TFLS, 0, opts_.poll_timeout);
}

void V3dDriver::run_job(const Job& job) {
  // The CPU is done writing what this job reads: a recorder snapshots memory here, and
  // everything from the cache invalidation on is the job's own hardware sequence.
  io_.on_sync_point(SyncPoint::BeforeJob, job.seqno);
  invalidate_caches();
  {
    std::lock_guard lk(job_mu_);
    csd_done_ = false;
    csd_error_ = false;
    started_seqno_ = job.seqno;
  }
  uint32_t cfg[8] = {};
  std::copy(job.args.cfg, job.args.cfg + 7, cfg);
  if (!sku_->csd_cfg4_minus_one) cfg[4] += 1;  // from 7.1.6 CFG4 holds the batch count
  for (int i = 1; i < sku_->csd_num_cfg; ++i) io_.write(RegBlock::Core0, csd_reg(i), cfg[i]);
  io_.write(RegBlock::Core0, csd_reg(0), cfg[0]);  // starts the job

  // Wait for CSDDONE from the IRQ thread; on a timeout, extend while CURRENT_CFG4
  // (remaining batches) moves, otherwise declare a hang (v3d_csd_job_timedout).
  int err = 0;
  std::string why;
  uint32_t last_remaining = ~0u;
  for (int rearm = 0;; ++rearm) {
    {
      std::unique_lock lk(job_mu_);
      if (csd_cv_.wait_for(lk, opts_.job_timeout, [&] { return csd_done_ || csd_error_; })) {
        if (csd_error_) err = -EIO;
        break;
      }
    }
    // A completed count one past ours with nothing current: the job finished and its
    // interrupt was lost. Finish it instead of resetting a healthy GPU.
    // Progress checks depend on timing and on the GPU's history, not on the job: they are
    // informational for a recorder (a replayer keeps its own bounded waits).
    const uint32_t status = io_.read(RegBlock::Core0, CSD_STATUS, ReadUse::Informational);
    if (!(status & CSD_STATUS_HAVE_CURRENT) &&
        get_field(status, 11, 4) == ((csd_completed_ + 1) & 0xff)) {
      // The interrupt may be late rather than lost: acknowledge its CSDDONE now, so that
      // it cannot finish the next job. core_irq_mu_ lets a handler that already read the
      // status act first; the next submission then clears its csd_done_.
      std::lock_guard ck(core_irq_mu_);
      io_.write(RegBlock::Core0, INT_CLR, sku_->core_int_csd_done);
      std::lock_guard lk(job_mu_);
      ++stats_.lost_interrupts;
      break;
    }
    const uint32_t remaining =
        io_.read(RegBlock::Core0, sku_->csd_current_cfg0 + 16, ReadUse::Informational);
    if (remaining != last_remaining && rearm < opts_.max_timeout_rearms) {
      last_remaining = remaining;
      continue;
    }
    err = -ETIMEDOUT;
    break;
  }
  if (err) {
    {
      std::lock_guard lk(job_mu_);
      JobFault f;
      f.seqno = job.seqno;
      f.hang = err == -ETIMEDOUT;
      f.qpu_error = err == -EIO;
      faults_.push_back(f);
      if (f.hang) ++stats_.hangs;
      why = f.hang ? "GPU hang: no progress in " + std::to_string(opts_.job_timeout.count()) +
                         " ms; GPU reset"
                   : "QPU error (illegal instruction or fetch fault); GPU reset";
      // A forced switch to the secure world resets the GPU under the job: say so.
      if (claim_seen_) why += " (the secure world claimed the GPU meanwhile)";
    }
    reset_gpu();
  } else if (!clean_caches()) {
    err = -ETIMEDOUT;
    why = "cache clean timed out; GPU reset";
    reset_gpu();
  } else {
    ++csd_completed_;
  }
  // MMU faults of this job may still sit in the hub interrupt (its own thread on 7.1):
  // take them now so they are reported before the job counts as done.
  {
    std::lock_guard hk(hub_irq_mu_);
    if (io_.wait_irq(0, Micros(0))) handle_hub_irq_locked();
  }
  io_.on_sync_point(SyncPoint::AfterJob, job.seqno);
  std::lock_guard lk(job_mu_);
  completed_seqno_ = job.seqno;
  running_seqno_ = 0;
  if (err) {
    job_errors_[job.seqno] = {err, why};
    ++stats_.jobs_failed;
  } else {
    ++stats_.jobs_completed;
  }
  done_cv_.notify_all();
}

void V3dDriver::scheduler_loop() {
  for (;;) {
    Job job;
    {
      std::unique_lock lk(job_mu_);
      job_cv_.wait(lk, [&] { return stop_ || (!queue_.empty() && !suspending_); });
      if (queue_.empty() || suspending_) return;  // stop with nothing left to run
      job = std::move(queue_.front());
      queue_.pop_front();
      running_seqno_ = job.seqno;
    }
    run_job(job);
  }
}

void V3dDriver::reset_gpu() {
  // v3d_reset(): reset the core, then bring the MMU and interrupts back.
  if (io_.has_block(RegBlock::Sms)) {
    reset_sms();
  } else if (io_.has_block(RegBlock::Bridge)) {
    io_.write(RegBlock::Bridge, sku_->bridge_sw_init_reg, BRIDGE_SW_INIT_V3D);
    io_.write(RegBlock::Bridge, sku_->bridge_sw_init_reg, 0);
  }
  init_hw_state();
  csd_completed_ = 0;  // the hardware's completed-job counter restarts
  std::lock_guard lk(job_mu_);
  ++stats_.resets;
}

// ---- interrupts --------------------------------------------------------------------

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

namespace rplayer::driver {

// ---- GPU ownership mailbox ---------------------------------------------------------

// Before touching the GPU: MBOX_ACK = 0 says a driver holds it, so claims from now on
// wait for our acknowledgement (the mailbox thread gives it once running). A claim made
// before that (CLAIM already 1) is waited out with the GPU left alone. The secure world
// writes CLAIM before reading ACK and we write ACK before reading CLAIM, so one of us
// always sees the other.
bool V3dDriver::announce(std::string* error) {
  for (int attempt = 0; attempt < 4; ++attempt) {  // bounded: each wait is bounded too
    io_.write(RegBlock::Mbox, MBOX_ACK, 0);
    if (!(io_.read(RegBlock::Mbox, MBOX_CLAIM) & 1)) return true;
    io_.write(RegBlock::Mbox, MBOX_ACK, 1);  // free while we wait
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
    const uint32_t pt_base =
        io_.read(RegBlock::Hub, MMU_PT_PA_BASE, ReadUse::Informational);
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
  if (io_.poll(RegBlock::Hub, HUB_IDENT1, ~0u, sku_->hub_ident1, opts_.resume_timeout))
    return true;
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
