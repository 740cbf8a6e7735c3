#include "runtime/jit/builder.h"

#include <bit>
#include <utility>

namespace rplayer::runtime::jit {

using isa::Op;

// ---- Value -----------------------------------------------------------------------------

Value Value::operator[](int k) const {
  if (!b_) throw Error("kernel builder: component of an uninitialized Value");
  if (width_ != 4 || !op_.is_reg() || op_.comp != kWhole || k < 0 || k > 3)
    b_->fail("component [" + std::to_string(k) + "] of a value that is not 4 wide");
  return Value(b_, Operand::reg(op_.v, uint8_t(k)), type_, 1, uniform_);
}

Value Value::as(Type t) const {
  Value v = *this;
  v.type_ = t;
  return v;
}

Value Value::lit_bits(uint32_t bits) const {
  if (!b_) throw Error("kernel builder: literal combined with an uninitialized Value");
  return Value(b_, Operand::imm(bits), type_, 1, true);
}

// ---- Var -------------------------------------------------------------------------------

Var& Var::operator=(const Var& v) {
  if (!b_) {  // binding a default-constructed handle
    b_ = v.b_;
    vreg_ = v.vreg_;
    return *this;
  }
  return *this = v.get();
}

Var& Var::operator=(const Value& v) {
  if (!b_) throw Error("kernel builder: assignment to an unbound Var (use KernelBuilder::var)");
  b_->assign(vreg_, width() == 4 ? kWhole : 0, v);
  return *this;
}

Value Var::get() const {
  if (!b_) throw Error("kernel builder: read of an unbound Var");
  return b_->read_var(vreg_, width() == 4 ? kWhole : 0);
}

Value Var::component(int k) const {
  if (!b_) throw Error("kernel builder: read of an unbound Var");
  if (width() != 4 || k < 0 || k > 3) b_->fail("component of a Var that is not 4 wide");
  return b_->read_var(vreg_, uint8_t(k));
}

void Var::set(int k, const Value& v) {
  if (!b_) throw Error("kernel builder: assignment to an unbound Var");
  if (width() != 4 || k < 0 || k > 3) b_->fail("component of a Var that is not 4 wide");
  b_->assign(vreg_, uint8_t(k), v);
}

Var& Var::operator+=(const Value& v) { return *this = get() + v; }
Var& Var::operator-=(const Value& v) { return *this = get() - v; }
Var& Var::operator*=(const Value& v) { return *this = get() * v; }
Type Var::type() const { return b_->k_.vregs[vreg_].type; }
int Var::width() const { return b_->k_.vregs[vreg_].width; }

VarComponent::operator Value() const { return var_.component(k_); }
VarComponent& VarComponent::operator=(const Value& v) {
  const_cast<Var&>(var_).set(k_, v);
  return *this;
}

// ---- KernelBuilder: bookkeeping --------------------------------------------------------

KernelBuilder::KernelBuilder(std::string name) {
  k_.name = std::move(name);
  regions_.push_back({-1, false});
  open_.push_back(0);
}

void KernelBuilder::fail(const std::string& msg) const {
  throw Error("kernel '" + k_.name + "': " + msg);
}

uint32_t KernelBuilder::new_vreg(Type t, int width, bool is_var, bool uniform) {
  if (finished_) fail("builder used after finish()");
  k_.vregs.push_back({t, uint8_t(width), is_var, uniform});
  vreg_region_.push_back(open_.back());
  return uint32_t(k_.vregs.size() - 1);
}

bool KernelBuilder::region_visible(int region) const {
  for (int r : open_)
    if (r == region) return true;
  return false;
}

void KernelBuilder::check_usable(const Value& v, const char* what) const {
  if (!v.valid()) fail(std::string("uninitialized Value used as ") + what);
  if (v.builder() != this) fail(std::string("Value of another kernel used as ") + what);
  if (v.operand().is_reg() && !region_visible(vreg_region_[v.operand().v]))
    fail(std::string("value %") + std::to_string(v.operand().v) + " used as " + what +
         " outside the if/loop body that computed it (lanes masked off there never "
         "computed it; declare a Var outside and assign it inside)");
}

void KernelBuilder::open_region(bool divergent) {
  regions_.push_back({open_.back(), divergent});
  open_.push_back(int(regions_.size() - 1));
}

void KernelBuilder::close_region() { open_.pop_back(); }

void KernelBuilder::check_var_assignable(uint32_t vreg, const Value& v) const {
  const int home = vreg_region_[vreg];
  if (!region_visible(home)) fail("Var assigned outside the body that declared it");
  if (!k_.vregs[vreg].uniform) return;
  if (!v.uniform())
    fail(
        "uniform Var assigned a value that differs between lanes (use var(), not "
        "uniform_var())");
  for (auto it = open_.rbegin(); it != open_.rend() && *it != home; ++it)
    if (regions_[*it].divergent) fail("uniform Var assigned under lane-divergent control flow");
}

void KernelBuilder::assign(uint32_t vreg, uint8_t comp, const Value& v) {
  check_usable(v, "assigned value");
  const VRegInfo& info = k_.vregs[vreg];
  if (v.type() != info.type)
    fail(std::string("Var of type ") + type_name(info.type) + " assigned a " + type_name(v.type()));
  const int want_width = comp == kWhole ? info.width : 1;
  if (v.width() != want_width)
    fail("assignment of a " + std::to_string(v.width()) + "-wide value to a " +
         std::to_string(want_width) + "-wide Var");
  check_var_assignable(vreg, v);
  Inst in;
  in.kind = InstKind::Alu;
  in.op = Op::Mov;
  in.type = info.type;
  in.dst = vreg;
  in.dst_comp = comp;
  in.a = v.operand();
  emit(in);
}

Value KernelBuilder::read_var(uint32_t vreg, uint8_t comp) {
  if (!region_visible(vreg_region_[vreg])) fail("Var read outside the body that declared it");
  const VRegInfo info = k_.vregs[vreg];
  const int width = comp == kWhole ? info.width : 1;
  const uint32_t t = new_vreg(info.type, width, false, info.uniform);
  Inst in;
  in.kind = InstKind::Alu;
  in.op = Op::Mov;
  in.type = info.type;
  in.dst = t;
  in.dst_comp = width == 4 ? kWhole : 0;
  in.a = Operand::reg(vreg, comp);
  emit(in);
  return Value(this, Operand::reg(t, width == 4 ? kWhole : 0), info.type, width, info.uniform);
}

// ---- Parameters, constants, specials ---------------------------------------------------

Value KernelBuilder::buffer(const std::string& name) {
  const Value v = scalar(name, Type::U32);
  k_.params.back().kind = ParamKind::Buffer;
  return v;
}

Value KernelBuilder::scalar(const std::string& name, Type type) {
  for (const ParamDecl& p : k_.params)
    if (p.name == name) fail("parameter '" + name + "' declared twice");
  k_.params.push_back({name, ParamKind::Scalar, type});
  const uint32_t vreg = new_vreg(type, 1, false, true);
  vreg_region_[vreg] = 0;  // parameters are read in the prologue, visible everywhere
  Inst in;
  in.kind = InstKind::Param;
  in.type = type;
  in.dst = vreg;
  in.imm = int32_t(k_.params.size() - 1);
  param_insts_.push_back(in);
  return Value(this, Operand::reg(vreg), type, 1, true);
}

Value KernelBuilder::spec(const std::string& name, Type type, uint32_t default_bits) {
  for (const SpecDecl& s : k_.specs)
    if (s.name == name) fail("specialization constant '" + name + "' declared twice");
  k_.specs.push_back({name, type, default_bits});
  return Value(this, {Operand::Kind::Spec, 0, uint32_t(k_.specs.size() - 1)}, type, 1, true);
}
Value KernelBuilder::spec_u32(const std::string& name, uint32_t d) {
  return spec(name, Type::U32, d);
}
Value KernelBuilder::spec_i32(const std::string& name, int32_t d) {
  return spec(name, Type::I32, uint32_t(d));
}
Value KernelBuilder::spec_f32(const std::string& name, float d) {
  return spec(name, Type::F32, std::bit_cast<uint32_t>(d));
}

void KernelBuilder::set_workgroup_size(uint32_t n) {
  if (n < 1 || n > 256) fail("workgroup size " + std::to_string(n) + " not in 1..256");
  k_.wg_mode = WorkgroupMode::Fixed;
  k_.wg_size = n;
}

void KernelBuilder::set_workgroup_mode(WorkgroupMode m) {
  k_.wg_mode = m;
  if (m != WorkgroupMode::Fixed) k_.wg_size = 0;
}

Value KernelBuilder::shared(uint32_t fixed_bytes, uint32_t bytes_per_invocation) {
  k_.shared.push_back({fixed_bytes, bytes_per_invocation});
  return Value(this, {Operand::Kind::Shared, 0, uint32_t(k_.shared.size() - 1)}, Type::U32, 1,
               true);
}

Value KernelBuilder::constant(Type t, uint32_t bits) {
  return Value(this, Operand::imm(bits), t, 1, true);
}
Value KernelBuilder::u32(uint32_t v) { return constant(Type::U32, v); }
Value KernelBuilder::i32(int32_t v) { return constant(Type::I32, uint32_t(v)); }
Value KernelBuilder::f32(float v) { return constant(Type::F32, std::bit_cast<uint32_t>(v)); }
Value KernelBuilder::boolean(bool v) { return constant(Type::Bool, v ? 1 : 0); }

Value KernelBuilder::sreg(isa::Sreg s, bool uniform) {
  const uint32_t vreg = new_vreg(Type::U32, 1, false, uniform);
  Inst in;
  in.kind = InstKind::Sreg;
  in.type = Type::U32;
  in.dst = vreg;
  in.imm = int32_t(s);
  emit(in);
  return Value(this, Operand::reg(vreg), Type::U32, 1, uniform);
}

Value KernelBuilder::global_id_x() { return sreg(isa::Sreg::GlobalX, false); }
Value KernelBuilder::local_id() { return sreg(isa::Sreg::LocalId, false); }
Value KernelBuilder::lane() { return sreg(isa::Sreg::Lane, false); }
// The batch index is the same in all lanes of a batch but not of a workgroup; uniform here
// means "same in every lane of the workgroup", which barriers and loops rely on.
Value KernelBuilder::batch() { return sreg(isa::Sreg::Batch, false); }
Value KernelBuilder::workgroup_id(int dim) {
  if (dim < 0 || dim > 2) fail("workgroup_id dimension must be 0..2");
  return sreg(isa::Sreg(uint32_t(isa::Sreg::WgX) + dim), true);
}
Value KernelBuilder::num_workgroups(int dim) {
  if (dim < 0 || dim > 2) fail("num_workgroups dimension must be 0..2");
  return sreg(isa::Sreg(uint32_t(isa::Sreg::NumWgX) + dim), true);
}
Value KernelBuilder::workgroup_size() { return sreg(isa::Sreg::WgSize, true); }
Value KernelBuilder::qpu() { return sreg(isa::Sreg::Qpu, true); }

// ---- Variables ---------------------------------------------------------------------------

Var KernelBuilder::var(const Value& init) {
  check_usable(init, "Var initializer");
  if (init.width() != 1) fail("var() takes a scalar; use var4() for 4-wide values");
  const uint32_t v = new_vreg(init.type(), 1, true, false);
  assign(v, 0, init);
  return Var(this, v);
}

Var KernelBuilder::uniform_var(const Value& init) {
  check_usable(init, "Var initializer");
  if (init.width() != 1) fail("uniform_var() takes a scalar");
  if (!init.uniform()) fail("uniform_var() initialized with a value that differs between lanes");
  const uint32_t v = new_vreg(init.type(), 1, true, true);
  assign(v, 0, init);
  return Var(this, v);
}

Var KernelBuilder::var4(const Value& init) {
  check_usable(init, "Var initializer");
  if (init.width() == 1) return var4(init, init, init, init);
  const uint32_t v = new_vreg(init.type(), 4, true, false);
  assign(v, kWhole, init);
  return Var(this, v);
}

Var KernelBuilder::var4(const Value& x, const Value& y, const Value& z, const Value& w) {
  check_usable(x, "Var initializer");
  const uint32_t v = new_vreg(x.type(), 4, true, false);
  const Value* c[4] = {&x, &y, &z, &w};
  for (int k = 0; k < 4; ++k) assign(v, uint8_t(k), *c[k]);
  return Var(this, v);
}

Value KernelBuilder::vec4(const Value& x, const Value& y, const Value& z, const Value& w) {
  // A 4-wide var that nothing else can name, so reading it in place is safe.
  const Var v = var4(x, y, z, w);
  const bool uni = x.uniform() && y.uniform() && z.uniform() && w.uniform();
  k_.vregs[v.vreg_].uniform = uni;
  return Value(this, Operand::reg(v.vreg_, kWhole), x.type(), 4, uni);
}

// ---- Memory ------------------------------------------------------------------------------

Value KernelBuilder::load_op(Op op, const Value& addr, int32_t offset, Type t, int width,
                             bool uni) {
  check_usable(addr, "address");
  if (addr.width() != 1 || addr.type() == Type::F32 || addr.type() == Type::Bool)
    fail("address must be a scalar u32/i32 value");
  if ((op == Op::Ldu || op == Op::Ldu4) && !addr.uniform())
    fail("load_uniform() needs an address that is the same in all lanes");
  const uint32_t vreg = new_vreg(t, width, false, uni || addr.uniform());
  Inst in;
  in.kind = InstKind::Load;
  in.op = op;
  in.type = t;
  in.dst = vreg;
  in.dst_comp = width == 4 ? kWhole : 0;
  in.a = addr.operand();
  in.imm = offset;
  emit(in);
  return Value(this, Operand::reg(vreg, width == 4 ? kWhole : 0), t, width, k_.vregs[vreg].uniform);
}

Value KernelBuilder::load(const Value& a, int32_t off, Type t) {
  return load_op(Op::Ld, a, off, t, 1, false);
}
Value KernelBuilder::load4(const Value& a, int32_t off, Type t) {
  return load_op(Op::Ld4, a, off, t, 4, false);
}
Value KernelBuilder::load_uniform(const Value& a, int32_t off, Type t) {
  return load_op(Op::Ldu, a, off, t, 1, true);
}
Value KernelBuilder::load_uniform4(const Value& a, int32_t off, Type t) {
  return load_op(Op::Ldu4, a, off, t, 4, true);
}
Value KernelBuilder::load_shared(const Value& a, int32_t off, Type t) {
  return load_op(Op::Lds, a, off, t, 1, false);
}

void KernelBuilder::emit_marker(InstKind kind) {
  Inst in;
  in.kind = kind;
  emit(in);
}

void KernelBuilder::emit_store(Op op, const Value& addr, const Value& v, int32_t offset) {
  Inst in;
  in.kind = InstKind::Store;
  in.op = op;
  in.type = v.type();
  in.a = addr.operand();
  in.c = v.operand();
  in.imm = offset;
  emit(in);
}

void KernelBuilder::store(const Value& addr, const Value& v, int32_t offset) {
  check_usable(addr, "address");
  check_usable(v, "stored value");
  if (addr.width() != 1 || addr.type() == Type::F32 || addr.type() == Type::Bool)
    fail("address must be a scalar u32/i32 value");
  if (v.width() != 1) fail("store() takes a scalar; use store4() for 4-wide values");
  emit_store(Op::St, addr, v, offset);
}

void KernelBuilder::store4(const Value& addr, const Value& v, int32_t offset) {
  check_usable(addr, "address");
  check_usable(v, "stored value");
  if (addr.width() != 1 || addr.type() == Type::F32 || addr.type() == Type::Bool)
    fail("address must be a scalar u32/i32 value");
  if (v.width() != 4) fail("store4() takes a 4-wide value (load4, var4 or vec4)");
  emit_store(Op::St4, addr, v, offset);
}

void KernelBuilder::store_shared(const Value& addr, const Value& v, int32_t offset) {
  check_usable(addr, "address");
  check_usable(v, "stored value");
  if (v.width() != 1) fail("store_shared() takes a scalar");
  emit_store(Op::Sts, addr, v, offset);
}

void KernelBuilder::barrier() {
  for (int r : open_)
    if (regions_[r].divergent)
      fail(
          "barrier() under lane-divergent control flow (an if_ on a per-lane condition or "
          "a while_): batches could miss it");
  emit_marker(InstKind::Barrier);
}

// ---- Control flow --------------------------------------------------------------------------

void KernelBuilder::if_(const Value& cond, const std::function<void()>& then_body) {
  if_else(cond, then_body, nullptr);
}

void KernelBuilder::if_else(const Value& cond, const std::function<void()>& then_body,
                            const std::function<void()>& else_body) {
  check_usable(cond, "if condition");
  if (cond.width() != 1) fail("if condition must be a scalar");
  if (cond.type() == Type::F32) fail("if condition is f32 (compare it: -0.0 has bits set)");
  Inst begin;
  begin.kind = InstKind::IfBegin;
  begin.type = cond.type();
  begin.uniform = cond.uniform();
  begin.a = cond.operand();
  emit(begin);
  open_region(!cond.uniform());
  if (then_body) then_body();
  close_region();
  if (else_body) {
    emit_marker(InstKind::Else);
    open_region(!cond.uniform());
    else_body();
    close_region();
  }
  emit_marker(InstKind::IfEnd);
}

void KernelBuilder::for_(const Bound& begin, const Bound& end, const Bound& step,
                         const std::function<void(Value)>& body, int32_t unroll) {
  const Bound* bounds[3] = {&begin, &end, &step};
  Type t = Type::I32;
  for (const Bound* b : bounds)
    if (b->is_literal && b->is_unsigned) t = Type::U32;
  for (const Bound* b : bounds)
    if (!b->is_literal) {
      t = b->value.type();
      break;
    }
  if (t != Type::I32 && t != Type::U32) fail("for_ bounds must be i32 or u32");
  Operand ops[3];
  for (int i = 0; i < 3; ++i) {
    const Bound& b = *bounds[i];
    if (b.is_literal) {
      ops[i] = Operand::imm(uint32_t(b.literal));
      continue;
    }
    check_usable(b.value, "for_ bound");
    if (b.value.type() != t || b.value.width() != 1)
      fail(std::string("for_ bounds must all have one scalar type (") + type_name(t) + ")");
    if (!b.value.uniform())
      fail("for_ bounds must be the same in all lanes; use while_ for per-lane loops");
    ops[i] = b.value.operand();
  }
  if (step.is_literal && step.literal == 0) fail("for_ step is 0");
  if (step.is_literal && step.literal < 0 && t == Type::U32)
    fail("for_ counts down only with i32 bounds");
  if (unroll < kFullUnroll) fail("for_ unroll must be kNoUnroll, kFullUnroll or a factor");
  Inst in;
  in.kind = InstKind::ForBegin;
  in.type = t;
  in.a = ops[0];
  in.b = ops[1];
  in.c = ops[2];
  in.imm = unroll;
  open_region(false);
  in.dst = new_vreg(t, 1, true, true);
  emit(in);
  body(Value(this, Operand::reg(in.dst), t, 1, true));
  close_region();
  emit_marker(InstKind::ForEnd);
}

void KernelBuilder::while_(const std::function<Value()>& cond, const std::function<void()>& body) {
  emit_marker(InstKind::WhileBegin);
  open_region(true);
  const Value c = cond();
  check_usable(c, "while condition");
  if (c.width() != 1 || c.type() == Type::F32) fail("while condition must be a scalar bool/int");
  Inst test;
  test.kind = InstKind::WhileTest;
  test.type = c.type();
  test.a = c.operand();
  emit(test);
  open_region(true);
  body();
  close_region();
  close_region();
  emit_marker(InstKind::WhileEnd);
}

Kernel KernelBuilder::finish() {
  if (finished_) fail("finish() called twice");
  if (open_.size() != 1) fail("finish() inside a control-flow body");
  finished_ = true;
  std::vector<Inst> insts = std::move(param_insts_);
  insts.insert(insts.end(), k_.insts.begin(), k_.insts.end());
  k_.insts = std::move(insts);
  return std::move(k_);
}

Value KernelBuilder::alu(Op op, Type result, std::initializer_list<Value> srcs) {
  if (srcs.size() > 3) fail("alu() takes at most 3 operands");
  Inst in;
  in.kind = InstKind::Alu;
  in.op = op;
  in.type = result;
  bool uni = true;
  Operand* slots[3] = {&in.a, &in.b, &in.c};
  int i = 0;
  for (const Value& v : srcs) {
    check_usable(v, "operand");
    if (v.width() != 1) fail("4-wide value used as a scalar operand (take a component: v[k])");
    uni = uni && v.uniform();
    *slots[i++] = v.operand();
  }
  in.dst = new_vreg(result, 1, false, uni);
  emit(in);
  return Value(this, Operand::reg(in.dst), result, 1, uni);
}

// ---- Operators -------------------------------------------------------------------------------

namespace {

KernelBuilder& builder_of(const Value& a, const Value& b, const char* op) {
  if (!a.valid() || !b.valid())
    throw Error(std::string("kernel builder: operator ") + op + " on an uninitialized Value");
  if (a.builder() != b.builder())
    throw Error(std::string("kernel builder: operator ") + op + " mixes two kernels");
  if (a.type() != b.type())
    a.builder()->fail(std::string("operator ") + op + " on " + type_name(a.type()) + " and " +
                      type_name(b.type()) + " (convert one side)");
  return *a.builder();
}

KernelBuilder& builder_of(const Value& a, const char* op) {
  if (!a.valid()) throw Error(std::string("kernel builder: ") + op + " on an uninitialized Value");
  return *a.builder();
}

bool is_int(Type t) { return t == Type::I32 || t == Type::U32; }

[[noreturn]] void bad_type(KernelBuilder& kb, const char* op, Type t) {
  kb.fail(std::string(op) + " is not defined for " + type_name(t));
}

// Arithmetic with an integer and a float form.
Value arith(const Value& a, const Value& b, const char* name, Op iop, Op fop) {
  KernelBuilder& kb = builder_of(a, b, name);
  if (a.type() == Type::F32) return kb.alu(fop, Type::F32, {a, b});
  if (is_int(a.type())) return kb.alu(iop, a.type(), {a, b});
  bad_type(kb, name, a.type());
}

Value compare(const Value& a, const Value& b, const char* name, Op sop, Op uop, Op fop) {
  KernelBuilder& kb = builder_of(a, b, name);
  switch (a.type()) {
    case Type::I32:
      return kb.alu(sop, Type::Bool, {a, b});
    case Type::U32:
      return kb.alu(uop, Type::Bool, {a, b});
    case Type::F32:
      return kb.alu(fop, Type::Bool, {a, b});
    case Type::Bool:
      break;
  }
  bad_type(kb, name, a.type());
}

Value float_unary(const Value& a, const char* name, Op op) {
  KernelBuilder& kb = builder_of(a, name);
  if (a.type() != Type::F32) bad_type(kb, name, a.type());
  return kb.alu(op, Type::F32, {a});
}

}  // namespace

Value operator+(const Value& a, const Value& b) { return arith(a, b, "+", Op::Add, Op::Fadd); }
Value operator-(const Value& a, const Value& b) { return arith(a, b, "-", Op::Sub, Op::Fsub); }
Value operator*(const Value& a, const Value& b) { return arith(a, b, "*", Op::Mul, Op::Fmul); }

Value operator/(const Value& a, const Value& b) {
  KernelBuilder& kb = builder_of(a, b, "/");
  if (a.type() == Type::F32) return kb.alu(Op::Fdiv, Type::F32, {a, b});
  if (a.type() == Type::U32) return kb.alu(Op::Divu, Type::U32, {a, b});
  kb.fail(std::string("/ is not defined for ") + type_name(a.type()) +
          " (the ISA divides unsigned only)");
}

Value operator%(const Value& a, const Value& b) {
  KernelBuilder& kb = builder_of(a, b, "%");
  if (a.type() == Type::U32) return kb.alu(Op::Remu, Type::U32, {a, b});
  kb.fail(std::string("% is not defined for ") + type_name(a.type()));
}

#define RPLAYER_JIT_BITWISE(OP, ISA)                        \
  Value operator OP(const Value& a, const Value& b) {       \
    KernelBuilder& kb = builder_of(a, b, #OP);              \
    if (a.type() == Type::F32) bad_type(kb, #OP, a.type()); \
    return kb.alu(ISA, a.type(), {a, b});                   \
  }
RPLAYER_JIT_BITWISE(&, Op::And)
RPLAYER_JIT_BITWISE(|, Op::Or)
RPLAYER_JIT_BITWISE(^, Op::Xor)
#undef RPLAYER_JIT_BITWISE

Value operator<<(const Value& a, const Value& b) {
  KernelBuilder& kb = builder_of(a, b, "<<");
  if (!is_int(a.type())) bad_type(kb, "<<", a.type());
  return kb.alu(Op::Shl, a.type(), {a, b});
}

Value operator>>(const Value& a, const Value& b) {
  KernelBuilder& kb = builder_of(a, b, ">>");
  if (!is_int(a.type())) bad_type(kb, ">>", a.type());
  return kb.alu(a.type() == Type::I32 ? Op::Asr : Op::Shr, a.type(), {a, b});
}

Value operator<(const Value& a, const Value& b) {
  return compare(a, b, "<", Op::Ilt, Op::Ult, Op::Flt);
}
Value operator<=(const Value& a, const Value& b) {
  return compare(a, b, "<=", Op::Ile, Op::Ule, Op::Fle);
}
Value operator>(const Value& a, const Value& b) { return b < a; }
Value operator>=(const Value& a, const Value& b) { return b <= a; }

Value operator==(const Value& a, const Value& b) {
  KernelBuilder& kb = builder_of(a, b, "==");
  return kb.alu(a.type() == Type::F32 ? Op::Feq : Op::Ieq, Type::Bool, {a, b});
}
Value operator!=(const Value& a, const Value& b) {
  KernelBuilder& kb = builder_of(a, b, "!=");
  return kb.alu(a.type() == Type::F32 ? Op::Fne : Op::Ine, Type::Bool, {a, b});
}

Value operator&&(const Value& a, const Value& b) {
  KernelBuilder& kb = builder_of(a, b, "&&");
  if (a.type() != Type::Bool) bad_type(kb, "&&", a.type());
  return kb.alu(Op::And, Type::Bool, {a, b});
}
Value operator||(const Value& a, const Value& b) {
  KernelBuilder& kb = builder_of(a, b, "||");
  if (a.type() != Type::Bool) bad_type(kb, "||", a.type());
  return kb.alu(Op::Or, Type::Bool, {a, b});
}

Value operator-(const Value& a) {
  KernelBuilder& kb = builder_of(a, "unary -");
  if (a.type() == Type::F32) return kb.alu(Op::Fneg, Type::F32, {a});
  if (is_int(a.type())) return kb.alu(Op::Mul, a.type(), {a, a.lit(-1)});
  bad_type(kb, "unary -", a.type());
}

Value operator!(const Value& a) {
  KernelBuilder& kb = builder_of(a, "!");
  if (a.type() != Type::Bool) bad_type(kb, "!", a.type());
  return kb.alu(Op::Xor, Type::Bool, {a, a.lit(1)});
}

Value operator~(const Value& a) {
  KernelBuilder& kb = builder_of(a, "~");
  if (!is_int(a.type())) bad_type(kb, "~", a.type());
  return kb.alu(Op::Xor, a.type(), {a, a.lit(-1)});
}

Value min(const Value& a, const Value& b) {
  KernelBuilder& kb = builder_of(a, b, "min");
  switch (a.type()) {
    case Type::I32:
      return kb.alu(Op::Min, Type::I32, {a, b});
    case Type::U32:
      return kb.alu(Op::Minu, Type::U32, {a, b});
    case Type::F32:
      return kb.alu(Op::Fmin, Type::F32, {a, b});
    case Type::Bool:
      break;
  }
  bad_type(kb, "min", a.type());
}

Value max(const Value& a, const Value& b) {
  KernelBuilder& kb = builder_of(a, b, "max");
  switch (a.type()) {
    case Type::I32:
      return kb.alu(Op::Max, Type::I32, {a, b});
    case Type::U32:
      return kb.alu(Op::Maxu, Type::U32, {a, b});
    case Type::F32:
      return kb.alu(Op::Fmax, Type::F32, {a, b});
    case Type::Bool:
      break;
  }
  bad_type(kb, "max", a.type());
}

Value fma(const Value& a, const Value& b, const Value& c) {
  KernelBuilder& kb = builder_of(a, b, "fma");
  builder_of(a, c, "fma");
  if (a.type() == Type::F32) return kb.alu(Op::Ffma, Type::F32, {a, b, c});
  if (is_int(a.type())) return kb.alu(Op::Mad, a.type(), {a, b, c});
  bad_type(kb, "fma", a.type());
}

Value select(const Value& cond, const Value& if_true, const Value& if_false) {
  KernelBuilder& kb = builder_of(if_true, if_false, "select");
  builder_of(cond, "select condition");
  return kb.alu(Op::Sel, if_true.type(), {if_true, if_false, cond});
}

Value abs(const Value& a) {
  KernelBuilder& kb = builder_of(a, "abs");
  if (a.type() == Type::F32) return kb.alu(Op::Fabs, Type::F32, {a});
  if (a.type() == Type::I32) return max(a, -a);
  if (a.type() == Type::U32) return a;
  bad_type(kb, "abs", a.type());
}

Value floor(const Value& a) { return float_unary(a, "floor", Op::Ffloor); }
Value ceil(const Value& a) { return float_unary(a, "ceil", Op::Fceil); }
Value exp(const Value& a) { return float_unary(a, "exp", Op::Fexp); }
Value log(const Value& a) { return float_unary(a, "log", Op::Flog); }
Value rcp(const Value& a) { return float_unary(a, "rcp", Op::Frcp); }
Value rsqrt(const Value& a) { return float_unary(a, "rsqrt", Op::Frsq); }
Value sqrt(const Value& a) { return float_unary(a, "sqrt", Op::Fsqrt); }
Value tanh(const Value& a) { return float_unary(a, "tanh", Op::Ftanh); }
Value to_half(const Value& a) {
  KernelBuilder& kb = builder_of(a, "to_half");
  if (a.type() != Type::F32) bad_type(kb, "to_half", a.type());
  return kb.alu(Op::Ftof16, Type::U32, {a});
}

Value to_f32(const Value& a) {
  KernelBuilder& kb = builder_of(a, "to_f32");
  switch (a.type()) {
    case Type::F32:
      return a;
    case Type::I32:
      return kb.alu(Op::Itof, Type::F32, {a});
    case Type::U32:
    case Type::Bool:
      return kb.alu(Op::Utof, Type::F32, {a});
  }
  bad_type(kb, "to_f32", a.type());
}

Value to_i32(const Value& a) {
  KernelBuilder& kb = builder_of(a, "to_i32");
  if (a.type() == Type::F32) return kb.alu(Op::Ftoi, Type::I32, {a});
  return a.as(Type::I32);
}

Value to_u32(const Value& a) {
  KernelBuilder& kb = builder_of(a, "to_u32");
  if (a.type() == Type::F32) return kb.alu(Op::Ftoi, Type::I32, {a}).as(Type::U32);
  return a.as(Type::U32);
}

Value half_lo(const Value& a) {
  KernelBuilder& kb = builder_of(a, "half_lo");
  if (!is_int(a.type())) bad_type(kb, "half_lo", a.type());
  return kb.alu(Op::F16lo, Type::F32, {a});
}

Value half_hi(const Value& a) {
  KernelBuilder& kb = builder_of(a, "half_hi");
  if (!is_int(a.type())) bad_type(kb, "half_hi", a.type());
  return kb.alu(Op::F16hi, Type::F32, {a});
}

}  // namespace rplayer::runtime::jit
