#include "tools/reg_names.h"

#include <algorithm>
#include <cstdio>

#include "hw/v3d_regs.h"

namespace rplayer::tools {

namespace {

using namespace rplayer::v3d;
using Table = std::vector<std::pair<uint32_t, std::string>>;

void add_int_group(Table* t) {
  t->insert(t->end(), {{INT_STS, "INT_STS"},
                       {INT_SET, "INT_SET"},
                       {INT_CLR, "INT_CLR"},
                       {INT_MSK_STS, "INT_MSK_STS"},
                       {INT_MSK_SET, "INT_MSK_SET"},
                       {INT_MSK_CLR, "INT_MSK_CLR"}});
}

Table hub_table() {
  Table t = {
      {HUB_AXICFG, "HUB_AXICFG"},
      {HUB_UIFCFG, "HUB_UIFCFG"},
      {HUB_IDENT0, "HUB_IDENT0"},
      {HUB_IDENT1, "HUB_IDENT1"},
      {HUB_IDENT2, "HUB_IDENT2"},
      {HUB_IDENT3, "HUB_IDENT3"},
      {MMUC_CONTROL, "MMUC_CONTROL"},
      {MMU_CTL, "MMU_CTL"},
      {MMU_PT_PA_BASE, "MMU_PT_PA_BASE"},
      {MMU_HIT, "MMU_HIT"},
      {MMU_MISSES, "MMU_MISSES"},
      {MMU_STALLS, "MMU_STALLS"},
      {MMU_ADDR_CAP, "MMU_ADDR_CAP"},
      {MMU_SHOOT_DOWN, "MMU_SHOOT_DOWN"},
      {MMU_BYPASS_START, "MMU_BYPASS_START"},
      {MMU_BYPASS_END, "MMU_BYPASS_END"},
      {MMU_VIO_ID, "MMU_VIO_ID"},
      {MMU_ILLEGAL_ADDR, "MMU_ILLEGAL_ADDR"},
      {MMU_VIO_ADDR, "MMU_VIO_ADDR"},
      {MMU_DEBUG_INFO, "MMU_DEBUG_INFO"},
  };
  add_int_group(&t);
  return t;
}

Table core_table(const hw::Sku* sku) {
  Table t = {
      {CTL_IDENT0, "IDENT0"},     {CTL_IDENT1, "IDENT1"},     {CTL_IDENT2, "IDENT2"},
      {CTL_MISCCFG, "MISCCFG"},   {CTL_L2CACTL, "L2CACTL"},   {CTL_SLCACTL, "SLCACTL"},
      {CTL_L2TCACTL, "L2TCACTL"}, {CTL_L2TFLSTA, "L2TFLSTA"}, {CTL_L2TFLEND, "L2TFLEND"},
      {PCTR_0_EN, "PCTR_0_EN"},   {PCTR_0_CLR, "PCTR_0_CLR"}, {PCTR_0_OVERFLOW, "PCTR_0_OVERFLOW"},
      {CTL_ERR_STAT, "ERR_STAT"}, {CSD_STATUS, "CSD_STATUS"},
  };
  add_int_group(&t);
  // Four 8-bit sources per SRC register, one counter per word.
  for (uint32_t i = 0; i < uint32_t(kNumPerfCounters) / 4; ++i)
    t.emplace_back(PCTR_0_SRC_0_3 + 4 * i,
                   "PCTR_0_SRC_" + std::to_string(4 * i) + "_" + std::to_string(4 * i + 3));
  for (uint32_t i = 0; i < uint32_t(kNumPerfCounters); ++i)
    t.emplace_back(PCTR_0_PCTR0 + 4 * i, "PCTR_0_PCTR" + std::to_string(i));
  if (sku) {
    for (uint32_t i = 0; i < uint32_t(sku->csd_num_cfg); ++i) {
      t.emplace_back(sku->csd_queued_cfg0 + 4 * i, "CSD_QUEUED_CFG" + std::to_string(i));
      t.emplace_back(sku->csd_current_cfg0 + 4 * i, "CSD_CURRENT_CFG" + std::to_string(i));
    }
    t.emplace_back(sku->csd_current_id0, "CSD_CURRENT_ID0");
    t.emplace_back(sku->csd_current_id0 + 4, "CSD_CURRENT_ID1");
  }
  return t;
}

}  // namespace

std::string block_name(replay::Block b) {
  switch (b) {
    case replay::Block::Hub:
      return "hub";
    case replay::Block::Core0:
      return "core0";
    case replay::Block::Sms:
      return "sms";
    case replay::Block::Bridge:
      return "bridge";
    case replay::Block::Tzpc:
      return "tzpc";
  }
  return "block" + std::to_string(unsigned(b));
}

std::vector<std::pair<uint32_t, std::string>> register_table(replay::Block block,
                                                             const hw::Sku* sku) {
  Table t;
  switch (block) {
    case replay::Block::Hub:
      t = hub_table();
      break;
    case replay::Block::Core0:
      t = core_table(sku);
      break;
    case replay::Block::Sms:
      t = {{SMS_REE_CS, "SMS_REE_CS"}, {SMS_TEE_CS, "SMS_TEE_CS"}};
      break;
    case replay::Block::Bridge:
      t = {{BRIDGE_REVISION, "BRIDGE_REVISION"},
           {BRIDGE_SW_INIT_0, "BRIDGE_SW_INIT_0"},
           {BRIDGE_SW_INIT_1, "BRIDGE_SW_INIT_1"}};
      break;
    case replay::Block::Tzpc:
      t = {{TZPC_GPU_SECURE, "TZPC_GPU_SECURE"},
           {TZPC_STATUS, "TZPC_STATUS"},
           {TZPC_VIOLATIONS, "TZPC_VIOLATIONS"}};
      break;
  }
  std::stable_sort(t.begin(), t.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  return t;
}

std::optional<std::string> register_name(replay::Block block, uint32_t offset, const hw::Sku* sku) {
  // Built once per (block, SKU): listings name every action of recordings with a million.
  struct Cache {
    replay::Block block;
    const hw::Sku* sku;
    Table table;
  };
  static thread_local std::vector<Cache> cache;
  const Table* table = nullptr;
  for (const Cache& c : cache)
    if (c.block == block && c.sku == sku) table = &c.table;
  if (!table) {
    cache.push_back({block, sku, register_table(block, sku)});
    table = &cache.back().table;
  }
  auto it = std::lower_bound(table->begin(), table->end(), offset,
                             [](const auto& e, uint32_t off) { return e.first < off; });
  if (it == table->end() || it->first != offset) return std::nullopt;
  return it->second;
}

std::string register_label(replay::Block block, uint32_t offset, const hw::Sku* sku) {
  if (auto name = register_name(block, offset, sku)) return *name;
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%04x", offset);
  return buf;
}

}  // namespace rplayer::tools
