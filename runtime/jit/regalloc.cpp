#include "runtime/jit/regalloc.h"

#include <algorithm>

#include "runtime/error.h"

namespace rplayer::runtime::jit {

namespace {

struct Interval {
  int start = -1, end = -1;
};

std::vector<Interval> live_intervals(const MFunction& f) {
  std::vector<Interval> iv(f.widths.size());
  std::vector<std::pair<int, int>> loops;
  std::vector<int> open;
  for (int p = 0; p < int(f.code.size()); ++p) {
    const MInst& m = f.code[p];
    if (m.kind == MKind::LoopBegin) open.push_back(p);
    if (m.kind == MKind::LoopEnd) {
      loops.push_back({open.back(), p});
      open.pop_back();
    }
    if (m.kind != MKind::Op) continue;
    for (const MReg* r : {&m.rd, &m.ra, &m.rb, &m.rc}) {
      if (!r->valid()) continue;
      Interval& i = iv[r->vreg];
      if (i.start < 0) i.start = p;
      i.end = p;
    }
  }
  // Stretch over loops until stable: stretching over an inner loop can make a range
  // cross an outer loop's boundary.
  for (bool changed = true; changed;) {
    changed = false;
    for (Interval& i : iv) {
      if (i.start < 0) continue;
      for (const auto& [s, e] : loops) {
        const bool overlaps = i.start <= e && i.end >= s;
        if (overlaps && (i.start < s || i.end > e) && (i.start > s || i.end < e)) {
          i.start = std::min(i.start, s);
          i.end = std::max(i.end, e);
          changed = true;
        }
      }
    }
  }
  return iv;
}

}  // namespace

RegAllocation allocate_registers(const MFunction& f, int budget, const std::string& kernel) {
  const std::vector<Interval> iv = live_intervals(f);
  RegAllocation out;
  out.phys.assign(iv.size(), -1);

  // Pressure: a value occupies its registers from its first reference up to (not
  // including) its last, where the next value may take them over.
  std::vector<int> delta(f.code.size() + 1, 0);
  for (size_t v = 0; v < iv.size(); ++v) {
    if (iv[v].start < 0) continue;
    delta[iv[v].start] += f.widths[v];
    delta[std::max(iv[v].end, iv[v].start + 1)] -= f.widths[v];
  }
  for (int p = 0, live = 0; p < int(f.code.size()); ++p) {
    live += delta[p];
    out.max_pressure = std::max(out.max_pressure, live);
  }

  std::vector<uint32_t> order;
  for (uint32_t v = 0; v < iv.size(); ++v)
    if (iv[v].start >= 0) order.push_back(v);
  std::stable_sort(order.begin(), order.end(),
                   [&](uint32_t a, uint32_t b) { return iv[a].start < iv[b].start; });

  std::vector<int> owner(size_t(std::max(budget, 0)), -1);
  std::vector<uint32_t> active;
  std::vector<bool> ever(owner.size(), false);
  for (uint32_t v : order) {
    const Interval& cur = iv[v];
    // Ranges ending where this one starts give their registers up: the instruction
    // reads its operands before it writes its result.
    std::erase_if(active, [&](uint32_t a) {
      if (iv[a].end > cur.start) return false;
      for (int k = 0; k < f.widths[a]; ++k) owner[size_t(out.phys[a] + k)] = -1;
      return true;
    });
    int reg = -1;
    if (f.widths[v] == 4) {
      for (int r = 0; r + 3 < budget && reg < 0; r += 4)
        if (owner[r] < 0 && owner[r + 1] < 0 && owner[r + 2] < 0 && owner[r + 3] < 0) reg = r;
    } else {
      for (int r = budget - 1; r >= 0 && reg < 0; --r)
        if (owner[r] < 0) reg = r;
    }
    if (reg < 0) {
      int live = f.widths[v];
      for (uint32_t a : active) live += f.widths[a];
      throw Error("kernel '" + kernel + "': out of registers at machine instruction " +
                  std::to_string(cur.start) + " (" + minst_str(f.code[size_t(cur.start)]) +
                  "): " + std::to_string(live) + " registers live, budget " +
                  std::to_string(budget) + ", peak pressure " + std::to_string(out.max_pressure) +
                  (live <= budget ? " (4-wide groups fragmented)" : "") +
                  "; there is no spilling: reduce unrolling or register blocking");
    }
    out.phys[v] = reg;
    for (int k = 0; k < f.widths[v]; ++k) {
      owner[size_t(reg + k)] = int(v);
      ever[size_t(reg + k)] = true;
    }
    active.push_back(v);
  }
  out.registers_used = int(std::count(ever.begin(), ever.end(), true));
  return out;
}

}  // namespace rplayer::runtime::jit
