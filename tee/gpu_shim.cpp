#include "tee/gpu_shim.h"

#include <cstring>
#include <thread>

#include "hw/poll_backoff.h"
#include "hw/v3d_regs.h"

namespace rplayer::tee {

using hw::RegBlock;
using link::ShimOp;
using link::ShimOpKind;
using link::ShimRefusal;
using namespace rplayer::v3d;
using Clock = std::chrono::steady_clock;

namespace {

constexpr uint64_t kPage = link::kShimPage;
constexpr uint64_t kTableBytes = 4u << 20;  // one PTE per 4 KiB page of the 4 GiB VA space
constexpr uint32_t kMmuMustStay = MMU_CTL_ENABLE;
constexpr uint32_t kSetupTimeoutUs = 200'000;

uint32_t get32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

uint64_t micros_since(Clock::time_point t) {
  return uint64_t(std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t).count());
}

const char* block_name(uint8_t b) {
  static const char* const names[] = {"hub", "core0", "sms", "bridge", "tzpc", "mbox"};
  return b < hw::kNumRegBlocks ? names[b] : "?";
}

std::string hex(uint32_t v) {
  char b[16];
  std::snprintf(b, sizeof b, "0x%08x", v);
  return b;
}

// Polls with the driver's back-off (hw/poll_backoff.h), bounded by timeout_us.
bool poll_port(hw::SocPort& port, RegBlock b, uint32_t off, uint32_t mask, uint32_t value,
               uint32_t timeout_us, uint32_t* last, uint32_t* reads) {
  const Clock::time_point start = Clock::now();
  return hw::poll_until(
      timeout_us, {},
      [&] {
        *last = port.read32(b, off);
        ++*reads;
        return (*last & mask) == value;
      },
      [&] { return micros_since(start); },
      [](uint32_t us) { std::this_thread::sleep_for(std::chrono::microseconds(us)); });
}

}  // namespace

GpuShim::GpuShim(GpuShimConfig cfg) : cfg_(cfg), port_(*cfg.port), mem_(port_.memory()) {}

GpuShim::~GpuShim() { close(); }

bool GpuShim::in_pool(uint64_t pa, uint64_t len) const {
  return pa >= cfg_.pool_pa && len <= cfg_.pool_bytes && pa - cfg_.pool_pa <= cfg_.pool_bytes - len;
}

bool GpuShim::in_table(uint64_t pa) const {
  return table_pa_ != 0 && pa >= table_pa_ && pa - table_pa_ < kTableBytes;
}

bool GpuShim::pte_ok(uint32_t pte) const {
  if (!(pte & PTE_VALID)) return true;  // invalid entries fault (and abort) on use
  if (pte & (PTE_SUPERPAGE | PTE_BIGPAGE)) return false;
  const uint64_t pa = uint64_t(pte & PTE_PFN_MASK) * kPage;
  return in_pool(pa, kPage) && !in_table(pa);
}

uint32_t GpuShim::block_bytes(uint8_t block) const {
  switch (RegBlock(block)) {
    case RegBlock::Hub:
      return 0x4000;
    case RegBlock::Core0:
      return sku_->core_block_size;
    case RegBlock::Sms:
      return port_.has_block(RegBlock::Sms) ? 0x1000 : 0;
    case RegBlock::Bridge:
      return port_.has_block(RegBlock::Bridge) ? 0x100 : 0;
    default:
      return 0;  // TrustZone controller and ownership mailbox: the secure world's
  }
}

