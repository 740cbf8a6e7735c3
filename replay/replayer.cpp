#include "replay/replayer.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <vector>

#include "hw/poll_backoff.h"
#include "hw/sku.h"
#include "hw/v3d_regs.h"
#include "replay/checked_math.h"
#include "replay/signature.h"

namespace rplayer::replay {

using namespace rplayer::v3d;

namespace {
constexpr uint32_t kPage = 4096;
constexpr uint32_t kPtPages = 1024;          // 4 MiB: the whole 4 GiB GPU address space
constexpr uint32_t kSetupTimeoutUs = 100000;  // power, reset and MMU (as Linux: 100 ms)
// Page states besides a blob index or kZeroBlob.
constexpr uint32_t kDirty = 0xfffffffe;       // written by a run (input, GPU): scrub
constexpr uint32_t kCallerData = 0xfffffffd;  // the caller's weights, kept for the session
// MMU on, every fault aborts the access and interrupts: what check_setup() reads back.
constexpr uint32_t kMmuCtl = MMU_CTL_ENABLE | MMU_CTL_PT_INVALID_ENABLE | MMU_CTL_PT_INVALID_ABORT |
                             MMU_CTL_PT_INVALID_INT | MMU_CTL_WRITE_VIOLATION_ABORT |
                             MMU_CTL_WRITE_VIOLATION_INT | MMU_CTL_CAP_EXCEEDED_ABORT |
                             MMU_CTL_CAP_EXCEEDED_INT;

const TensorIn* find_in(std::span<const TensorIn> v, const std::string& name) {
  for (const TensorIn& t : v)
    if (name == t.name) return &t;
  return nullptr;
}
}  // namespace

const char* ReplayError::message() const {
  switch (code) {
    case ReplayCode::Ok: return "ok";
    case ReplayCode::Verify: return verify.message();
    case ReplayCode::NoMemory: return "out of replay memory";
    case ReplayCode::PowerTimeout:
      return "GPU power-up timed out";
    case ReplayCode::ResetTimeout:
      return "GPU reset did not finish in time";
    case ReplayCode::MmuTimeout: return "GPU MMU flush timed out";
    case ReplayCode::SetupMismatch:
      return "GPU setup did not take effect; refusing to run";
    case ReplayCode::ReadMismatch: return "register read differs from the recording";
    case ReplayCode::PollTimeout: return "register poll timed out";
    case ReplayCode::IrqTimeout: return "interrupt did not arrive in time (lost or hung job)";
    case ReplayCode::MissingInput: return "input tensor missing or of the wrong size";
    case ReplayCode::MissingWeights:
      return "the recording omits its weights: give the model file it was recorded from";
    case ReplayCode::WeightsMismatch:
      return "the model file is not the one the recording was made with";
    case ReplayCode::MissingOutput: return "output tensor missing or of the wrong size";
    case ReplayCode::GpuFault: return "the GPU reported a fault";
    case ReplayCode::JobUnfinished:
      return "a GPU job did not finish by the end of the stream";
    case ReplayCode::BudgetExceeded:
      return "the replay exceeded its time budget";
    case ReplayCode::NotLoaded: return "no recording loaded";
  }
  return "?";
}

const char* ReplayError::format(char* buf, size_t size) const {
  if (code == ReplayCode::Verify) {
    char v[160];
    std::snprintf(buf, size, "verification failed: %s", verify.format(v, sizeof v));
  } else if (code == ReplayCode::SetupMismatch) {
    std::snprintf(buf, size, "%s: %s reads 0x%08x, expected 0x%08x", message(), what, got,
                  expected);
  } else if (code == ReplayCode::GpuFault) {
    char at[40] = "";
    if (address) std::snprintf(at, sizeof at, " at GPU VA 0x%08x", address);
    std::snprintf(buf, size, "GPU fault during job %u (action %d): %s%s (status 0x%08x)", jobs,
                  int(action), what ? what : "?", at, got);
  } else if (code == ReplayCode::JobUnfinished) {
    std::snprintf(buf, size, "%s: %s 0x%08x, expected 0x%08x (%u jobs started)", message(),
                  what ? what : "CSD_STATUS", got, expected, jobs);
  } else if (code == ReplayCode::WeightsMismatch) {
    char which[32] = "";
    if (weight >= 0) std::snprintf(which, sizeof which, " (weight binding %d)", int(weight));
    std::snprintf(buf, size, "%s: %s differs%s", message(), what, which);
  } else if (code == ReplayCode::ReadMismatch) {
    std::snprintf(buf, size, "action %d: %s (expected 0x%08x, got 0x%08x)", int(action),
                  message(), expected, got);
  } else if (action >= 0) {
    std::snprintf(buf, size, "action %d: %s", int(action), message());
  } else {
    std::snprintf(buf, size, "%s", message());
  }
  return buf;
}

bool Replayer::poll(Block b, uint32_t off, uint32_t mask, uint32_t value, uint32_t timeout_us) {
  const uint64_t deadline = p_.now_us() + timeout_us;
  // Cache and MMU operations finish in microseconds: re-read without sleeping for up to
  // kSpinUs (a sleep costs ~60 us of timer slack), then back off. Bounded by time, so a
  // slow bus (a register read over a socket) spins only a few reads.
  constexpr uint32_t kSpinUs = 50, kSpinReads = 64;
  const uint64_t spin_end = p_.now_us() + kSpinUs;
  for (uint32_t i = 0; i < kSpinReads && p_.now_us() < spin_end; ++i)
    if ((p_.read32(b, off) & mask) == value) return true;
  return hw::poll_until(
      deadline, {}, [&] { return (p_.read32(b, off) & mask) == value; },
      [&] { return p_.now_us(); }, [&](uint32_t us) { p_.sleep_us(us); });
}

bool Replayer::power_up() {
  if (!p_.has_block(Block::Sms)) return true;  // 4.x: powered by the platform
  p_.write32(Block::Sms, SMS_TEE_CS, SMS_CLEAR_POWER_OFF);
  return poll(Block::Sms, SMS_TEE_CS, SMS_STATE_MASK, SMS_IDLE, kSetupTimeoutUs);
}

// False if the reset is still in progress at the timeout: nothing written until it ends
// would survive it (on 7.1 it is asynchronous), so the caller must not go on.
bool Replayer::reset_gpu() {
  if (p_.has_block(Block::Sms)) {
    p_.write32(Block::Sms, SMS_REE_CS, SMS_RESET_REQUEST);
    return poll(Block::Sms, SMS_REE_CS, SMS_STATE_MASK, SMS_IDLE, kSetupTimeoutUs);
  }
  if (p_.has_block(Block::Bridge)) {  // synchronous; check_setup() reads the GPU back
    const uint32_t reg = sku_ ? sku_->bridge_sw_init_reg : BRIDGE_SW_INIT_0;
    p_.write32(Block::Bridge, reg, BRIDGE_SW_INIT_V3D);
    p_.write32(Block::Bridge, reg, 0);
  }
  return true;
}

SkuIdentity Replayer::identify() {
  return {p_.read32(Block::Hub, HUB_IDENT1), p_.read32(Block::Hub, HUB_IDENT3),
          p_.read32(Block::Core0, CTL_IDENT0), p_.read32(Block::Core0, CTL_IDENT1)};
}

bool Replayer::flush_mmu() {
  p_.write32(Block::Hub, MMUC_CONTROL, MMUC_CONTROL_FLUSH | MMUC_CONTROL_ENABLE);
  if (!poll(Block::Hub, MMUC_CONTROL, MMUC_CONTROL_FLUSHING, 0, kSetupTimeoutUs)) return false;
  p_.write32(Block::Hub, MMU_CTL, kMmuCtl | MMU_CTL_TLB_CLEAR);
  return poll(Block::Hub, MMU_CTL, MMU_CTL_TLB_CLEARING, 0, kSetupTimeoutUs);
}

void Replayer::copy_in(uint32_t region, uint32_t offset, const uint8_t* src, uint32_t bytes) {
  while (bytes > 0) {  // bounded by the binding size the verifier checked
    const uint32_t page = offset / kPage, in_page = offset % kPage;
    const uint32_t n = bytes < kPage - in_page ? bytes : kPage - in_page;
    std::memcpy(page_of(region, page) + in_page, src, n);
    state_[first_[region] + page] = kDirty;
    src += n, offset += n, bytes -= n;
  }
}

void Replayer::copy_out(uint32_t region, uint32_t offset, uint8_t* dst, uint32_t bytes) {
  while (bytes > 0) {
    const uint32_t page = offset / kPage, in_page = offset % kPage;
    const uint32_t n = bytes < kPage - in_page ? bytes : kPage - in_page;
    std::memcpy(dst, page_of(region, page) + in_page, n);
    dst += n, offset += n, bytes -= n;
  }
}

// The caller's model file against the recording's weight bindings: the whole file (size,
// digest: the right model, unmodified, complete) and each bound range. Nothing is copied
// before all of it matches.
ReplayCode Replayer::check_weights(const Recording& rec, std::span<const uint8_t> file,
                                   ReplayError* err) {
  if (file.empty()) return ReplayCode::MissingWeights;
  if (file.size() != rec.weights_file.size) {
    err->what = "the model file's size";
    err->expected = uint32_t(rec.weights_file.size), err->got = uint32_t(file.size());
    return ReplayCode::WeightsMismatch;
  }
  if (content_digest(file) != rec.weights_file.digest) {
    err->what = "the model file's digest";
    return ReplayCode::WeightsMismatch;
  }
  for (size_t i = 0; i < rec.weight_bindings.size(); ++i) {
    const WeightBinding& w = rec.weight_bindings[i];  // decoded: inside the file
    if (content_digest(file.subspan(w.offset, w.length)) != w.digest) {
      err->what = "a weight range's digest", err->weight = int32_t(i);
      return ReplayCode::WeightsMismatch;
    }
  }
  return ReplayCode::Ok;
}

ReplayError Replayer::load(const Recording& rec, const SkuIdentity* gpu,
                           std::span<const uint8_t> model_file, ReplayStats* stats) {
  unload();
  ReplayStats st;
  ReplayError err;
  const uint64_t t0 = p_.now_us();
  err.verify = verify_recording(rec, gpu ? *gpu : rec.sku, limits_);
  if (!err.verify.ok()) {
    err.code = ReplayCode::Verify;
    return err;
  }
  if (rec.weights_omitted) {
    err.code = check_weights(rec, model_file, &err);
    if (!err.ok()) return err;
  }
  st.verify_us = p_.now_us() - t0;
  const uint64_t t1 = p_.now_us();
  rec_ = &rec;
  sku_ = recording_sku(rec);

  // Our own page table in our own pages, from the verified region list only.
  pt_.assign(kPtPages, 0);
  uint64_t pages = 0;  // verified within the quota; checked all the same
  for (const Region& r : rec.regions)
    if (!checked_add(pages, r.size / kPage, &pages) || pages > UINT32_MAX)
      err.code = ReplayCode::NoMemory;
  if (!err.ok()) {
    unload();
    return err;
  }
  const uint32_t total = uint32_t(pages);
  pa_.assign(total, 0);
  if (!p_.alloc_pages(kPtPages, true, pt_.data())) {
    pt_.clear();
    err.code = ReplayCode::NoMemory;
  } else if (!p_.alloc_pages(1, false, &scratch_)) {
    err.code = ReplayCode::NoMemory;
  } else {
    have_scratch_ = true;
    std::memset(p_.page(scratch_), 0, kPage);
    for (uint64_t pa : pt_) std::memset(p_.page(pa), 0, kPage);
  }
  first_.clear();
  state_.assign(total, kZeroBlob);
  initial_.assign(total, kZeroBlob);
  writable_.assign(total, false);
  uint32_t next = 0;
  for (size_t r = 0; r < rec.regions.size() && err.ok(); ++r) {
    const Region& reg = rec.regions[r];
    const uint32_t n = reg.size / kPage;
    first_.push_back(next);
    if (!p_.alloc_pages(n, false, pa_.data() + next)) {
      pa_.resize(next);  // free only what we got
      err.code = ReplayCode::NoMemory;
      break;
    }
    const uint32_t flags = PTE_VALID | (reg.gpu_writable ? PTE_WRITEABLE : 0);
    for (uint32_t i = 0; i < n; ++i) {
      std::memset(p_.page(pa_[next + i]), 0, kPage);
      writable_[next + i] = reg.gpu_writable;
      const uint32_t vpn = reg.gpu_va / kPage + i;
      const uint32_t pte = flags | uint32_t(pa_[next + i] >> PAGE_SHIFT);
      std::memcpy(p_.page(pt_[vpn / 1024]) + (vpn % 1024) * 4, &pte, 4);
    }
    next += n;
  }
  if (!err.ok()) {
    unload();
    return err;
  }
  st.pages = total + kPtPages + 1;
  input_page_.assign(total, false);
  for (const Binding& b : rec.bindings)  // verified: inside their region
    if (b.is_input && b.bytes > 0)
      for (uint64_t p = b.offset / kPage; p <= (uint64_t(b.offset) + b.bytes - 1) / kPage; ++p)
        input_page_[first_[b.region] + p] = true;
  if (rec.weights_omitted)  // checked above; kept for the session like loaded images
    for (const WeightBinding& w : rec.weight_bindings) {
      copy_in(w.region, 0, model_file.data() + w.offset, w.length);
      for (uint32_t i = 0; i < rec.regions[w.region].size / kPage; ++i)
        state_[first_[w.region] + i] = initial_[first_[w.region] + i] = kCallerData;
    }
  // What a fresh replay holds at the first job: zero, or the first memory load's image.
  // Read-only pages get it now; runs then skip loads of images a page already holds.
  for (const Action& a : rec.actions) {
    if (a.op != ActionOp::LoadMemory) continue;
    for (uint32_t k = a.first; k < a.first + a.count; ++k) {
      const PageLoad& l = rec.loads[k];
      const uint32_t g = first_[l.region] + l.page;
      if (initial_[g] == kCallerData) continue;
      initial_[g] = l.blob;
      if (writable_[g] || l.blob == kZeroBlob) continue;
      std::memcpy(p_.page(pa_[g]), rec.blobs[l.blob].data.data(), kPage);
      state_[g] = l.blob;
      ++st.pages_loaded;
    }
    break;  // only the first load
  }
  st.setup_us = p_.now_us() - t1;
  if (stats) *stats = st;
  return err;
}

void Replayer::unload() {
  if (!rec_ && pt_.empty() && pa_.empty() && !have_scratch_) return;
  for (uint64_t pa : pa_) std::memset(p_.page(pa), 0, kPage);
  if (!pa_.empty()) p_.free_pages(pa_.data(), uint32_t(pa_.size()));
  for (uint64_t pa : pt_) std::memset(p_.page(pa), 0, kPage);
  if (!pt_.empty()) p_.free_pages(pt_.data(), kPtPages);
  if (have_scratch_) {
    std::memset(p_.page(scratch_), 0, kPage);
    p_.free_pages(&scratch_, 1);
  }
  pa_.clear(), pt_.clear(), first_.clear(), state_.clear(), initial_.clear(), writable_.clear();
  input_page_.clear();
  have_scratch_ = false;
  rec_ = nullptr;
  sku_ = nullptr;
}

// Reset, then our page table, fault policy and interrupt masks. The verifier keeps all
// of these registers out of the recording's reach (verifier.cpp, write_allowed), so what
// check_setup() reads back here holds for the whole stream.
ReplayCode Replayer::setup_gpu(ReplayError* err) {
  const hw::Sku& s = *sku_;
  if (!reset_gpu()) return ReplayCode::ResetTimeout;
  p_.write32(Block::Hub, MMU_PT_PA_BASE, uint32_t(pt_[0] >> PAGE_SHIFT));
  p_.write32(Block::Hub, MMU_CTL, kMmuCtl);
  p_.write32(Block::Hub, MMU_ILLEGAL_ADDR,
             uint32_t(scratch_ >> PAGE_SHIFT) | MMU_ILLEGAL_ADDR_ENABLE);
  p_.write32(Block::Hub, MMUC_CONTROL, MMUC_CONTROL_ENABLE);
  p_.write32(Block::Core0, CTL_L2TFLSTA, 0);
  p_.write32(Block::Core0, CTL_L2TFLEND, ~0u);
  const uint32_t core_bits = s.core_handled_bits();
  p_.write32(Block::Core0, INT_MSK_SET, ~core_bits);
  p_.write32(Block::Core0, INT_MSK_CLR, core_bits);
  p_.write32(Block::Hub, INT_MSK_SET, ~s.hub_fault_bits());
  p_.write32(Block::Hub, INT_MSK_CLR, s.hub_fault_bits());
  if (!flush_mmu()) return ReplayCode::MmuTimeout;
  return check_setup(err);
}

// Before the first job, read back what the guarantee rests on: the recording's GPU,
// powered and out of reset (an unpowered or resetting GPU reads 0 and drops writes),
// translating through our page table, every fault aborted and reported, unmapped
// accesses redirected to our scratch page, no fault pending and the job queue empty.
ReplayCode Replayer::check_setup(ReplayError* err) {
  const hw::Sku& s = *sku_;
  struct Expect {
    Block block;
    uint32_t offset, mask, value;
    const char* name;
  };
  const Expect expect[] = {
      {Block::Hub, HUB_IDENT1, ~0u, rec_->sku.hub_ident1, "HUB_IDENT1"},
      {Block::Hub, HUB_IDENT3, ~0u, rec_->sku.hub_ident3, "HUB_IDENT3"},
      {Block::Core0, CTL_IDENT0, ~0u, rec_->sku.core_ident0, "CTL_IDENT0"},
      {Block::Core0, CTL_IDENT1, ~0u, rec_->sku.core_ident1, "CTL_IDENT1"},
      {Block::Hub, MMU_CTL, ~0u, kMmuCtl, "MMU_CTL"},
      {Block::Hub, MMU_PT_PA_BASE, ~0u, uint32_t(pt_[0] >> PAGE_SHIFT), "MMU_PT_PA_BASE"},
      {Block::Hub, MMU_ILLEGAL_ADDR, ~0u,
       uint32_t(scratch_ >> PAGE_SHIFT) | MMU_ILLEGAL_ADDR_ENABLE, "MMU_ILLEGAL_ADDR"},
      {Block::Hub, MMUC_CONTROL, MMUC_CONTROL_ENABLE, MMUC_CONTROL_ENABLE, "MMUC_CONTROL"},
      {Block::Hub, INT_MSK_STS, ~0u, ~s.hub_fault_bits(), "hub INT_MSK_STS"},
      {Block::Core0, INT_MSK_STS, ~0u, ~s.core_handled_bits(), "core INT_MSK_STS"},
      {Block::Hub, INT_STS, s.hub_fault_bits(), 0, "hub INT_STS"},
      {Block::Core0, INT_STS, ~0u, 0, "core INT_STS"},
      {Block::Core0, CTL_ERR_STAT, ~0u, 0, "ERR_STAT"},
      {Block::Core0, CSD_STATUS, ~0u, 0, "CSD_STATUS"},  // idle, completed count from 0
  };
  if (p_.has_block(Block::Sms)) {
    const uint32_t v = p_.read32(Block::Sms, SMS_TEE_CS) & SMS_STATE_MASK;
    if (v != SMS_IDLE) {
      err->what = "SMS_TEE_CS state", err->expected = SMS_IDLE, err->got = v;
      return ReplayCode::SetupMismatch;
    }
  }
  for (const Expect& e : expect) {
    const uint32_t v = p_.read32(e.block, e.offset);
    if ((v & e.mask) != e.value) {
      err->what = e.name, err->expected = e.value, err->got = v;
      return ReplayCode::SetupMismatch;
    }
  }
  return ReplayCode::Ok;
}

// Every fault the GPU reports, whatever the recording did: the fault bits of both
// interrupt status registers, which a recording cannot clear (verifier: INT_CLR rule).
ReplayCode Replayer::check_faults(ReplayError* err) {
  const hw::Sku& s = *sku_;
  const uint32_t hub = p_.read32(Block::Hub, INT_STS) & s.hub_fault_bits();
  const uint32_t core = p_.read32(Block::Core0, INT_STS) & s.core_fault_bits();
  if (!hub && !core) return ReplayCode::Ok;
  err->got = hub ? hub : core;
  if (hub & HUB_INT_MMU_PTI)
    err->what = "MMU: access to an unmapped page";
  else if (hub & HUB_INT_MMU_WRV)
    err->what = "MMU: write to a read-only page";
  else if (hub & HUB_INT_MMU_CAP)
    err->what = "MMU: address above the cap";
  else if (core & s.core_qpu_fault_bits())
    err->what = "QPU fault (illegal instruction or access)";
  else
    err->what = "bus: access outside the GPU's memory";
  if (hub & s.hub_mmu_fault_bits()) err->address = p_.read32(Block::Hub, MMU_VIO_ADDR);
  return ReplayCode::GpuFault;
}

// A wait that timed out because the GPU reported an error (a fault, a dropped job) is
// reported as that error: it says what went wrong, the timeout only where.
ReplayCode Replayer::explain_timeout(ReplayCode timeout, ReplayError* err) {
  if (ReplayCode c = check_faults(err); c != ReplayCode::Ok) return c;
  return check_err_stat(err) == ReplayCode::Ok ? timeout : ReplayCode::GpuFault;
}

ReplayCode Replayer::check_err_stat(ReplayError* err) {
  const uint32_t e = p_.read32(Block::Core0, CTL_ERR_STAT);
  if (!e) return ReplayCode::Ok;
  err->got = e;
  err->what = e & ERR_CSD_QUEUE_OVERFLOW ? "CSD queue overflow (a job was dropped)"
                                         : "ERR_STAT reports an error";
  return ReplayCode::GpuFault;
}

// At the end of the stream, before any output is read: no fault, no queue overflow,
// every job started has finished (a recording that stops waiting early gets one poll of
// `grace_us`), and the MMU is still ours.
ReplayCode Replayer::check_end(uint32_t jobs_started, uint32_t grace_us, ReplayError* err) {
  if (ReplayCode c = check_faults(err); c != ReplayCode::Ok) return c;
  if (ReplayCode c = check_err_stat(err); c != ReplayCode::Ok) return c;
  const uint32_t busy = CSD_STATUS_HAVE_QUEUED | CSD_STATUS_HAVE_CURRENT;
  if (!poll(Block::Core0, CSD_STATUS, busy, 0, grace_us)) {
    err->what = "CSD_STATUS (a job is still queued or running)";
    err->got = p_.read32(Block::Core0, CSD_STATUS);
    return ReplayCode::JobUnfinished;
  }
  const uint32_t done = get_field(p_.read32(Block::Core0, CSD_STATUS), 11, 4);
  if (done != (jobs_started & 0xff)) {
    err->what = "CSD_STATUS completed jobs";
    err->expected = jobs_started & 0xff, err->got = done;
    return ReplayCode::JobUnfinished;
  }
  if (ReplayCode c = check_faults(err); c != ReplayCode::Ok) return c;  // during the poll
  if (const uint32_t v = p_.read32(Block::Hub, MMU_CTL); v != kMmuCtl) {
    err->what = "MMU_CTL", err->expected = kMmuCtl, err->got = v;
    return ReplayCode::SetupMismatch;
  }
  return ReplayCode::Ok;
}

void Replayer::write_inputs(std::span<const TensorIn> inputs) {
  for (const Binding& b : rec_->bindings)
    if (b.is_input)
      copy_in(b.region, b.offset, static_cast<const uint8_t*>(find_in(inputs, b.name)->data),
              b.bytes);
}

// The action stream: every loop and wait is bounded (verified counts and timeouts).
ReplayCode Replayer::execute(std::span<const TensorIn> inputs, ReplayStats* st, ReplayError* err) {
  const Recording& rec = *rec_;
  const uint32_t cfg0 = sku_->csd_queued_cfg0;
  uint32_t started = 0;  // jobs: CFG0 writes (the verifier checked each one's addresses)
  // The whole stream runs within its budget: every wait is cut to what is left of it.
  const uint64_t deadline = p_.now_us() + replay_budget_us(rec, limits_);
  auto left_us = [&](uint32_t timeout_us) {
    const uint64_t now = p_.now_us();
    return now >= deadline ? 0u : uint32_t(std::min<uint64_t>(timeout_us, deadline - now));
  };
  write_inputs(inputs);
  for (size_t i = 0; i < rec.actions.size(); ++i) {
    const Action& a = rec.actions[i];
    err->action = int32_t(i);
    if (p_.now_us() >= deadline) return ReplayCode::BudgetExceeded;
    err->jobs = started;
    ++st->actions;
    switch (a.op) {
      case ActionOp::Write:
        p_.write32(a.block, a.offset, a.value);
        started += a.block == Block::Core0 && a.offset == cfg0;
        break;
      case ActionOp::Read: {
        const uint32_t v = p_.read32(a.block, a.offset);
        if (a.mask) {
          ++st->checked_reads;
          if ((v & a.mask) != (a.value & a.mask)) {
            err->expected = a.value, err->got = v;
            return ReplayCode::ReadMismatch;
          }
        }
        break;
      }
      case ActionOp::Poll:
        ++st->polls;
        if (!poll(a.block, a.offset, a.mask, a.value, left_us(a.timeout_us)))
          return explain_timeout(
              p_.now_us() >= deadline ? ReplayCode::BudgetExceeded : ReplayCode::PollTimeout, err);
        if (ReplayCode c = check_faults(err); c != ReplayCode::Ok) return c;
        break;
      case ActionOp::WaitIrq:
        ++st->irq_waits;
        if (!p_.wait_irq(a.line, left_us(a.timeout_us)))
          return explain_timeout(
              p_.now_us() >= deadline ? ReplayCode::BudgetExceeded : ReplayCode::IrqTimeout, err);
        if (ReplayCode c = check_faults(err); c != ReplayCode::Ok) return c;
        break;
      case ActionOp::LoadMemory: {
        bool inputs_overwritten = false;
        for (uint32_t k = a.first; k < a.first + a.count; ++k) {
          const PageLoad& l = rec.loads[k];
          const uint32_t g = first_[l.region] + l.page;
          if (state_[g] == l.blob) {  // a read-only page that already holds this image
            ++st->pages_skipped;
            continue;
          }
          uint8_t* dst = p_.page(pa_[g]);
          if (l.blob == kZeroBlob)
            std::memset(dst, 0, kPage);
          else
            std::memcpy(dst, rec.blobs[l.blob].data.data(), kPage);
          state_[g] = writable_[g] ? kDirty : l.blob;
          inputs_overwritten |= input_page_[g];
          ++st->pages_loaded;
        }
        // The caller's inputs, not the recorded ones, wherever this load overwrote them.
        if (inputs_overwritten) write_inputs(inputs);
        break;
      }
      case ActionOp::JobBoundary:  // statistics only: the checks above do not rely on it
        ++st->jobs;
        break;
    }
  }
  err->action = -1;
  err->jobs = started;
  return check_end(started, left_us(limits_.max_poll_us), err);
}

// Everything a run may have written: GPU-writable pages, pages written by the CPU
// (inputs) and the fault scratch page. Afterwards every page is as a fresh replay has it
// before its first load, or holds a read-only image the next run checks before use.
void Replayer::scrub_run_pages(ReplayStats* st) {
  for (size_t g = 0; g < pa_.size(); ++g) {
    if (!writable_[g] && state_[g] != kDirty) continue;
    std::memset(p_.page(pa_[g]), 0, kPage);
    state_[g] = kZeroBlob;
    ++st->pages_scrubbed;
  }
  std::memset(p_.page(scratch_), 0, kPage);
}

ReplayError Replayer::run(std::span<const TensorIn> inputs, std::span<const TensorOut> outputs,
                          ReplayStats* stats) {
  ReplayStats st;
  ReplayError err;
  if (!rec_) {
    err.code = ReplayCode::NotLoaded;
    return err;
  }
  const Recording& rec = *rec_;
  st.pages = uint32_t(pa_.size()) + kPtPages + 1;
  const uint64_t t0 = p_.now_us();
  for (const Binding& b : rec.bindings) {
    if (b.is_input) {
      const TensorIn* t = find_in(inputs, b.name);
      if (!t || t->bytes != b.bytes) err.code = ReplayCode::MissingInput;
    } else {
      bool found = false;
      for (const TensorOut& t : outputs) found |= b.name == t.name && t.bytes == b.bytes;
      if (!found) err.code = ReplayCode::MissingOutput;
    }
  }
  // The GPU may have been reset or handed to another world since the last run: power
  // it, check it is still the recording's GPU, reset it and set up our page table.
  bool touched_gpu = false;
  if (err.ok()) {
    touched_gpu = true;
    if (!power_up()) {
      err.code = ReplayCode::PowerTimeout;
    } else if (!(identify() == rec.sku)) {
      err.code = ReplayCode::Verify;
      err.verify.code = VerifyCode::SkuMismatch;
    }
  }
  // Read-only pages must hold what a fresh replay has at its first job.
  for (size_t g = 0; g < pa_.size() && err.ok(); ++g) {
    if (writable_[g] || state_[g] == initial_[g] || state_[g] == kZeroBlob) continue;
    std::memset(p_.page(pa_[g]), 0, kPage);
    state_[g] = kZeroBlob;
  }
  if (err.ok()) err.code = setup_gpu(&err);
  st.setup_us = p_.now_us() - t0;
  const uint64_t t1 = p_.now_us();
  if (err.ok()) err.code = execute(inputs, &st, &err);
  if (err.ok())
    for (const Binding& b : rec.bindings)
      if (!b.is_input)
        for (const TensorOut& t : outputs)
          if (b.name == t.name)
            copy_out(b.region, b.offset, static_cast<uint8_t*>(t.data), b.bytes);
  st.execute_us = p_.now_us() - t1;

  // Teardown, success or not: stop the GPU and scrub what held data of this run.
  const uint64_t t2 = p_.now_us();
  if (touched_gpu)
    reset_gpu();  // a failure here leaves it in reset, still ours: the
                  // world switch resets it again before handing it back
  scrub_run_pages(&st);
  if (!err.ok())  // never partial output
    for (const TensorOut& t : outputs) std::memset(t.data, 0, t.bytes);
  st.teardown_us = p_.now_us() - t2;
  if (stats) *stats = st;
  return err;
}

ReplayError Replayer::run(const Recording& rec, std::span<const TensorIn> inputs,
                          std::span<const TensorOut> outputs, ReplayStats* stats,
                          std::span<const uint8_t> model_file) {
  ReplayError err;
  ReplayStats load_st, run_st;
  // Verify statically before touching the GPU, then against the GPU present.
  const uint64_t t0 = p_.now_us();
  err.verify = verify_recording(rec, rec.sku, limits_);
  if (!err.verify.ok()) {
    err.code = ReplayCode::Verify;
  } else if (!power_up()) {
    err.code = ReplayCode::PowerTimeout;
  } else {
    const SkuIdentity present = identify();
    err = load(rec, &present, model_file, &load_st);
    if (err.ok()) err = run(inputs, outputs, &run_st);
    const uint64_t t1 = p_.now_us();
    unload();
    run_st.teardown_us += p_.now_us() - t1;
  }
  if (!err.ok())
    for (const TensorOut& t : outputs) std::memset(t.data, 0, t.bytes);
  if (stats) {
    *stats = run_st;
    stats->verify_us = err.code == ReplayCode::Verify ? p_.now_us() - t0 : load_st.verify_us;
    stats->setup_us += load_st.setup_us;
    stats->pages = load_st.pages;
    stats->pages_loaded += load_st.pages_loaded;
  }
  return err;
}

}  // namespace rplayer::replay
