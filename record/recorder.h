// The recorder: an HwIo that sits between the driver and the hardware, forwards every
// access, and while a recording window is open captures the GPU jobs' conversation:
// register writes, reads with their values and whether they matter, polls as single
// actions, interrupt waits, and the GPU-visible memory at each job submission,
// incrementally (only pages the CPU changed since the GPU last saw them).
//
// Buffer mappings are tracked from the moment the recorder is installed (so it must be
// installed before the driver probes); regions carry the stack's own classification
// (driver::BoUsage) and labels. Register traffic outside jobs (probe, MMU maintenance
// for buffer creation) is not recorded: the replayer does its own.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "driver/hw_io.h"
#include "replay/recording.h"

namespace rplayer::record {

// The device's account of its model file, for a recorder that holds only a skeleton of
// it (cloud recording: the weights zeroed): the file's identity and the digest of every
// weight range, by (offset, length).
struct WeightsManifest {
  replay::WeightsFile file;
  std::map<std::pair<uint64_t, uint64_t>, replay::Digest> ranges;
};

struct RecorderOptions {
  // Weight digests from the device instead of from the model file the stack loaded.
  std::shared_ptr<const WeightsManifest> weights_manifest;
  uint32_t irq_timeout_us = 2'000'000;  // bound the replayer gets for each interrupt wait
  bool omit_weights = false;  // leave Weights regions that hold a model-file range out of the
                              // memory images: the replayer takes them from the model file
  std::function<void(uint64_t jobs)> on_job;  // progress, called after each recorded job
};

struct RecorderStats {
  uint64_t jobs = 0;
  uint64_t actions = 0;
  uint64_t page_loads = 0;
  uint64_t pages_hashed = 0;
  uint64_t zero_pages_elided = 0;
};

class Recorder final : public driver::HwIo {
 public:
  Recorder(driver::HwIo& inner, RecorderOptions opts = {});

  // Opens the recording window. Every buffer mapped now or later becomes a region.
  void start();
  // Binds a named tensor to a GPU address range (must lie in one mapped buffer).
  // Returns false with *error if it does not.
  bool bind(const std::string& name, bool is_input, uint32_t gpu_va, uint32_t bytes,
            const std::vector<uint32_t>& shape, std::string* error);
  // Binds a named tensor to the buffer the stack created for it: usage Input (or Output)
  // and labelled with the tensor's name; the tensor starts at the buffer's start.
  bool bind_buffer(const std::string& name, bool is_input, uint32_t bytes,
                   const std::vector<uint32_t>& shape, std::string* error);
  // Closes the window and returns the recording. *error is set (and the recording is
  // not usable) if something in the window cannot be replayed, e.g. a poll timed out.
  bool finish(replay::Recording* out, std::string* error);
  RecorderStats stats() const;

  // HwIo
  bool has_block(driver::RegBlock b) override { return inner_.has_block(b); }
  int num_irq_lines() override { return inner_.num_irq_lines(); }
  hw::MemoryWindow memory() override { return inner_.memory(); }
  uint32_t read(driver::RegBlock b, uint32_t off, driver::ReadUse use) override;
  void write(driver::RegBlock b, uint32_t off, uint32_t v) override;
  void update(driver::RegBlock b, uint32_t off, uint32_t keep, uint32_t set) override;
  bool lost() override { return inner_.lost(); }
  bool poll(driver::RegBlock b, uint32_t off, uint32_t mask, uint32_t value,
            driver::Micros timeout, uint32_t* last) override;
  bool wait_irq(int line, driver::Micros timeout) override;
  void on_sync_point(driver::SyncPoint p, uint64_t seqno) override;
  void on_bo_mapped(const driver::BoInfo& bo) override;
  void on_bo_unmapped(const driver::BoInfo& bo) override;
  void on_lock_released() override { inner_.on_lock_released(); }

 private:
  struct Bo {
    driver::BoInfo info;
    std::string label;
    std::vector<uint64_t> pages;      // physical addresses
    std::vector<uint64_t> seen_hash;  // page contents as the GPU last saw them (0: none)
    int region = -1;                  // index in rec_.regions once recorded
    bool has_source = false;          // a Weights buffer holding a model-file range
    std::string source_file;
    uint64_t source_offset = 0, source_length = 0;
  };
  bool bind_weights(std::string* error);  // mu_ held: weight bindings from the sources
  bool bind_weights_from_file(const std::string& file, std::string* error);
  void append(const replay::Action& a);  // mu_ held
  void capture_memory();                 // mu_ held: CPU changes since the last sync
  void remember_memory();                // mu_ held: what the GPU left behind
  uint32_t blob_for(const uint8_t* page);
  int region_for(Bo& bo);

  driver::HwIo& inner_;
  RecorderOptions opts_;
  mutable std::mutex mu_;
  bool active_ = false;
  std::chrono::steady_clock::time_point started_at_;  // for the declared replay budget
  bool in_job_ = false;
  std::chrono::steady_clock::time_point job_start_;
  std::string error_;
  std::map<uint32_t, Bo> bos_;  // by handle
  std::map<uint64_t, uint32_t> blob_by_hash_;
  replay::Recording rec_;
  RecorderStats stats_;
};

}  // namespace rplayer::record