bool GpuShim::reset_gpu() {
  if (port_.has_block(RegBlock::Sms)) {
    uint32_t last = 0, reads = 0;
    if ((port_.read32(RegBlock::Sms, SMS_TEE_CS) & SMS_STATE_MASK) != SMS_IDLE) {
      port_.write32(RegBlock::Sms, SMS_TEE_CS, SMS_CLEAR_POWER_OFF);
      if (!poll_port(port_, RegBlock::Sms, SMS_TEE_CS, SMS_STATE_MASK, SMS_IDLE, kSetupTimeoutUs,
                     &last, &reads))
        return false;
    }
    port_.write32(RegBlock::Sms, SMS_REE_CS, SMS_RESET_REQUEST);
    return poll_port(port_, RegBlock::Sms, SMS_REE_CS, SMS_STATE_MASK, SMS_IDLE, kSetupTimeoutUs,
                     &last, &reads);
  }
  if (port_.has_block(RegBlock::Bridge)) {
    const uint32_t reg = sku_ ? sku_->bridge_sw_init_reg : BRIDGE_SW_INIT_0;
    port_.write32(RegBlock::Bridge, reg, BRIDGE_SW_INIT_V3D);
    port_.write32(RegBlock::Bridge, reg, 0);
  }
  return true;
}

bool GpuShim::open(link::ShimHello* hello, std::string* why) {
  close();
  if (!mem_.contains(cfg_.pool_pa, cfg_.pool_bytes) || cfg_.pool_pa % kPage ||
      cfg_.pool_bytes % kPage || cfg_.pool_bytes < kTableBytes + 16 * kPage) {
    *why = "the pool is not a page-aligned range of the secure world's memory";
    return false;
  }
  if (!reset_gpu()) {
    *why = "the GPU did not come out of reset";
    return false;
  }
  link::ShimHello h;
  for (int i = 0; i < 4; ++i) h.hub_ident[i] = port_.read32(RegBlock::Hub, HUB_IDENT0 + 4 * i);
  for (int i = 0; i < 3; ++i) h.core_ident[i] = port_.read32(RegBlock::Core0, CTL_IDENT0 + 4 * i);
  sku_ = hw::identify_sku(h.hub_ident[1], h.hub_ident[3], h.core_ident[0], h.core_ident[1]);
  if (!sku_) {
    *why = "unsupported GPU (HUB_IDENT1=" + hex(h.hub_ident[1]) + ")";
    return false;
  }
  for (RegBlock b : {RegBlock::Hub, RegBlock::Core0, RegBlock::Sms, RegBlock::Bridge})
    if (port_.has_block(b)) h.blocks |= uint8_t(1u << uint8_t(b));
  h.irq_lines = uint8_t(sku_->num_irq_lines);
  h.pool_pa = cfg_.pool_pa;
  h.pool_bytes = cfg_.pool_bytes;
  std::memset(mem_.at(cfg_.pool_pa), 0, cfg_.pool_bytes);
  table_pa_ = 0;
  stats_ = {};
  waiting_ = false;
  ops_.clear();
  active_ = true;
  *hello = h;
  return true;
}

void GpuShim::close() {
  if (!active_) return;
  active_ = false;
  waiting_ = false;
  ops_.clear();
  reset_gpu();  // stops any job; a failure leaves it in reset, and the world switch resets again
  std::memset(mem_.at(cfg_.pool_pa), 0, cfg_.pool_bytes);
  table_pa_ = 0;
}

bool GpuShim::pool_is_clean() const {
  const uint8_t* p = mem_.at(cfg_.pool_pa);
  for (uint64_t i = 0; i < cfg_.pool_bytes; ++i)
    if (p[i]) return false;
  return true;
}

GpuShim::Step GpuShim::refuse(ShimRefusal r, std::string why, std::vector<uint8_t>* reply) {
  link::ShimReply rep;
  rep.seq = seq_;
  rep.refusal = r;
  rep.failed_op = uint32_t(next_op_);
  rep.why = std::move(why);
  link::encode_reply(rep, reply);
  close();
  return Step::Refused;
}

