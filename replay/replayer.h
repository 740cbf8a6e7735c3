// The replayer: verifies a decoded recording, builds the GPU's page table in pages it
// allocated, loads the recorded memory images, writes the caller's inputs into their
// bindings, executes the action stream with bounded waits and checked reads, reads the
// outputs, then scrubs the pages that held data of the run and resets the GPU. Any
// failure: reset, scrub, zeroed outputs and a structured error; never partial output.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "replay/platform.h"
#include "replay/recording.h"
#include "replay/verifier.h"

namespace rplayer::replay {

struct TensorIn {
  const char* name;  // a binding name
  const void* data;
  uint32_t bytes;
};
struct TensorOut {
  const char* name;
  void* data;
  uint32_t bytes;
};

enum class ReplayCode : uint8_t {
  Ok,
  Verify,  // see ReplayError::verify
  NoMemory,
  PowerTimeout,   // the GPU did not power up in time
  ResetTimeout,   // the GPU did not leave reset in time
  MmuTimeout,     // an MMU flush did not finish in time
  SetupMismatch,  // a register the replayer set up reads back otherwise: refuse to run
  ReadMismatch,   // a register read the recording checks came back different
  PollTimeout,
  IrqTimeout,    // a lost interrupt or a hung job
  MissingInput,  // an input binding with no (or a wrongly sized) tensor from the caller
  MissingOutput,
  GpuFault,         // the GPU reported an MMU, bus, QPU or queue fault during the replay
  JobUnfinished,    // the stream ended with a job queued or running, or a job lost
  BudgetExceeded,   // the run took longer than its time budget (recording's, capped by policy)
  NotLoaded,        // run() without a loaded recording
  MissingWeights,   // the recording omits its weights and the caller gave no model file
  WeightsMismatch,  // the model file given is not the recording's (other, modified, truncated)
};

struct ReplayError {
  ReplayCode code = ReplayCode::Ok;
  int32_t action = -1;  // index of the failing action (-1: setup or end of stream)
  uint32_t expected = 0, got = 0;
  const char* what = nullptr;  // the register or the fault concerned
  uint32_t address = 0;        // GPU VA of an MMU fault
  uint32_t jobs = 0;           // jobs started before the failure
  int32_t weight = -1;         // the weight binding concerned
  VerifyError verify;
  bool ok() const { return code == ReplayCode::Ok; }
  const char* message() const;
  const char* format(char* buf, size_t size) const;
};

struct ReplayStats {
  uint32_t jobs = 0;
  uint32_t actions = 0;
  uint32_t checked_reads = 0;
  uint32_t polls = 0;
  uint32_t irq_waits = 0;
  uint32_t pages = 0;          // pages held by the session (regions + page table + scratch)
  uint32_t pages_loaded = 0;   // page images copied by this run (or by load)
  uint32_t pages_skipped = 0;  // loads skipped: a read-only page already held that image
  uint32_t pages_scrubbed = 0;
  uint64_t verify_us = 0, setup_us = 0, execute_us = 0, teardown_us = 0;
};

// A replay session: load() verifies a recording and prepares its memory once; run()
// replays it with new inputs as often as needed; unload() scrubs and frees everything.
//
// Between runs the session keeps its page table and the pages of read-only regions
// (code, uniforms, weights, which the GPU cannot write); every page that can hold data
// of a run (GPU-writable regions, inputs, the fault scratch page) is scrubbed at the end
// of each run, so a run starts from the same memory as a fresh replay. The GPU itself is
// powered, identified, reset and set up by every run: between runs it may have been
// handed to another world.
class Replayer {
 public:
  explicit Replayer(Platform& p, const VerifyLimits& limits = {}) : p_(p), limits_(limits) {}
  ~Replayer() { unload(); }
  Replayer(const Replayer&) = delete;
  Replayer& operator=(const Replayer&) = delete;

  // Verifies `rec` (against `gpu` if given, else against its own SKU) and loads it. `rec`
  // must stay alive and unchanged until unload(). `model_file`: the whole model file, for
  // recordings that omit their weights: its size and digest and each bound range's digest
  // are checked before any GPU memory is touched, then the ranges are copied in and kept
  // for the session. Ignored for recordings that carry their weights.
  ReplayError load(const Recording& rec, const SkuIdentity* gpu,
                   std::span<const uint8_t> model_file, ReplayStats* stats);
  // One inference. On failure the outputs are zeroed and the session stays loaded.
  ReplayError run(std::span<const TensorIn> inputs, std::span<const TensorOut> outputs,
                  ReplayStats* stats);
  void unload();
  bool loaded() const { return rec_ != nullptr; }

  // One shot: power up, verify against the GPU present, load, run, unload.
  ReplayError run(const Recording& rec, std::span<const TensorIn> inputs,
                  std::span<const TensorOut> outputs, ReplayStats* stats,
                  std::span<const uint8_t> model_file = {});

 private:
  bool power_up();
  bool reset_gpu();
  bool flush_mmu();
  ReplayCode setup_gpu(ReplayError* err);
  ReplayCode check_setup(ReplayError* err);
  ReplayCode check_faults(ReplayError* err);
  ReplayCode check_err_stat(ReplayError* err);
  ReplayCode explain_timeout(ReplayCode timeout, ReplayError* err);
  ReplayCode check_end(uint32_t jobs_started, uint32_t grace_us, ReplayError* err);
  bool poll(Block b, uint32_t off, uint32_t mask, uint32_t value, uint32_t timeout_us);
  SkuIdentity identify();
  uint8_t* page_of(uint32_t region, uint32_t page) { return p_.page(pa_[first_[region] + page]); }
  void copy_in(uint32_t region, uint32_t offset, const uint8_t* src, uint32_t bytes);
  void copy_out(uint32_t region, uint32_t offset, uint8_t* dst, uint32_t bytes);
  ReplayCode check_weights(const Recording& rec, std::span<const uint8_t> file, ReplayError* err);
  ReplayCode execute(std::span<const TensorIn> inputs, ReplayStats* st, ReplayError* err);
  void write_inputs(std::span<const TensorIn> inputs);
  void scrub_run_pages(ReplayStats* st);

  Platform& p_;
  VerifyLimits limits_;
  const hw::Sku* sku_ = nullptr;   // the loaded recording's GPU
  const Recording* rec_ = nullptr;  // the loaded recording
  std::vector<uint64_t> pa_;        // every region page, region after region
  std::vector<uint32_t> first_;     // per region: index of its first page in pa_
  std::vector<uint32_t> state_;     // per page: blob it holds, kZeroBlob, or kDirty/kCallerData
  std::vector<uint32_t> initial_;   // per page: what a fresh replay has there at the first job
  std::vector<bool> writable_;      // per page: GPU-writable (never trusted to be unchanged)
  std::vector<bool> input_page_;    // per page: holds part of an input binding
  std::vector<uint64_t> pt_;        // the page table (contiguous)
  uint64_t scratch_ = 0;            // where faulting accesses are redirected
  bool have_scratch_ = false;
};

}  // namespace rplayer::replay
