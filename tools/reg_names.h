// Names of the modeled V3D registers, for listings (`rplayer inspect`, traces): every register
// of hw/v3d_regs.h, plus the CSD queue registers, whose offsets depend on the SKU (hw::Sku).
//
// Core-block names drop the `CTL_` prefix of the constants (`L2TCACTL`, not `CTL_L2TCACTL`):
// listings print the block next to the name, and the short form is what the V3D docs and
// Linux's debugfs dumps use. Interrupt registers are `INT_*` in both hub and core.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "hw/sku.h"
#include "replay/recording.h"

namespace rplayer::tools {

// "hub", "core0", "sms", "bridge", "tzpc"; "block<N>" for a value outside the enum.
std::string block_name(replay::Block b);

// The register at `offset` of `block`, or nullopt. With `sku` null the SKU-dependent CSD
// queue registers are unknown (CSD_STATUS is at the same offset on every SKU).
std::optional<std::string> register_name(replay::Block block, uint32_t offset, const hw::Sku* sku);

// register_name(), or the offset as "0x%04x" when no register is there.
std::string register_label(replay::Block block, uint32_t offset, const hw::Sku* sku);

// Every named register of `block`, by offset (for tests and documentation).
std::vector<std::pair<uint32_t, std::string>> register_table(replay::Block block,
                                                             const hw::Sku* sku);

}  // namespace rplayer::tools