GpuShim::Step GpuShim::exchange(std::span<const uint8_t> frame, std::vector<uint8_t>* reply) {
  next_op_ = 0;
  if (!active_) return refuse(ShimRefusal::NotOpen, "no session", reply);
  if (waiting_) return refuse(ShimRefusal::Malformed, "a new frame while a wait is pending", reply);
  const link::WireCode c = link::decode_request(frame, cfg_.limits, &seq_, &ops_);
  if (c != link::WireCode::Ok)
    return refuse(c == link::WireCode::TooLarge ? ShimRefusal::TooLarge : ShimRefusal::Malformed,
                  std::string("request frame: ") + link::wire_code_name(c), reply);
  ++stats_.frames;
  reply_ = link::ShimReply{};
  reply_.seq = seq_;
  return run(reply);
}

GpuShim::Step GpuShim::resume(std::vector<uint8_t>* reply) {
  if (!active_ || !waiting_) return refuse(ShimRefusal::NotOpen, "nothing to resume", reply);
  return run(reply);
}

GpuShim::Step GpuShim::run(std::vector<uint8_t>* reply) {
  const Clock::time_point slice_start = Clock::now();
  struct Busy {  // the device's time on this call, whichever way it ends
    GpuShimStats& st;
    Clock::time_point t0;
    ~Busy() { st.busy_us += micros_since(t0); }
  } busy{stats_, slice_start};
  while (next_op_ < ops_.size()) {
    std::string why;
    bool pending = false;
    const ShimRefusal r = apply(ops_[next_op_], &why, &pending);
    if (r != ShimRefusal::None) return refuse(r, std::move(why), reply);
    if (pending) {
      if (micros_since(slice_start) >= cfg_.slice_us) {
        reply->clear();
        return Step::Pending;
      }
      continue;  // the same wait, again within this slice
    }
    ++next_op_;
    ++stats_.ops;
  }
  ops_.clear();
  link::encode_reply(reply_, reply);
  return Step::Done;
}

ShimRefusal GpuShim::check_write(uint8_t block, uint32_t off, uint32_t v, std::string* why) {
  const std::string where = std::string(block_name(block)) + "+" + hex(off);
  auto refuse_value = [&](const char* what) {
    *why = where + " = " + hex(v) + ": " + what;
    return ShimRefusal::ValueNotAllowed;
  };
  switch (RegBlock(block)) {
    case RegBlock::Hub:
      switch (off) {
        case MMU_PT_PA_BASE: {
          const uint64_t pa = uint64_t(v) * kPage;
          if (!in_pool(pa, kTableBytes)) return refuse_value("page table not inside the pool");
          if (table_pa_ != 0 && pa != table_pa_)
            return refuse_value("the page table moves within a session");
          if (table_pa_ == 0) {
            // Whatever the cloud wrote there before: every entry must be ours.
            table_pa_ = pa;
            const uint8_t* t = mem_.at(pa);
            for (uint64_t i = 0; i < kTableBytes; i += 4)
              if (!pte_ok(get32(t + i))) {
                table_pa_ = 0;
                *why = "page-table entry " + std::to_string(i / 4) + " = " + hex(get32(t + i)) +
                       " maps outside the pool";
                return ShimRefusal::ForeignPte;
              }
          }
          return ShimRefusal::None;
        }
        case MMU_CTL:
          if ((v & kMmuMustStay) != kMmuMustStay) return refuse_value("the MMU must stay on");
          return ShimRefusal::None;
        case MMU_ILLEGAL_ADDR: {
          const uint64_t pa = uint64_t(v & PTE_PFN_MASK) * kPage;
          if (!(v & MMU_ILLEGAL_ADDR_ENABLE) || !in_pool(pa, kPage) || in_table(pa))
            return refuse_value("illegal-address page not a pool page outside the table");
          return ShimRefusal::None;
        }
        case MMUC_CONTROL:
          if (v & ~(MMUC_CONTROL_ENABLE | MMUC_CONTROL_FLUSH)) return refuse_value("reserved bits");
          return ShimRefusal::None;
        case INT_MSK_SET:
        case INT_MSK_CLR:
        case INT_CLR:
          return ShimRefusal::None;
        default:
          break;
      }
      break;
    case RegBlock::Core0:
      if (off == CTL_L2TCACTL || off == CTL_SLCACTL || off == CTL_L2TFLSTA || off == CTL_L2TFLEND ||
          off == INT_MSK_SET || off == INT_MSK_CLR || off == INT_CLR)
        return ShimRefusal::None;
      if (off >= sku_->csd_queued_cfg0 && off < sku_->csd_queued_cfg0 + 4u * sku_->csd_num_cfg)
        return off == sku_->csd_queued_cfg0 ? check_job_start(why) : ShimRefusal::None;
      break;
    case RegBlock::Sms:
      // Power and world bits stay the secure world's: only a GPU reset is passed on
      // (power-up and power-off requests are answered by the session's own power state).
      if (off == SMS_REE_CS && v == SMS_RESET_REQUEST) return ShimRefusal::None;
      if (off == SMS_TEE_CS && (v == SMS_CLEAR_POWER_OFF || v == SMS_POWER_OFF))
        return ShimRefusal::None;
      return refuse_value("power and world controls are the secure world's");
    case RegBlock::Bridge:
      if (off == sku_->bridge_sw_init_reg && (v == BRIDGE_SW_INIT_V3D || v == 0))
        return ShimRefusal::None;
      break;
    default:
      break;
  }
  *why = where + ": not a register the cloud may write";
  return ShimRefusal::RegisterNotAllowed;
}

