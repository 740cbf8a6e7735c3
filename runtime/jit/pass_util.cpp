// The control-flow structure analysis the JIT passes share (pass_util.h).
#include "runtime/jit/pass_util.h"

namespace rplayer::runtime::jit {

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

}  // namespace rplayer::runtime::jit
