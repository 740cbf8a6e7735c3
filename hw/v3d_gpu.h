// The V3D-shaped GPU: register blocks (hub, core0, SMS, GR bridge, TZPC, and the SoC's
// GPU ownership mailbox, which lives here because it shares the register path) with their
// reset values and side effects, interrupt generation, the MMU and L2T cache on the
// GPU's DMA path, CSD queueing, power/reset state machines and TrustZone
// partitioning. Timed effects (busy bits, power transitions, completion interrupts)
// run on the SoC's event thread.
//
// Locking, always in this order: exec_mu_ (shared by running workgroups, exclusive
// for cache/TLB maintenance and reset) -> reg_mu_ -> mem_mu_. The DMA path
// (page()) takes only mem_mu_ and reports faults after dropping it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <shared_mutex>

#include "hw/bus_tap.h"
#include "hw/csd.h"
#include "hw/event_queue.h"
#include "hw/fault_injection.h"
#include "hw/irq.h"
#include "hw/l2t_cache.h"
#include "hw/mmu.h"
#include "hw/phys_memory.h"
#include "hw/sku.h"

namespace rplayer::hw {

// Latencies of timed operations (nanoseconds of wall time), scaled by `scale`, with
// uniform jitter of +-`jitter` drawn from a seeded generator.
struct GpuTiming {
  double scale = 1.0;
  double jitter = 0.25;
  uint64_t seed = 1;
  uint32_t mmuc_flush_ns = 4000;
  uint32_t tlb_clear_ns = 3000;
  uint32_t l2t_op_ns = 5000;
  uint32_t l2t_per_page_ns = 20;
  uint32_t tmuwcf_ns = 3000;
  uint32_t csd_irq_ns = 3000;
  uint32_t power_ns = 80000;
  uint32_t reset_ns = 30000;
  uint32_t world_switch_ns = 20000;
};

struct GpuStats {
  uint64_t jobs_submitted = 0;
  uint64_t jobs_completed = 0;
  uint64_t workgroups = 0;
  uint64_t qpu_instructions = 0;
  uint64_t qpu_cycles = 0;      // modeled, summed over QPUs
  uint64_t modeled_busy_ns = 0;  // qpu_cycles spread over all QPUs at the SKU clock
  uint64_t device_busy_ns = 0;  // wall time the CSD spent executing jobs
  uint64_t maintenance_busy_ns = 0;  // wall time with a cache/MMU maintenance op in flight
  uint64_t tz_violations = 0;   // normal-world accesses refused while the GPU is secure
  uint64_t unknown_writes = 0;  // writes to unimplemented offsets
  uint64_t unpowered_accesses = 0;
  uint64_t mmu_faults = 0;
  uint64_t gmp_violations = 0;  // GPU DMA refused by the bus (carve-out, outside DRAM)
  uint64_t tlb_hits = 0, tlb_misses = 0;
  uint64_t l2t_hits = 0, l2t_misses = 0, l2t_writebacks = 0;
  uint64_t resets = 0;
  uint64_t world_switches = 0;
};

class V3dGpu final : public GpuMemory, private DmaSink {
 public:
  V3dGpu(const Sku& sku, PhysMemory& mem, IrqLines& irq, EventQueue& events,
         FaultInjection& faults, const GpuTiming& timing, int device_threads);
  ~V3dGpu() override;

  const Sku& sku() const { return sku_; }
  bool has_block(RegBlock b) const;
  uint32_t block_size(RegBlock b) const;
  uint32_t read(World w, RegBlock b, uint32_t offset);
  void write(World w, RegBlock b, uint32_t offset, uint32_t value);

  bool secure() const { return secure_.load(); }
  void set_tap(BusTap* tap) { tap_.store(tap); }
  GpuStats stats();

  // GpuMemory (the QPUs' view of memory through MMU and L2T).
  uint8_t* page(uint32_t va_page, GpuAccess access) override;
  uint64_t generation() const override { return generation_.load(std::memory_order_acquire); }

 private:
  struct IntGroup {
    uint32_t sts = 0;
    uint32_t msk = ~0u;  // everything masked out of reset
  };
  enum class Power : uint8_t { On, Off, InReset, Dead };

  // Register access, called with reg_mu_ held.
  uint32_t read_hub(uint32_t off, bool* known);
  uint32_t read_core(uint32_t off, bool* known);
  uint32_t read_sms(uint32_t off, bool* known);
  bool write_hub(World w, uint32_t off, uint32_t v);
  bool write_core(uint32_t off, uint32_t v);
  bool write_sms(World w, uint32_t off, uint32_t v);
  bool write_bridge(uint32_t off, uint32_t v);
  bool write_tzpc(uint32_t off, uint32_t v);
  bool write_mbox(World w, uint32_t off, uint32_t v);
  bool write_int(IntGroup& g, uint32_t off, uint32_t v);
  uint32_t read_int(const IntGroup& g, uint32_t off, bool* known) const;
  bool reachable(World w, RegBlock b, bool* violation) const;

