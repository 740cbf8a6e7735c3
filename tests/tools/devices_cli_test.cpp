// `rplayer devices --json`: every modeled SKU with the identification values the hardware
// model answers with, and the SoC's interrupt lines (the GPU's, then the mailbox's).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "hw/sku.h"
#include "tests/common/run_command.h"

namespace rplayer::tools {
namespace {

std::string run(const std::string& cmd, int* status) { return test::run_command(cmd, status); }

TEST(DevicesCli, ListsEverySkuWithItsIdentAndLines) {
  int status = -1;
  const nlohmann::json out = nlohmann::json::parse(run(RPLAYER_BIN " devices --json", &status));
  ASSERT_EQ(status, 0);
  ASSERT_EQ(out.size(), hw::all_skus().size());
  for (size_t i = 0; i < out.size(); ++i) {
    const hw::Sku& s = hw::all_skus()[i];
    const nlohmann::json& d = out[i];
    for (const char* key : {"name", "ident", "irq_lines", "mbox_irq_line", "qpus", "blocks"})
      ASSERT_TRUE(d.contains(key)) << key;
    EXPECT_EQ(d["name"], std::string(s.name));
    EXPECT_EQ(std::stoul(d["ident"]["HUB_IDENT1"].get<std::string>(), nullptr, 16), s.hub_ident1);
    EXPECT_EQ(std::stoul(d["ident"]["CTL_IDENT1"].get<std::string>(), nullptr, 16), s.core_ident1);
    EXPECT_EQ(d["irq_lines"], s.num_irq_lines);
    EXPECT_EQ(d["mbox_irq_line"], s.num_irq_lines) << "the mailbox line follows the GPU's";
    EXPECT_EQ(d["qpus"], s.num_qpus());
    EXPECT_EQ(d["blocks"].back(), "mbox");
  }
}

}  // namespace
}  // namespace rplayer::tools
