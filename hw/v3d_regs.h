// Register map of the modeled V3D GPU: offsets and bit fields.
//
// Offsets and fields follow Linux drivers/gpu/drm/v3d/v3d_regs.h (and v3d_drv.h for
// the SMS states); docs/hw.md cites the source of every fact and marks what is a
// model choice. SKU-dependent facts (CSD register offsets, interrupt bit numbers,
// MMUC CLEAR bit) live in hw/sku.h. This header is shared by the device model, the
// driver and the replayer's verifier, so it holds constants only.
#pragma once

#include <cstdint>

namespace rplayer::v3d {

constexpr uint32_t bit(unsigned n) { return 1u << n; }
constexpr uint32_t mask(unsigned hi, unsigned lo) {
  return (hi >= 31 ? ~0u : ((1u << (hi + 1)) - 1)) & ~((1u << lo) - 1);
}
constexpr uint32_t get_field(uint32_t v, unsigned hi, unsigned lo) {
  return (v & mask(hi, lo)) >> lo;
}
constexpr uint32_t set_field(uint32_t v, unsigned hi, unsigned lo) {
  return (v << lo) & mask(hi, lo);
}

// ---- hub block -------------------------------------------------------------------
inline constexpr uint32_t HUB_AXICFG = 0x0000;
inline constexpr uint32_t HUB_UIFCFG = 0x0004;
inline constexpr uint32_t HUB_IDENT0 = 0x0008;
inline constexpr uint32_t HUB_IDENT1 = 0x000c;
//   IDENT1: 19 MSO, 18 TSY, 17 TFU, 16 L3C, [15:12] NHOSTS, [11:8] NCORES, [7:4] REV,
//   [3:0] TVER.
inline constexpr uint32_t HUB_IDENT2 = 0x0010;  // 8 WITH_MMU, [7:0] L3C_NKB
inline constexpr uint32_t HUB_IDENT3 = 0x0014;  // [15:8] IPREV, [7:0] IPIDX

// Interrupt register group, at the same offsets in hub and core blocks.
inline constexpr uint32_t INT_STS = 0x0050;
inline constexpr uint32_t INT_SET = 0x0054;
inline constexpr uint32_t INT_CLR = 0x0058;
inline constexpr uint32_t INT_MSK_STS = 0x005c;
inline constexpr uint32_t INT_MSK_SET = 0x0060;
inline constexpr uint32_t INT_MSK_CLR = 0x0064;

// Hub interrupt bits (SKU-independent ones; GMPV is in the SKU).
inline constexpr uint32_t HUB_INT_TFUF = bit(0);
inline constexpr uint32_t HUB_INT_TFUC = bit(1);
inline constexpr uint32_t HUB_INT_MSO = bit(2);
inline constexpr uint32_t HUB_INT_MMU_CAP = bit(3);
inline constexpr uint32_t HUB_INT_MMU_PTI = bit(4);
inline constexpr uint32_t HUB_INT_MMU_WRV = bit(5);

// MMU cache (PTE cache) control.
inline constexpr uint32_t MMUC_CONTROL = 0x1000;
inline constexpr uint32_t MMUC_CONTROL_ENABLE = bit(0);
inline constexpr uint32_t MMUC_CONTROL_FLUSH = bit(1);
inline constexpr uint32_t MMUC_CONTROL_FLUSHING = bit(2);
// CLEAR is bit 3 on 4.x and bit 11 on 7.x: see Sku::mmuc_clear_bit.

inline constexpr uint32_t MMU_CTL = 0x1200;
inline constexpr uint32_t MMU_CTL_ENABLE = bit(0);
inline constexpr uint32_t MMU_CTL_TLB_STATS_ENABLE = bit(1);
inline constexpr uint32_t MMU_CTL_TLB_CLEAR = bit(2);
inline constexpr uint32_t MMU_CTL_TLB_STATS_CLEAR = bit(3);
inline constexpr uint32_t MMU_CTL_TLB_CLEARING = bit(7);
inline constexpr uint32_t MMU_CTL_WRITE_VIOLATION_EXCEPTION = bit(9);
inline constexpr uint32_t MMU_CTL_WRITE_VIOLATION_INT = bit(10);
inline constexpr uint32_t MMU_CTL_WRITE_VIOLATION_ABORT = bit(11);
inline constexpr uint32_t MMU_CTL_WRITE_VIOLATION = bit(12);
inline constexpr uint32_t MMU_CTL_PT_INVALID_ENABLE = bit(16);
inline constexpr uint32_t MMU_CTL_PT_INVALID_EXCEPTION = bit(17);
inline constexpr uint32_t MMU_CTL_PT_INVALID_INT = bit(18);
inline constexpr uint32_t MMU_CTL_PT_INVALID_ABORT = bit(19);
inline constexpr uint32_t MMU_CTL_PT_INVALID = bit(20);
inline constexpr uint32_t MMU_CTL_CAP_EXCEEDED_EXCEPTION = bit(24);
inline constexpr uint32_t MMU_CTL_CAP_EXCEEDED_INT = bit(25);
inline constexpr uint32_t MMU_CTL_CAP_EXCEEDED_ABORT = bit(26);
inline constexpr uint32_t MMU_CTL_CAP_EXCEEDED = bit(27);

inline constexpr uint32_t MMU_PT_PA_BASE = 0x1204;  // page table PA >> 12
inline constexpr uint32_t MMU_HIT = 0x1208;
inline constexpr uint32_t MMU_MISSES = 0x120c;
inline constexpr uint32_t MMU_STALLS = 0x1210;
inline constexpr uint32_t MMU_ADDR_CAP = 0x1214;  // 31 ENABLE, [11:0] cap in MiB
inline constexpr uint32_t MMU_ADDR_CAP_ENABLE = bit(31);
inline constexpr uint32_t MMU_SHOOT_DOWN = 0x1218;  // 29 SHOOT_DOWN, [27:0] VA page
inline constexpr uint32_t MMU_SHOOT_DOWN_SHOOT = bit(29);
inline constexpr uint32_t MMU_BYPASS_START = 0x121c;
inline constexpr uint32_t MMU_BYPASS_END = 0x1220;
inline constexpr uint32_t MMU_VIO_ID = 0x122c;
inline constexpr uint32_t MMU_ILLEGAL_ADDR = 0x1230;  // 31 ENABLE, [27:0] scratch PFN
inline constexpr uint32_t MMU_ILLEGAL_ADDR_ENABLE = bit(31);
inline constexpr uint32_t MMU_VIO_ADDR = 0x1234;
inline constexpr uint32_t MMU_DEBUG_INFO = 0x1238;  // [11:8] PA width-30, [7:4] VA width-30

// Page table entries.
inline constexpr uint32_t PTE_SUPERPAGE = bit(31);
inline constexpr uint32_t PTE_BIGPAGE = bit(30);
inline constexpr uint32_t PTE_WRITEABLE = bit(29);
inline constexpr uint32_t PTE_VALID = bit(28);
inline constexpr uint32_t PTE_PFN_MASK = mask(23, 0);
inline constexpr uint32_t PAGE_SHIFT = 12;
inline constexpr uint32_t PAGE_SIZE = 1u << PAGE_SHIFT;

// ---- core block ------------------------------------------------------------------
inline constexpr uint32_t CTL_IDENT0 = 0x0000;  // [31:24] VER, [23:0] "V3D"
inline constexpr uint32_t CTL_IDENT1 = 0x0004;
//   IDENT1: [31:28] VPM_SIZE (KiB/8 in the model), [23:16] NSEM, [15:12] NTMU,
//   [11:8] QUPS, [7:4] NSLC, [3:0] REV.
inline constexpr uint32_t CTL_IDENT2 = 0x0008;  // 28 BCG_INT
inline constexpr uint32_t CTL_MISCCFG = 0x0018;
inline constexpr uint32_t CTL_L2CACTL = 0x0020;
inline constexpr uint32_t L2CACTL_L2CENA = bit(0);
inline constexpr uint32_t L2CACTL_L2CDIS = bit(1);
inline constexpr uint32_t L2CACTL_L2CCLR = bit(2);
inline constexpr uint32_t CTL_SLCACTL = 0x0024;  // TVCCS [27:24] TDCCS [19:16] UCC [11:8] ICC [3:0]
inline constexpr uint32_t CTL_L2TCACTL = 0x0030;
inline constexpr uint32_t L2TCACTL_L2TFLS = bit(0);
inline constexpr uint32_t L2TCACTL_FLM_SHIFT = 1;
inline constexpr uint32_t L2TCACTL_FLM_MASK = mask(2, 1);
inline constexpr uint32_t L2TCACTL_FLM_FLUSH = 0;  // write back dirty lines, invalidate
inline constexpr uint32_t L2TCACTL_FLM_CLEAR = 1;  // discard everything
inline constexpr uint32_t L2TCACTL_FLM_CLEAN = 2;  // write back dirty lines, keep them
inline constexpr uint32_t L2TCACTL_TMUWCF = bit(8);
inline constexpr uint32_t CTL_L2TFLSTA = 0x0034;
inline constexpr uint32_t CTL_L2TFLEND = 0x0038;

// Performance counters (4.2 and 7.1: 32 counters, 4 sources per SRC register).
inline constexpr uint32_t PCTR_0_EN = 0x0650;
inline constexpr uint32_t PCTR_0_CLR = 0x0654;
inline constexpr uint32_t PCTR_0_OVERFLOW = 0x0658;
inline constexpr uint32_t PCTR_0_SRC_0_3 = 0x0660;  // .. 0x067c: SRC_28_31
inline constexpr uint32_t PCTR_0_PCTR0 = 0x0680;    // .. 0x06fc: PCTR31
inline constexpr int kNumPerfCounters = 32;

inline constexpr uint32_t CTL_ERR_STAT = 0x0f20;

// Model-defined error bits in ERR_STAT (real bit meanings are not public).
inline constexpr uint32_t ERR_CSD_QUEUE_OVERFLOW = bit(16);
inline constexpr uint32_t ERR_QPU_FAULT = bit(17);

// CSD_STATUS (at the same offset on both SKUs).
inline constexpr uint32_t CSD_STATUS = 0x0900;
inline constexpr uint32_t CSD_STATUS_HAVE_QUEUED = bit(0);
inline constexpr uint32_t CSD_STATUS_HAVE_CURRENT = bit(1);
// [3:2] active dispatches, [11:4] completed jobs (mod 256).

// CSD CFG3 fields.
inline constexpr uint32_t CSD_CFG3_OVERLAP_WITH_PREV = bit(26);
// [25:20] max supergroup id, [19:12] batches per supergroup - 1, [11:8] workgroups
// per supergroup (0 = 16), [7:0] workgroup size (0 = 256 in the model).
// CSD CFG5 low bits.
inline constexpr uint32_t CSD_CFG5_THREADING = bit(0);
inline constexpr uint32_t CSD_CFG5_SINGLE_SEG = bit(1);
inline constexpr uint32_t CSD_CFG5_PROPAGATE_NANS = bit(2);

// ---- SMS block (7.1 only) ---------------------------------------------------------
inline constexpr uint32_t SMS_REE_CS = 0x0000;
inline constexpr uint32_t SMS_TEE_CS = 0x0400;
inline constexpr uint32_t SMS_INTERRUPT = bit(31);
inline constexpr uint32_t SMS_POWER_OFF = bit(30);
inline constexpr uint32_t SMS_CLEAR_POWER_OFF = bit(29);
inline constexpr uint32_t SMS_LOCK = bit(28);
inline constexpr uint32_t SMS_CLEAR_LOCK = bit(27);
inline constexpr uint32_t SMS_SVP_MODE_EXIT = bit(26);
inline constexpr uint32_t SMS_CLEAR_SVP_MODE_EXIT = bit(25);
inline constexpr uint32_t SMS_SVP_MODE_ENTER = bit(24);
inline constexpr uint32_t SMS_CLEAR_SVP_MODE_ENTER = bit(23);
// [9:8] hub/core status, [7:6] new mode, [5:4] old mode, [3:0] state.
inline constexpr uint32_t SMS_STATE_MASK = mask(3, 0);
inline constexpr uint32_t SMS_IDLE = 0x0;
inline constexpr uint32_t SMS_RESET_REQUEST = 0x4;  // written to REE_CS state to reset
inline constexpr uint32_t SMS_ISOLATING_FOR_RESET = 0xa;
inline constexpr uint32_t SMS_RESETTING = 0xb;
inline constexpr uint32_t SMS_ISOLATING_FOR_POWER_OFF = 0xc;
inline constexpr uint32_t SMS_POWER_OFF_STATE = 0xd;

// ---- GR bridge block (reset control) ----------------------------------------------
inline constexpr uint32_t BRIDGE_REVISION = 0x0000;  // [15:8] MAJOR, [7:0] MINOR
inline constexpr uint32_t BRIDGE_SW_INIT_0 = 0x0008;
inline constexpr uint32_t BRIDGE_SW_INIT_1 = 0x000c;
inline constexpr uint32_t BRIDGE_SW_INIT_V3D = bit(0);

// ---- TZPC block (model: TrustZone protection controller, secure world only) -------
inline constexpr uint32_t TZPC_GPU_SECURE = 0x0000;  // write 1: GPU to secure world, 0: back
inline constexpr uint32_t TZPC_STATUS = 0x0004;      // 0 SWITCHING, 1 SECURE
inline constexpr uint32_t TZPC_STATUS_SWITCHING = bit(0);
inline constexpr uint32_t TZPC_STATUS_SECURE = bit(1);
inline constexpr uint32_t TZPC_VIOLATIONS = 0x0008;  // normal-world GPU accesses dropped

// ---- GPU ownership mailbox (model: both worlds, always reachable) -----------------
// The secure world asks for the GPU, the normal world answers once it has quiesced.
inline constexpr uint32_t MBOX_CLAIM = 0x0000;  // secure RW: 1 GPU requested, 0 released
inline constexpr uint32_t MBOX_ACK = 0x0004;    // normal RW: 1 suspended (GPU free), 0 resumed
inline constexpr uint32_t MBOX_EVENT = 0x0008;  // W1C by the normal world
inline constexpr uint32_t MBOX_DEMAND = 0x000c;  // normal RW: 1 GPU work waited while suspended
inline constexpr uint32_t MBOX_EVENT_CLAIM_CHANGED = bit(0);  // set on every CLAIM change

}  // namespace rplayer::v3d
