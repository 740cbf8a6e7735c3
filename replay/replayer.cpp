#include "replay/replayer.h"

#include <cstdio>
#include <cstring>
#include <vector>

#include "hw/sku.h"
#include "hw/v3d_regs.h"

namespace rplayer::replay {

using namespace rplayer::v3d;

namespace {
constexpr uint32_t kPage = 4096;
constexpr uint32_t kPtPages = 1024;          // 4 MiB: the whole 4 GiB GPU address space
constexpr uint32_t kSetupTimeoutUs = 100000;  // power, reset and MMU (as Linux: 100 ms)

const TensorIn* find_in(std::span<const TensorIn> v, const std::string& name) {
  for (const TensorIn& t : v)
    if (name == t.name) return &t;
  return nullptr;
}
}  // namespace

// Every physical page of a replay, so that teardown can scrub and free all of them.
struct Replayer::RegionPages {
  std::vector<std::vector<uint64_t>> region;  // per region, per page
  uint64_t pt[kPtPages] = {};
  uint64_t scratch = 0;
  bool have_pt = false, have_scratch = false;
};

const char* ReplayError::message() const {
  switch (code) {
    case ReplayCode::Ok: return "ok";
    case ReplayCode::Verify: return verify.message();
    case ReplayCode::NoMemory: return "out of replay memory";
    case ReplayCode::PowerTimeout: return "GPU power-up or reset timed out";
    case ReplayCode::MmuTimeout: return "GPU MMU flush timed out";
    case ReplayCode::ReadMismatch: return "register read differs from the recording";
    case ReplayCode::PollTimeout: return "register poll timed out";
    case ReplayCode::IrqTimeout: return "interrupt did not arrive in time (lost or hung job)";
    case ReplayCode::MissingInput: return "input tensor missing or of the wrong size";
    case ReplayCode::MissingOutput: return "output tensor missing or of the wrong size";
    case ReplayCode::GpuFault: return "the GPU reported a fault";
  }
  return "?";
}

const char* ReplayError::format(char* buf, size_t size) const {
  if (code == ReplayCode::Verify) {
    char v[160];
    std::snprintf(buf, size, "verification failed: %s", verify.format(v, sizeof v));
  } else if (code == ReplayCode::ReadMismatch || code == ReplayCode::GpuFault) {
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
  uint32_t sleep = 10;
  // Bounded: at most one read per sleep step until the deadline.
  for (;;) {
    if ((p_.read32(b, off) & mask) == value) return true;
    if (p_.now_us() >= deadline) return false;
    p_.sleep_us(sleep);
    sleep = sleep < 1000 ? sleep * 2 : 1000;
  }
}

bool Replayer::power_up() {
  if (!p_.has_block(Block::Sms)) return true;  // 4.x: powered by the platform
  p_.write32(Block::Sms, SMS_TEE_CS, SMS_CLEAR_POWER_OFF);
  return poll(Block::Sms, SMS_TEE_CS, SMS_STATE_MASK, SMS_IDLE, kSetupTimeoutUs);
}

void Replayer::reset_gpu() {
  if (p_.has_block(Block::Sms)) {
    p_.write32(Block::Sms, SMS_REE_CS, SMS_RESET_REQUEST);
    poll(Block::Sms, SMS_REE_CS, SMS_STATE_MASK, SMS_IDLE, kSetupTimeoutUs);
  } else if (p_.has_block(Block::Bridge)) {
    const uint32_t reg = sku_ ? sku_->bridge_sw_init_reg : BRIDGE_SW_INIT_0;
    p_.write32(Block::Bridge, reg, BRIDGE_SW_INIT_V3D);
    p_.write32(Block::Bridge, reg, 0);
  }
}

SkuIdentity Replayer::identify() {
  return {p_.read32(Block::Hub, HUB_IDENT1), p_.read32(Block::Hub, HUB_IDENT3),
          p_.read32(Block::Core0, CTL_IDENT0), p_.read32(Block::Core0, CTL_IDENT1)};
}

bool Replayer::flush_mmu() {
  p_.write32(Block::Hub, MMUC_CONTROL, MMUC_CONTROL_FLUSH | MMUC_CONTROL_ENABLE);
  if (!poll(Block::Hub, MMUC_CONTROL, MMUC_CONTROL_FLUSHING, 0, kSetupTimeoutUs)) return false;
  p_.write32(Block::Hub, MMU_CTL, p_.read32(Block::Hub, MMU_CTL) | MMU_CTL_TLB_CLEAR);
  return poll(Block::Hub, MMU_CTL, MMU_CTL_TLB_CLEARING, 0, kSetupTimeoutUs);
}

void Replayer::copy_in(RegionPages* rp, uint32_t region, uint32_t offset, const uint8_t* src,
                       uint32_t bytes) {
  while (bytes > 0) {  // bounded by the binding size the verifier checked
    const uint32_t page = offset / kPage, in_page = offset % kPage;
    const uint32_t n = bytes < kPage - in_page ? bytes : kPage - in_page;
    std::memcpy(p_.page(rp->region[region][page]) + in_page, src, n);
    src += n, offset += n, bytes -= n;
  }
}

void Replayer::copy_out(RegionPages* rp, uint32_t region, uint32_t offset, uint8_t* dst,
                        uint32_t bytes) {
  while (bytes > 0) {
    const uint32_t page = offset / kPage, in_page = offset % kPage;
    const uint32_t n = bytes < kPage - in_page ? bytes : kPage - in_page;
    std::memcpy(dst, p_.page(rp->region[region][page]) + in_page, n);
    dst += n, offset += n, bytes -= n;
  }
}

ReplayError Replayer::run(const Recording& rec, std::span<const TensorIn> inputs,
                          std::span<const TensorOut> outputs, ReplayStats* stats_out) {
  ReplayStats st;
  ReplayError err;
  RegionPages rp;
  sku_ = nullptr;
  const uint64_t t0 = p_.now_us();
  auto fail = [&](ReplayCode c, int32_t action = -1) {
    err.code = c;
    err.action = action;
    return false;
  };

  // 1. Verify statically before touching the GPU; then power it up and check it is the
  // GPU the recording was made on. Every input and output must be there, sized right.
  auto prepare = [&]() -> bool {
    err.verify = verify_recording(rec, rec.sku, limits_);
    if (!err.verify.ok()) return fail(ReplayCode::Verify);
    if (!power_up()) return fail(ReplayCode::PowerTimeout);
    err.verify = verify_recording(rec, identify(), limits_);
    if (!err.verify.ok()) return fail(ReplayCode::Verify);
    sku_ = recording_sku(rec);
    for (const Binding& b : rec.bindings) {
      if (b.is_input) {
        const TensorIn* t = find_in(inputs, b.name);
        if (!t || t->bytes != b.bytes) return fail(ReplayCode::MissingInput);
      } else {
        bool found = false;
        for (const TensorOut& t : outputs) found |= b.name == t.name && t.bytes == b.bytes;
        if (!found) return fail(ReplayCode::MissingOutput);
      }
    }
    if (rec.weights_omitted)
      for (const Region& r : rec.regions)
        if (r.kind == RegionKind::Weights) {
          const TensorIn* t = find_in(inputs, r.label);
          if (!t || t->bytes > r.size) return fail(ReplayCode::MissingInput);
        }
    return true;
  };

  // 2. Our own page table in our own pages, from the verified region list only.
  auto setup = [&]() -> bool {
    reset_gpu();
    if (!p_.alloc_pages(kPtPages, true, rp.pt)) return fail(ReplayCode::NoMemory);
    rp.have_pt = true;
    if (!p_.alloc_pages(1, false, &rp.scratch)) return fail(ReplayCode::NoMemory);
    rp.have_scratch = true;
    for (uint32_t i = 0; i < kPtPages; ++i) std::memset(p_.page(rp.pt[i]), 0, kPage);
    std::memset(p_.page(rp.scratch), 0, kPage);
    rp.region.resize(rec.regions.size());
    for (size_t r = 0; r < rec.regions.size(); ++r) {
      const Region& reg = rec.regions[r];
      std::vector<uint64_t>& pages = rp.region[r];
      pages.resize(reg.size / kPage);
      if (!p_.alloc_pages(uint32_t(pages.size()), false, pages.data())) {
        pages.clear();
        return fail(ReplayCode::NoMemory);
      }
      st.pages += uint32_t(pages.size());
      const uint32_t flags = PTE_VALID | (reg.gpu_writable ? PTE_WRITEABLE : 0);
      for (size_t i = 0; i < pages.size(); ++i) {
        std::memset(p_.page(pages[i]), 0, kPage);
        const uint32_t vpn = reg.gpu_va / kPage + uint32_t(i);
        uint32_t pte = flags | uint32_t(pages[i] >> PAGE_SHIFT);
        std::memcpy(p_.page(rp.pt[vpn / 1024]) + (vpn % 1024) * 4, &pte, 4);
      }
    }
    st.pages += kPtPages + 1;
    if (rec.weights_omitted)
      for (uint32_t r = 0; r < rec.regions.size(); ++r)
        if (rec.regions[r].kind == RegionKind::Weights) {
          const TensorIn* t = find_in(inputs, rec.regions[r].label);
          copy_in(&rp, r, 0, static_cast<const uint8_t*>(t->data), t->bytes);
        }
    const hw::Sku& s = *sku_;
    p_.write32(Block::Hub, MMU_PT_PA_BASE, uint32_t(rp.pt[0] >> PAGE_SHIFT));
    p_.write32(Block::Hub, MMU_CTL,
               MMU_CTL_ENABLE | MMU_CTL_PT_INVALID_ENABLE | MMU_CTL_PT_INVALID_ABORT |
                   MMU_CTL_PT_INVALID_INT | MMU_CTL_WRITE_VIOLATION_ABORT |
                   MMU_CTL_WRITE_VIOLATION_INT | MMU_CTL_CAP_EXCEEDED_ABORT |
                   MMU_CTL_CAP_EXCEEDED_INT);
    p_.write32(Block::Hub, MMU_ILLEGAL_ADDR,
               uint32_t(rp.scratch >> PAGE_SHIFT) | MMU_ILLEGAL_ADDR_ENABLE);
    p_.write32(Block::Hub, MMUC_CONTROL, MMUC_CONTROL_ENABLE);
    p_.write32(Block::Core0, CTL_L2TFLSTA, 0);
    p_.write32(Block::Core0, CTL_L2TFLEND, ~0u);
    const uint32_t core_bits =
        s.core_int_csd_done | s.core_int_gmpv | (0xfffu << s.core_int_qpu_shift);
    const uint32_t hub_bits = HUB_INT_MMU_PTI | HUB_INT_MMU_WRV | HUB_INT_MMU_CAP | s.hub_int_gmpv;
    p_.write32(Block::Core0, INT_MSK_SET, ~core_bits);
    p_.write32(Block::Core0, INT_MSK_CLR, core_bits);
    p_.write32(Block::Hub, INT_MSK_SET, ~hub_bits);
    p_.write32(Block::Hub, INT_MSK_CLR, hub_bits);
    if (!flush_mmu()) return fail(ReplayCode::MmuTimeout);
    return true;
  };

  auto write_inputs = [&]() {
    for (const Binding& b : rec.bindings)
      if (b.is_input)
        copy_in(&rp, b.region, b.offset, static_cast<const uint8_t*>(find_in(inputs, b.name)->data),
                b.bytes);
  };

  // 3. The action stream: every loop and wait is bounded (verified counts and timeouts).
  auto execute = [&]() -> bool {
    const uint32_t mmu_faults =
        HUB_INT_MMU_PTI | HUB_INT_MMU_WRV | HUB_INT_MMU_CAP | sku_->hub_int_gmpv;
    write_inputs();
    for (size_t i = 0; i < rec.actions.size(); ++i) {
      const Action& a = rec.actions[i];
      const int32_t at = int32_t(i);
      ++st.actions;
      switch (a.op) {
        case ActionOp::Write: p_.write32(a.block, a.offset, a.value); break;
        case ActionOp::Read: {
          const uint32_t v = p_.read32(a.block, a.offset);
          if (a.mask) {
            ++st.checked_reads;
            if ((v & a.mask) != (a.value & a.mask)) {
              err.expected = a.value, err.got = v;
              return fail(ReplayCode::ReadMismatch, at);
            }
          }
          break;
        }
        case ActionOp::Poll:
          ++st.polls;
          if (!poll(a.block, a.offset, a.mask, a.value, a.timeout_us))
            return fail(ReplayCode::PollTimeout, at);
          break;
        case ActionOp::WaitIrq:
          ++st.irq_waits;
          if (!p_.wait_irq(a.line, a.timeout_us)) return fail(ReplayCode::IrqTimeout, at);
          break;
        case ActionOp::LoadMemory:
          for (uint32_t k = a.first; k < a.first + a.count; ++k) {
            const PageLoad& l = rec.loads[k];
            uint8_t* dst = p_.page(rp.region[l.region][l.page]);
            if (l.blob == kZeroBlob)
              std::memset(dst, 0, kPage);
            else
              std::memcpy(dst, rec.blobs[l.blob].data.data(), kPage);
          }
          st.pages_loaded += a.count;
          write_inputs();  // the caller's inputs, not the recorded ones
          break;
        case ActionOp::JobBoundary: {
          ++st.jobs;
          // Our own check after each job: the GPU must not have faulted.
          const uint32_t hub = p_.read32(Block::Hub, INT_STS);
          if (hub & mmu_faults) {
            err.got = p_.read32(Block::Hub, MMU_VIO_ADDR);
            return fail(ReplayCode::GpuFault, at);
          }
          break;
        }
      }
    }
    for (const Binding& b : rec.bindings)
      if (!b.is_input)
        for (const TensorOut& t : outputs)
          if (b.name == t.name)
            copy_out(&rp, b.region, b.offset, static_cast<uint8_t*>(t.data), b.bytes);
    return true;
  };

  bool ok = prepare();
  st.verify_us = p_.now_us() - t0;
  const uint64_t t1 = p_.now_us();
  ok = ok && setup();
  st.setup_us = p_.now_us() - t1;
  const uint64_t t2 = p_.now_us();
  ok = ok && execute();
  st.execute_us = p_.now_us() - t2;

  // 4. Teardown, success or not: stop the GPU, scrub and free every page we used.
  const uint64_t t3 = p_.now_us();
  if (sku_) reset_gpu();
  for (std::vector<uint64_t>& pages : rp.region) {
    for (uint64_t pa : pages) std::memset(p_.page(pa), 0, kPage);
    if (!pages.empty()) p_.free_pages(pages.data(), uint32_t(pages.size()));
  }
  if (rp.have_pt) {
    for (uint64_t pa : rp.pt) std::memset(p_.page(pa), 0, kPage);
    p_.free_pages(rp.pt, kPtPages);
  }
  if (rp.have_scratch) {
    std::memset(p_.page(rp.scratch), 0, kPage);
    p_.free_pages(&rp.scratch, 1);
  }
  if (!ok)  // never partial output
    for (const TensorOut& t : outputs) std::memset(t.data, 0, t.bytes);
  st.teardown_us = p_.now_us() - t3;
  if (stats_out) *stats_out = st;
  return err;
}

}  // namespace rplayer::replay
