// Static verification of a decoded recording, before anything touches the GPU.
//
// The guarantee: a verified recording, replayed by Replayer, can make the GPU touch no
// physical page except those the replayer allocated for it. The replayer builds the page
// table itself from the region list (recorded PTEs and page-table writes are never used);
// the verifier makes sure the action stream cannot change that: register writes are
// limited to a per-SKU allowlist that excludes the MMU, the page table base, the illegal
// address page, interrupt routing, power/reset and the TrustZone controls; every job's
// shader and uniform addresses lie in code and uniform regions; regions neither overlap
// nor wrap and fit the memory quota; every wait is bounded.
#pragma once

#include <cstddef>
#include <cstdint>

#include "replay/recording.h"

namespace rplayer::hw {
struct Sku;
}

namespace rplayer::replay {

enum class VerifyCode : uint8_t {
  Ok,
  UnknownSku,   // the recording's IDENT values match no supported GPU
  SkuMismatch,  // the recording is for another GPU than the one present
  TooManyActions,
  RegionUnaligned,
  RegionEmpty,
  RegionWraps,  // runs past the 4 GiB GPU address space, or starts at page 0
  RegionOverlap,
  MemoryQuota,               // regions need more memory than the replayer may use
  BlockNotAllowed,           // an access to SMS, bridge or TZPC, or a missing block
  RegisterNotAllowed,        // a write outside the allowlist
  InterruptClearNotAllowed,  // an INT_CLR write of any bit but the job-done bit
  OffsetOutOfBlock,
  ShaderOutsideCode,  // CFG5 not inside a code region (or never written)
  UniformsOutsideUniforms,
  UnboundedPoll,  // a poll without a timeout, or longer than allowed
  UnboundedIrqWait,
  BadIrqLine,
  BadLoad,  // a memory load referring to a missing region, page or blob
  BindingOutsideRegion,
  BindingKind,  // an input outside an Input region, or an output outside a
                // GPU-writable Output region
  BindingSize,  // bytes do not match shape x element size (checked, no wrap)
  NoJobs,
  TooMuchWork,           // the runs' page copies exceed the policy
  BadBudget,             // a malformed replay budget, or one over the policy's maximum
  SkuNameMismatch,       // the SKU name does not match the recording's IDENT values
  WeightBindingKind,     // a weight binding for a region that is not read-only Weights
  WeightBindingSize,     // a weight binding longer than its region
  WeightBindingOverlap,  // two weight bindings for one region
};

struct VerifyError {
  VerifyCode code = VerifyCode::Ok;
  const char* field = "";
  int32_t index = -1;  // action, region or binding index
  int32_t other = -1;  // the other region of an overlap
  uint32_t offset = 0, value = 0;  // an action's register offset and value
  const char* recorded_sku = nullptr;  // SkuMismatch: the recording's GPU and the one present
  const char* present_sku = nullptr;   // (names from the SKU table, or nullptr if unknown)
  bool ok() const { return code == VerifyCode::Ok; }
  const char* message() const;
  const char* format(char* buf, size_t size) const;
};

// The replayer's policy: what one recording may ask of it. verify and replay use the same
// (limits_for_pool), so that a recording `rplayer verify` accepts is one the replayer runs.
struct VerifyLimits {
  uint64_t max_memory_bytes = 256ull << 20;
  uint32_t max_actions = 1000000;
  uint32_t max_poll_us = 1000000;     // one poll
  uint32_t max_irq_wait_us = 10000000;  // one interrupt wait
  uint64_t max_page_copies = 1u << 20;  // page images one run copies (4 GiB, ~1 s of memcpy)
  uint32_t max_replay_ms = 60000;       // one run's time; a recording may declare less
};

// The policy for a replayer whose page pool holds `pool_bytes`: the regions get all of it
// but the page table (4 MiB), the scratch page and slack.
VerifyLimits limits_for_pool(uint64_t pool_bytes);

// Metadata key of the replay time budget a recording declares (decimal milliseconds).
inline constexpr const char* kBudgetKey = "replay_budget_ms";
// The budget of one run in microseconds: the recording's, if it declares one, else the
// policy's maximum. 0 if the declaration is malformed (the verifier rejects those).
uint64_t replay_budget_us(const Recording& rec, const VerifyLimits& limits);

// The SKU the recording was made on (from its IDENT values), or nullptr.
const hw::Sku* recording_sku(const Recording& rec);

// Checks `rec` for replay on the GPU identified by `present`.
VerifyError verify_recording(const Recording& rec, const SkuIdentity& present,
                             const VerifyLimits& limits = {});

}  // namespace rplayer::replay
