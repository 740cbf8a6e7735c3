// The unrolling pass (passes.h): loops with an unrolling hint and a known trip count, the
// trips that do not fill an unrolled iteration copied after the loop.
#include <algorithm>

#include "runtime/jit/pass_util.h"
#include "runtime/jit/passes.h"

namespace rplayer::runtime::jit {

using isa::Op;

namespace {

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

}  // namespace

bool unroll_next_loop(Kernel& k, const CompileOptions& options) {
  return Unroller(k, options).run();
}

}  // namespace rplayer::runtime::jit
