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
  UnknownSku,         // the recording's IDENT values match no supported GPU
  SkuMismatch,        // the recording is for another GPU than the one present
  TooManyActions,
  RegionUnaligned,
  RegionEmpty,
  RegionWraps,        // runs past the 4 GiB GPU address space, or starts at page 0
  RegionOverlap,
  MemoryQuota,        // regions need more memory than the replayer may use
  BlockNotAllowed,    // an access to SMS, bridge or TZPC, or a missing block
  RegisterNotAllowed, // a write outside the allowlist
  OffsetOutOfBlock,
  ShaderOutsideCode,  // CFG5 not inside a code region (or never written)
  UniformsOutsideUniforms,
  UnboundedPoll,      // a poll without a timeout, or longer than allowed
  UnboundedIrqWait,
  BadIrqLine,
  BadLoad,            // a memory load referring to a missing region, page or blob
  BindingOutsideRegion,
  BindingKind,        // an input outside an Input region, or an output outside a
                      // GPU-writable Output region
  BindingSize,        // bytes do not match shape x element size
  NoJobs,
};

struct VerifyError {
  VerifyCode code = VerifyCode::Ok;
  const char* field = "";
  int32_t index = -1;  // action, region or binding index
  bool ok() const { return code == VerifyCode::Ok; }
  const char* message() const;
  const char* format(char* buf, size_t size) const;
};

struct VerifyLimits {
  uint64_t max_memory_bytes = 256ull << 20;
  uint32_t max_actions = 1000000;
  uint32_t max_poll_us = 1000000;     // one poll
  uint32_t max_irq_wait_us = 10000000;  // one interrupt wait
};

// The SKU the recording was made on (from its IDENT values), or nullptr.
const hw::Sku* recording_sku(const Recording& rec);

// Checks `rec` for replay on the GPU identified by `present`.
VerifyError verify_recording(const Recording& rec, const SkuIdentity& present,
                             const VerifyLimits& limits = {});

}  // namespace rplayer::replay
