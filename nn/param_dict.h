// A layer's typed parameters, keyed by ncnn param id: 0=num_output, 1=kernel_w, ...
// An ncnn array key -23300-id (e.g. -23309) is stored under its id (9).
#pragma once

#include <map>
#include <string>
#include <vector>

namespace rplayer::nn {

struct ParamValue {
  enum class Kind { kInt, kFloat, kIntArray, kFloatArray };
  Kind kind = Kind::kInt;
  int i = 0;
  float f = 0.f;
  std::vector<int> ints;      // arrays: both views are kept, converted
  std::vector<float> floats;

  static ParamValue of_int(int v);
  static ParamValue of_float(float v);
  static ParamValue of_ints(std::vector<int> v);
  static ParamValue of_floats(std::vector<float> v);
  bool is_array() const { return kind == Kind::kIntArray || kind == Kind::kFloatArray; }
  std::string str() const;
};

class ParamDict {
 public:
  bool has(int id) const { return values_.count(id) != 0; }
  // Scalars read as either type (converted); an array read as a scalar gives its first
  // element. Missing ids give the default, as ncnn's ParamDict::get does.
  int get_int(int id, int def) const;
  float get_float(int id, float def) const;
  // Arrays; missing gives the default (empty by default). A scalar reads as [value].
  std::vector<int> get_ints(int id, std::vector<int> def = {}) const;
  std::vector<float> get_floats(int id, std::vector<float> def = {}) const;

  void set(int id, ParamValue v) { values_[id] = std::move(v); }
  void set_int(int id, int v) { set(id, ParamValue::of_int(v)); }
  void set_float(int id, float v) { set(id, ParamValue::of_float(v)); }
  void set_ints(int id, std::vector<int> v) { set(id, ParamValue::of_ints(std::move(v))); }
  void set_floats(int id, std::vector<float> v) {
    set(id, ParamValue::of_floats(std::move(v)));
  }
  void erase(int id) { values_.erase(id); }

  const std::map<int, ParamValue>& values() const { return values_; }
  // ncnn .param syntax: "0=64 1=3 -23309=2,0,1".
  std::string str() const;

 private:
  std::map<int, ParamValue> values_;
};

}  // namespace rplayer::nn
