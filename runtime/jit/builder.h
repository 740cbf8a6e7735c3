// KernelBuilder: writes kernel IR (runtime/jit/ir.h) from C++.
//
//   KernelBuilder kb("relu");
//   Value in = kb.buffer("in"), out = kb.buffer("out"), n = kb.scalar("n", Type::U32);
//   Value i = kb.global_id_x();
//   kb.if_(i < n, [&] {
//     Value off = i << 2;
//     kb.store(out + off, max(kb.load(in + off), 0.0f));
//   });
//   Kernel k = kb.finish();
//
// Values are immutable (a Value taken from a Var is a snapshot); Vars are assigned in
// place. Control flow is structured, with lambdas for bodies:
//   if_/if_else   lane-masked when the condition differs between lanes, else a branch;
//   for_          a uniform loop (bounds the same in all lanes), unrollable;
//   while_        a lane-divergent loop: lanes leave as their condition turns false.
// A Value may be used only inside the region (body) that defined it or regions nested in
// it, because lanes masked off in a region never computed it. Mistakes throw
// runtime::Error naming the kernel.
#pragma once

#include <bit>
#include <cstdint>
#include <functional>
#include <string>
#include <type_traits>
#include <vector>

#include "runtime/error.h"
#include "runtime/jit/ir.h"

namespace rplayer::runtime::jit {

class KernelBuilder;

template <class T>
concept Literal = std::is_arithmetic_v<T>;

class Value {
 public:
  Value() = default;
  bool valid() const { return b_ != nullptr; }
  Type type() const { return type_; }
  int width() const { return width_; }
  bool uniform() const { return uniform_; }
  bool is_const() const { return op_.is_imm(); }
  const Operand& operand() const { return op_; }
  KernelBuilder* builder() const { return b_; }
  // Component k of a 4-wide value.
  Value operator[](int k) const;
  // The same bits seen as another type (no instruction).
  Value as(Type t) const;
  // A constant of this value's type (float literals only for f32).
  template <Literal T>
  Value lit(T v) const;

 private:
  friend class KernelBuilder;
  Value(KernelBuilder* b, Operand op, Type t, int width, bool uniform)
      : b_(b), op_(op), type_(t), width_(uint8_t(width)), uniform_(uniform) {}
  Value lit_bits(uint32_t bits) const;

  KernelBuilder* b_ = nullptr;
  Operand op_;
  Type type_ = Type::U32;
  uint8_t width_ = 1;
  bool uniform_ = true;
};

class Var;

// `acc[k]` of a 4-wide Var: reads and assigns one component.
class VarComponent {
 public:
  operator Value() const;  // NOLINT: reads like a Value
  VarComponent& operator=(const Value& v);
  VarComponent& operator=(const VarComponent& v) { return *this = Value(v); }

 private:
  friend class Var;
  VarComponent(const Var& v, int k) : var_(v), k_(k) {}
  const Var& var_;
  int k_;
};

// A mutable kernel variable (one or four registers). Copying a Var copies the handle;
// assigning to a Var emits an assignment (except into a default-constructed one, which
// binds it).
class Var {
 public:
  Var() = default;
  Var(const Var&) = default;
  Var& operator=(const Var& v);
  Var& operator=(const Value& v);
  template <Literal T>
  Var& operator=(T v) {
    return *this = get().lit(v);
  }
  Value get() const;                        // snapshot of the current value
  operator Value() const { return get(); }  // NOLINT: reads like a Value
  VarComponent operator[](int k) const { return VarComponent(*this, k); }
  Value component(int k) const;
  void set(int k, const Value& v);
  Var& operator+=(const Value& v);
  Var& operator-=(const Value& v);
  Var& operator*=(const Value& v);
  bool valid() const { return b_ != nullptr; }
  Type type() const;
  int width() const;

 private:
  friend class KernelBuilder;
  Var(KernelBuilder* b, uint32_t vreg) : b_(b), vreg_(vreg) {}
  KernelBuilder* b_ = nullptr;
  uint32_t vreg_ = kNoVReg;
};

// An integer bound of a for_ loop: a Value or a C++ integer (which takes the type of the
// Value bounds; with literals only, u32 if any literal is unsigned, else i32).
struct Bound {
  Bound(const Value& v) : value(v) {}      // NOLINT
  Bound(const Var& v) : value(v.get()) {}  // NOLINT
  template <class T>
  requires std::is_integral_v<T> Bound(T v)
      : literal(int64_t(v)), is_literal(true), is_unsigned(std::is_unsigned_v<T>) {}  // NOLINT
  Value value;
  int64_t literal = 0;
  bool is_literal = false;
  bool is_unsigned = false;
};

class KernelBuilder {
 public:
  explicit KernelBuilder(std::string name);
  KernelBuilder(const KernelBuilder&) = delete;
  KernelBuilder& operator=(const KernelBuilder&) = delete;

