// The replay tests' workload: three jobs recorded on one modeled SoC (out = in x 2 +
// bias, then twice more in place), and a target SoC to replay it on, with the escape
// oracle watching every replay.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "hw/soc.h"
#include "replay/replayer.h"
#include "tee/soc_platform.h"
#include "tests/common/escape_oracle.h"

namespace rplayer::replay::test {

inline constexpr uint32_t kN = 1024;  // floats

// Records the workload on `sku` with `input`.
Recording record_workload(const std::string& sku, const std::vector<float>& input,
                          bool omit_weights = false);
std::vector<float> recorded_bias();
// The workload's "model file": a header, then the bias at kWeightsOffset (the recorded
// bias, or another), then padding. workload_weights_path() is the recorded one on disk.
inline constexpr uint32_t kWeightsOffset = 64;
std::vector<uint8_t> workload_weights_file(const std::vector<float>& bias = recorded_bias());
std::string workload_weights_path();
// What the three jobs compute from `in` with `bias`.
std::vector<float> expected(const std::vector<float>& in,
                            const std::vector<float>& bias = recorded_bias());
std::vector<float> ramp(float scale);

// A SoC to replay on, in the normal or the secure world. Replayers use `oracle` (the
// platform with the escape oracle in between); every test ends with zero escapes.
struct ReplaySoc {
  ReplaySoc(const std::string& sku, bool secure);
  ~ReplaySoc();
  ReplayError run(const Recording& r, const std::vector<float>& in, std::vector<float>* out,
                  ReplayStats* st = nullptr, const VerifyLimits& limits = {});
  hw::ModeledSoc soc;
  std::unique_ptr<tee::SocPlatform> platform;
  std::unique_ptr<rplayer::test::EscapeOracle> oracle;
};

}  // namespace rplayer::replay::test
