// Buffer objects and the page table (after Linux v3d_bo.c and v3d_mmu.c): create, map,
// free and wait for BOs, their PTEs, and the MMU flush sequence that publishes them.
#include <sys/mman.h>

#include <cerrno>
#include <cstring>

#include "driver/v3d_driver.h"
#include "hw/v3d_regs.h"

namespace rplayer::driver {

using namespace rplayer::v3d;

int V3dDriver::create_bo(CreateBo& args) {
  if (args.size == 0 || args.size > (1u << 30))
    return fail(-EINVAL, "create_bo: size " + std::to_string(args.size) + " out of range");
  if (mem_.fd < 0) return fail(-ENODEV, "create_bo: physical memory cannot be mapped");
  const uint32_t size = (args.size + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
  const uint32_t npages = size / PAGE_SIZE;
  auto bo = std::make_unique<Bo>();
  {
    std::unique_lock lk(bo_mu_);
    auto pages = pages_->alloc(npages);
    if (!pages && !freed_pages_.empty()) {
      // Pages of freed buffers wait for the next job's MMU flush: flush now instead.
      lk.unlock();
      publish_page_table();
      lk.lock();
      pages = pages_->alloc(npages);
    }
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
  // Nothing the GPU runs can use the new range before the next job, which publishes the
  // page table first (run_job): one MMU flush per job instead of one per buffer.
  {
    std::lock_guard lk(bo_mu_);
    pt_dirty_ = true;
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
    for (uint32_t i = 0; i < bo->info.num_pages; ++i) pt_[(bo->info.gpu_va >> PAGE_SHIFT) + i] = 0;
  }
  io_.on_bo_unmapped(bo->info);
  munmap(bo->cpu, bo->info.size);
  // A job running now may still hold TLB entries for these pages: they go back to the
  // allocator only after the MMU flush that the next job starts with (run_job), so nobody
  // reuses them before no translation to them is left. The VA range is free at once: the
  // same flush comes before any job that could use it again.
  std::lock_guard lk(bo_mu_);
  pt_dirty_ = true;
  freed_pages_.insert(freed_pages_.end(), bo->pages.begin(), bo->pages.end());
  vas_->free(bo->info.gpu_va, bo->info.size);
  return 0;
}

void V3dDriver::release_freed_pages(std::vector<uint64_t>* pages) {
  if (pages->empty()) return;
  std::lock_guard lk(bo_mu_);
  pages_->free(*pages);
  pages->clear();
}

bool V3dDriver::publish_page_table() {
  std::vector<uint64_t> freed;
  {
    std::lock_guard lk(bo_mu_);
    if (!pt_dirty_) return true;
    pt_dirty_ = false;
    freed.swap(freed_pages_);  // cleared before the flush below: safe to reuse after it
  }
  if (!flush_mmu()) {
    std::lock_guard lk(bo_mu_);
    pt_dirty_ = true;  // still unpublished; the pages wait for the next flush
    freed_pages_.insert(freed_pages_.end(), freed.begin(), freed.end());
    return false;
  }
  release_freed_pages(&freed);
  return true;
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

// ---- MMU flushes --------------------------------------------------------------------

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
      io_.update(RegBlock::Hub, MMU_CTL, ~0u, MMU_CTL_TLB_CLEAR);  // read-modify-write
      ok = io_.poll(RegBlock::Hub, MMU_CTL, MMU_CTL_TLB_CLEARING, 0, opts_.poll_timeout);
    }
  }
  // Another thread may touch the hardware now: a deferring HwIo must commit here.
  io_.on_lock_released();
  std::lock_guard jk(job_mu_);
  ++stats_.mmu_flushes;
  return ok;
}

}  // namespace rplayer::driver
