// The in-memory form of a recording: what the recorder produces, the encoder writes,
// the decoder reads back, the verifier checks and the replayer executes.
//
// Part of the trusted core: plain data, no exceptions, RTTI or iostreams. Byte layout
// in docs/recording-format.md.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace rplayer::replay {

// Register blocks, numbered as hw::RegBlock.
enum class Block : uint8_t { Hub = 0, Core0 = 1, Sms = 2, Bridge = 3, Tzpc = 4 };

// What the stack said a buffer is (driver::BoUsage, same numbering).
enum class RegionKind : uint8_t {
  Internal = 0,
  Code = 1,
  Uniforms = 2,
  Weights = 3,
  Input = 4,
  Output = 5,
  Scratch = 6,
};

struct SkuIdentity {
  uint32_t hub_ident1 = 0, hub_ident3 = 0, core_ident0 = 0, core_ident1 = 0;
  bool operator==(const SkuIdentity&) const = default;
};

// A GPU virtual address range the replayer must back with fresh pages.
struct Region {
  uint32_t gpu_va = 0;
  uint32_t size = 0;  // bytes, page multiple
  RegionKind kind = RegionKind::Scratch;
  bool gpu_writable = false;
  std::string label;
  bool operator==(const Region&) const = default;
};

// One page's contents, stored once (deduplicated by content).
struct PageBlob {
  uint64_t hash = 0;               // xxh64 of the 4096 bytes
  std::vector<uint8_t> data;       // 4096 bytes once decoded
  bool operator==(const PageBlob&) const = default;
};

// PageLoad::blob value for an all-zero page: zero pages are never stored as blobs.
inline constexpr uint32_t kZeroBlob = 0xffffffff;

// Load page blob `blob` at page `page` of region `region`.
struct PageLoad {
  uint32_t region = 0;
  uint32_t page = 0;
  uint32_t blob = 0;  // index into Recording::blobs, or kZeroBlob
  bool operator==(const PageLoad&) const = default;
};

enum class ActionOp : uint8_t {
  Write = 1,       // block, offset, value
  Read = 2,        // block, offset; value & mask must equal expected & mask (mask 0: ignore)
  Poll = 3,        // block, offset, mask, value, timeout_us
  WaitIrq = 4,     // line, timeout_us
  LoadMemory = 5,  // pages [first, first + count) of the page-load table, before a job
  JobBoundary = 6, // value = job seqno; marks where one GPU job's actions end (statistics)
};

struct Action {
  ActionOp op = ActionOp::Write;
  Block block = Block::Hub;
  uint8_t line = 0;
  uint32_t offset = 0;
  uint32_t value = 0;      // written value, expected read value, poll value, job seqno
  uint32_t mask = 0;       // read/poll mask
  uint32_t timeout_us = 0; // poll and interrupt-wait bound
  uint32_t first = 0, count = 0;  // LoadMemory range in `loads`
  bool operator==(const Action&) const = default;
};

enum class DType : uint8_t { Float32 = 0, Int32 = 1 };

// A named tensor bound to a GPU address range: where inputs go and outputs come from.
struct Binding {
  std::string name;
  bool is_input = false;
  uint32_t region = 0;
  uint32_t offset = 0;  // bytes into the region
  uint32_t bytes = 0;
  DType dtype = DType::Float32;
  std::vector<uint32_t> shape;  // outermost first (c, h, w)
  std::string layout = "chw";
  bool operator==(const Binding&) const = default;
};

// BLAKE2b-256 (libsodium's generic hash) of some bytes.
using Digest = std::array<uint8_t, 32>;

// The model file that weight bindings refer to: identified by its digest and size (the
// name is for people).
struct WeightsFile {
  std::string name;
  uint64_t size = 0;
  Digest digest{};
  bool operator==(const WeightsFile&) const = default;
};

// A read-only Weights region whose first `length` bytes are the model file's bytes at
// `offset` (the rest of the region zero): the device's own model file can supply them.
struct WeightBinding {
  uint32_t region = 0;
  uint64_t offset = 0;
  uint32_t length = 0;
  Digest digest{};  // of those bytes
  bool operator==(const WeightBinding&) const = default;
};

struct Recording {
  uint16_t version_major = 2, version_minor = 0;
  std::string sku_name;
  SkuIdentity sku;
  std::vector<std::pair<std::string, std::string>> metadata;  // workload, stack version, ...
  std::vector<Region> regions;
  std::vector<PageBlob> blobs;
  std::vector<PageLoad> loads;
  std::vector<Action> actions;
  std::vector<Binding> bindings;
  WeightsFile weights_file;                    // empty name when there are no weight bindings
  std::vector<WeightBinding> weight_bindings;  // at most one per region
  bool weights_omitted = false;  // bound Weights regions carry no images: the model file does
  bool operator==(const Recording&) const = default;
};

}  // namespace rplayer::replay