  const std::string& name() const { return k_.name; }

  // --- Parameters, delivered as uniforms in declaration order.
  Value buffer(const std::string& name);  // a buffer's GPU byte address (u32)
  Value scalar(const std::string& name, Type type);

  // --- Specialization constants: fixed when the kernel is compiled, folded as constants.
  Value spec(const std::string& name, Type type, uint32_t default_bits);
  Value spec_u32(const std::string& name, uint32_t default_value = 0);
  Value spec_i32(const std::string& name, int32_t default_value = 0);
  Value spec_f32(const std::string& name, float default_value = 0.0f);

  // --- Workgroup shape and shared memory.
  void set_workgroup_size(uint32_t n);  // 1..256, else the compiler picks (WorkgroupMode)
  void set_workgroup_mode(WorkgroupMode m);
  // A shared-memory region of fixed_bytes + bytes_per_invocation * wg_size bytes; returns its
  // byte offset (u32, known when compiled). 16-byte aligned.
  Value shared(uint32_t fixed_bytes, uint32_t bytes_per_invocation = 0);

  // --- Constants.
  Value u32(uint32_t v);
  Value i32(int32_t v);
  Value f32(float v);
  Value boolean(bool v);
  Value constant(Type t, uint32_t bits);

  // --- Special values (u32).
  Value global_id_x();  // wg_x * wg_size + local_id
  Value local_id();
  Value lane();
  Value batch();
  Value workgroup_id(int dim);    // 0..2
  Value num_workgroups(int dim);  // 0..2
  Value workgroup_size();         // a constant once compiled
  Value qpu();

  // --- Variables.
  Var var(const Value& init);          // per lane
  Var uniform_var(const Value& init);  // same in all lanes; assign only uniform values
  Var var4(const Value& init);         // 4 components: a copy of a 4-wide init, or 4 x a scalar
  Var var4(const Value& x, const Value& y, const Value& z, const Value& w);
  Value vec4(const Value& x, const Value& y, const Value& z, const Value& w);

  // --- Memory. Addresses are GPU byte addresses (u32); `offset` is folded into the
  // instruction. load4/store4 move 4 consecutive words per lane; load_uniform(4) loads once
  // for the batch (ldu/ldu4) and needs a uniform address.
  Value load(const Value& addr, int32_t offset = 0, Type t = Type::F32);
  Value load4(const Value& addr, int32_t offset = 0, Type t = Type::F32);
  Value load_uniform(const Value& addr, int32_t offset = 0, Type t = Type::F32);
  Value load_uniform4(const Value& addr, int32_t offset = 0, Type t = Type::F32);
  void store(const Value& addr, const Value& v, int32_t offset = 0);
  void store4(const Value& addr, const Value& v4, int32_t offset = 0);
  Value load_shared(const Value& addr, int32_t offset = 0, Type t = Type::F32);
  void store_shared(const Value& addr, const Value& v, int32_t offset = 0);
  // Workgroup barrier; not allowed under lane-divergent control flow (every batch must
  // reach the same barriers).
  void barrier();

  // --- Control flow.
  void if_(const Value& cond, const std::function<void()>& then_body);
  void if_else(const Value& cond, const std::function<void()>& then_body,
               const std::function<void()>& else_body);
  // for (i = begin; i < end; i += step): uniform bounds; step a nonzero constant or a
  // positive uniform value. unroll: kNoUnroll, kFullUnroll or a factor, applied when the
  // trip count is known at compile time (constants and specialization constants).
  void for_(const Bound& begin, const Bound& end, const Bound& step,
            const std::function<void(Value)>& body, int32_t unroll = kNoUnroll);
  // while (cond()) body(); per lane.
  void while_(const std::function<Value()>& cond, const std::function<void()>& body);

  Kernel finish();

  // --- Low level: one ISA operation on scalar values (used by the operators below).
  Value alu(isa::Op op, Type result, std::initializer_list<Value> srcs);
  [[noreturn]] void fail(const std::string& msg) const;

 private:
  friend class Value;
  friend class Var;
  friend class VarComponent;
  struct Region {
    int parent;
    bool divergent;  // lanes may be masked off relative to the parent
  };

  uint32_t new_vreg(Type t, int width, bool is_var, bool uniform);
  void emit(const Inst& in) { k_.insts.push_back(in); }
  void emit_marker(InstKind kind);
  void emit_store(isa::Op op, const Value& addr, const Value& v, int32_t offset);
  void check_usable(const Value& v, const char* what) const;
  void check_var_assignable(uint32_t vreg, const Value& v) const;
  bool region_visible(int region) const;
  void open_region(bool divergent);
  void close_region();
  void assign(uint32_t vreg, uint8_t comp, const Value& v);
  Value read_var(uint32_t vreg, uint8_t comp);
  Value load_op(isa::Op op, const Value& addr, int32_t offset, Type t, int width, bool uni);
  Value sreg(isa::Sreg s, bool uniform);

