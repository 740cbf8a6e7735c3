#include "cloud/driver_shim.h"

#include <sys/mman.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <stdexcept>
#include <thread>

#include "hw/v3d_regs.h"

namespace rplayer::cloud {

using driver::BoUsage;
using hw::RegBlock;
using link::ShimOp;
using link::ShimOpKind;
using namespace rplayer::v3d;

namespace {
constexpr uint64_t kPage = link::kShimPage;
constexpr uint64_t kTableBytes = 4u << 20;
// A frame carries at most this much: more goes out as its own posted frame first (the TA's
// memory references and the channel's messages are bounded; 8 MiB is well inside both).
constexpr size_t kMaxFrameBytes = 8u << 20;

uint64_t zero_page_hash() {
  static const uint64_t h = [] {
    static const uint8_t zero[kPage] = {};
    return XXH3_64bits(zero, kPage);
  }();
  return h;
}

ShimOp reg_op(ShimOpKind k, RegBlock b, uint32_t off) {
  ShimOp op;
  op.kind = k;
  op.block = uint8_t(b);
  op.offset = off;
  return op;
}
}  // namespace

DriverShim::DriverShim(ShimTransport& transport, const link::ShimHello& hello,
                       DriverShimOptions opts)
    : transport_(transport), hello_(hello), opts_(opts) {
  sku_ = hw::identify_sku(hello.hub_ident[1], hello.hub_ident[3], hello.core_ident[0],
                          hello.core_ident[1]);
  if (!sku_) throw std::runtime_error("the device's GPU is not a supported V3D");
  const int fd = memfd_create("rplayer-cloud-pool", MFD_CLOEXEC);
  if (fd < 0 || ftruncate(fd, off_t(hello.pool_bytes)) != 0)
    throw std::runtime_error("cannot create the shadow of the device's pool");
  void* p = mmap(nullptr, hello.pool_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    ::close(fd);
    throw std::runtime_error("cannot map the shadow of the device's pool");
  }
  mem_ = {static_cast<uint8_t*>(p), hello.pool_pa, hello.pool_bytes, fd};
}

DriverShim::~DriverShim() {
  munmap(mem_.base, mem_.size);
  ::close(mem_.fd);
}

bool DriverShim::has_block(RegBlock b) {
  return uint8_t(b) < 8 && (hello_.blocks >> uint8_t(b)) & 1;
}

bool DriverShim::failed() const {
  std::lock_guard lk(link_mu_);
  return failed_;
}

std::string DriverShim::error() const {
  std::lock_guard lk(link_mu_);
  return error_;
}

LinkCounts DriverShim::counts() const {
  std::lock_guard lk(link_mu_);
  LinkCounts c = counts_;
  c.local_waits = local_waits_;
  return c;
}

void DriverShim::fail_locked(std::string why) {
  if (!failed_) {
    failed_ = true;
    error_ = std::move(why);
  }
  queue_.clear();
  queued_bytes_ = 0;
  job_cv_.notify_all();
}

bool DriverShim::flush_locked(link::ShimResult* result, link::ShimResult* prefetched) {
  if (failed_) return false;
  if (queue_.empty()) return true;
  status_valid_ = false;  // anything on the link may change what a prefetch saw
  const size_t wanted = (result ? 1 : 0) + (prefetched ? 1 : 0);
  queued_bytes_ = 0;
  link::encode_request(seq_, queue_, &frame_);
  const size_t blocking = queue_.size() - (prefetched ? 2 : 1);
  switch (result ? queue_[blocking].kind : ShimOpKind::Write) {
    case ShimOpKind::Read:
      ++counts_.rt_reads;
      break;
    case ShimOpKind::Poll:
      ++counts_.rt_polls;
      break;
    case ShimOpKind::Wait:
      ++counts_.rt_waits;
      break;
    default:
      ++counts_.rt_posts;
      break;
  }
  counts_.ops += queue_.size();
  queue_.clear();
  counts_.bytes_up += frame_.size();
  ++counts_.round_trips;
  std::string why;
  if (!transport_.exchange(frame_, &reply_frame_, &why)) {
    fail_locked("link to the device: " + why);
    return false;
  }
  counts_.bytes_down += reply_frame_.size();
  link::ShimReply rep;
  const link::WireCode c = link::decode_reply(reply_frame_, link::ShimLimits{}, &rep);
  if (c != link::WireCode::Ok) {
    fail_locked(std::string("reply from the device: ") + link::wire_code_name(c));
    return false;
  }
  if (rep.refusal != link::ShimRefusal::None) {
    fail_locked(std::string("the device refused operation ") + std::to_string(rep.failed_op) +
                ": " + link::shim_refusal_name(rep.refusal) + " (" + rep.why + ")");
    return false;
  }
  if (rep.seq != seq_ || rep.results.size() != wanted) {
    fail_locked("reply out of step with the request");
    return false;
  }
  ++seq_;
  if (result) *result = rep.results[0];
  if (prefetched) *prefetched = rep.results[1];
  return true;
}

bool DriverShim::submit(ShimOp op, link::ShimResult* result) {
  if (failed_) return false;
  queue_.push_back(std::move(op));
  if (result || !opts_.defer) return flush_locked(result);
  return true;
}

void DriverShim::queue_page_if_changed(uint64_t pa) {
  if (!mem_.contains(pa, kPage)) return;
  const uint8_t* bytes = mem_.at(pa);
  const uint64_t h = XXH3_64bits(bytes, kPage);
  auto it = sent_hash_.find(pa);
  const bool never_sent = it == sent_hash_.end();
  const uint64_t device = never_sent ? zero_page_hash() : it->second;
  if (h == device && (opts_.skip_known_pages || !never_sent)) return;
  sent_hash_[pa] = h;
  ShimOp op = link::page_op(pa, bytes, opts_.compress_pages);
  ++counts_.pages;
  const size_t size = link::encoded_size(op);
  counts_.page_bytes += size;
  if (queued_bytes_ + size > kMaxFrameBytes) flush_locked(nullptr);
  queued_bytes_ += size;
  queue_.push_back(std::move(op));
}

void DriverShim::sync_table_locked() {
  if (table_pa_ == 0) return;
  for (uint64_t off = 0; off < kTableBytes; off += kPage) queue_page_if_changed(table_pa_ + off);
}

bool DriverShim::synced_usage(const Bo& bo) const {
  if (opts_.sync == SyncMode::AllPages) return true;
  switch (bo.usage) {
    case BoUsage::Internal:
    case BoUsage::Code:
    case BoUsage::Uniforms:
      return true;
    // Tables the stack computed (no model-file range): metadata, not weights.
    case BoUsage::Weights:
      return !bo.from_model_file;
    case BoUsage::Input:
    case BoUsage::Output:
    case BoUsage::Scratch:
      return false;
  }
  return false;
}

uint32_t DriverShim::read(RegBlock b, uint32_t off, driver::ReadUse use) {
  // Identification registers are constants the device sent in its hello.
  if (b == RegBlock::Hub && off >= HUB_IDENT0 && off <= HUB_IDENT3 && off % 4 == 0)
    return hello_.hub_ident[(off - HUB_IDENT0) / 4];
  if (b == RegBlock::Core0 && off <= CTL_IDENT2 && off % 4 == 0)
    return hello_.core_ident[(off - CTL_IDENT0) / 4];
  std::lock_guard lk(link_mu_);
  // The status read right behind the interrupt (see wait_irq), if nothing came between.
  if (b == status_block_ && off == INT_STS && status_valid_ && queue_.empty()) {
    status_valid_ = false;
    ++counts_.prefetch_hits;
    return status_;
  }
  link::ShimResult res;
  if (use == driver::ReadUse::Informational) ++counts_.rt_timing_reads;
  if (!submit(reg_op(ShimOpKind::Read, b, off), &res)) return 0;
  return res.value;
}

void DriverShim::write(RegBlock b, uint32_t off, uint32_t value) {
  {
    std::lock_guard lk(link_mu_);
    // The page table goes out before the GPU may read it: its base, then every flush
    // of the MMU's PTE cache.
    if (b == RegBlock::Hub && off == MMU_PT_PA_BASE) {
      table_pa_ = uint64_t(value) * kPage;
      sync_table_locked();
    } else if (b == RegBlock::Hub && off == MMUC_CONTROL && (value & MMUC_CONTROL_FLUSH)) {
      sync_table_locked();
    }
    ShimOp op = reg_op(ShimOpKind::Write, b, off);
    op.a = value;
    submit(std::move(op), nullptr);
  }
  if (b == RegBlock::Core0 && off == sku_->csd_queued_cfg0) {
    std::lock_guard jl(job_mu_);
    job_running_ = true;
    job_cv_.notify_all();
  }
}

void DriverShim::update(RegBlock b, uint32_t off, uint32_t keep, uint32_t set) {
  if (!opts_.defer) return HwIo::update(b, off, keep, set);  // naive: the read, then the write
  std::lock_guard lk(link_mu_);
  ShimOp op = reg_op(ShimOpKind::Update, b, off);
  op.a = keep;
  op.b = set;
  submit(std::move(op), nullptr);  // posted: nothing waits for the value
}

bool DriverShim::poll(RegBlock b, uint32_t off, uint32_t mask, uint32_t value,
                      driver::Micros timeout, uint32_t* last) {
  if (opts_.poll_offload) {
    std::lock_guard lk(link_mu_);
    ShimOp op = reg_op(ShimOpKind::Poll, b, off);
    op.a = mask;
    op.b = value;
    op.timeout_us = uint32_t(std::clamp<int64_t>(timeout.count(), 1, opts_.max_poll_us));
    link::ShimResult res;
    if (!submit(std::move(op), &res)) return false;
    if (last) *last = res.value;
    return res.ok;
  }
  // A read per iteration, Linux's back-off between them. The bound is device time: it
  // counts from the first read's answer, so that the round trip to the first read (time
  // the device never saw the poll) does not use it up; each later read is a round trip
  // after the one before, as the device sees them.
  std::chrono::steady_clock::time_point first{};
  driver::Micros sleep(10);
  for (bool started = false;; started = true) {
    const uint32_t v = read(b, off, driver::ReadUse::Control);
    if (!started) first = std::chrono::steady_clock::now();
    if (last) *last = v;
    if ((v & mask) == value) return true;
    if (failed() || std::chrono::steady_clock::now() - first >= timeout) return false;
    std::this_thread::sleep_for(sleep);
    sleep = std::min(sleep * 2, driver::Micros(1000));
  }
}

bool DriverShim::wait_irq(int line, driver::Micros timeout) {
  if (timeout.count() == 0) {  // is it asserted now: the device's answer
    std::lock_guard lk(link_mu_);
    ShimOp op;
    op.kind = ShimOpKind::Wait;
    op.block = uint8_t(line);
    link::ShimResult res;
    return submit(std::move(op), &res) && res.ok;
  }
  const int core_line = sku_->num_irq_lines > 1 ? 1 : 0;
  const bool expect = line == core_line && line < hello_.irq_lines;
  bool running = false;
  if (expect) {
    std::unique_lock jl(job_mu_);
    running = job_cv_.wait_for(jl, timeout, [&] { return job_running_; });
  }
  if (!running) {
    // Idle: nothing interrupts but a job (whose faults come with its own line, or the
    // driver's zero-timeout check after it), so the wait stays local.
    if (!expect) std::this_thread::sleep_for(timeout);
    ++local_waits_;
    return false;
  }
  std::lock_guard lk(link_mu_);
  if (failed_) {
    std::this_thread::sleep_for(timeout);
    return false;
  }
  ShimOp op;
  op.kind = ShimOpKind::Wait;
  op.block = uint8_t(line);
  op.timeout_us = opts_.job_wait_us;
  queue_.push_back(std::move(op));
  // Deferral: the interrupt comes with the core's status, which the driver's handler reads
  // next; the device reads it right behind the wait, as a CPU next to the GPU would.
  // (A shared line's handler reads the hub's status first.)
  status_block_ = sku_->num_irq_lines > 1 ? RegBlock::Core0 : RegBlock::Hub;
  if (opts_.defer) queue_.push_back(reg_op(ShimOpKind::Read, status_block_, INT_STS));
  link::ShimResult res, sts;
  if (!flush_locked(&res, opts_.defer ? &sts : nullptr)) return false;
  if (res.ok && opts_.defer) status_valid_ = true, status_ = sts.value;
  counts_.device_wait_us += res.count;
  if (res.ok) {
    std::lock_guard jl(job_mu_);
    job_running_ = false;
  }
  return res.ok;
}

void DriverShim::on_sync_point(driver::SyncPoint p, uint64_t) {
  if (p != driver::SyncPoint::BeforeJob) return;
  std::lock_guard lk(link_mu_);
  for (const auto& [handle, bo] : bos_)
    if (synced_usage(bo))
      for (uint64_t pa : bo.pages) queue_page_if_changed(pa);
  if (!opts_.defer) flush_locked(nullptr);
}

void DriverShim::on_bo_mapped(const driver::BoInfo& info) {
  std::lock_guard lk(link_mu_);
  Bo bo;
  bo.usage = info.usage;
  bo.from_model_file = info.weight_source != nullptr;
  bo.pages.assign(info.pages, info.pages + info.num_pages);
  bos_[info.handle] = std::move(bo);
}

void DriverShim::on_bo_unmapped(const driver::BoInfo& info) {
  std::lock_guard lk(link_mu_);
  bos_.erase(info.handle);
}

}  // namespace rplayer::cloud
