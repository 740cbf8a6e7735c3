// `rplayer devices`: the modeled GPU SKUs and their identification registers.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "hw/sku.h"
#include "tools/commands.h"

namespace rplayer::tools {

namespace {
std::string hex(uint32_t v) {
  char b[16];
  std::snprintf(b, sizeof b, "0x%08x", v);
  return b;
}
}  // namespace

void add_devices_command(Cli& cli) {
  CLI::App& app = cli.app;
  auto* cmd = app.add_subcommand("devices", "List the modeled GPU SKUs with their IDENT values");
  auto* json = &cli.hold<bool>();
  cmd->add_flag("--json", *json, "Print JSON");
  cmd->callback(cli.run("devices", [json] {
    nlohmann::json out = nlohmann::json::array();
    for (const hw::Sku& s : hw::all_skus()) {
      if (*json) {
        out.push_back({
            {"name", s.name},
            {"board", s.board},
            {"version", std::to_string(s.tver) + "." + std::to_string(s.rev) + "." +
                            std::to_string(s.iprev)},
            {"qpus", s.num_qpus()},
            {"slices", s.num_slices},
            {"l2t_bytes", s.l2t_bytes},
            {"shared_bytes", s.shared_bytes},
            {"clock_mhz", s.clock_mhz},
            {"irq_lines", s.num_irq_lines},
            {"mbox_irq_line", s.mbox_irq_line()},  // the SoC's ownership mailbox, after the GPU's
            {"blocks", s.has_sms ? nlohmann::json{"hub", "core0", "sms", "tzpc", "mbox"}
                                 : nlohmann::json{"hub", "core0", "bridge", "tzpc", "mbox"}},
            {"ident",
             {{"HUB_IDENT0", hex(s.hub_ident0)},
              {"HUB_IDENT1", hex(s.hub_ident1)},
              {"HUB_IDENT2", hex(s.hub_ident2)},
              {"HUB_IDENT3", hex(s.hub_ident3)},
              {"CTL_IDENT0", hex(s.core_ident0)},
              {"CTL_IDENT1", hex(s.core_ident1)},
              {"CTL_IDENT2", hex(s.core_ident2)},
              {"MMU_DEBUG_INFO", hex(s.mmu_debug_info)}}},
        });
      } else {
        std::printf("%-8s %-40s %2d QPUs  L2T %3u KiB  HUB_IDENT1=%s CTL_IDENT1=%s\n",
                    std::string(s.name).c_str(), std::string(s.board).c_str(), s.num_qpus(),
                    s.l2t_bytes / 1024, hex(s.hub_ident1).c_str(), hex(s.core_ident1).c_str());
      }
    }
    if (*json) std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }));
}

}  // namespace rplayer::tools
