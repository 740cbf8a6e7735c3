#include "tools/recording_diff.h"

#include <cstdio>
#include <cstring>
#include <map>
#include <tuple>

#include "keyring/keys.h"
#include "replay/verifier.h"

namespace rplayer::tools {

namespace {

using replay::Action;
using replay::ActionOp;

std::string hex(uint32_t v) {
  char b[16];
  std::snprintf(b, sizeof b, "0x%08x", v);
  return b;
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

std::string action_text(const Action& a) {
  const char* block = a.block == replay::Block::Hub ? "hub" : "core0";
  switch (a.op) {
    case ActionOp::Write:
      return std::string("write ") + block + " " + hex(a.offset) + " = " + hex(a.value);
    case ActionOp::Read:
      return std::string("read ") + block + " " + hex(a.offset) + " & " + hex(a.mask) +
             " == " + hex(a.value);
    case ActionOp::Poll:
      return std::string("poll ") + block + " " + hex(a.offset) + " & " + hex(a.mask) +
             " == " + hex(a.value) + " within " + std::to_string(a.timeout_us) + " us";
    case ActionOp::WaitIrq:
      return "wait_irq line " + std::to_string(a.line) + " within " + std::to_string(a.timeout_us) +
             " us";
    case ActionOp::LoadMemory:
      return "load_memory " + std::to_string(a.count) + " pages";
    case ActionOp::JobBoundary:
      return "job_boundary " + std::to_string(a.value);
  }
  return op_name(a.op);
}

std::string region_text(const replay::Region& r) {
  char b[96];
  std::snprintf(b, sizeof b, "0x%08x +%u kind %u %s '", r.gpu_va, r.size, unsigned(r.kind),
                r.gpu_writable ? "rw" : "ro");
  return b + r.label + "'";
}

class Section {
 public:
  Section(const char* name, const DiffOptions& o) : o_(o) { s_.name = name; }
  void add(const std::string& where, const std::string& a, const std::string& b) {
    if (s_.count++ < o_.max_listed) s_.what.push_back(where + ": " + a + " vs " + b);
  }
  DiffSection take() { return std::move(s_); }

 private:
  const DiffOptions& o_;
  DiffSection s_;
};

template <typename T, typename Same, typename Text>
void diff_lists(Section& s, const char* what, const std::vector<T>& a, const std::vector<T>& b,
                Same same, Text text) {
  const size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i)
    if (!same(a[i], b[i]))
      s.add(std::string(what) + "[" + std::to_string(i) + "]", text(a[i]), text(b[i]));
  if (a.size() != b.size())
    s.add(std::string(what) + " count", std::to_string(a.size()), std::to_string(b.size()));
}

// The page images the stream loads, keyed by (n-th memory load, region, page): nullptr for
// a zero page.
using PageKey = std::tuple<uint32_t, uint32_t, uint32_t>;
std::map<PageKey, const std::vector<uint8_t>*> page_images(const replay::Recording& r) {
  std::map<PageKey, const std::vector<uint8_t>*> m;
  uint32_t nth = 0;
  for (const Action& a : r.actions) {
    if (a.op != ActionOp::LoadMemory) continue;
    for (uint32_t k = a.first; k < a.first + a.count && k < r.loads.size(); ++k) {
      const replay::PageLoad& l = r.loads[k];
      m[{nth, l.region, l.page}] =
          l.blob == replay::kZeroBlob || l.blob >= r.blobs.size() ? nullptr : &r.blobs[l.blob].data;
    }
    ++nth;
  }
  return m;
}

}  // namespace

bool RecordingDiff::identical() const {
  for (const DiffSection& s : sections)
    if (s.count) return false;
  return true;
}

std::string RecordingDiff::text() const {
  std::string out;
  for (const DiffSection& s : sections) {
    if (!s.count) continue;
    out +=
        s.name + ": " + std::to_string(s.count) + " difference" + (s.count == 1 ? "" : "s") + "\n";
    for (const std::string& w : s.what) out += "  " + w + "\n";
    if (s.count > s.what.size())
      out += "  ... and " + std::to_string(s.count - s.what.size()) + " more\n";
  }
  return out.empty() ? "identical\n" : out;
}

nlohmann::json RecordingDiff::json() const {
  nlohmann::json j = {{"identical", identical()}, {"sections", nlohmann::json::object()}};
  for (const DiffSection& s : sections)
    j["sections"][s.name] = {{"count", s.count}, {"listed", s.what}};
  return j;
}

RecordingDiff diff_recordings(const replay::Recording& a, const replay::Recording& b,
                              const DiffOptions& o) {
  RecordingDiff d;

  Section header("header", o);
  if (a.version_major != b.version_major || a.version_minor != b.version_minor)
    header.add("version", std::to_string(a.version_major) + "." + std::to_string(a.version_minor),
               std::to_string(b.version_major) + "." + std::to_string(b.version_minor));
  if (a.sku_name != b.sku_name) header.add("sku", a.sku_name, b.sku_name);
  if (!(a.sku == b.sku)) header.add("sku identity", hex(a.sku.core_ident1), hex(b.sku.core_ident1));
  if (a.weights_omitted != b.weights_omitted)
    header.add("weights_omitted", a.weights_omitted ? "yes" : "no",
               b.weights_omitted ? "yes" : "no");
  d.sections.push_back(header.take());

  Section meta("metadata", o);
  if (!o.ignore_metadata) {
    std::map<std::string, std::string> ma(a.metadata.begin(), a.metadata.end()),
        mb(b.metadata.begin(), b.metadata.end());
    for (const auto* m : {&ma, &mb})
      for (const auto& [k, v] : *m) {
        if (o.ignore_wait_bounds && k == replay::kBudgetKey) continue;  // follows timing too
        const auto ia = ma.find(k), ib = mb.find(k);
        const std::string va = ia == ma.end() ? "(none)" : ia->second;
        const std::string vb = ib == mb.end() ? "(none)" : ib->second;
        if (va != vb && (m == &ma || ia == ma.end())) meta.add(k, va, vb);
      }
  }
  d.sections.push_back(meta.take());

  Section regions("regions", o);
  diff_lists(
      regions, "region", a.regions, b.regions, [](const auto& x, const auto& y) { return x == y; },
      region_text);
  d.sections.push_back(regions.take());

  Section bindings("bindings", o);
  diff_lists(
      bindings, "binding", a.bindings, b.bindings,
      [](const auto& x, const auto& y) { return x == y; },
      [](const replay::Binding& x) {
        return x.name + (x.is_input ? " in" : " out") + " region " + std::to_string(x.region) +
               " +" + std::to_string(x.offset) + " " + std::to_string(x.bytes) + " bytes";
      });
  d.sections.push_back(bindings.take());

  Section weights("weights", o);
  if (a.weights_file.name != b.weights_file.name)
    weights.add("file", a.weights_file.name, b.weights_file.name);
  if (a.weights_file.size != b.weights_file.size || a.weights_file.digest != b.weights_file.digest)
    weights.add("file digest", keyring::to_hex(a.weights_file.digest).substr(0, 16),
                keyring::to_hex(b.weights_file.digest).substr(0, 16));
  diff_lists(
      weights, "weight binding", a.weight_bindings, b.weight_bindings,
      [](const auto& x, const auto& y) { return x == y; },
      [](const replay::WeightBinding& w) {
        return "region " + std::to_string(w.region) + " file +" + std::to_string(w.offset) + " " +
               std::to_string(w.length) + " bytes " + keyring::to_hex(w.digest).substr(0, 16);
      });
  d.sections.push_back(weights.take());

  Section actions("actions", o);
  auto norm = [&](Action x) {
    if (o.ignore_wait_bounds && (x.op == ActionOp::Poll || x.op == ActionOp::WaitIrq))
      x.timeout_us = 0;
    x.first = 0;  // load ranges are compared as memory images below
    return x;
  };
  diff_lists(
      actions, "action", a.actions, b.actions,
      [&](const Action& x, const Action& y) { return norm(x) == norm(y); }, action_text);
  d.sections.push_back(actions.take());

  Section memory("memory", o);
  const auto pa = page_images(a), pb = page_images(b);
  auto where = [&](const PageKey& k) {
    const auto& [nth, region, page] = k;
    const std::string label = region < a.regions.size() ? " '" + a.regions[region].label + "'" : "";
    return "load " + std::to_string(nth) + " region " + std::to_string(region) + label + " page " +
           std::to_string(page);
  };
  auto what = [](const std::vector<uint8_t>* d) {
    return d ? std::string("image") : std::string("zero");
  };
  for (const auto& [k, da] : pa) {
    const auto it = pb.find(k);
    if (it == pb.end())
      memory.add(where(k), what(da), "(not loaded)");
    else if ((da == nullptr) != (it->second == nullptr) || (da && *da != *it->second))
      memory.add(where(k), what(da), it->second ? "another image" : "zero");
  }
  for (const auto& [k, db] : pb)
    if (!pa.count(k)) memory.add(where(k), "(not loaded)", what(db));
  d.sections.push_back(memory.take());
  return d;
}

}  // namespace rplayer::tools
