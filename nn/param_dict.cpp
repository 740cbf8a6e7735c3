#include "nn/param_dict.h"

#include <cstdint>
#include <cstdio>

namespace rplayer::nn {

namespace {
// A float parameter read as an int. Converting a float outside int's range is undefined
// behaviour (found by fuzz/fuzz_ncnn: "0=1e27"), so saturate; NaN reads as 0.
int to_int(float f) {
  if (!(f == f)) return 0;
  if (f >= 2147483648.f) return INT32_MAX;
  if (f <= -2147483648.f) return INT32_MIN;
  return int(f);
}
}  // namespace

ParamValue ParamValue::of_int(int v) {
  ParamValue p;
  p.kind = Kind::kInt;
  p.i = v;
  p.f = float(v);
  return p;
}

ParamValue ParamValue::of_float(float v) {
  ParamValue p;
  p.kind = Kind::kFloat;
  p.f = v;
  p.i = to_int(v);
  return p;
}

ParamValue ParamValue::of_ints(std::vector<int> v) {
  ParamValue p;
  p.kind = Kind::kIntArray;
  p.floats.assign(v.begin(), v.end());
  p.ints = std::move(v);
  return p;
}

ParamValue ParamValue::of_floats(std::vector<float> v) {
  ParamValue p;
  p.kind = Kind::kFloatArray;
  for (float f : v) p.ints.push_back(to_int(f));
  p.floats = std::move(v);
  return p;
}

static std::string format_float(float f) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%e", double(f));
  return buf;
}

std::string ParamValue::str() const {
  switch (kind) {
    case Kind::kInt: return std::to_string(i);
    case Kind::kFloat: return format_float(f);
    case Kind::kIntArray: {
      std::string s = std::to_string(ints.size());
      for (int v : ints) s += "," + std::to_string(v);
      return s;
    }
    case Kind::kFloatArray: {
      std::string s = std::to_string(floats.size());
      for (float v : floats) s += "," + format_float(v);
      return s;
    }
  }
  return {};
}

int ParamDict::get_int(int id, int def) const {
  auto it = values_.find(id);
  if (it == values_.end()) return def;
  const ParamValue& v = it->second;
  if (v.is_array()) return v.ints.empty() ? def : v.ints[0];
  return v.kind == ParamValue::Kind::kInt ? v.i : to_int(v.f);
}

float ParamDict::get_float(int id, float def) const {
  auto it = values_.find(id);
  if (it == values_.end()) return def;
  const ParamValue& v = it->second;
  if (v.is_array()) return v.floats.empty() ? def : v.floats[0];
  return v.kind == ParamValue::Kind::kFloat ? v.f : float(v.i);
}

std::vector<int> ParamDict::get_ints(int id, std::vector<int> def) const {
  auto it = values_.find(id);
  if (it == values_.end()) return def;
  const ParamValue& v = it->second;
  if (v.is_array()) return v.ints;
  return {v.kind == ParamValue::Kind::kInt ? v.i : to_int(v.f)};
}

std::vector<float> ParamDict::get_floats(int id, std::vector<float> def) const {
  auto it = values_.find(id);
  if (it == values_.end()) return def;
  const ParamValue& v = it->second;
  if (v.is_array()) return v.floats;
  return {v.kind == ParamValue::Kind::kFloat ? v.f : float(v.i)};
}

std::string ParamDict::str() const {
  std::string s;
  for (const auto& [id, v] : values_) {
    if (!s.empty()) s += " ";
    s += std::to_string(v.is_array() ? -23300 - id : id) + "=" + v.str();
  }
  return s;
}

}  // namespace rplayer::nn
