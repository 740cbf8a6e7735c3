// GPU SKUs of the modeled SoC. Everything that differs between V3D generations is
// here, so that the device model and the driver derive it from one table and a
// recording from one SKU cannot replay on the other.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "hw/v3d_regs.h"

namespace rplayer::hw {

struct Sku {
  std::string_view name;         // "v3d-7.1"
  std::string_view board;        // "Raspberry Pi 5 (BCM2712)"
  uint8_t tver, rev, iprev, ipidx;  // version = tver.rev.iprev
  // Identification register values (reset values of the IDENT registers).
  uint32_t hub_ident0, hub_ident1, hub_ident2, hub_ident3;
  uint32_t core_ident0, core_ident1, core_ident2;
  uint32_t mmu_debug_info;
  uint32_t bridge_revision;      // 0 = no bridge block
  bool has_sms;
  // The GPU's interrupt lines, the only ones a recording may wait on.
  int num_irq_lines;             // 4.2: hub and core share line 0; 7.1: hub 0, core 1
  uint32_t core_block_size;
  // CSD register layout.
  uint32_t csd_queued_cfg0;      // QUEUED_CFG0
  uint32_t csd_current_cfg0;     // CURRENT_CFG0
  uint32_t csd_current_id0;      // CURRENT_ID0 (ID1 follows)
  int csd_num_cfg;               // 7 (CFG0..6) or 8 (CFG0..7)
  bool csd_cfg4_minus_one;       // CFG4 holds batches - 1 (before 7.1.6)
  // Interrupt bits.
  uint32_t core_int_csd_done;
  uint32_t core_int_pctr;
  uint32_t core_int_gmpv;        // 0 when GMPV is a hub interrupt
  uint32_t hub_int_gmpv;         // 0 when GMPV is a core interrupt
  uint32_t core_int_qpu_shift;   // QPU fault bits [27:16]
  uint32_t mmuc_clear_bit;
  uint32_t pctr_src_bits;        // 7 on 4.x, 8 on 7.x
  uint32_t bridge_sw_init_reg;   // SW_INIT_0 (major 2) or SW_INIT_1 (major 7)
  // Shape of the machine.
  int num_slices, qpus_per_slice;
  uint32_t l2t_bytes;            // L2T cache size (modeled capacity, cost model only)
  uint32_t shared_bytes;         // per-workgroup shared memory
  uint32_t clock_mhz;            // for modeled device time
  int num_qpus() const { return num_slices * qpus_per_slice; }
  // The SoC's GPU ownership mailbox line (model): the one after the GPU's lines, so a
  // SoC has num_irq_lines + 1 lines.
  int mbox_irq_line() const { return num_irq_lines; }
  uint32_t version() const { return tver * 10u + rev; }
  // Interrupt bits, as the driver and the replayer use them. Fault bits report an MMU,
  // bus (GMP) or QPU fault; a recording may never clear them (the verifier's INT_CLR rule).
  uint32_t core_qpu_fault_bits() const { return 0xfffu << core_int_qpu_shift; }
  uint32_t core_fault_bits() const { return core_qpu_fault_bits() | core_int_gmpv; }
  uint32_t hub_mmu_fault_bits() const {
    return v3d::HUB_INT_MMU_PTI | v3d::HUB_INT_MMU_WRV | v3d::HUB_INT_MMU_CAP;
  }
  uint32_t hub_fault_bits() const { return hub_mmu_fault_bits() | hub_int_gmpv; }
  // What the driver and the replayer unmask: job done and every fault.
  uint32_t core_handled_bits() const { return core_int_csd_done | core_fault_bits(); }
};

std::span<const Sku> all_skus();
const Sku* find_sku(std::string_view name);
// Identifies a SKU from the values a driver reads from HUB_IDENT1/IDENT3 and
// CTL_IDENT0/IDENT1; nullptr if unknown.
const Sku* identify_sku(uint32_t hub_ident1, uint32_t hub_ident3, uint32_t core_ident0,
                        uint32_t core_ident1);

}  // namespace rplayer::hw
