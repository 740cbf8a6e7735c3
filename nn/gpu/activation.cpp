#include "nn/gpu/activation.h"

#include <cfloat>
#include <cstdio>

namespace rplayer::nn::gpu {

using runtime::jit::KernelBuilder;
using runtime::jit::Value;
using Kind = GpuActivation::Kind;

GpuActivation GpuActivation::from_fused(const Activation& act) {
  switch (act.type) {
    case 1:
      return {Kind::kRelu};
    case 2:
      return {Kind::kLeakyRelu, act.a};
    case 3:
      return {Kind::kClip, act.a, act.b};
    case 4:
      return {Kind::kSigmoid};
    case 5:
      return {Kind::kMish};
    case 6:
      return {Kind::kHardSwish, act.a, act.b};
    default:
      return {};
  }
}

std::optional<GpuActivation> GpuActivation::from_layer(const Layer& l) {
  const ParamDict& p = l.params;
  const std::string& t = l.type;
  if (t == "ReLU") return GpuActivation{Kind::kLeakyRelu, p.get_float(0, 0.f)};
  if (t == "Clip")
    return GpuActivation{Kind::kClip, p.get_float(0, -FLT_MAX), p.get_float(1, FLT_MAX)};
  if (t == "Sigmoid") return GpuActivation{Kind::kSigmoid};
  if (t == "Mish") return GpuActivation{Kind::kMish};
  if (t == "HardSwish")
    return GpuActivation{Kind::kHardSwish, p.get_float(0, 0.2f), p.get_float(1, 0.5f)};
  if (t == "Swish") return GpuActivation{Kind::kSwish};
  if (t == "HardSigmoid")
    return GpuActivation{Kind::kHardSigmoid, p.get_float(0, 0.2f), p.get_float(1, 0.5f)};
  if (t == "TanH") return GpuActivation{Kind::kTanH};
  if (t == "ELU") return GpuActivation{Kind::kElu, p.get_float(0, 0.1f)};
  return std::nullopt;
}

std::string GpuActivation::tag() const {
  char buf[64];
  switch (kind) {
    case Kind::kNone:
      return "";
    case Kind::kRelu:
      return "relu";
    case Kind::kLeakyRelu:
      std::snprintf(buf, sizeof buf, "leaky(%g)", a);
      return buf;
    case Kind::kClip:
      std::snprintf(buf, sizeof buf, "clip(%g,%g)", a, b);
      return buf;
    case Kind::kSigmoid:
      return "sigmoid";
    case Kind::kMish:
      return "mish";
    case Kind::kHardSwish:
      std::snprintf(buf, sizeof buf, "hswish(%g,%g)", a, b);
      return buf;
    case Kind::kSwish:
      return "swish";
    case Kind::kHardSigmoid:
      std::snprintf(buf, sizeof buf, "hsigmoid(%g,%g)", a, b);
      return buf;
    case Kind::kTanH:
      return "tanh";
    case Kind::kElu:
      std::snprintf(buf, sizeof buf, "elu(%g)", a);
      return buf;
  }
  return "";
}

Value apply_activation(KernelBuilder& kb, const GpuActivation& act, const Value& v) {
  switch (act.kind) {
    case Kind::kNone:
      return v;
    case Kind::kRelu:
      return select(v > 0.0f, v, 0.0f);
    case Kind::kLeakyRelu:
      return select(v > 0.0f, v, v * act.a);
    case Kind::kClip:
      return min(max(v, act.a), act.b);
    case Kind::kSigmoid:
      return kb.f32(1.0f) / (exp(-v) + 1.0f);
    case Kind::kMish:
      return v * tanh(log(exp(v) + 1.0f));
    case Kind::kHardSwish: {
      // The thresholds in float, as the CPU reference derives them.
      const float lower = -act.b / act.a, upper = 1.f / act.a + lower;
      const Value mid = v * fma(v, v.lit(act.a), v.lit(act.b));
      return select(v < lower, v.lit(0.0f), select(v > upper, v, mid));
    }
    case Kind::kSwish:
      return v / (exp(-v) + 1.0f);
    case Kind::kHardSigmoid:
      return min(max(fma(v, v.lit(act.a), v.lit(act.b)), 0.0f), 1.0f);
    case Kind::kTanH:
      return tanh(v);
    case Kind::kElu:
      return select(v < 0.0f, (exp(v) - 1.0f) * act.a, v);
  }
  return v;
}

}  // namespace rplayer::nn::gpu
