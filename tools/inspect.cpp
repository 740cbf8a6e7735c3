#include "tools/inspect.h"

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <string_view>
#include <unordered_map>

#include "hw/isa/disassembler.h"
#include "hw/isa/isa.h"
#include "tools/reg_names.h"
#include "tools/trace_export.h"

namespace rplayer::tools {

namespace {

namespace fs = std::filesystem;
using replay::Action;
using replay::ActionOp;
using replay::Recording;

constexpr uint32_t kPage = 4096;

void appendf(std::string* s, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void appendf(std::string* s, const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  const int n = std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (size_t(n) < sizeof buf) {
    s->append(buf, size_t(n));
    return;
  }
  std::string big(size_t(n) + 1, '\0');
  va_start(ap, fmt);
  std::vsnprintf(big.data(), big.size(), fmt, ap);
  va_end(ap);
  big.pop_back();
  *s += big;
}

std::string hex32(uint32_t v) {
  char b[16];
  std::snprintf(b, sizeof b, "0x%08x", v);
  return b;
}

std::string hex(uint32_t v) {
  char b[16];
  std::snprintf(b, sizeof b, "0x%x", v);
  return b;
}

uint64_t le64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

const char* kind_name(replay::RegionKind k) {
  switch (k) {
    case replay::RegionKind::Internal:
      return "internal";
    case replay::RegionKind::Code:
      return "code";
    case replay::RegionKind::Uniforms:
      return "uniforms";
    case replay::RegionKind::Weights:
      return "weights";
    case replay::RegionKind::Input:
      return "input";
    case replay::RegionKind::Output:
      return "output";
    case replay::RegionKind::Scratch:
      return "scratch";
  }
  return "?";
}

const char* dtype_name(replay::DType d) {
  switch (d) {
    case replay::DType::Float32:
      return "float32";
    case replay::DType::Int32:
      return "int32";
  }
  return "?";
}

const char* op_name(ActionOp op) {
  switch (op) {
    case ActionOp::Write:
      return "write";
    case ActionOp::Read:
      return "read";
    case ActionOp::Poll:
      return "poll";
    case ActionOp::WaitIrq:
      return "wait_irq";
    case ActionOp::LoadMemory:
      return "load_memory";
    case ActionOp::JobBoundary:
      return "job_boundary";
  }
  return "?";
}

std::string size_text(uint64_t bytes) {
  char b[32];
  if (bytes >= (1u << 20) && bytes % (1u << 20) == 0)
    std::snprintf(b, sizeof b, "%llu MiB", (unsigned long long)(bytes >> 20));
  else if (bytes % 1024 == 0)
    std::snprintf(b, sizeof b, "%llu KiB", (unsigned long long)(bytes >> 10));
  else
    std::snprintf(b, sizeof b, "%llu B", (unsigned long long)bytes);
  return b;
}

std::string region_label(const Recording& rec, uint32_t r) {
  if (r < rec.regions.size() && !rec.regions[r].label.empty()) return rec.regions[r].label;
  return "#" + std::to_string(r);
}

std::string shape_text(const std::vector<uint32_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

// Code pages as the GPU would see them at a point of the action stream: page -> blob, for
// Code regions only (sparse, so a hostile 4 GiB region costs nothing).
using CodePages = std::map<uint32_t, std::map<uint32_t, uint32_t>>;  // region -> page -> blob

// Reads the shader at `va` from the loaded code pages: up to the first `end` that no earlier
// forward branch jumps over and that is outside every if/endif (an `end` there would not be
// the program's last instruction), the end of the loaded code, or kMaxShaderInstructions.
bool read_shader(const Recording& rec, const CodePages& pages, uint32_t va, Shader* out,
                 std::string* problem) {
  int region = -1;
  for (size_t r = 0; r < rec.regions.size(); ++r) {
    const replay::Region& reg = rec.regions[r];
    if (reg.kind == replay::RegionKind::Code && va >= reg.gpu_va &&
        uint64_t(va) < uint64_t(reg.gpu_va) + reg.size) {
      region = int(r);
      break;
    }
  }
  if (region < 0) {
    *problem = "shader address " + hex32(va) + " is in no code region";
    return false;
  }
  const replay::Region& reg = rec.regions[size_t(region)];
  auto rp = pages.find(uint32_t(region));
  out->gpu_va = va;
  out->region = uint32_t(region);
  out->words.clear();
  out->ended = false;
  int depth = 0;
  int64_t furthest = 0;  // furthest forward branch target seen, in instructions
  for (uint64_t off = va - reg.gpu_va; off + 8 <= reg.size; off += 8) {
    if (out->words.size() >= kMaxShaderInstructions) break;
    if (rp == pages.end()) break;
    auto pg = rp->second.find(uint32_t(off / kPage));
    // A page never loaded or zero-filled holds no code: the shader's loaded part ends.
    if (pg == rp->second.end() || pg->second == replay::kZeroBlob) break;
    const std::vector<uint8_t>& data = rec.blobs[pg->second].data;
    if (data.size() != kPage) break;
    const uint64_t word = le64(data.data() + off % kPage);
    const int64_t idx = int64_t(out->words.size());
    out->words.push_back(word);
    const std::optional<isa::Instr> in = isa::decode(word);
    if (!in) continue;
    switch (in->op) {
      case isa::Op::If:
        ++depth;
        break;
      case isa::Op::Endif:
        depth = std::max(0, depth - 1);
        break;
      case isa::Op::B:
      case isa::Op::Bany:
      case isa::Op::Ball:
      case isa::Op::Bnone:
        furthest = std::max(furthest, idx + int64_t(int32_t(in->imm)));
        break;
      case isa::Op::End:
        if (depth == 0 && furthest <= idx) out->ended = true;
        break;
      default:
        break;
    }
    if (out->ended) break;
  }
  if (out->words.empty()) {
    *problem = "no code loaded at " + hex32(va) + " (region " + region_label(rec, region) + ")";
    return false;
  }
  return true;
}

}  // namespace

std::string shader_name(int index) { return "S" + std::to_string(index); }

std::string disassemble_shader(const Shader& s) { return isa::disassemble(s.words); }

void analyze(Inspection* ins) {
  const Recording& rec = ins->rec;
  ins->sku = hw::identify_sku(rec.sku.hub_ident1, rec.sku.hub_ident3, rec.sku.core_ident0,
                              rec.sku.core_ident1);
  ins->sku_identified = ins->sku != nullptr;
  if (!ins->sku) ins->sku = hw::find_sku(rec.sku_name);

  // Regions: how much of each the recording fills.
  ins->regions.assign(rec.regions.size(), {});
  {
    std::set<std::pair<uint32_t, uint32_t>> seen;
    for (const replay::PageLoad& l : rec.loads) {
      if (l.region >= rec.regions.size()) continue;
      RegionUse& u = ins->regions[l.region];
      ++u.loads;
      if (l.blob == replay::kZeroBlob) ++u.zero_loads;
      if (seen.insert({l.region, l.page}).second) ++u.pages_loaded;
    }
  }

  InspectStats& st = ins->stats;
  st.unique_blobs = rec.blobs.size();
  st.page_bytes = uint64_t(rec.blobs.size()) * kPage;

  // One pass over the actions: statistics, jobs, dispatches, shaders.
  const uint32_t cfg0 = ins->sku ? ins->sku->csd_queued_cfg0 : 0;
  const uint32_t ncfg = ins->sku ? uint32_t(std::min(ins->sku->csd_num_cfg, 8)) : 0;
  std::array<uint32_t, 8> cfg{};
  std::array<bool, 8> written{};
  CodePages pages;
  std::unordered_multimap<size_t, size_t> by_hash;  // hash of the words -> shader index
  Job job;
  ins->jobs.clear();
  ins->shaders.clear();
  for (size_t i = 0; i < rec.actions.size(); ++i) {
    const Action& a = rec.actions[i];
    const uint8_t op = uint8_t(a.op);
    if (op <= replay::kMaxActionOp) ++st.by_op[op];
    switch (a.op) {
      case ActionOp::Read:
        ++(a.mask ? st.reads_checked : st.reads_ignored);
        break;
      case ActionOp::LoadMemory:
        for (uint64_t k = a.first; k < uint64_t(a.first) + a.count && k < rec.loads.size(); ++k) {
          const replay::PageLoad& l = rec.loads[k];
          ++st.page_loads;
          if (l.blob == replay::kZeroBlob) ++st.zero_page_loads;
          if (l.region < rec.regions.size() &&
              rec.regions[l.region].kind == replay::RegionKind::Code)
            pages[l.region][l.page] = l.blob;
        }
        break;
      case ActionOp::Write: {
        if (a.block != replay::Block::Core0 || ncfg == 0 || a.offset < cfg0 ||
            a.offset >= cfg0 + 4 * ncfg || a.offset % 4)
          break;
        const uint32_t n = (a.offset - cfg0) / 4;
        cfg[n] = a.value;
        written[n] = true;
        if (n != 0) break;
        // QUEUED_CFG0 is written last and starts the dispatch.
        ++st.dispatches;
        Dispatch d;
        d.action = i;
        d.cfg = cfg;
        d.shader_va = cfg[5] & ~7u;
        Shader s;
        if (!written[5]) {
          d.problem = "CFG5 (shader address) never written";
        } else if (read_shader(rec, pages, d.shader_va, &s, &d.problem)) {
          // By content hash first: a recording may hold many thousand dispatches.
          const size_t h = std::hash<std::string_view>()(
              {reinterpret_cast<const char*>(s.words.data()), s.words.size() * 8});
          auto [first, last] = by_hash.equal_range(h);
          auto match = std::find_if(
              first, last, [&](const auto& e) { return ins->shaders[e.second].words == s.words; });
          if (match == last) {
            ins->shaders.push_back(std::move(s));
            match = by_hash.emplace(h, ins->shaders.size() - 1);
          }
          auto it = ins->shaders.begin() + std::ptrdiff_t(match->second);
          if (std::find(it->addresses.begin(), it->addresses.end(), d.shader_va) ==
              it->addresses.end())
            it->addresses.push_back(d.shader_va);
          d.shader = int(it - ins->shaders.begin());
          const size_t j = ins->jobs.size();
          if (it->jobs.empty() || it->jobs.back() != j) it->jobs.push_back(j);
        }
        job.dispatches.push_back(std::move(d));
        break;
      }
      case ActionOp::JobBoundary:
        ++st.jobs;
        job.last_action = i;
        job.seqno = a.value;
        ins->jobs.push_back(std::move(job));
        job = Job{};
        job.first_action = i + 1;
        break;
      default:
        break;
    }
  }
  if (job.first_action < rec.actions.size()) {  // a recording that stops inside a job
    job.last_action = rec.actions.size() - 1;
    ins->jobs.push_back(std::move(job));
  }
}

replay::DecodeError inspect_recording(std::span<const uint8_t> bytes,
                                      const keyring::TrustStore& trusted, Inspection* out) {
  *out = Inspection{};
  const std::vector<replay::PublicKey> keys = trusted.keys();
  const replay::DecodeError e = replay::decode_recording(bytes, keys, &out->rec);
  if (!e.ok()) return e;
  // The decoder accepted the layout, so the signature section and the table are where the
  // format puts them.
  replay::KeyId id{};
  std::memcpy(id.data(), bytes.data() + bytes.size() - replay::kSignatureSectionBytes, id.size());
  out->key_id = keyring::to_hex(id);
  if (const keyring::TrustedKey* k = trusted.find(id)) out->key_source = k->source;
  const size_t blobs_entry =
      replay::kHeaderBytes + (size_t(replay::SectionType::Blobs) - 1) * replay::kSectionEntryBytes;
  out->stats.blob_section_bytes = le64(bytes.data() + blobs_entry + 16);
  out->stats.file_bytes = bytes.size();
  analyze(out);
  return e;
}

std::string format_action(const Recording& rec, const Action& a, const hw::Sku* sku,
                          int64_t job_index) {
  std::string s;
  switch (a.op) {
    case ActionOp::Write:
      appendf(&s, "W %s %s = %s", block_name(a.block).c_str(),
              register_label(a.block, a.offset, sku).c_str(), hex32(a.value).c_str());
      break;
    case ActionOp::Read: {
      appendf(&s, "R %s %s", block_name(a.block).c_str(),
              register_label(a.block, a.offset, sku).c_str());
      if (a.mask != 0 && a.mask != ~0u) appendf(&s, " & %s", hex(a.mask).c_str());
      appendf(&s, " == %s (%s)", hex32(a.value).c_str(), a.mask ? "checked" : "ignored");
      break;
    }
    case ActionOp::Poll:
      appendf(&s, "P %s %s & %s == %s (<= %u us)", block_name(a.block).c_str(),
              register_label(a.block, a.offset, sku).c_str(), hex(a.mask).c_str(),
              hex(a.value).c_str(), a.timeout_us);
      break;
    case ActionOp::WaitIrq:
      appendf(&s, "IRQ line %u (<= %u us)", a.line, a.timeout_us);
      break;
    case ActionOp::LoadMemory: {
      appendf(&s, "LOAD %u pages", a.count);
      // Which buffers the job's memory image touches, in first-load order.
      std::vector<std::pair<uint32_t, uint32_t>> per_region;
      uint32_t zero = 0;
      for (uint64_t k = a.first; k < uint64_t(a.first) + a.count && k < rec.loads.size(); ++k) {
        const replay::PageLoad& l = rec.loads[k];
        if (l.blob == replay::kZeroBlob) ++zero;
        auto it = std::find_if(per_region.begin(), per_region.end(),
                               [&](const auto& p) { return p.first == l.region; });
        if (it == per_region.end())
          per_region.emplace_back(l.region, 1);
        else
          ++it->second;
      }
      constexpr size_t kShown = 6;
      for (size_t i = 0; i < per_region.size() && i < kShown; ++i)
        appendf(&s, "%s%s %u", i ? ", " : " (", region_label(rec, per_region[i].first).c_str(),
                per_region[i].second);
      if (per_region.size() > kShown) appendf(&s, ", +%zu regions", per_region.size() - kShown);
      if (zero) appendf(&s, "; %u zero-fill", zero);
      if (!per_region.empty()) s += ")";
      break;
    }
    case ActionOp::JobBoundary:
      if (job_index >= 0)
        appendf(&s, "--- end of job %lld (seqno %u)", (long long)job_index, a.value);
      else
        appendf(&s, "--- end of job, seqno %u", a.value);
      break;
  }
  return s;
}

namespace {

// Annotations of the CFG0 writes in the listing: "dispatch of job 2, shader S1".
std::map<size_t, std::string> dispatch_notes(const Inspection& ins) {
  std::map<size_t, std::string> notes;
  for (size_t j = 0; j < ins.jobs.size(); ++j)
    for (const Dispatch& d : ins.jobs[j].dispatches)
      notes[d.action] = "dispatch of job " + std::to_string(j) + ", " +
                        (d.shader >= 0 ? "shader " + shader_name(d.shader) : d.problem);
  return notes;
}

std::string workgroups_text(const std::array<uint32_t, 8>& cfg) {
  const uint32_t wg = cfg[3] & 0xff;
  char b[96];
  std::snprintf(b, sizeof b, "%ux%ux%u workgroups of %u", cfg[0] >> 16, cfg[1] >> 16, cfg[2] >> 16,
                wg ? wg : 256);
  return b;
}

std::string seqno_text(const Job& j) {
  return j.seqno >= 0 ? "seqno " + std::to_string(j.seqno) : "no end: the recording stops";
}

size_t actions_shown(const Inspection& ins, const InspectOptions& opts) {
  const size_t n = ins.rec.actions.size();
  return opts.max_actions < 0 ? n : std::min<size_t>(n, size_t(opts.max_actions));
}

}  // namespace

std::string render_text(const Inspection& ins, const InspectOptions& opts) {
  const Recording& rec = ins.rec;
  const InspectStats& st = ins.stats;
  std::string s;

  appendf(&s, "recording: format %u.%u, %llu bytes\n", rec.version_major, rec.version_minor,
          (unsigned long long)st.file_bytes);
  appendf(&s, "  sku        %s", rec.sku_name.empty() ? "(no name)" : rec.sku_name.c_str());
  if (ins.sku_identified) {
    appendf(&s, " (%s)", std::string(ins.sku->board).c_str());
    if (ins.sku->name != rec.sku_name)
      appendf(&s, "; the IDENT values say %s", std::string(ins.sku->name).c_str());
  } else if (ins.sku) {
    s += " (IDENT values match no known SKU; register names from the recorded name)";
  } else {
    s += " (unknown SKU: CSD registers print as offsets, no shader disassembly)";
  }
  s += "\n";
  appendf(&s, "  ident      HUB_IDENT1=%s HUB_IDENT3=%s CTL_IDENT0=%s CTL_IDENT1=%s\n",
          hex32(rec.sku.hub_ident1).c_str(), hex32(rec.sku.hub_ident3).c_str(),
          hex32(rec.sku.core_ident0).c_str(), hex32(rec.sku.core_ident1).c_str());
  appendf(&s, "  signed by  key %s%s%s\n", ins.key_id.empty() ? "?" : ins.key_id.c_str(),
          ins.key_source.empty() ? "" : " from ", ins.key_source.c_str());
  appendf(&s, "  weights    %s\n",
          rec.weights_omitted ? "omitted (the replayer supplies the Weights regions)" : "included");

  appendf(&s, "\nmetadata (%zu)\n", rec.metadata.size());
  size_t kw = 0;
  for (const auto& [k, v] : rec.metadata) kw = std::max(kw, k.size());
  for (const auto& [k, v] : rec.metadata)
    appendf(&s, "  %-*s  %s\n", int(kw), k.c_str(), v.c_str());

  appendf(&s, "\nregions (%zu)\n", rec.regions.size());
  appendf(&s, "  %5s  %-21s  %9s  %-8s  %-2s  %-11s  %s\n", "#", "gpu va", "size", "kind", "rw",
          "pages", "label");
  for (size_t r = 0; r < rec.regions.size(); ++r) {
    const replay::Region& reg = rec.regions[r];
    const RegionUse& u = ins.regions[r];
    char range[32], pg[32];
    std::snprintf(range, sizeof range, "0x%08x-0x%08x", reg.gpu_va,
                  uint32_t(uint64_t(reg.gpu_va) + reg.size - 1));
    std::snprintf(pg, sizeof pg, "%u/%u", u.pages_loaded, reg.size / kPage);
    appendf(&s, "  %5zu  %-21s  %9s  %-8s  %-2s  %-11s  %s\n", r, range,
            size_text(reg.size).c_str(), kind_name(reg.kind), reg.gpu_writable ? "rw" : "ro", pg,
            reg.label.c_str());
  }

  appendf(&s, "\nbindings (%zu)\n", rec.bindings.size());
  if (!rec.bindings.empty()) {
    int nw = 4;
    for (const replay::Binding& b : rec.bindings) nw = std::max(nw, int(b.name.size()));
    appendf(&s, "  %-*s  %-3s  %6s  %10s  %10s  %-16s  %-7s  %s\n", nw, "name", "dir", "region",
            "offset", "bytes", "shape", "dtype", "layout");
    for (const replay::Binding& b : rec.bindings)
      appendf(&s, "  %-*s  %-3s  %6u  %10u  %10u  %-16s  %-7s  %s\n", nw, b.name.c_str(),
              b.is_input ? "in" : "out", b.region, b.offset, b.bytes, shape_text(b.shape).c_str(),
              dtype_name(b.dtype), b.layout.c_str());
  }

  appendf(&s, "\nweight bindings (%zu)%s\n", rec.weight_bindings.size(),
          rec.weights_omitted ? ": weights omitted, supplied from the model file at replay" : "");
  if (!rec.weight_bindings.empty()) {
    appendf(&s, "  file %s, %llu bytes, digest %s\n", rec.weights_file.name.c_str(),
            (unsigned long long)rec.weights_file.size,
            keyring::to_hex(rec.weights_file.digest).c_str());
    appendf(&s, "  %6s  %10s  %10s  %-16s  %s\n", "region", "offset", "length", "digest", "label");
    for (const replay::WeightBinding& w : rec.weight_bindings)
      appendf(&s, "  %6u  %10llu  %10u  %-16s  %s\n", w.region, (unsigned long long)w.offset,
              w.length, keyring::to_hex(std::span(w.digest).first(8)).c_str(),
              w.region < rec.regions.size() ? rec.regions[w.region].label.c_str() : "?");
  }

  s += "\nstatistics\n";
  appendf(&s, "  jobs        %llu (%llu dispatches)\n", (unsigned long long)st.jobs,
          (unsigned long long)st.dispatches);
  appendf(&s, "  actions     %zu:", rec.actions.size());
  for (uint8_t op = 1; op <= replay::kMaxActionOp; ++op)
    appendf(&s, "%s %llu %s", op > 1 ? "," : "", (unsigned long long)st.by_op[op],
            op_name(ActionOp(op)));
  s += "\n";
  appendf(&s, "  reads       %llu checked, %llu ignored\n", (unsigned long long)st.reads_checked,
          (unsigned long long)st.reads_ignored);
  appendf(&s, "  polls       %llu\n", (unsigned long long)st.by_op[uint8_t(ActionOp::Poll)]);
  appendf(&s, "  irq waits   %llu\n", (unsigned long long)st.by_op[uint8_t(ActionOp::WaitIrq)]);
  appendf(&s, "  page loads  %llu (%llu zero-fill) from %llu unique blobs\n",
          (unsigned long long)st.page_loads, (unsigned long long)st.zero_page_loads,
          (unsigned long long)st.unique_blobs);
  appendf(&s, "  page data   %llu bytes decompressed, %llu stored (BLOBS); file %llu bytes\n",
          (unsigned long long)st.page_bytes, (unsigned long long)st.blob_section_bytes,
          (unsigned long long)st.file_bytes);

  appendf(&s, "\njobs (%zu) and shaders (%zu)\n", ins.jobs.size(), ins.shaders.size());
  std::vector<bool> printed(ins.shaders.size(), false);
  for (size_t j = 0; j < ins.jobs.size(); ++j) {
    const Job& job = ins.jobs[j];
    appendf(&s, "  job %zu (%s), actions %zu..%zu\n", j, seqno_text(job).c_str(), job.first_action,
            job.last_action);
    for (const Dispatch& d : job.dispatches) {
      appendf(&s, "    dispatch [%zu]: %s, uniforms %s, ", d.action, workgroups_text(d.cfg).c_str(),
              hex32(d.cfg[6] & ~3u).c_str());
      if (d.shader < 0) {
        appendf(&s, "shader %s: %s\n", hex32(d.shader_va).c_str(), d.problem.c_str());
        continue;
      }
      const Shader& sh = ins.shaders[size_t(d.shader)];
      appendf(&s, "shader %s @ %s", shader_name(d.shader).c_str(), hex32(d.shader_va).c_str());
      if (printed[size_t(d.shader)]) {
        appendf(&s, " (listed under job %zu)\n", sh.jobs.front());
        continue;
      }
      printed[size_t(d.shader)] = true;
      appendf(&s, "\n    %s: region %u (%s), %zu instructions, %s\n", shader_name(d.shader).c_str(),
              sh.region, region_label(rec, sh.region).c_str(), sh.words.size(),
              sh.ended                                    ? "ends at `end`"
              : sh.words.size() >= kMaxShaderInstructions ? "cut at the instruction limit"
                                                          : "runs to the end of the loaded code");
      const std::string dis = disassemble_shader(sh);
      size_t pos = 0;
      while (pos < dis.size()) {
        const size_t nl = dis.find('\n', pos);
        const size_t end = nl == std::string::npos ? dis.size() : nl;
        appendf(&s, "      %.*s\n", int(end - pos), dis.c_str() + pos);
        pos = end + 1;
      }
    }
  }

  const size_t shown = actions_shown(ins, opts);
  if (shown == rec.actions.size())
    appendf(&s, "\nactions (%zu)\n", rec.actions.size());
  else
    appendf(&s, "\nactions (%zu, first %zu listed)\n", rec.actions.size(), shown);
  const std::map<size_t, std::string> notes = dispatch_notes(ins);
  size_t job = 0;
  for (size_t i = 0; i < shown; ++i) {
    while (job < ins.jobs.size() && ins.jobs[job].last_action < i) ++job;
    const std::string line = format_action(rec, rec.actions[i], ins.sku, int64_t(job));
    auto it = notes.find(i);
    if (it == notes.end())
      appendf(&s, "  [%6zu] %s\n", i, line.c_str());
    else
      appendf(&s, "  [%6zu] %-48s ; %s\n", i, line.c_str(), it->second.c_str());
  }
  if (shown < rec.actions.size())
    appendf(&s, "  ... %zu more (--actions N lists more)\n", rec.actions.size() - shown);
  return s;
}

nlohmann::ordered_json render_json(const Inspection& ins, const InspectOptions& opts) {
  using json = nlohmann::ordered_json;
  const Recording& rec = ins.rec;
  const InspectStats& st = ins.stats;
  json j;
  j["header"] = {
      {"format_version",
       std::to_string(rec.version_major) + "." + std::to_string(rec.version_minor)},
      {"sku",
       {{"name", rec.sku_name},
        {"identified", ins.sku_identified},
        {"known_as", ins.sku ? json(std::string(ins.sku->name)) : json(nullptr)},
        {"board", ins.sku ? json(std::string(ins.sku->board)) : json(nullptr)},
        {"ident",
         {{"HUB_IDENT1", hex32(rec.sku.hub_ident1)},
          {"HUB_IDENT3", hex32(rec.sku.hub_ident3)},
          {"CTL_IDENT0", hex32(rec.sku.core_ident0)},
          {"CTL_IDENT1", hex32(rec.sku.core_ident1)}}}}},
      {"key_id", ins.key_id},
      {"key_source", ins.key_source},
      {"weights_omitted", rec.weights_omitted},
      {"file_bytes", st.file_bytes},
  };
  // An array, not an object: the recording's order is part of it.
  j["metadata"] = json::array();
  for (const auto& [k, v] : rec.metadata) j["metadata"].push_back({{"key", k}, {"value", v}});

  j["regions"] = json::array();
  for (size_t r = 0; r < rec.regions.size(); ++r) {
    const replay::Region& reg = rec.regions[r];
    const RegionUse& u = ins.regions[r];
    j["regions"].push_back({{"index", r},
                            {"gpu_va", reg.gpu_va},
                            {"size", reg.size},
                            {"kind", kind_name(reg.kind)},
                            {"writable", reg.gpu_writable},
                            {"label", reg.label},
                            {"pages", reg.size / kPage},
                            {"pages_loaded", u.pages_loaded},
                            {"loads", u.loads},
                            {"zero_loads", u.zero_loads}});
  }

  j["bindings"] = json::array();
  for (const replay::Binding& b : rec.bindings)
    j["bindings"].push_back({{"name", b.name},
                             {"direction", b.is_input ? "in" : "out"},
                             {"region", b.region},
                             {"offset", b.offset},
                             {"bytes", b.bytes},
                             {"shape", b.shape},
                             {"dtype", dtype_name(b.dtype)},
                             {"layout", b.layout}});

  j["weights"] = {{"omitted", rec.weights_omitted},
                  {"file", rec.weights_file.name},
                  {"size", rec.weights_file.size},
                  {"digest", keyring::to_hex(rec.weights_file.digest)},
                  {"bindings", json::array()}};
  for (const replay::WeightBinding& w : rec.weight_bindings)
    j["weights"]["bindings"].push_back({{"region", w.region},
                                        {"offset", w.offset},
                                        {"length", w.length},
                                        {"digest", keyring::to_hex(w.digest)}});

  json by_op = json::object();
  for (uint8_t op = 1; op <= replay::kMaxActionOp; ++op)
    by_op[op_name(ActionOp(op))] = st.by_op[op];
  j["stats"] = {{"jobs", st.jobs},
                {"dispatches", st.dispatches},
                {"actions", rec.actions.size()},
                {"actions_by_op", by_op},
                {"reads_checked", st.reads_checked},
                {"reads_ignored", st.reads_ignored},
                {"polls", st.by_op[uint8_t(ActionOp::Poll)]},
                {"irq_waits", st.by_op[uint8_t(ActionOp::WaitIrq)]},
                {"page_loads", st.page_loads},
                {"zero_page_loads", st.zero_page_loads},
                {"unique_blobs", st.unique_blobs},
                {"page_bytes", st.page_bytes},
                {"blob_section_bytes", st.blob_section_bytes},
                {"file_bytes", st.file_bytes}};

  const uint32_t ncfg = ins.sku ? uint32_t(std::min(ins.sku->csd_num_cfg, 8)) : 8;
  j["jobs"] = json::array();
  for (size_t n = 0; n < ins.jobs.size(); ++n) {
    const Job& job = ins.jobs[n];
    json ds = json::array();
    for (const Dispatch& d : job.dispatches) {
      json jd = {{"action", d.action},
                 {"cfg", std::vector<uint32_t>(d.cfg.begin(), d.cfg.begin() + ncfg)},
                 {"workgroups", {d.cfg[0] >> 16, d.cfg[1] >> 16, d.cfg[2] >> 16}},
                 {"shader_va", d.shader_va},
                 {"uniforms_va", d.cfg[6] & ~3u}};
      if (d.shader >= 0)
        jd["shader"] = shader_name(d.shader);
      else
        jd["shader"] = nullptr, jd["problem"] = d.problem;
      ds.push_back(std::move(jd));
    }
    j["jobs"].push_back({{"index", n},
                         {"seqno", job.seqno >= 0 ? json(job.seqno) : json(nullptr)},
                         {"first_action", job.first_action},
                         {"last_action", job.last_action},
                         {"dispatches", std::move(ds)}});
  }

  j["shaders"] = json::array();
  for (size_t n = 0; n < ins.shaders.size(); ++n) {
    const Shader& sh = ins.shaders[n];
    json lines = json::array();
    const std::string dis = disassemble_shader(sh);
    size_t pos = 0;
    while (pos < dis.size()) {
      const size_t nl = dis.find('\n', pos);
      const size_t end = nl == std::string::npos ? dis.size() : nl;
      lines.push_back(dis.substr(pos, end - pos));
      pos = end + 1;
    }
    j["shaders"].push_back({{"id", shader_name(int(n))},
                            {"gpu_va", sh.gpu_va},
                            {"region", sh.region},
                            {"addresses", sh.addresses},
                            {"instructions", sh.words.size()},
                            {"ended", sh.ended},
                            {"jobs", sh.jobs},
                            {"disassembly", std::move(lines)}});
  }

  const size_t shown = actions_shown(ins, opts);
  const std::map<size_t, std::string> notes = dispatch_notes(ins);
  j["actions_total"] = rec.actions.size();
  j["actions"] = json::array();
  size_t job = 0;
  for (size_t i = 0; i < shown; ++i) {
    while (job < ins.jobs.size() && ins.jobs[job].last_action < i) ++job;
    const Action& a = rec.actions[i];
    json ja = {{"index", i},
               {"op", op_name(a.op)},
               {"text", format_action(rec, a, ins.sku, int64_t(job))}};
    switch (a.op) {
      case ActionOp::Write:
      case ActionOp::Read:
      case ActionOp::Poll:
        ja["block"] = block_name(a.block);
        ja["offset"] = a.offset;
        if (auto name = register_name(a.block, a.offset, ins.sku))
          ja["reg"] = *name;
        else
          ja["reg"] = nullptr;
        ja["value"] = a.value;
        if (a.op != ActionOp::Write) ja["mask"] = a.mask;
        if (a.op == ActionOp::Read) ja["checked"] = a.mask != 0;
        if (a.op == ActionOp::Poll) ja["timeout_us"] = a.timeout_us;
        break;
      case ActionOp::WaitIrq:
        ja["line"] = a.line;
        ja["timeout_us"] = a.timeout_us;
        break;
      case ActionOp::LoadMemory:
        ja["first"] = a.first;
        ja["count"] = a.count;
        break;
      case ActionOp::JobBoundary:
        ja["job"] = job;
        ja["seqno"] = a.value;
        break;
    }
    if (auto it = notes.find(i); it != notes.end()) ja["note"] = it->second;
    j["actions"].push_back(std::move(ja));
  }
  return j;
}

InspectOutput run_inspect(std::span<const uint8_t> bytes, const keyring::TrustStore& trusted,
                          const InspectOptions& opts, bool want_trace) {
  InspectOutput o;
  Inspection ins;
  const replay::DecodeError e = inspect_recording(bytes, trusted, &ins);
  if (!e.ok()) {
    char buf[256];
    o.error = e.format(buf, sizeof buf);
    o.exit_code = 1;
    return o;
  }
  o.out = opts.json ? render_json(ins, opts).dump(2) + "\n" : render_text(ins, opts);
  if (want_trace) o.trace = chrome_trace(ins, opts.trace_title);
  return o;
}

bool resolve_trust_store(const std::vector<std::string>& key_files, const std::string& trust,
                         keyring::TrustStore* out, std::string* error) {
  *out = keyring::TrustStore{};
  try {
    for (const std::string& f : key_files) out->add(keyring::load_public_key(f), f);
    if (!trust.empty()) {
      if (!fs::exists(trust))
        return *error = "--trust " + trust + ": no such file or directory", false;
      const keyring::TrustStore loaded = keyring::TrustStore::load(trust);
      for (const keyring::TrustedKey& k : loaded.entries()) out->add(k.key, k.source);
      if (out->entries().empty())
        return *error = "--trust " + trust + ": no public key in it (*.pub files or key lines)",
               false;
    }
    if (!key_files.empty() || !trust.empty()) return true;

    // No key given: the default store, as every command finds it (keys/key_paths.h).
    const fs::path store = keyring::trust_store_path();
    std::string looked = "--key: none given; --trust: none given; " + keyring::trust_store_origin();
    std::error_code ec;
    const fs::path abs = fs::absolute(store, ec);
    if (!ec && abs != store) looked += " (" + abs.string() + ")";
    if (!fs::exists(store)) {
      *error = "no trusted public key to check the signature with. Looked at: " + looked +
               ": does not exist. Pass --key PUB or --trust DIR (rplayer keygen makes keys/).";
      return false;
    }
    *out = keyring::TrustStore::load(store);
    if (out->entries().empty()) {
      *error = "no trusted public key to check the signature with. Looked at: " + looked +
               ": no public key in it. Pass --key PUB or --trust DIR.";
      return false;
    }
    return true;
  } catch (const std::exception& e) {
    *error = e.what();
    return false;
  }
}

}  // namespace rplayer::tools
