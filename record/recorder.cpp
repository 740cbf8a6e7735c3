#include "record/recorder.h"

#include <xxhash.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "hw/sku.h"
#include "hw/v3d_regs.h"
#include "replay/signature.h"
#include "replay/verifier.h"

namespace rplayer::record {

using driver::ReadUse;
using driver::RegBlock;
using replay::Action;
using replay::ActionOp;

namespace {
constexpr uint32_t kPage = 4096;
constexpr int64_t kMaxIrqWaitUs = replay::VerifyLimits{}.max_irq_wait_us;

// The recording's enums number what the driver's do; a reordering on either side fails here.
template <typename To, typename From>
constexpr bool same_number(From a, To b) {
  return uint8_t(a) == uint8_t(b);
}
static_assert(same_number(RegBlock::Hub, replay::Block::Hub) &&
              same_number(RegBlock::Core0, replay::Block::Core0) &&
              same_number(RegBlock::Sms, replay::Block::Sms) &&
              same_number(RegBlock::Bridge, replay::Block::Bridge) &&
              same_number(RegBlock::Tzpc, replay::Block::Tzpc));
static_assert(same_number(driver::BoUsage::Internal, replay::RegionKind::Internal) &&
              same_number(driver::BoUsage::Code, replay::RegionKind::Code) &&
              same_number(driver::BoUsage::Uniforms, replay::RegionKind::Uniforms) &&
              same_number(driver::BoUsage::Weights, replay::RegionKind::Weights) &&
              same_number(driver::BoUsage::Input, replay::RegionKind::Input) &&
              same_number(driver::BoUsage::Output, replay::RegionKind::Output) &&
              same_number(driver::BoUsage::Scratch, replay::RegionKind::Scratch));

// Mbox is never recorded (the callers return before): only the five GPU blocks come here.
replay::Block to_block(RegBlock b) { return replay::Block(uint8_t(b)); }

bool is_zero(const uint8_t* p) {
  static const uint8_t zero[kPage] = {};
  return std::memcmp(p, zero, kPage) == 0;
}
}  // namespace

Recorder::Recorder(driver::HwIo& inner, RecorderOptions opts) : inner_(inner), opts_(opts) {}

void Recorder::start() {
  std::lock_guard lk(mu_);
  active_ = true;
  started_at_ = std::chrono::steady_clock::now();
  rec_ = replay::Recording{};
  // The GPU this recording is for, as its IDENT registers say (outside any job: not part
  // of the action stream).
  rec_.sku = {inner_.read(RegBlock::Hub, v3d::HUB_IDENT1, ReadUse::Control),
              inner_.read(RegBlock::Hub, v3d::HUB_IDENT3, ReadUse::Control),
              inner_.read(RegBlock::Core0, v3d::CTL_IDENT0, ReadUse::Control),
              inner_.read(RegBlock::Core0, v3d::CTL_IDENT1, ReadUse::Control)};
  if (const hw::Sku* s = hw::identify_sku(rec_.sku.hub_ident1, rec_.sku.hub_ident3,
                                          rec_.sku.core_ident0, rec_.sku.core_ident1))
    rec_.sku_name = std::string(s->name);
  rec_.weights_omitted = opts_.omit_weights;
  blob_by_hash_.clear();
  error_.clear();
  stats_ = {};
  // GPU-writable buffers hold what earlier jobs left (activations, derived weights of a
  // prepare phase): the stream recomputes whatever it reads of them, so their contents at
  // the start are not part of the recording, and a weight-less recording must not carry
  // derived weights. Their pages count as seen; what the CPU writes into them from now on
  // is captured as usual.
  const hw::MemoryWindow mem = inner_.memory();
  for (auto& [h, bo] : bos_) {
    bo.region = -1;
    for (uint32_t p = 0; p < bo.pages.size(); ++p) {
      bo.seen_hash[p] = bo.info.gpu_writable ? XXH3_64bits(mem.at(bo.pages[p]), kPage) | 1 : 0;
      stats_.pages_hashed += bo.info.gpu_writable;
    }
  }
}

RecorderStats Recorder::stats() const {
  std::lock_guard lk(mu_);
  return stats_;
}

void Recorder::append(const Action& a) {
  rec_.actions.push_back(a);
  ++stats_.actions;
}

// The ownership mailbox is the SoC's, not the GPU's: its traffic (a hand-off to the
// secure world) is no part of a job and the verifier rejects its block.
uint32_t Recorder::read(RegBlock b, uint32_t off, ReadUse use) {
  if (b == RegBlock::Mbox) return inner_.read(b, off, use);
  std::lock_guard lk(mu_);  // held across the access: the recorded order is the bus order
  const uint32_t v = inner_.read(b, off, use);
  // Informational reads (the hang timer's progress checks, fault addresses for a log)
  // happen when and how often timing says, not the job: recording them would make two
  // recordings of one job differ, and the replayer has nothing to check in them.
  // Every V3D register the driver reads that way is free of read side effects.
  if (in_job_ && use == ReadUse::Control) {
    Action a;
    a.op = ActionOp::Read;
    a.block = to_block(b);
    a.offset = off;
    a.value = v;
    a.mask = ~0u;  // the driver branched on it: the replay must see the same
    append(a);
  }
  return v;
}

void Recorder::write(RegBlock b, uint32_t off, uint32_t v) {
  if (b == RegBlock::Mbox) return inner_.write(b, off, v);
  std::lock_guard lk(mu_);
  inner_.write(b, off, v);
  if (in_job_) {
    Action a;
    a.op = ActionOp::Write;
    a.block = to_block(b);
    a.offset = off;
    a.value = v;
    append(a);
  }
}

void Recorder::update(RegBlock b, uint32_t off, uint32_t keep, uint32_t set) {
  {
    std::lock_guard lk(mu_);
    // Outside a job nothing is recorded: the hardware below may do it as one operation.
    if (!in_job_ || b == RegBlock::Mbox) return inner_.update(b, off, keep, set);
  }
  HwIo::update(b, off, keep, set);  // recorded as the read and the write it is
}

bool Recorder::poll(RegBlock b, uint32_t off, uint32_t mask, uint32_t value,
                    driver::Micros timeout, uint32_t* last) {
  if (b == RegBlock::Mbox) return inner_.poll(b, off, mask, value, timeout, last);
  std::lock_guard lk(mu_);
  const bool ok = inner_.poll(b, off, mask, value, timeout, last);
  if (in_job_) {
    if (!ok && error_.empty()) error_ = "a poll timed out inside the recording window";
    Action a;
    a.op = ActionOp::Poll;  // one action, however many reads the poll took
    a.block = to_block(b);
    a.offset = off;
    a.mask = mask;
    a.value = value;
    a.timeout_us = uint32_t(std::min<int64_t>(timeout.count(), UINT32_MAX));
    append(a);
  }
  return ok;
}

bool Recorder::wait_irq(int line, driver::Micros timeout) {
  // Not under mu_: the wait blocks while the other thread keeps talking to the GPU.
  const bool hit = inner_.wait_irq(line, timeout);
  if (hit) {
    std::lock_guard lk(mu_);
    // Only the GPU's lines: the mailbox line (the one after them) is not a job's.
    const hw::Sku* sku = hw::find_sku(rec_.sku_name);
    if (in_job_ && (!sku || line < sku->num_irq_lines)) {
      Action a;
      a.op = ActionOp::WaitIrq;
      a.line = uint8_t(line);
      // The bound the replayer gets: the configured one, or 20x what this job took here
      // if that is longer (a slow recording machine predicts a slow replay), capped at
      // the verifier's limit.
      const auto took = std::chrono::duration_cast<std::chrono::microseconds>(
                            std::chrono::steady_clock::now() - job_start_)
                            .count();
      a.timeout_us = uint32_t(std::clamp<int64_t>(20 * took, opts_.irq_timeout_us, kMaxIrqWaitUs));
      append(a);
    }
  }
  return hit;
}

int Recorder::region_for(Bo& bo) {
  if (bo.region >= 0) return bo.region;
  replay::Region r;
  r.gpu_va = bo.info.gpu_va;
  r.size = bo.info.size;
  r.kind = replay::RegionKind(uint8_t(bo.info.usage));
  r.gpu_writable = bo.info.gpu_writable;
  r.label = bo.label;
  rec_.regions.push_back(std::move(r));
  bo.region = int(rec_.regions.size() - 1);
  return bo.region;
}

uint32_t Recorder::blob_for(const uint8_t* page) {
  const uint64_t hash = XXH64(page, kPage, 0);  // the format's content hash
  auto it = blob_by_hash_.find(hash);
  if (it != blob_by_hash_.end() &&
      std::memcmp(rec_.blobs[it->second].data.data(), page, kPage) == 0)
    return it->second;
  replay::PageBlob b;
  b.hash = hash;
  b.data.assign(page, page + kPage);
  rec_.blobs.push_back(std::move(b));
  const uint32_t idx = uint32_t(rec_.blobs.size() - 1);
  blob_by_hash_[hash] = idx;
  return idx;
}

void Recorder::capture_memory() {
  const hw::MemoryWindow mem = inner_.memory();
  Action load;
  load.op = ActionOp::LoadMemory;
  load.first = uint32_t(rec_.loads.size());
  for (auto& [handle, bo] : bos_) {
    const int region = region_for(bo);
    if (opts_.omit_weights && bo.has_source) continue;
    for (uint32_t p = 0; p < bo.pages.size(); ++p) {
      const uint8_t* data = mem.at(bo.pages[p]);
      const uint64_t h = XXH3_64bits(data, kPage) | 1;  // 0 means "never seen"
      ++stats_.pages_hashed;
      if (h == bo.seen_hash[p]) continue;
      const bool first_sight = bo.seen_hash[p] == 0;
      bo.seen_hash[p] = h;
      // The replayer starts every region zeroed: a zero page seen first needs nothing; one
      // the CPU zeroed later is a zero-fill load (the format stores no zero pages).
      if (is_zero(data)) {
        if (first_sight) {
          ++stats_.zero_pages_elided;
          continue;
        }
        rec_.loads.push_back({uint32_t(region), p, replay::kZeroBlob});
        ++stats_.page_loads;
        continue;
      }
      rec_.loads.push_back({uint32_t(region), p, blob_for(data)});
      ++stats_.page_loads;
    }
  }
  load.count = uint32_t(rec_.loads.size()) - load.first;
  if (load.count) append(load);
}

void Recorder::remember_memory() {
  // After the clean, DRAM holds what the GPU wrote; the CPU's next changes are relative
  // to this. Only GPU-writable buffers can have changed.
  const hw::MemoryWindow mem = inner_.memory();
  for (auto& [handle, bo] : bos_) {
    if (!bo.info.gpu_writable) continue;
    for (uint32_t p = 0; p < bo.pages.size(); ++p) {
      bo.seen_hash[p] = XXH3_64bits(mem.at(bo.pages[p]), kPage) | 1;
      ++stats_.pages_hashed;
    }
  }
}

void Recorder::on_sync_point(driver::SyncPoint p, uint64_t seqno) {
  uint64_t jobs = 0;
  {
    std::lock_guard lk(mu_);
    if (active_) {
      if (p == driver::SyncPoint::BeforeJob) {
        capture_memory();
        in_job_ = true;
        job_start_ = std::chrono::steady_clock::now();
      } else {
        Action a;
        a.op = ActionOp::JobBoundary;
        a.value = uint32_t(seqno);
        append(a);
        ++stats_.jobs;
        in_job_ = false;
        remember_memory();
        jobs = stats_.jobs;
      }
    }
  }
  if (jobs && opts_.on_job) opts_.on_job(jobs);
  inner_.on_sync_point(p, seqno);
}

void Recorder::on_bo_mapped(const driver::BoInfo& info) {
  {
    std::lock_guard lk(mu_);
    Bo bo;
    bo.info = info;
    bo.label = std::string(info.label);
    bo.info.label = {};
    bo.pages.assign(info.pages, info.pages + info.num_pages);
    bo.info.pages = nullptr;
    bo.seen_hash.assign(info.num_pages, 0);
    if (info.weight_source) {
      bo.has_source = true;
      bo.source_file = std::string(info.weight_source->model);
      bo.source_offset = info.weight_source->offset;
      bo.source_length = info.weight_source->length;
    }
    bo.info.weight_source = nullptr;
    bos_[info.handle] = std::move(bo);
  }
  inner_.on_bo_mapped(info);
}

void Recorder::on_bo_unmapped(const driver::BoInfo& info) {
  {
    std::lock_guard lk(mu_);
    auto it = bos_.find(info.handle);
    if (active_ && it != bos_.end() && it->second.region >= 0 && error_.empty())
      error_ = "buffer '" + it->second.label + "' was freed inside the recording window";
    if (it != bos_.end()) bos_.erase(it);
  }
  inner_.on_bo_unmapped(info);
}

bool Recorder::bind_weights_from_file(const std::string& file, std::string* error) {
  std::ifstream in(file, std::ios::binary);
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                                   std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) {
    *error = file + ": cannot read the model file for the weight digests";
    return false;
  }
  rec_.weights_file.name = std::filesystem::path(file).filename().string();
  rec_.weights_file.size = bytes.size();
  rec_.weights_file.digest = replay::content_digest(bytes);
  for (const auto& [handle, bo] : bos_) {
    if (!bo.has_source || bo.region < 0) continue;
    if (bo.source_length == 0 || bo.source_length > bo.info.size ||
        bo.source_offset > bytes.size() || bo.source_length > bytes.size() - bo.source_offset) {
      *error = "buffer '" + bo.label + "': its weight range is not inside " + file;
      return false;
    }
    replay::WeightBinding w;
    w.region = uint32_t(bo.region);
    w.offset = bo.source_offset;
    w.length = uint32_t(bo.source_length);
    w.digest = replay::content_digest(
        std::span<const uint8_t>(bytes).subspan(bo.source_offset, bo.source_length));
    rec_.weight_bindings.push_back(w);
  }
  return true;
}

