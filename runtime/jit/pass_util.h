// What several JIT passes share (private to the pass_*.cpp files and passes.cpp): the
// structure of the control flow, the reads and writes of every vreg, and small helpers.
#pragma once

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "runtime/jit/ir.h"

namespace rplayer::runtime::jit {

// Matching markers of the structured control flow; indices into the instruction list.
struct Structure {
  std::vector<int> end;    // IfBegin -> IfEnd, ForBegin -> ForEnd, WhileBegin -> WhileEnd
  std::vector<int> mid;    // IfBegin -> Else (or -1), WhileBegin -> WhileTest
  std::vector<int> begin;  // ForEnd -> ForBegin
  std::vector<std::pair<int, int>> loops;  // [begin, end] of every for and while
};

Structure analyze(const std::vector<Inst>& insts);

inline bool is_int_type(Type t) { return t == Type::I32 || t == Type::U32; }

inline int64_t trip_count(Type t, uint32_t a, uint32_t b, uint32_t step) {
  if (t == Type::U32) {
    if (step == 0 || a >= b) return 0;
    return int64_t((uint64_t(b) - a + step - 1) / step);
  }
  const int64_t sa = int32_t(a), sb = int32_t(b), ss = int32_t(step);
  if (ss > 0) return sa < sb ? (sb - sa + ss - 1) / ss : 0;
  if (ss < 0) return sa > sb ? (sa - sb - ss - 1) / -ss : 0;
  return 0;
}

inline void nop_range(std::vector<Inst>& insts, int from, int to) {
  for (int i = from; i <= to; ++i) insts[i].kind = InstKind::Nop;
}

inline void compact(Kernel& k) {
  std::erase_if(k.insts, [](const Inst& in) { return in.kind == InstKind::Nop; });
}

// Whether the instruction marks structured control flow (if, loops), which straight-line
// code ends at.
inline bool is_marker(InstKind k) {
  return k != InstKind::Alu && k != InstKind::Load && k != InstKind::Store && k != InstKind::Sreg &&
         k != InstKind::Param && k != InstKind::Nop;
}

// Reads and writes of every vreg, by instruction index. A for loop's bounds are read
// again at its end (the exit test), and its induction variable is written there.
struct Refs {
  std::vector<std::vector<int>> uses;
  std::vector<std::vector<std::pair<int, uint8_t>>> defs;
  Structure st;

  explicit Refs(const Kernel& k)
      : uses(k.vregs.size()), defs(k.vregs.size()), st(analyze(k.insts)) {
    for (int i = 0; i < int(k.insts.size()); ++i) {
      const Inst& in = k.insts[i];
      if (in.kind == InstKind::Nop) continue;
      for (const Operand* o : {&in.a, &in.b, &in.c})
        if (o->is_reg()) uses[o->v].push_back(i);
      if (in.dst != kNoVReg) defs[in.dst].push_back({i, in.dst_comp});
      if (in.kind == InstKind::ForEnd) {
        const Inst& b = k.insts[st.begin[i]];
        for (const Operand* o : {&b.b, &b.c})
          if (o->is_reg()) uses[o->v].push_back(i);
        uses[b.dst].push_back(i);
        defs[b.dst].push_back({i, 0});
      }
    }
  }

  static bool overlap(uint8_t c1, uint8_t c2) { return c1 == kWhole || c2 == kWhole || c1 == c2; }

  // Whether `var` (component comp) holds at every position in `at` the value it had at
  // position p: no write in between, and none in a loop entered after p that contains a
  // reader (its next iteration would see the write).
  bool stable(uint32_t var, uint8_t comp, int p, const std::vector<int>& at) const {
    if (at.empty()) return true;
    const int last = *std::max_element(at.begin(), at.end());
    for (const auto& [pos, c] : defs[var])
      if (overlap(c, comp) && pos > p && pos < last) return false;
    for (const auto& [s, e] : st.loops) {
      if (s <= p) continue;
      bool reads_inside = false;
      for (int u : at) reads_inside = reads_inside || (u >= s && u <= e);
      if (!reads_inside) continue;
      for (const auto& [pos, c] : defs[var])
        if (overlap(c, comp) && pos >= s && pos <= e) return false;
    }
    return true;
  }
};

}  // namespace rplayer::runtime::jit