  Kernel k_;
  std::vector<Inst> param_insts_;
  std::vector<int> vreg_region_;
  std::vector<Region> regions_;
  std::vector<int> open_;  // region stack; open_.back() is current
  bool finished_ = false;
};

// ---- Operators and functions on Values. Types must match (a C++ literal takes the other
// operand's type). Comparisons give Bool (0/1). '/' is fdiv (f32) or divu (u32); '%' remu;
// '>>' is logical for u32 and arithmetic for i32.
Value operator+(const Value& a, const Value& b);
Value operator-(const Value& a, const Value& b);
Value operator*(const Value& a, const Value& b);
Value operator/(const Value& a, const Value& b);
Value operator%(const Value& a, const Value& b);
Value operator&(const Value& a, const Value& b);
Value operator|(const Value& a, const Value& b);
Value operator^(const Value& a, const Value& b);
Value operator<<(const Value& a, const Value& b);
Value operator>>(const Value& a, const Value& b);
Value operator<(const Value& a, const Value& b);
Value operator<=(const Value& a, const Value& b);
Value operator>(const Value& a, const Value& b);
Value operator>=(const Value& a, const Value& b);
Value operator==(const Value& a, const Value& b);
Value operator!=(const Value& a, const Value& b);
Value operator&&(const Value& a, const Value& b);
Value operator||(const Value& a, const Value& b);
Value operator-(const Value& a);
Value operator!(const Value& a);
Value operator~(const Value& a);

#define RPLAYER_JIT_LITERAL_OPS(OP)        \
  template <Literal T>                     \
  Value operator OP(const Value& a, T b) { \
    return a OP a.lit(b);                  \
  }                                        \
  template <Literal T>                     \
  Value operator OP(T a, const Value& b) { \
    return b.lit(a) OP b;                  \
  }
RPLAYER_JIT_LITERAL_OPS(+)
RPLAYER_JIT_LITERAL_OPS(-)
RPLAYER_JIT_LITERAL_OPS(*)
RPLAYER_JIT_LITERAL_OPS(/)
RPLAYER_JIT_LITERAL_OPS(%)
RPLAYER_JIT_LITERAL_OPS(&)
RPLAYER_JIT_LITERAL_OPS(|)
RPLAYER_JIT_LITERAL_OPS(^)
RPLAYER_JIT_LITERAL_OPS(<<)
RPLAYER_JIT_LITERAL_OPS(>>)
RPLAYER_JIT_LITERAL_OPS(<)
RPLAYER_JIT_LITERAL_OPS(<=)
RPLAYER_JIT_LITERAL_OPS(>)
RPLAYER_JIT_LITERAL_OPS(>=)
RPLAYER_JIT_LITERAL_OPS(==)
RPLAYER_JIT_LITERAL_OPS(!=)
#undef RPLAYER_JIT_LITERAL_OPS

Value min(const Value& a, const Value& b);
Value max(const Value& a, const Value& b);
template <Literal T>
Value min(const Value& a, T b) {
  return min(a, a.lit(b));
}
template <Literal T>
Value max(const Value& a, T b) {
  return max(a, a.lit(b));
}
Value fma(const Value& a, const Value& b, const Value& c);  // a * b + c (ffma / mad)
Value select(const Value& cond, const Value& if_true, const Value& if_false);
template <Literal T>
Value select(const Value& cond, const Value& if_true, T if_false) {
  return select(cond, if_true, if_true.lit(if_false));
}
Value abs(const Value& a);
Value floor(const Value& a);
Value ceil(const Value& a);
Value exp(const Value& a);
Value log(const Value& a);
Value rcp(const Value& a);
Value rsqrt(const Value& a);
Value sqrt(const Value& a);
Value tanh(const Value& a);
Value to_f32(const Value& a);   // from i32 / u32 (value conversion)
Value to_i32(const Value& a);   // from f32 (truncating, saturating) or u32 (bits)
Value to_u32(const Value& a);   // from i32 / bool (bits)
Value half_lo(const Value& a);  // f32 of the half in bits 15..0
Value half_hi(const Value& a);
Value to_half(const Value& a);  // u32 with the half in bits 15..0

// ---- Template definitions.

template <Literal T>
Value Value::lit(T v) const {
  if (type_ == Type::F32) {
    const float f = float(v);
    return lit_bits(std::bit_cast<uint32_t>(f));
  }
  if constexpr (std::is_floating_point_v<T>) {
    if (double(int64_t(v)) != double(v))
      throw Error("kernel builder: fractional literal " + std::to_string(v) + " used with a " +
                  type_name(type_) + " value");
  }
  return lit_bits(uint32_t(int64_t(v)));
}

}  // namespace rplayer::runtime::jit
