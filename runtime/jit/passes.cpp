// ffma folds with two roundings, like the QPU; never contract a*b+c on the host.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "runtime/jit/passes.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <map>
#include <tuple>
#include <utility>

namespace rplayer::runtime::jit {

using isa::Op;
using Kind = Operand::Kind;

namespace {

// Matching markers of the structured control flow; indices into the instruction list.
struct Structure {
  std::vector<int> end;    // IfBegin -> IfEnd, ForBegin -> ForEnd, WhileBegin -> WhileEnd
  std::vector<int> mid;    // IfBegin -> Else (or -1), WhileBegin -> WhileTest
  std::vector<int> begin;  // ForEnd -> ForBegin
  std::vector<std::pair<int, int>> loops;  // [begin, end] of every for and while
};

Structure analyze(const std::vector<Inst>& insts) {
  Structure s;
  s.end.assign(insts.size(), -1);
  s.mid.assign(insts.size(), -1);
  s.begin.assign(insts.size(), -1);
  std::vector<int> stack;
  for (int i = 0; i < int(insts.size()); ++i) {
    switch (insts[i].kind) {
      case InstKind::IfBegin:
      case InstKind::ForBegin:
      case InstKind::WhileBegin:
        stack.push_back(i);
        break;
      case InstKind::Else:
      case InstKind::WhileTest:
        s.mid[stack.back()] = i;
        break;
      case InstKind::IfEnd:
      case InstKind::ForEnd:
      case InstKind::WhileEnd: {
        const int b = stack.back();
        stack.pop_back();
        s.end[b] = i;
        s.begin[i] = b;
        if (insts[i].kind != InstKind::IfEnd) s.loops.push_back({b, i});
        break;
      }
      default:
        break;
    }
  }
  return s;
}

bool is_int_type(Type t) { return t == Type::I32 || t == Type::U32; }

int64_t trip_count(Type t, uint32_t a, uint32_t b, uint32_t step) {
  if (t == Type::U32) {
    if (step == 0 || a >= b) return 0;
    return int64_t((uint64_t(b) - a + step - 1) / step);
  }
  const int64_t sa = int32_t(a), sb = int32_t(b), ss = int32_t(step);
  if (ss > 0) return sa < sb ? (sb - sa + ss - 1) / ss : 0;
  if (ss < 0) return sa > sb ? (sa - sb - ss - 1) / -ss : 0;
  return 0;
}

void nop_range(std::vector<Inst>& insts, int from, int to) {
  for (int i = from; i <= to; ++i) insts[i].kind = InstKind::Nop;
}

void compact(Kernel& k) {
  std::erase_if(k.insts, [](const Inst& in) { return in.kind == InstKind::Nop; });
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

// ---- Constant folding ------------------------------------------------------------------

class Folder {
 public:
  explicit Folder(Kernel& k)
      : k_(k), st_(analyze(k.insts)), repl_(k.vregs.size()), def_(k.vregs.size(), -1) {}

  bool run() {
    for (int i = 0; i < int(k_.insts.size()); ++i) {
      Inst& in = k_.insts[i];
      if (in.kind == InstKind::Nop) continue;
      subst(in.a);
      subst(in.b);
      subst(in.c);
      switch (in.kind) {
        case InstKind::Alu:
          alu(in);
          break;
        case InstKind::IfBegin:
          if_begin(i);
          break;
        case InstKind::ForBegin:
          for_begin(i);
          break;
        default:
          break;
      }
      if (in.kind != InstKind::Nop && in.dst != kNoVReg && !is_var(in.dst)) def_[in.dst] = i;
    }
    return changed_;
  }

 private:
  bool is_var(uint32_t v) const { return k_.vregs[v].is_var; }
  bool is_temp_or_imm(const Operand& o) const { return o.is_imm() || (o.is_reg() && !is_var(o.v)); }

  void subst(Operand& o) {
    if (!o.is_reg() || repl_[o.v].none()) return;
    const Operand& r = repl_[o.v];
    if (k_.vregs[o.v].width == 4 && o.comp != kWhole) {
      o = Operand::reg(r.v, o.comp);
    } else {
      o = r;
    }
    changed_ = true;
  }

  // dst takes the value of x: forward it if x cannot change, else copy.
  void alias(Inst& in, const Operand& x) {
    changed_ = true;
    if (is_temp_or_imm(x)) {
      repl_[in.dst] = x;
      in.kind = InstKind::Nop;
      return;
    }
    in.op = Op::Mov;
    in.a = x;
    in.b = in.c = Operand{};
  }

  void alu(Inst& in) {
    const bool temp = !is_var(in.dst) && k_.vregs[in.dst].width == 1;
    if (in.op == Op::Mov) {
      if (temp && is_temp_or_imm(in.a) && (in.a.is_imm() || in.a.comp != kWhole)) alias(in, in.a);
      if (!is_var(in.dst) && k_.vregs[in.dst].width == 4 && in.a.is_reg() && !is_var(in.a.v) &&
          in.a.comp == kWhole) {
        repl_[in.dst] = in.a;  // copy of a whole 4-wide temporary
        in.kind = InstKind::Nop;
        changed_ = true;
      }
      return;
    }
    if (in.op == Op::Sub && is_int_type(in.type) && in.b.is_imm() && in.a.is_reg()) {
      in.op = Op::Add;  // canonical form for the add chains below
      in.b.v = 0u - in.b.v;
      changed_ = true;
    }
    if (first_operands_commute(in.op) && in.a.is_imm() && in.b.is_reg()) {
      std::swap(in.a, in.b);
      changed_ = true;
    }
    const bool all_imm = (in.a.none() || in.a.is_imm()) && (in.b.none() || in.b.is_imm()) &&
                         (in.c.none() || in.c.is_imm());
    uint32_t r;
    if (all_imm && fold_constant(in.op, in.a.v, in.b.v, in.c.v, &r)) {
      if (temp) {
        repl_[in.dst] = Operand::imm(r);
        in.kind = InstKind::Nop;
      } else {
        in.op = Op::Mov;
        in.a = Operand::imm(r);
        in.b = in.c = Operand{};
      }
      changed_ = true;
      return;
    }
    if (!temp) return;
    if (in.op == Op::Sel && in.c.is_imm()) return alias(in, in.c.v ? in.a : in.b);
    if (!in.b.is_imm()) return;
    const uint32_t c = in.b.v;
    switch (in.op) {
      case Op::Add:
      case Op::Sub:
      case Op::Or:
      case Op::Xor:
        if (c == 0) return alias(in, in.a);
        break;
      case Op::Shl:
      case Op::Shr:
      case Op::Asr:
        if ((c & 31) == 0) return alias(in, in.a);
        break;
      case Op::Mul:
        if (c == 1) return alias(in, in.a);
        if (c == 0) return alias(in, Operand::imm(0));
        break;
      case Op::And:
        if (c == 0xffffffffu) return alias(in, in.a);
        if (c == 0) return alias(in, Operand::imm(0));
        break;
      default:
        break;
    }
    // (x + c1) + c2 -> x + (c1 + c2) when x cannot change in between.
    if (in.op == Op::Add && is_int_type(in.type) && in.a.is_reg() && !is_var(in.a.v) &&
        def_[in.a.v] >= 0) {
      const Inst& d = k_.insts[def_[in.a.v]];
      if (d.kind == InstKind::Alu && d.op == Op::Add && d.b.is_imm() && is_temp_or_imm(d.a) &&
          d.a.comp != kWhole) {
        in.a = d.a;
        in.b = Operand::imm(d.b.v + c);
        changed_ = true;
        if (in.a.is_imm()) alu(in);
      }
    }
  }

  void if_begin(int i) {
    Inst& in = k_.insts[i];
    if (!in.a.is_imm()) return;
    const int mid = st_.mid[i], end = st_.end[i];
    if (in.a.v != 0) {
      if (mid >= 0) nop_range(k_.insts, mid, end);
      k_.insts[end].kind = InstKind::Nop;
    } else {
      nop_range(k_.insts, i + 1, mid >= 0 ? mid : end);
      k_.insts[end].kind = InstKind::Nop;
    }
    in.kind = InstKind::Nop;
    changed_ = true;
  }

  void for_begin(int i) {
    Inst& in = k_.insts[i];
    if (!in.a.is_imm() || !in.b.is_imm() || !in.c.is_imm()) return;
    const int64_t n = trip_count(in.type, in.a.v, in.b.v, in.c.v);
    if (n == 0) {
      nop_range(k_.insts, i, st_.end[i]);
      changed_ = true;
    } else if (n == 1) {
      k_.insts[st_.end[i]].kind = InstKind::Nop;
      in.kind = InstKind::Alu;
      in.op = Op::Mov;
      in.b = in.c = Operand{};
      in.imm = 0;
      changed_ = true;
    }
  }

  Kernel& k_;
  Structure st_;
  std::vector<Operand> repl_;
  std::vector<int> def_;
  bool changed_ = false;
};

void fold_to_fixed_point(Kernel& k) {
  for (int round = 0; round < 16; ++round) {
    if (!Folder(k).run()) break;
    compact(k);
  }
  compact(k);
}

// ---- Unrolling -------------------------------------------------------------------------

class Unroller {
 public:
  Unroller(Kernel& k, const CompileOptions& o) : k_(k), o_(o) {}

  // Unrolls the first hinted loop whose trip count is known; false if there is none.
  bool run() {
    const Structure st = analyze(k_.insts);
    for (int i = 0; i < int(k_.insts.size()); ++i) {
      Inst& in = k_.insts[i];
      if (in.kind != InstKind::ForBegin || in.imm == kNoUnroll) continue;
      if (!in.a.is_imm() || !in.b.is_imm() || !in.c.is_imm()) continue;
      const int64_t n = trip_count(in.type, in.a.v, in.b.v, in.c.v);
      const int end = st.end[i];
      const int64_t body = std::max(1, end - i - 1);
      int64_t u = (in.imm == kFullUnroll || in.imm >= n) ? n : in.imm;
      if (u * body > o_.max_unrolled_insts) u = o_.max_unrolled_insts / body;
      if (n <= 1 || u <= 1) {
        in.imm = kNoUnroll;
        return true;
      }
      unroll(i, end, n, u);
      return true;
    }
    return false;
  }

 private:
  void unroll(int begin, int end, int64_t n, int64_t u) {
    const Inst loop = k_.insts[begin];
    local_.assign(k_.vregs.size(), false);
    std::vector<int> first(k_.vregs.size(), int(k_.insts.size())), last(k_.vregs.size(), -1);
    for (int i = 0; i < int(k_.insts.size()); ++i) {
      const Inst& in = k_.insts[i];
      auto touch = [&](uint32_t v) {
        first[v] = std::min(first[v], i);
        last[v] = std::max(last[v], i);
      };
      for (const Operand* o : {&in.a, &in.b, &in.c})
        if (o->is_reg()) touch(o->v);
      if (in.dst != kNoVReg) touch(in.dst);
    }
    for (size_t v = 0; v < local_.size(); ++v) local_[v] = first[v] > begin && last[v] < end;

    const uint32_t step = loop.c.v;
    std::vector<Inst> out(k_.insts.begin(), k_.insts.begin() + begin);
    const int64_t main_trips = n / u;
    if (u < n) {
      Inst head = loop;
      head.b = Operand::imm(loop.a.v + uint32_t(main_trips * u) * step);
      head.c = Operand::imm(uint32_t(u) * step);
      head.imm = kNoUnroll;
      out.push_back(head);
      for (int64_t c = 0; c < u; ++c) {
        Operand iv = Operand::reg(loop.dst);
        if (c > 0) {  // i + c * step, for this copy
          k_.vregs.push_back({loop.type, 1, false, true});
          const uint32_t t = uint32_t(k_.vregs.size() - 1);
          Inst add;
          add.kind = InstKind::Alu;
          add.op = Op::Add;
          add.type = loop.type;
          add.dst = t;
          add.a = Operand::reg(loop.dst);
          add.b = Operand::imm(uint32_t(c) * step);
          out.push_back(add);
          iv = Operand::reg(t);
        }
        clone(begin, end, loop.dst, iv, out);
      }
      out.push_back(k_.insts[end]);
    }
    const int64_t done = u < n ? main_trips * u : 0;
    for (int64_t c = done; c < n; ++c)
      clone(begin, end, loop.dst, Operand::imm(loop.a.v + uint32_t(c) * step), out);
    out.insert(out.end(), k_.insts.begin() + end + 1, k_.insts.end());
    k_.insts = std::move(out);
  }

  void clone(int begin, int end, uint32_t ivar, const Operand& iv, std::vector<Inst>& out) {
    std::vector<uint32_t> rename(local_.size(), kNoVReg);
    auto map = [&](uint32_t v) {
      if (!local_[v]) return v;
      if (rename[v] == kNoVReg) {
        const VRegInfo info = k_.vregs[v];
        k_.vregs.push_back(info);
        rename[v] = uint32_t(k_.vregs.size() - 1);
      }
      return rename[v];
    };
    for (int i = begin + 1; i < end; ++i) {
      Inst in = k_.insts[i];
      if (in.kind == InstKind::Nop) continue;
      for (Operand* o : {&in.a, &in.b, &in.c}) {
        if (!o->is_reg()) continue;
        if (o->v == ivar) {
          *o = iv;
        } else {
          o->v = map(o->v);
        }
      }
      if (in.dst != kNoVReg) in.dst = map(in.dst);
      out.push_back(in);
    }
  }

  Kernel& k_;
  const CompileOptions& o_;
  std::vector<bool> local_;
};

// ---- Copy propagation, coalescing, address folding -------------------------------------

// Reads of a snapshot `t = var` become reads of var itself where var cannot change between.
bool propagate_copies(Kernel& k) {
  const Refs refs(k);
  bool changed = false;
  for (int p = 0; p < int(k.insts.size()); ++p) {
    Inst& in = k.insts[p];
    if (in.kind != InstKind::Alu || in.op != Op::Mov || !in.a.is_reg()) continue;
    if (k.vregs[in.dst].is_var || !k.vregs[in.a.v].is_var) continue;
    const uint32_t t = in.dst;
    if (!refs.stable(in.a.v, in.a.comp, p, refs.uses[t])) continue;
    for (int u : refs.uses[t]) {
      Inst& user = k.insts[u];
      for (Operand* o : {&user.a, &user.b, &user.c}) {
        if (!o->is_reg() || o->v != t) continue;
        const uint8_t comp = (k.vregs[t].width == 4 && o->comp != kWhole) ? o->comp : in.a.comp;
        *o = Operand::reg(in.a.v, comp);
      }
    }
    in.kind = InstKind::Nop;
    changed = true;
  }
  compact(k);
  return changed;
}

bool is_marker(InstKind k) {
  return k != InstKind::Alu && k != InstKind::Load && k != InstKind::Store && k != InstKind::Sreg &&
         k != InstKind::Param && k != InstKind::Nop;
}

// `var = t` where t is used only there: compute t straight into var.
bool coalesce_moves(Kernel& k) {
  const Refs refs(k);
  bool changed = false;
  for (int q = 0; q < int(k.insts.size()); ++q) {
    Inst& mv = k.insts[q];
    if (mv.kind != InstKind::Alu || mv.op != Op::Mov || !mv.a.is_reg()) continue;
    const uint32_t var = mv.dst, t = mv.a.v;
    if (!k.vregs[var].is_var || k.vregs[t].is_var) continue;
    if (refs.uses[t].size() != 1 || refs.defs[t].size() != 1) continue;
    const int d = refs.defs[t][0].first;
    Inst& def = k.insts[d];
    if (def.kind != InstKind::Alu && def.kind != InstKind::Load && def.kind != InstKind::Sreg)
      continue;
    const bool whole4 = k.vregs[t].width == 4;
    if (whole4 != (mv.dst_comp == kWhole && k.vregs[var].width == 4)) continue;
    if (!whole4 && mv.a.comp != 0) continue;
    bool clear = d < q;
    for (int i = d + 1; clear && i < q; ++i) {
      const Inst& x = k.insts[i];
      if (is_marker(x.kind) || x.dst == var) clear = false;
      for (const Operand* o : {&x.a, &x.b, &x.c})
        if (o->is_reg() && o->v == var) clear = false;
    }
    if (!clear) continue;
    def.dst = var;
    def.dst_comp = mv.dst_comp;
    mv.kind = InstKind::Nop;
    changed = true;
  }
  compact(k);
  return changed;
}

// load/store [t] with t = x + c -> [x + c] when x still holds its value.
bool fold_addresses(Kernel& k) {
  const Refs refs(k);
  std::vector<int> def(k.vregs.size(), -1);
  bool changed = false;
  for (int u = 0; u < int(k.insts.size()); ++u) {
    Inst& in = k.insts[u];
    if (in.dst != kNoVReg && !k.vregs[in.dst].is_var) def[in.dst] = u;
    if (in.kind != InstKind::Load && in.kind != InstKind::Store) continue;
    for (;;) {
      if (!in.a.is_reg() || k.vregs[in.a.v].is_var || def[in.a.v] < 0) break;
      const int d = def[in.a.v];
      const Inst& add = k.insts[d];
      if (add.kind != InstKind::Alu || add.op != Op::Add || !add.b.is_imm() || !add.a.is_reg() ||
          !is_int_type(add.type))
        break;
      if (k.vregs[add.a.v].is_var && !refs.stable(add.a.v, add.a.comp, d, {u})) break;
      in.a = add.a;
      in.imm = int32_t(uint32_t(in.imm) + add.b.v);
      changed = true;
    }
  }
  return changed;
}

// Identical pure computations on immutable operands share one result. Only within
// loop-free stretches: reusing a value across a loop would keep it live through the loop.
bool eliminate_common_subexpressions(Kernel& k) {
  using Key =
      std::tuple<uint32_t, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t>;
  std::vector<std::map<Key, Operand>> scopes(1);
  std::vector<Operand> repl(k.vregs.size());
  bool changed = false;
  auto subst = [&](Operand& o) {
    if (o.is_reg() && !repl[o.v].none()) o = repl[o.v];
  };
  auto immutable = [&](const Operand& o) {
    return o.none() || o.is_imm() || (o.is_reg() && !k.vregs[o.v].is_var && o.comp != kWhole);
  };
  auto pack = [](const Operand& o) { return uint32_t(o.kind) | uint32_t(o.comp) << 8; };
  for (Inst& in : k.insts) {
    subst(in.a);
    subst(in.b);
    subst(in.c);
    switch (in.kind) {
      case InstKind::IfBegin:
        scopes.emplace_back();
        continue;
      case InstKind::Else:
        scopes.back().clear();
        continue;
      case InstKind::IfEnd:
        scopes.pop_back();
        continue;
      case InstKind::ForBegin:
      case InstKind::ForEnd:
      case InstKind::WhileBegin:
      case InstKind::WhileTest:
      case InstKind::WhileEnd:
        for (auto& s : scopes) s.clear();
        continue;
      default:
        break;
    }
    const bool candidate =
        (in.kind == InstKind::Alu && in.op != Op::Mov) || in.kind == InstKind::Sreg;
    if (!candidate || in.dst == kNoVReg || k.vregs[in.dst].is_var || k.vregs[in.dst].width != 1)
      continue;
    if (!immutable(in.a) || !immutable(in.b) || !immutable(in.c)) continue;
    const Key key{uint32_t(in.kind) | uint32_t(in.op) << 8 | uint32_t(in.type) << 16,
                  uint32_t(in.imm),
                  pack(in.a),
                  in.a.v,
                  pack(in.b),
                  in.b.v,
                  pack(in.c),
                  in.c.v};
    Operand found;
    for (const auto& s : scopes) {
      auto it = s.find(key);
      if (it != s.end()) found = it->second;
    }
    if (found.none()) {
      scopes.back()[key] = Operand::reg(in.dst);
    } else {
      repl[in.dst] = found;
      in.kind = InstKind::Nop;
      changed = true;
    }
  }
  compact(k);
  return changed;
}

// Within straight-line code, `p = p + c` (p a scalar variable, c constant) is deferred:
// loads and stores through p take the pending offset in their immediate, and one add per
// variable is emitted where the code ends or p is needed whole. An unrolled loop body then
// bumps each pointer once instead of once per copy.
bool sink_pointer_increments(Kernel& k) {
  std::vector<Inst> out;
  out.reserve(k.insts.size());
  std::vector<uint32_t> pending(k.vregs.size(), 0);
  std::vector<uint32_t> dirty;  // vars with a pending offset, in the order they got one
  bool changed = false;
  auto flush = [&](uint32_t v) {
    if (pending[v] == 0) return;
    Inst add;
    add.kind = InstKind::Alu;
    add.op = Op::Add;
    add.type = k.vregs[v].type;
    add.dst = v;
    add.a = Operand::reg(v);
    add.b = Operand::imm(pending[v]);
    out.push_back(add);
    pending[v] = 0;
  };
  auto flush_all = [&] {
    for (uint32_t v : dirty) flush(v);
    dirty.clear();
  };
  auto is_bump = [&](const Inst& in) {
    return in.kind == InstKind::Alu && in.op == Op::Add && is_int_type(in.type) &&
           in.dst != kNoVReg && k.vregs[in.dst].is_var && k.vregs[in.dst].width == 1 &&
           in.a.is_reg() && in.a.v == in.dst && in.b.is_imm();
  };
  for (const Inst& src : k.insts) {
    Inst in = src;
    if (is_marker(in.kind)) {
      flush_all();
      out.push_back(in);
      continue;
    }
    if (is_bump(in)) {
      if (pending[in.dst] == 0) dirty.push_back(in.dst);
      pending[in.dst] += in.b.v;
      changed = true;
      continue;
    }
    // A memory access through p absorbs the offset; any other read of p, or a write to
    // it, needs p up to date first.
    if (in.dst != kNoVReg) flush(in.dst);
    const bool mem = in.kind == InstKind::Load || in.kind == InstKind::Store;
    if (mem && in.a.is_reg() && pending[in.a.v] != 0 && in.c != in.a) {
      in.imm = int32_t(uint32_t(in.imm) + pending[in.a.v]);
    } else if (in.a.is_reg()) {
      flush(in.a.v);
    }
    for (const Operand* o : {&in.b, &in.c})
      if (o->is_reg()) flush(o->v);
    out.push_back(in);
  }
  flush_all();
  k.insts = std::move(out);
  return changed;
}

bool pure(const Inst& in) {
  return in.kind == InstKind::Alu || in.kind == InstKind::Load || in.kind == InstKind::Sreg ||
         in.kind == InstKind::Param;
}

bool eliminate_dead_code(Kernel& k) {
  bool any = false;
  for (bool changed = true; changed;) {
    changed = false;
    const Refs refs(k);
    std::vector<int> reads(k.vregs.size());
    for (size_t v = 0; v < reads.size(); ++v) reads[v] = int(refs.uses[v].size());
    auto drop = [&](Inst& in) {
      for (const Operand* o : {&in.a, &in.b, &in.c})
        if (o->is_reg()) --reads[o->v];
      in.kind = InstKind::Nop;
      changed = any = true;
    };
    for (int i = int(k.insts.size()) - 1; i >= 0; --i) {
      Inst& in = k.insts[i];
      if (!pure(in) || in.dst == kNoVReg || reads[in.dst] > 0) continue;
      if (!k.vregs[in.dst].is_var) {
        drop(in);
      }
    }
    // Variables nobody reads: all their assignments are dead.
    for (int i = int(k.insts.size()) - 1; i >= 0; --i) {
      Inst& in = k.insts[i];
      if (in.kind == InstKind::Nop || !pure(in) || in.dst == kNoVReg) continue;
      if (k.vregs[in.dst].is_var && reads[in.dst] == 0) drop(in);
    }
    compact(k);
  }
  return any;
}

}  // namespace

// ---- Public ----------------------------------------------------------------------------

bool fold_constant(Op op, uint32_t a, uint32_t b, uint32_t c, uint32_t* out) {
  const int32_t sa = int32_t(a), sb = int32_t(b);
  const float fa = std::bit_cast<float>(a), fb = std::bit_cast<float>(b),
              fc = std::bit_cast<float>(c);
  auto f = [](float x) { return std::bit_cast<uint32_t>(x); };
  switch (op) {
    case Op::Mov:
      *out = a;
      return true;  // IR Mov keeps its source in a
    case Op::Sel:
      *out = c ? a : b;
      return true;
    case Op::Add:
      *out = a + b;
      return true;
    case Op::Sub:
      *out = a - b;
      return true;
    case Op::Mul:
      *out = a * b;
      return true;
    case Op::Mad:
      *out = a * b + c;
      return true;
    case Op::And:
      *out = a & b;
      return true;
    case Op::Or:
      *out = a | b;
      return true;
    case Op::Xor:
      *out = a ^ b;
      return true;
    case Op::Shl:
      *out = a << (b & 31);
      return true;
    case Op::Shr:
      *out = a >> (b & 31);
      return true;
    case Op::Asr:
      *out = uint32_t(sa >> (b & 31));
      return true;
    case Op::Min:
      *out = uint32_t(std::min(sa, sb));
      return true;
    case Op::Max:
      *out = uint32_t(std::max(sa, sb));
      return true;
    case Op::Minu:
      *out = std::min(a, b);
      return true;
    case Op::Maxu:
      *out = std::max(a, b);
      return true;
    case Op::Divu:
      *out = b ? a / b : 0xffffffffu;
      return true;
    case Op::Remu:
      *out = b ? a % b : a;
      return true;
    case Op::Ieq:
      *out = a == b;
      return true;
    case Op::Ine:
      *out = a != b;
      return true;
    case Op::Ilt:
      *out = sa < sb;
      return true;
    case Op::Ile:
      *out = sa <= sb;
      return true;
    case Op::Ult:
      *out = a < b;
      return true;
    case Op::Ule:
      *out = a <= b;
      return true;
    case Op::Feq:
      *out = fa == fb;
      return true;
    case Op::Fne:
      *out = fa != fb;
      return true;
    case Op::Flt:
      *out = fa < fb;
      return true;
    case Op::Fle:
      *out = fa <= fb;
      return true;
    case Op::Fneg:
      *out = a ^ 0x80000000u;
      return true;
    case Op::Fabs:
      *out = a & 0x7fffffffu;
      return true;
    case Op::Itof:
      *out = f(float(sa));
      return true;
    case Op::Utof:
      *out = f(float(a));
      return true;
    default:
      break;
  }
  // Float arithmetic: only on non-NaN inputs, whose results every IEEE host rounds alike
  // (NaN payloads are where hosts differ).
  if (std::isnan(fa) || std::isnan(fb) || std::isnan(fc)) return false;
  switch (op) {
    case Op::Fadd:
      *out = f(fa + fb);
      return true;
    case Op::Fsub:
      *out = f(fa - fb);
      return true;
    case Op::Fmul:
      *out = f(fa * fb);
      return true;
    case Op::Fdiv:
      *out = f(fa / fb);
      return true;
    case Op::Ffma: {
      const float p = fa * fb;
      *out = f(p + fc);
      return true;
    }
    case Op::Fmin:
      *out = fb < fa ? b : a;
      return true;
    case Op::Fmax:
      *out = fa < fb ? b : a;
      return true;
    case Op::Ffloor:
      *out = f(std::floor(fa));
      return true;
    case Op::Fceil:
      *out = f(std::ceil(fa));
      return true;
    case Op::Ftoi:
      if (fa < -2147483648.0f)
        *out = 0x80000000u;
      else if (fa >= 2147483648.0f)
        *out = 0x7fffffffu;
      else
        *out = uint32_t(int32_t(fa));
      return true;
    default:
      return false;
  }
}

void specialize(Kernel& k, const std::vector<uint32_t>& spec_values,
                const std::vector<uint32_t>& shared_offsets, uint32_t wg_size) {
  for (Inst& in : k.insts) {
    for (Operand* o : {&in.a, &in.b, &in.c}) {
      if (o->kind == Kind::Spec) *o = Operand::imm(spec_values.at(o->v));
      if (o->kind == Kind::Shared) *o = Operand::imm(shared_offsets.at(o->v));
    }
    if (in.kind == InstKind::Sreg && in.imm == int32_t(isa::Sreg::WgSize)) {
      in.kind = InstKind::Alu;
      in.op = Op::Mov;
      in.a = Operand::imm(wg_size);
      in.imm = 0;
    }
  }
}

void optimize(Kernel& k, const CompileOptions& options) {
  fold_to_fixed_point(k);
  for (int guard = 0; guard < 10000 && Unroller(k, options).run(); ++guard) fold_to_fixed_point(k);
  for (int round = 0; round < 4; ++round) {
    bool changed = propagate_copies(k);
    changed |= eliminate_common_subexpressions(k);
    changed |= coalesce_moves(k);
    fold_to_fixed_point(k);
    changed |= fold_addresses(k);
    changed |= eliminate_dead_code(k);
    if (!changed) break;
  }
  sink_pointer_increments(k);
  compact(k);
}

}  // namespace rplayer::runtime::jit
