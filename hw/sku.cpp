#include "hw/sku.h"

#include "hw/v3d_regs.h"

namespace rplayer::hw {
namespace {

using namespace rplayer::v3d;

constexpr uint32_t hub_ident1(uint32_t tver, uint32_t rev) {
  // MSO, TSY and TFU present; one host, one core; no L3C.
  return bit(19) | bit(18) | bit(17) | set_field(1, 15, 12) | set_field(1, 11, 8) |
         set_field(rev, 7, 4) | set_field(tver, 3, 0);
}
constexpr uint32_t core_ident0(uint32_t tver, uint32_t rev) {
  return set_field((tver << 4) | rev, 31, 24) | 0x443356;  // "V3D"
}
constexpr uint32_t core_ident1(uint32_t vpm8k, uint32_t nsem, uint32_t ntmu, uint32_t qups,
                               uint32_t nslc, uint32_t rev) {
  return set_field(vpm8k, 31, 28) | set_field(nsem, 23, 16) | set_field(ntmu, 15, 12) |
         set_field(qups, 11, 8) | set_field(nslc, 7, 4) | set_field(rev, 3, 0);
}

constexpr Sku kSkus[] = {
    {
        .name = "v3d-7.1",
        .board = "Raspberry Pi 5 (BCM2712), V3D 7.1.7",
        .tver = 7, .rev = 1, .iprev = 7, .ipidx = 0,
        .hub_ident0 = 0x42554856,  // "VHUB"
        .hub_ident1 = hub_ident1(7, 1),
        .hub_ident2 = bit(8),      // MMU present, no L3C
        .hub_ident3 = set_field(7, 15, 8),
        .core_ident0 = core_ident0(7, 1),
        .core_ident1 = core_ident1(4, 16, 1, 4, 4, 1),
        .core_ident2 = bit(28),
        .mmu_debug_info = set_field(10, 11, 8) | set_field(2, 7, 4) | 1,  // 40-bit PA, 32-bit VA
        .bridge_revision = 0,
        .has_sms = true,
        .num_irq_lines = 2,
        .core_block_size = 0x6000,
        .csd_queued_cfg0 = 0x930,
        .csd_current_cfg0 = 0x958,
        .csd_current_id0 = 0x978,
        .csd_num_cfg = 8,
        .csd_cfg4_minus_one = false,  // 7.1.6 and later: CFG4 = batches
        .core_int_csd_done = bit(6),
        .core_int_pctr = bit(5),
        .core_int_gmpv = 0,
        .hub_int_gmpv = bit(6),
        .core_int_qpu_shift = 16,
        .mmuc_clear_bit = bit(11),
        .pctr_src_bits = 8,
        .bridge_sw_init_reg = 0,
        .num_slices = 4, .qpus_per_slice = 4,
        .l2t_bytes = 256 * 1024,
        .shared_bytes = 32 * 1024,
        .clock_mhz = 960,
    },
    {
        .name = "v3d-4.2",
        .board = "Raspberry Pi 4 (BCM2711), V3D 4.2.14",
        .tver = 4, .rev = 2, .iprev = 14, .ipidx = 0,
        .hub_ident0 = 0x42554856,
        .hub_ident1 = hub_ident1(4, 2),
        .hub_ident2 = bit(8),
        .hub_ident3 = set_field(14, 15, 8),
        .core_ident0 = core_ident0(4, 2),
        .core_ident1 = core_ident1(2, 16, 1, 4, 2, 2),
        .core_ident2 = 0,
        .mmu_debug_info = set_field(2, 11, 8) | set_field(2, 7, 4) | 1,  // 32-bit PA, 32-bit VA
        .bridge_revision = set_field(2, 15, 8),  // GR bridge major 2
        .has_sms = false,
        .num_irq_lines = 1,
        .core_block_size = 0x4000,
        .csd_queued_cfg0 = 0x904,
        .csd_current_cfg0 = 0x920,
        .csd_current_id0 = 0x93c,
        .csd_num_cfg = 7,
        .csd_cfg4_minus_one = true,
        .core_int_csd_done = bit(7),
        .core_int_pctr = bit(6),
        .core_int_gmpv = bit(5),
        .hub_int_gmpv = 0,
        .core_int_qpu_shift = 16,
        .mmuc_clear_bit = bit(3),
        .pctr_src_bits = 7,
        .bridge_sw_init_reg = BRIDGE_SW_INIT_0,
        .num_slices = 2, .qpus_per_slice = 4,
        .l2t_bytes = 128 * 1024,
        .shared_bytes = 16 * 1024,
        .clock_mhz = 500,
    },
};

}  // namespace

std::span<const Sku> all_skus() { return kSkus; }

const Sku* find_sku(std::string_view name) {
  for (const Sku& s : kSkus)
    if (s.name == name) return &s;
  return nullptr;
}

const Sku* identify_sku(uint32_t hub_ident1, uint32_t hub_ident3, uint32_t core_ident0,
                        uint32_t core_ident1) {
  for (const Sku& s : kSkus)
    if (s.hub_ident1 == hub_ident1 && s.hub_ident3 == hub_ident3 &&
        s.core_ident0 == core_ident0 && s.core_ident1 == core_ident1)
      return &s;
  return nullptr;
}

}  // namespace rplayer::hw