  void raise_hub(uint32_t bits);
  void raise_core(uint32_t bits);
  void raise(IntGroup& g, uint32_t bits);  // both: STS, fault injection, the lines
  void update_irq_lines();
  void sync_mmu_config();  // reg_mu_ held: copy MMU registers into mem-side config
  void submit_csd();
  void start_job(const std::shared_ptr<CsdJob>& job);  // reg_mu_ held
  void reset_registers();
  std::chrono::nanoseconds latency(uint32_t ns);
  std::chrono::nanoseconds power_latency(uint32_t ns);
  void bump_generation() { generation_.fetch_add(1, std::memory_order_acq_rel); }

  // Timed effects (event thread).
  // Maintenance completions carry the reset epoch they were started in: a reset in
  // between cancels them.
  bool stale(uint64_t epoch);
  void finish_mmu_maintenance(uint64_t epoch, bool tlb);  // TLB clear or MMUC flush
  void account_maintenance();  // call with reg_mu_ held after a maintenance flag changes
  void finish_l2t_op(uint64_t epoch, bool tmuwcf, uint32_t flm, uint64_t lo, uint64_t hi);
  void finish_csd(const std::shared_ptr<CsdJob>& job);
  void full_reset();  // stops the CSD, drops TLB/caches, resets registers
  void sms_transition(uint32_t state_after, bool do_reset, bool power_on, bool power_off);
  void finish_world_switch(bool to_secure);

  // Called from CSD workers.
  void on_job_done(const std::shared_ptr<CsdJob>& job);
  void on_qpu_fault(const std::shared_ptr<CsdJob>& job, uint32_t qpu, QpuResult r);
  void on_dma(uint64_t pa, uint32_t bytes, bool write) override;
  void report_mmu_fault(MmuFault f, uint32_t vpn, GpuAccess access);
  void emit(const BusEvent& e) {
    if (BusTap* t = tap_.load(std::memory_order_relaxed)) t->on_bus_event(e);
  }

  const Sku& sku_;
  PhysMemory& mem_;
  IrqLines& irq_;
  EventQueue& events_;
  FaultInjection& faults_;
  GpuTiming timing_;
  std::atomic<BusTap*> tap_{nullptr};
  std::atomic<bool> secure_{false};
  std::atomic<uint64_t> generation_{1};

  std::shared_mutex exec_mu_;
  std::mutex reg_mu_;
  std::mutex mem_mu_;

  // ---- state under reg_mu_ ----
  std::mutex rng_mu_;
  std::mt19937_64 rng_;
  uint64_t epoch_ = 0;  // counts resets
  bool power_up_pending_ = false;
  Power power_;
  uint32_t sms_state_ = 0;
  bool world_switching_ = false;
  // Ownership mailbox: not GPU state, so neither reset nor world switch clears it.
  // ACK starts at 1: no normal-world driver holds the GPU until one probes and says so.
  uint32_t mbox_claim_ = 0, mbox_ack_ = 1, mbox_event_ = 0, mbox_demand_ = 0;
  uint32_t axicfg_ = 0, uifcfg_ = 0;
  IntGroup hub_int_, core_int_;
  uint32_t mmuc_control_ = 0;
  bool mmuc_flushing_ = false;
  uint32_t mmu_ctl_ = 0;
  bool tlb_clearing_ = false;
  uint32_t pt_base_ = 0, addr_cap_ = 0, illegal_addr_ = 0, bypass_start_ = 0, bypass_end_ = 0;
  uint32_t vio_id_ = 0, vio_addr_ = 0;
  uint32_t misccfg_ = 0, l2cactl_ = 0, l2tcactl_flm_ = 0, l2tflsta_ = 0, l2tflend_ = 0;
  bool l2tfls_busy_ = false, tmuwcf_busy_ = false;
  std::optional<std::chrono::steady_clock::time_point> maintenance_since_;
  std::chrono::steady_clock::time_point line_holdoff_until_{};  // FaultInjection::late_interrupts
  uint32_t err_stat_ = 0;
  uint32_t pctr_en_ = 0, pctr_overflow_ = 0;
  uint32_t pctr_src_[8] = {};
  uint64_t pctr_base_[32] = {};   // event total when the counter was last cleared
  uint32_t pctr_frozen_[32] = {};  // value while disabled
  uint32_t csd_cfg_[8] = {};
  std::shared_ptr<CsdJob> csd_current_, csd_queued_;
  uint32_t csd_completed_ = 0;
  uint64_t next_job_id_ = 1;
  GpuStats stats_;

  // ---- state under mem_mu_ ----
  MmuConfig mmu_cfg_;
  uint32_t mmu_ctl_mem_ = 0;       // copy of MMU_CTL for the fault policy
  uint32_t illegal_addr_mem_ = 0;  // copy of ILLEGAL_ADDR
  Mmu mmu_;
  L2tCache l2t_;

  std::unique_ptr<CsdEngine> csd_;  // last: its workers use everything above
  uint64_t event_total(uint32_t src);
};

}  // namespace rplayer::hw