// A job translates through the MMU as the GPU has it now: read it back (a reset turns the
// MMU off, and an MMU off means physical addressing).
ShimRefusal GpuShim::check_job_start(std::string* why) {
  const uint32_t ctl = port_.read32(RegBlock::Hub, MMU_CTL);
  const uint32_t base = port_.read32(RegBlock::Hub, MMU_PT_PA_BASE);
  const uint32_t illegal = port_.read32(RegBlock::Hub, MMU_ILLEGAL_ADDR);
  const uint64_t illegal_pa = uint64_t(illegal & PTE_PFN_MASK) * kPage;
  if (!(ctl & MMU_CTL_ENABLE) || table_pa_ == 0 || uint64_t(base) * kPage != table_pa_ ||
      !(illegal & MMU_ILLEGAL_ADDR_ENABLE) || !in_pool(illegal_pa, kPage) || in_table(illegal_pa)) {
    *why = "job start with the MMU not set up on the pool (MMU_CTL=" + hex(ctl) +
           ", PT base=" + hex(base) + ", illegal=" + hex(illegal) + ")";
    return ShimRefusal::ValueNotAllowed;
  }
  return ShimRefusal::None;
}

ShimRefusal GpuShim::check_page(uint64_t pa, const uint8_t* bytes, std::string* why) {
  if (pa % kPage || !in_pool(pa, kPage)) {
    *why = "page at PA " + std::to_string(pa) + " is not a pool page";
    return ShimRefusal::PageOutsidePool;
  }
  if (in_table(pa) && bytes)
    for (uint32_t i = 0; i < kPage; i += 4)
      if (!pte_ok(get32(bytes + i))) {
        *why = "page-table entry " + std::to_string((pa - table_pa_ + i) / 4) + " = " +
               hex(get32(bytes + i)) + " maps outside the pool";
        return ShimRefusal::ForeignPte;
      }
  return ShimRefusal::None;
}

