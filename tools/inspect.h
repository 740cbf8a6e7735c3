// The core of `rplayer inspect`: a signed recording decoded and explained. Header, metadata,
// regions, bindings, statistics, the register conversation with register names, and each
// job's shader, disassembled from the code pages the recording loads before the job.
//
// Everything works on bytes and keys, not files, so that tests call it without the CLI.
#pragma once

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "hw/sku.h"
#include "keyring/key_paths.h"
#include "replay/decoder.h"
#include "replay/recording.h"

namespace rplayer::tools {

// A shader is disassembled up to its first top-level `end`, the end of the loaded code, or
// this many instructions (a code page full of garbage must not flood the listing).
inline constexpr size_t kMaxShaderInstructions = 4096;

struct InspectOptions {
  bool json = false;
  int64_t max_actions = -1;  // actions listed, -1: all; statistics and jobs always cover all
  std::string trace_title = "recording";  // process name in the trace (the file name)
};

// One CSD dispatch: the QUEUED_CFG0 write that starts it, with the CFG values written so far.
struct Dispatch {
  size_t action = 0;
  std::array<uint32_t, 8> cfg{};  // the first Sku::csd_num_cfg are meaningful
  uint32_t shader_va = 0;         // CFG5 without its flag bits
  int shader = -1;                // index in Inspection::shaders, -1: not found
  std::string problem;            // why there is no shader
};

// The actions from the end of the previous job to this job's JobBoundary (inclusive): the
// recorder puts a job's LoadMemory before its register writes.
struct Job {
  size_t first_action = 0, last_action = 0;
  int64_t seqno = -1;  // the JobBoundary value; -1 when the recording stops before it
  std::vector<Dispatch> dispatches;
};

// A distinct program: shaders are told apart by their code, not their address, because the
// runtime gives each layer its own code buffer, often holding the same code (branches are
// relative, so equal words are an equal program).
struct Shader {
  uint32_t gpu_va = 0;  // where it was first dispatched from
  uint32_t region = 0;
  std::vector<uint32_t> addresses;  // every address dispatched from, in first-use order
  std::vector<uint64_t> words;
  bool ended = false;        // stopped at a top-level `end`, not at the end of the loaded code
  std::vector<size_t> jobs;  // jobs that dispatched it, in order
};

struct RegionUse {
  uint32_t loads = 0;         // LoadMemory entries that target the region
  uint32_t zero_loads = 0;    // of which zero-fill
  uint32_t pages_loaded = 0;  // distinct pages ever loaded
};

struct InspectStats {
  uint64_t jobs = 0, dispatches = 0;
  std::array<uint64_t, replay::kMaxActionOp + 1> by_op{};  // indexed by ActionOp
  uint64_t reads_checked = 0, reads_ignored = 0;
  uint64_t page_loads = 0, zero_page_loads = 0, unique_blobs = 0;
  uint64_t page_bytes = 0;          // unique blobs decompressed
  uint64_t blob_section_bytes = 0;  // the BLOBS section as stored (compressed)
  uint64_t file_bytes = 0;
};

struct Inspection {
  replay::Recording rec;
  const hw::Sku* sku = nullptr;  // by IDENT values, else by the recorded name; null: unknown
  bool sku_identified = false;   // the IDENT values match a known SKU
  std::string key_id;            // hex, from the SIGNATURE section
  std::string key_source;        // where the trust store got that key
  std::vector<Job> jobs;
  std::vector<Shader> shaders;
  std::vector<RegionUse> regions;  // parallel to rec.regions
  InspectStats stats;
};

// Decodes `bytes`, checking the signature against `trusted`, and analyses the recording.
// On failure returns the decoder's error; *out is then empty.
replay::DecodeError inspect_recording(std::span<const uint8_t> bytes,
                                      const keyring::TrustStore& trusted, Inspection* out);

// Fills everything but the file-level fields (key id, file and section sizes) from ins->rec.
void analyze(Inspection* ins);

std::string shader_name(int index);  // "S0"
std::string disassemble_shader(const Shader& s);

// One action as the listing prints it, e.g. `W core0 CSD_QUEUED_CFG0 = 0x00040000`. A
// JobBoundary names the job by `job_index` when known (>= 0), and always by its seqno.
std::string format_action(const replay::Recording& rec, const replay::Action& a, const hw::Sku* sku,
                          int64_t job_index = -1);

std::string render_text(const Inspection& ins, const InspectOptions& opts);
// Keys in a reading order (header first), not sorted.
nlohmann::ordered_json render_json(const Inspection& ins, const InspectOptions& opts);

// Everything `rplayer inspect` does once the file is read: stdout text (the report or its
// JSON), or the decoder's message and exit code 1; the trace when `want_trace`.
struct InspectOutput {
  int exit_code = 0;
  std::string out;
  std::string error;
  std::optional<nlohmann::json> trace;
};
InspectOutput run_inspect(std::span<const uint8_t> bytes, const keyring::TrustStore& trusted,
                          const InspectOptions& opts, bool want_trace);

// The keys to check the signature with: the `key_files`, plus the store `trust` (a
// directory of *.pub or a key file) if given; with neither, $RPLAYER_TRUST, else
// $RPLAYER_KEYS/trusted, else ./keys/trusted. false with an error naming every place
// looked at when that gives no key (or a key file cannot be read).
bool resolve_trust_store(const std::vector<std::string>& key_files, const std::string& trust,
                         keyring::TrustStore* out, std::string* error);

}  // namespace rplayer::tools