// Every recorded Weights buffer that holds a model-file range becomes a weight binding:
// the file identified by size and digest, each range by its digest. The device's own copy
// of the model then supplies (weight-less recordings) or can be checked against them.
bool Recorder::bind_weights(std::string* error) {
  std::string file;
  for (const auto& [handle, bo] : bos_) {
    if (!bo.has_source || bo.region < 0) continue;
    if (!file.empty() && file != bo.source_file) {
      *error = "weights from two model files (" + file + ", " + bo.source_file + ")";
      return false;
    }
    file = bo.source_file;
  }
  if (file.empty()) return true;
  if (const WeightsManifest* m = opts_.weights_manifest.get()) {
    rec_.weights_file = m->file;
    for (const auto& [handle, bo] : bos_) {
      if (!bo.has_source || bo.region < 0) continue;
      const auto it = m->ranges.find({bo.source_offset, bo.source_length});
      if (it == m->ranges.end() || bo.source_length > bo.info.size) {
        *error = "buffer '" + bo.label + "': its weight range is not in the device's manifest";
        return false;
      }
      rec_.weight_bindings.push_back(
          {uint32_t(bo.region), bo.source_offset, uint32_t(bo.source_length), it->second});
    }
  } else if (!bind_weights_from_file(file, error)) {
    return false;
  }
  std::sort(rec_.weight_bindings.begin(), rec_.weight_bindings.end(),
            [](const auto& a, const auto& b) { return a.region < b.region; });
  return true;
}