ShimRefusal GpuShim::apply(const ShimOp& op, std::string* why, bool* pending) {
  using RB = RegBlock;
  const bool reg_op = op.kind == ShimOpKind::Write || op.kind == ShimOpKind::Update ||
                      op.kind == ShimOpKind::Read || op.kind == ShimOpKind::Poll;
  if (reg_op) {
    const uint32_t size = op.block < hw::kNumRegBlocks ? block_bytes(op.block) : 0;
    if (size == 0) {
      *why = "register block " + std::to_string(op.block) + " is not the cloud's";
      return ShimRefusal::BlockNotAllowed;
    }
    if (op.offset % 4 || op.offset >= size) {
      *why = "offset " + hex(op.offset) + " outside its block";
      return ShimRefusal::BlockNotAllowed;
    }
  }
  const RB b = RB(op.block);
  switch (op.kind) {
    case ShimOpKind::Write:
    case ShimOpKind::Update: {
      uint32_t v = op.a;
      if (op.kind == ShimOpKind::Update) v = (port_.read32(b, op.offset) & op.a) | op.b;
      if (ShimRefusal r = check_write(op.block, op.offset, v, why); r != ShimRefusal::None)
        return r;
      ++stats_.writes;
      if (b == RB::Sms && op.offset == SMS_TEE_CS) return ShimRefusal::None;  // see check_write
      port_.write32(b, op.offset, v);
      return ShimRefusal::None;
    }
    case ShimOpKind::Read: {
      ++stats_.reads;
      link::ShimResult res;
      res.kind = ShimOpKind::Read;
      res.value = port_.read32(b, op.offset);
      reply_.results.push_back(res);
      return ShimRefusal::None;
    }
    case ShimOpKind::Poll: {
      if (op.timeout_us == 0 || op.timeout_us > cfg_.max_poll_us) {
        *why = "poll of " + std::to_string(op.timeout_us) + " us";
        return ShimRefusal::Unbounded;
      }
      ++stats_.polls;
      link::ShimResult res;
      res.kind = ShimOpKind::Poll;
      res.ok = poll_port(port_, b, op.offset, op.a, op.b, op.timeout_us, &res.value, &res.count);
      reply_.results.push_back(res);
      return ShimRefusal::None;
    }
    case ShimOpKind::Wait: {
      if (op.block >= sku_->num_irq_lines) {
        *why = "interrupt line " + std::to_string(op.block);
        return ShimRefusal::BadLine;
      }
      if (op.timeout_us > cfg_.max_wait_us) {
        *why = "wait of " + std::to_string(op.timeout_us) + " us";
        return ShimRefusal::Unbounded;
      }
      if (!waiting_) {
        waiting_ = true;
        waited_us_ = 0;
        wait_deadline_ = Clock::now() + std::chrono::microseconds(op.timeout_us);
      }
      const Clock::time_point now = Clock::now();
      const auto left = std::chrono::duration_cast<std::chrono::microseconds>(
          wait_deadline_ > now ? wait_deadline_ - now : Clock::duration(0));
      const auto slice = std::min(left, std::chrono::microseconds(cfg_.slice_us));
      const Clock::time_point t0 = Clock::now();
      const bool hit = port_.wait_irq(op.block, slice);
      waited_us_ += micros_since(t0);
      if (!hit && slice < left) {
        *pending = true;  // more to wait: another slice (maybe another call)
        return ShimRefusal::None;
      }
      waiting_ = false;
      ++stats_.waits;
      stats_.wait_us += waited_us_;
      link::ShimResult res;
      res.kind = ShimOpKind::Wait;
      res.ok = hit;
      res.count = uint32_t(std::min<uint64_t>(waited_us_, UINT32_MAX));
      reply_.results.push_back(res);
      return ShimRefusal::None;
    }
    case ShimOpKind::Page: {
      const uint8_t* bytes = op.encoding == link::PageEncoding::Zero ? nullptr : op.data.data();
      if (ShimRefusal r = check_page(op.pa, bytes, why); r != ShimRefusal::None) return r;
      ++stats_.pages;
      uint8_t* dst = mem_.at(op.pa);
      if (bytes)
        std::memcpy(dst, bytes, kPage);
      else
        std::memset(dst, 0, kPage);
      return ShimRefusal::None;
    }
  }
  *why = "unknown operation";
  return ShimRefusal::Malformed;
}

}  // namespace rplayer::tee
