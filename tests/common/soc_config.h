// The modeled SoC as tests configure it: small DRAM and fast (still asynchronous)
// latencies.
#pragma once

#include <string>

#include "hw/soc.h"

namespace rplayer::test {

inline hw::SocConfig test_config(const std::string& sku = "v3d-7.1") {
  hw::SocConfig c;
  c.sku = sku;
  c.normal_bytes = 64ull << 20;
  c.secure_bytes = 16ull << 20;
  c.timing.scale = 0.5;
  return c;
}

}  // namespace rplayer::test