bool Recorder::bind(const std::string& name, bool is_input, uint32_t gpu_va, uint32_t bytes,
                    const std::vector<uint32_t>& shape, std::string* error) {
  std::lock_guard lk(mu_);
  for (auto& [handle, bo] : bos_) {
    const uint64_t lo = bo.info.gpu_va, hi = lo + bo.info.size;
    if (gpu_va < lo || uint64_t(gpu_va) + bytes > hi) continue;
    replay::Binding b;
    b.name = name;
    b.is_input = is_input;
    b.region = uint32_t(region_for(bo));
    b.offset = gpu_va - bo.info.gpu_va;
    b.bytes = bytes;
    b.shape = shape;
    rec_.bindings.push_back(std::move(b));
    return true;
  }
  *error = "tensor '" + name + "' is not inside any mapped GPU buffer";
  return false;
}

bool Recorder::bind_buffer(const std::string& name, bool is_input, uint32_t bytes,
                           const std::vector<uint32_t>& shape, std::string* error) {
  const driver::BoUsage want = is_input ? driver::BoUsage::Input : driver::BoUsage::Output;
  uint32_t va = 0;
  {
    std::lock_guard lk(mu_);
    for (const auto& [handle, bo] : bos_)
      if (bo.info.usage == want && bo.label == name) va = bo.info.gpu_va;
  }
  if (!va) {
    *error =
        std::string("no ") + (is_input ? "input" : "output") + " buffer labelled '" + name + "'";
    return false;
  }
  return bind(name, is_input, va, bytes, shape, error);
}

bool Recorder::finish(replay::Recording* out, std::string* error) {
  std::lock_guard lk(mu_);
  active_ = false;
  in_job_ = false;
  if (!error_.empty()) {
    *error = error_;
    return false;
  }
  if (stats_.jobs == 0) {
    *error = "no GPU job ran inside the recording window";
    return false;
  }
  if (!bind_weights(error)) return false;
  // The replay time budget: ten times what the recorded stream took here, with the full
  // stack on the CPU (the replay does less), at least a second and at most the policy's.
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started_at_);
  const int64_t budget_ms =
      std::clamp<int64_t>(took.count() * 10, 1000, int64_t(replay::VerifyLimits{}.max_replay_ms));
  *out = std::move(rec_);
  out->metadata.emplace_back(replay::kBudgetKey, std::to_string(budget_ms));
  rec_ = replay::Recording{};
  return true;
}

}  // namespace rplayer::record
