#include "nn/onnx_loader.h"

#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <numeric>

#include "nn/layer_params.h"
#include "nn/layer_spec.h"
#include "nn/model_error.h"
#include "nn/ncnn_loader.h"

namespace rplayer::nn {
namespace {

using Dims = std::vector<int64_t>;

// A constant (initializer or Constant node); values converted to float. `source` is the
// model-file range the values are stored in (fp32 raw_data), kept while they pass through
// unchanged (Identity, Reshape-like folds), nullptr for values converted or computed.
struct Const {
  Dims dims;
  std::vector<float> v;
  std::shared_ptr<const WeightSource> source;
  size_t count() const { return v.size(); }
};

// Byte range of a field's payload in the serialized model.
struct ByteRange {
  uint64_t offset = 0, length = 0;
};

// Where the raw_data of each tensor lies in the model file: protobuf's parser copies the
// bytes, so the wire format is walked once more for their offsets (ModelProto.graph = 7;
// GraphProto.node = 1, .initializer = 5; NodeProto.attribute = 5; AttributeProto.t = 5;
// TensorProto.raw_data = 9). Anything unexpected just leaves a tensor without a range.
class RawDataRanges {
 public:
  explicit RawDataRanges(const std::vector<uint8_t>& bytes) : base_(bytes.data()) {
    fields(base_, base_ + bytes.size(), [&](uint32_t f, const uint8_t* b, const uint8_t* e) {
      if (f == 7) graph(b, e);
    });
  }
  const ByteRange* initializer(size_t i) const {
    auto it = initializers_.find(i);
    return it == initializers_.end() ? nullptr : &it->second;
  }
  const ByteRange* attribute(size_t node, size_t attr) const {
    auto it = attributes_.find({node, attr});
    return it == attributes_.end() ? nullptr : &it->second;
  }

 private:
  using Visit = std::function<void(uint32_t field, const uint8_t* begin, const uint8_t* end)>;

  static bool varint(const uint8_t*& p, const uint8_t* end, uint64_t* v) {
    *v = 0;
    for (int shift = 0; shift < 64 && p < end; shift += 7) {
      const uint8_t b = *p++;
      *v |= uint64_t(b & 0x7f) << shift;
      if (!(b & 0x80)) return true;
    }
    return false;
  }

  // Calls visit for every length-delimited field of the message in [p, end).
  static void fields(const uint8_t* p, const uint8_t* end, const Visit& visit) {
    while (p < end) {
      uint64_t key, n;
      if (!varint(p, end, &key)) return;
      switch (key & 7) {
        case 0:
          if (!varint(p, end, &n)) return;
          break;
        case 1:
          p += 8;
          break;
        case 5:
          p += 4;
          break;
        case 2:
          if (!varint(p, end, &n) || n > uint64_t(end - p)) return;
          visit(uint32_t(key >> 3), p, p + n);
          p += n;
          break;
        default:
          return;  // groups: not used by ONNX
      }
    }
  }

  // raw_data, else packed float_data (field 4): both are the values as little-endian
  // fp32 bytes in the file (the caller checks which one the tensor has).
  std::optional<ByteRange> raw_data(const uint8_t* b, const uint8_t* e) const {
    std::optional<ByteRange> raw, packed;
    fields(b, e, [&](uint32_t f, const uint8_t* rb, const uint8_t* re) {
      if (f == 9) raw = ByteRange{uint64_t(rb - base_), uint64_t(re - rb)};
      if (f == 4) packed = ByteRange{uint64_t(rb - base_), uint64_t(re - rb)};
    });
    return raw ? raw : packed;
  }

  void graph(const uint8_t* b, const uint8_t* e) {
    size_t nodes = 0, inits = 0;
    fields(b, e, [&](uint32_t f, const uint8_t* fb, const uint8_t* fe) {
      if (f == 5) {
        if (auto r = raw_data(fb, fe)) initializers_[inits] = *r;
        ++inits;
      } else if (f == 1) {
        size_t attrs = 0;
        fields(fb, fe, [&](uint32_t af, const uint8_t* ab, const uint8_t* ae) {
          if (af != 5) return;
          fields(ab, ae, [&](uint32_t tf, const uint8_t* tb, const uint8_t* te) {
            if (tf != 5) return;
            if (auto r = raw_data(tb, te)) attributes_[{nodes, attrs}] = *r;
          });
          ++attrs;
        });
        ++nodes;
      }
    });
  }

  const uint8_t* base_;
  std::map<size_t, ByteRange> initializers_;
  std::map<std::pair<size_t, size_t>, ByteRange> attributes_;
};

// The stored range of a fp32 tensor read as the transpose of a [rows][count / rows] matrix.
std::shared_ptr<const WeightSource> transposed(const std::shared_ptr<const WeightSource>& s,
                                               int rows) {
  if (!s || s->transposed_rows != 0) return nullptr;
  auto t = std::make_shared<WeightSource>(*s);
  t->transposed_rows = uint32_t(rows);
  return t;
}

Tensor weight_tensor(Shape shape, std::vector<float> v, std::string name,
                     std::shared_ptr<const WeightSource> source) {
  Tensor t(shape, std::move(v), std::move(name));
  t.set_source(std::move(source));
  return t;
}

// Dimensions come from the model file: a product past 64 bits is a malformed model, not
// signed overflow (found by fuzz/fuzz_onnx).
int64_t product(const Dims& d) {
  int64_t n = 1;
  for (int64_t x : d)
    if (__builtin_mul_overflow(n, x, &n)) throw ModelError("tensor dimensions overflow 64 bits");
  return n;
}

std::string dims_str(const Dims& d) {
  std::string s = "[";
  for (size_t i = 0; i < d.size(); i++) s += (i ? "," : "") + std::to_string(d[i]);
  return s + "]";
}

class Converter {
 public:
  Converter(const onnx::ModelProto& model, std::shared_ptr<const ModelFile> file)
      : model_(model), source_(file->path), file_(std::move(file)), ranges_(file_->bytes) {
    g_.source = source_;
    for (const auto& op : model.opset_import())
      if (op.domain().empty() || op.domain() == "ai.onnx") opset_ = int(op.version());
  }

  Graph convert() {
    const onnx::GraphProto& graph = model_.graph();
    for (int i = 0; i < graph.initializer_size(); i++) {
      const onnx::TensorProto& t = graph.initializer(i);
      consts_[t.name()] = to_const(t, "", ranges_.initializer(size_t(i)));
    }
    for (const onnx::ValueInfoProto& in : graph.input())
      if (!consts_.count(in.name())) add_input(in);
    for (int i = 0; i < graph.node_size(); i++) {
      node_ = &graph.node(i);
      node_index_ = size_t(i);
      node_name_ = node_->name().empty() ? node_->op_type() + "_" + std::to_string(i)
                                         : node_->name();
      convert_node();
    }
    node_ = nullptr;
    // ONNX outputs keep their names: alias blobs get a pass-through Noop.
    for (const onnx::ValueInfoProto& out : graph.output()) {
      if (consts_.count(out.name()))
        throw ModelError(source_ + ": graph output '" + out.name() + "' is a constant");
      const std::string b = blob(out.name());
      if (b != out.name()) add_layer("Noop", out.name(), {b}, {out.name()});
    }
    return std::move(g_);
  }

 private:
  // ---- errors --------------------------------------------------------------------
  [[noreturn]] void fail(const std::string& msg) const {
    if (node_)
      throw ModelError(source_ + ": node " + node_name_ + " (" + node_->op_type() + "): " + msg);
    throw ModelError(source_ + ": " + msg);
  }
  [[noreturn]] void fail_attr(const std::string& attr, const std::string& msg) const {
    fail("attribute '" + attr + "': " + msg);
  }

  // ---- tensors -------------------------------------------------------------------
  Const to_const(const onnx::TensorProto& t, const std::string& where, const ByteRange* stored) {
    Const c;
    for (int64_t d : t.dims()) {
      if (d < 0) fail("tensor '" + t.name() + "'" + where + " has a negative dimension");
      c.dims.push_back(d);
    }
    const int64_t n = product(c.dims);
    if (t.data_location() == onnx::TensorProto::EXTERNAL)
      fail("tensor '" + t.name() + "'" + where + " uses external data, which is not supported");
    const std::string& raw = t.raw_data();
    auto from_raw = [&](auto tag) {
      using T = decltype(tag);
      if (raw.size() != size_t(n) * sizeof(T))
        fail("tensor '" + t.name() + "'" + where + ": raw_data has " +
             std::to_string(raw.size()) + " bytes for " + std::to_string(n) + " values");
      c.v.resize(n);
      for (int64_t i = 0; i < n; i++) {
        T x;
        std::memcpy(&x, raw.data() + i * sizeof(T), sizeof(T));
        c.v[i] = float(x);
      }
    };
    switch (t.data_type()) {
      case onnx::TensorProto::FLOAT:
        if (!raw.empty()) from_raw(float{});
        else c.v.assign(t.float_data().begin(), t.float_data().end());
        break;
      case onnx::TensorProto::DOUBLE:
        if (!raw.empty()) from_raw(double{});
        else for (double x : t.double_data()) c.v.push_back(float(x));
        break;
      case onnx::TensorProto::INT64:
        if (!raw.empty()) from_raw(int64_t{});
        else for (int64_t x : t.int64_data()) c.v.push_back(float(x));
        break;
      case onnx::TensorProto::INT32:
        if (!raw.empty()) from_raw(int32_t{});
        else for (int32_t x : t.int32_data()) c.v.push_back(float(x));
        break;
      default:
        fail("tensor '" + t.name() + "'" + where + " has unsupported data type " +
             std::to_string(t.data_type()));
    }
    if (int64_t(c.v.size()) != n)
      fail("tensor '" + t.name() + "'" + where + " has " + std::to_string(c.v.size()) +
           " values for dims " + dims_str(c.dims));
    // fp32 raw_data and packed float_data are the values as stored, little-endian fp32
    // bytes in the file; the integer / double types are converted here, so they have no
    // source. The range is checked against what protobuf parsed.
    const void* parsed = raw.empty() ? static_cast<const void*>(t.float_data().data())
                                     : static_cast<const void*>(raw.data());
    const uint64_t parsed_bytes = raw.empty() ? uint64_t(t.float_data_size()) * 4 : raw.size();
    if (stored && t.data_type() == onnx::TensorProto::FLOAT && n > 0 &&
        parsed_bytes == uint64_t(n) * 4 && stored->length == parsed_bytes &&
        stored->offset + stored->length <= file_->bytes.size() &&
        std::memcmp(file_->bytes.data() + stored->offset, parsed, parsed_bytes) == 0) {
      auto src = std::make_shared<WeightSource>();
      src->file = file_;
      src->offset = stored->offset;
      src->length = stored->length;
      src->storage = StorageType::kFloat32;
      src->count = uint64_t(n);
      c.source = std::move(src);
    }
    return c;
  }

  std::string blob(const std::string& value) const {
    auto it = alias_.find(value);
    return it == alias_.end() ? value : it->second;
  }
  bool is_const(const std::string& value) const { return consts_.count(value) != 0; }
  const Const& constant(int input, const std::string& what) const {
    if (input >= node_->input_size() || node_->input(input).empty())
      fail("missing input " + std::to_string(input) + " (" + what + ")");
    auto it = consts_.find(node_->input(input));
    if (it == consts_.end())
      fail("input " + std::to_string(input) + " (" + what + ", '" + node_->input(input) +
           "') must be a constant (initializer or Constant node)");
    return it->second;
  }
  bool has_input(int i) const { return i < node_->input_size() && !node_->input(i).empty(); }

  // The dynamic blob behind input i, with its ncnn shape.
  std::string dynamic(int i) const {
    if (!has_input(i)) fail("missing input " + std::to_string(i));
    const std::string b = blob(node_->input(i));
    if (is_const(node_->input(i)) || g_.find_blob(b) < 0)
      fail("input " + std::to_string(i) + " ('" + node_->input(i) + "') is not computed by "
           "any earlier node");
    return b;
  }
  const Shape& shape_of(const std::string& b) const { return shapes_.at(g_.blob_index(b)); }
  int rank_of(const std::string& b) const { return shape_of(b).dims + 1; }
  Dims onnx_dims(const std::string& b) const {
    Dims d{1};
    for (int e : shape_of(b).outer_dims()) d.push_back(e);
    return d;
  }

  // ---- attributes ----------------------------------------------------------------
  const onnx::AttributeProto* attr(const std::string& name) const {
    for (const auto& a : node_->attribute())
      if (a.name() == name) return &a;
    return nullptr;
  }
  int64_t attr_int(const std::string& name, int64_t def) const {
    const auto* a = attr(name);
    if (!a) return def;
    if (a->type() != onnx::AttributeProto::INT) fail_attr(name, "expected an int");
    return a->i();
  }
  float attr_float(const std::string& name, float def) const {
    const auto* a = attr(name);
    if (!a) return def;
    if (a->type() != onnx::AttributeProto::FLOAT) fail_attr(name, "expected a float");
    return a->f();
  }
  Dims attr_ints(const std::string& name, Dims def = {}) const {
    const auto* a = attr(name);
    if (!a) return def;
    if (a->type() != onnx::AttributeProto::INTS) fail_attr(name, "expected ints");
    return Dims(a->ints().begin(), a->ints().end());
  }
  std::string attr_string(const std::string& name, const std::string& def) const {
    const auto* a = attr(name);
    if (!a) return def;
    if (a->type() != onnx::AttributeProto::STRING) fail_attr(name, "expected a string");
    return a->s();
  }

  // ---- graph building ------------------------------------------------------------
  void add_layer(const std::string& type, const std::string& name,
                 const std::vector<std::string>& ins, const std::vector<std::string>& outs,
                 ParamDict params = {}, std::vector<Tensor> weights = {}) {
    const int li = g_.add_layer(type, name, ins, outs, std::move(params), std::move(weights));
    const Layer& l = g_.layer(li);
    std::vector<Shape> in_shapes;
    for (int b : l.inputs) in_shapes.push_back(shapes_.at(b));
    std::vector<Shape> out;
    try {
      out = l.type == "Input" ? std::vector<Shape>{input_layer_shape(l)}
                              : infer_layer_shapes(l, in_shapes);
    } catch (const ModelError& e) {
      fail(e.what());
    }
    for (size_t i = 0; i < out.size(); i++) shapes_[l.outputs[i]] = out[i];
  }

  std::string out_name(int i = 0) const {
    if (i >= node_->output_size() || node_->output(i).empty())
      fail("missing output " + std::to_string(i));
    return node_->output(i);
  }

  void add_input(const onnx::ValueInfoProto& in) {
    const auto& shape = in.type().tensor_type().shape();
    Dims d;
    for (const auto& dim : shape.dim()) d.push_back(dim.has_dim_value() ? dim.dim_value() : 1);
    if (d.size() < 2 || d.size() > 4 || d[0] != 1)
      throw ModelError(source_ + ": input '" + in.name() + "' has shape " + dims_str(d) +
                       "; only batch-1 inputs of rank 2..4 are supported");
    ParamDict p;
    p.set_int(0, int(d.back()));
    if (d.size() >= 3) p.set_int(1, int(d[d.size() - 2]));
    if (d.size() == 4) p.set_int(2, int(d[1]));
    add_layer("Input", in.name(), {}, {in.name()}, p);
  }

  // A constant as a MemoryData blob with the ncnn shape of `dims` minus the batch.
  std::string memory_data(const std::string& name, const Dims& dims, const std::vector<float>& v,
                          std::shared_ptr<const WeightSource> source) {
    const std::string b = name + "_memorydata";
    if (g_.find_blob(b) >= 0) return b;
    std::vector<int> e;
    for (size_t i = 1; i < dims.size(); i++) e.push_back(int(dims[i]));
    if (e.empty()) e.push_back(1);
    if (e.size() > 4) fail("constant '" + name + "' has too many dims");
    const Shape s = Shape::from_outer_dims(e);
    ParamDict p;
    p.set_int(0, s.w);
    if (s.dims >= 2) p.set_int(1, s.h);
    if (s.dims >= 3) p.set_int(2, s.c);
    if (s.dims == 4) p.set_int(11, s.d);
    add_layer("MemoryData", b, {}, {b}, p, {weight_tensor(s, v, "data", std::move(source))});
    return b;
  }

  // ---- nodes ---------------------------------------------------------------------
  void convert_node() {
    const std::string& op = node_->op_type();
    if (!node_->domain().empty() && node_->domain() != "ai.onnx")
      fail("operator domain '" + node_->domain() + "' is not supported");
    if (op == "Constant") return constant_node();
    if (op == "Identity" || op == "Dropout") return identity();
    // Nodes on constants only are folded where that is simple.
    bool all_const = node_->input_size() > 0;
    for (int i = 0; i < node_->input_size(); i++)
      all_const &= !has_input(i) || is_const(node_->input(i));
    if (all_const && (op == "Reshape" || op == "Transpose" || op == "Flatten" ||
                      op == "Unsqueeze" || op == "Squeeze"))
      return fold();
    if (op == "Conv") return conv();
    if (op == "MaxPool" || op == "AveragePool") return pool();
    if (op == "GlobalAveragePool" || op == "GlobalMaxPool") return global_pool();
    if (op == "Relu") return simple("ReLU");
    if (op == "LeakyRelu") return leaky_relu();
    if (op == "Sigmoid") return simple("Sigmoid");
    if (op == "Tanh") return simple("TanH");
    if (op == "HardSigmoid") return hard_sigmoid();
    if (op == "HardSwish") return hard_swish();
    if (op == "Clip") return clip();
    if (op == "Softmax") return softmax();
    if (op == "Gemm") return gemm();
    if (op == "MatMul") return matmul();
    if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div" || op == "Max" || op == "Min" ||
        op == "Pow")
      return binary(op);
    if (op == "BatchNormalization") return batch_norm();
    if (op == "Flatten") return flatten();
    if (op == "Reshape") return reshape();
    if (op == "Transpose") return transpose();
    if (op == "Concat") return concat();
    if (op == "Pad") return pad();
    if (op == "LRN") return lrn();
    if (op == "Abs" || op == "Neg" || op == "Floor" || op == "Ceil" || op == "Sqrt" ||
        op == "Exp" || op == "Log" || op == "Reciprocal")
      return unary(op);
    fail("unsupported operator " + op + (all_const ? " (on constants)" : ""));
  }

  void constant_node() {
    const auto* a = attr("value");
    if (a) {
      if (a->type() != onnx::AttributeProto::TENSOR) fail_attr("value", "expected a tensor");
      size_t attr_index = 0;
      while (&node_->attribute(int(attr_index)) != a) ++attr_index;
      consts_[out_name()] =
          to_const(a->t(), " (attribute 'value')", ranges_.attribute(node_index_, attr_index));
      return;
    }
    if ((a = attr("value_float"))) consts_[out_name()] = Const{{}, {a->f()}, nullptr};
    else if ((a = attr("value_int"))) consts_[out_name()] = Const{{}, {float(a->i())}, nullptr};
    else if ((a = attr("value_floats")))
      consts_[out_name()] = Const{{a->floats_size()}, {a->floats().begin(), a->floats().end()}, nullptr};
    else if ((a = attr("value_ints"))) {
      Const c{{a->ints_size()}, {}, nullptr};
      for (int64_t x : a->ints()) c.v.push_back(float(x));
      consts_[out_name()] = c;
    } else {
      fail("no supported value attribute (value, value_float(s), value_int(s))");
    }
  }

  void identity() {
    if (is_const(node_->input(0))) consts_[out_name()] = consts_.at(node_->input(0));
    else alias_[out_name()] = dynamic(0);
  }

  void fold() {
    const std::string& op = node_->op_type();
    Const c = constant(0, "data");
    Dims in = c.dims;
    if (op == "Reshape") {
      c.dims = resolve_reshape(in, reshape_spec());
    } else if (op == "Flatten") {
      int64_t axis = attr_int("axis", 1);
      if (axis < 0) axis += int64_t(in.size());
      const int64_t outer = product(Dims(in.begin(), in.begin() + axis));
      c.dims = {outer, product(c.dims) / std::max<int64_t>(outer, 1)};
    } else if (op == "Unsqueeze" || op == "Squeeze") {
      Dims axes = opset_ >= 13 && has_input(1) ? to_dims(constant(1, "axes")) : attr_ints("axes");
      if (op == "Unsqueeze") {
        Dims out = in;
        for (int64_t& a : axes) a = a < 0 ? a + int64_t(in.size() + axes.size()) : a;
        std::sort(axes.begin(), axes.end());
        for (int64_t a : axes) out.insert(out.begin() + a, 1);
        c.dims = out;
      } else {
        Dims out;
        for (size_t i = 0; i < in.size(); i++) {
          bool drop = axes.empty() ? in[i] == 1 : false;
          for (int64_t a : axes) drop |= (a < 0 ? a + int64_t(in.size()) : a) == int64_t(i);
          if (!drop) out.push_back(in[i]);
        }
        c.dims = out;
      }
    } else {  // Transpose
      Dims perm = attr_ints("perm");
      if (perm.empty())
        for (int64_t i = int64_t(in.size()) - 1; i >= 0; i--) perm.push_back(i);
      if (perm.size() != in.size()) fail_attr("perm", "length does not match the rank");
      Dims out(in.size());
      for (size_t i = 0; i < in.size(); i++) out[i] = in[perm[i]];
      std::vector<int64_t> stride(in.size(), 1);
      for (int i = int(in.size()) - 2; i >= 0; i--) stride[i] = stride[i + 1] * in[i + 1];
      std::vector<float> v(c.v.size());
      Dims idx(in.size(), 0);
      for (float& x : v) {
        int64_t src = 0;
        for (size_t i = 0; i < idx.size(); i++) src += idx[i] * stride[perm[i]];
        x = c.v[src];
        for (int i = int(idx.size()) - 1; i >= 0 && ++idx[i] == out[i]; i--) idx[i] = 0;
      }
      c.v = std::move(v);
      c.dims = out;
      c.source = nullptr;  // reordered: no longer the stored order
    }
    consts_[out_name()] = std::move(c);
  }

  static Dims to_dims(const Const& c) {
    Dims d;
    for (float x : c.v) {
      // Outside int64's range (or NaN) the conversion is undefined (found by fuzz/fuzz_onnx).
      if (!(x > -9.2e18f && x < 9.2e18f)) throw ModelError("shape value out of range");
      d.push_back(int64_t(x));
    }
    return d;
  }

  void simple(const std::string& type, ParamDict p = {}) {
    add_layer(type, node_name_, {dynamic(0)}, {out_name()}, std::move(p));
  }

  void leaky_relu() {
    ParamDict p;
    p.set_float(0, attr_float("alpha", 0.01f));
    simple("ReLU", p);
  }

  void hard_sigmoid() {
    ParamDict p;
    p.set_float(0, attr_float("alpha", 0.2f));
    p.set_float(1, attr_float("beta", 0.5f));
    simple("HardSigmoid", p);
  }

  void hard_swish() {
    ParamDict p;
    p.set_float(0, 1.f / 6);
    p.set_float(1, 0.5f);
    simple("HardSwish", p);
  }

  void unary(const std::string& op) {
    static const std::map<std::string, int> types = {
        {"Abs", 0}, {"Neg", 1}, {"Floor", 2}, {"Ceil", 3}, {"Sqrt", 5},
        {"Exp", 7}, {"Log", 8}, {"Reciprocal", 15}};
    ParamDict p;
    p.set_int(0, types.at(op));
    simple("UnaryOp", p);
  }

  void clip() {
    float lo = -INFINITY, hi = INFINITY;
    if (opset_ < 11) {
      lo = attr_float("min", lo);
      hi = attr_float("max", hi);
    } else {
      if (has_input(1)) lo = constant(1, "min").v.at(0);
      if (has_input(2)) hi = constant(2, "max").v.at(0);
    }
    ParamDict p;
    p.set_float(0, std::max(lo, -3.4e38f));
    p.set_float(1, std::min(hi, 3.4e38f));
    simple("Clip", p);
  }

  // ONNX (outer-first, with batch) axis to ncnn axis.
  int ncnn_axis(int64_t axis, int rank, const std::string& attr_name) const {
    if (axis < 0) axis += rank;
    if (axis <= 0 || axis >= rank)
      fail_attr(attr_name, std::to_string(axis) + " is the batch axis or out of range");
    return int(axis - 1);
  }

  void softmax() {
    const std::string x = dynamic(0);
    const int rank = rank_of(x);
    int64_t axis = attr_int("axis", opset_ >= 13 ? -1 : 1);
    if (axis < 0) axis += rank;
    if (opset_ < 13) {
      // Old Softmax flattens to 2-D at `axis`: the same as one axis only when the inner
      // extents are 1, or when it is the last axis.
      const Dims d = onnx_dims(x);
      if (product(Dims(d.begin() + axis + 1, d.end())) != 1 && axis != rank - 1)
        fail_attr("axis", "opset < 13 Softmax over several axes is not supported");
    }
    ParamDict p;
    p.set_int(0, ncnn_axis(axis, rank, "axis"));
    p.set_int(1, 1);
    add_layer("Softmax", node_name_, {x}, {out_name()}, p);
  }

  void conv() {
    const std::string x = dynamic(0);
    if (shape_of(x).dims != 3) fail("only 2-D convolution (rank-4 input) is supported");
    const Const& w = constant(1, "W");
    if (w.dims.size() != 4) fail("weight W must have rank 4, has " + dims_str(w.dims));
    const int group = int(attr_int("group", 1));
    const int M = int(w.dims[0]), kh = int(w.dims[2]), kw = int(w.dims[3]);
    const Dims ks = attr_ints("kernel_shape", {kh, kw});
    if (ks.size() != 2 || ks[0] != kh || ks[1] != kw)
      fail_attr("kernel_shape", dims_str(ks) + " does not match W " + dims_str(w.dims));
    if (int64_t(w.dims[1]) * group != shape_of(x).c)
      fail("W " + dims_str(w.dims) + " with group " + std::to_string(group) + " does not match " +
           std::to_string(shape_of(x).c) + " input channels");
    ParamDict p;
    p.set_int(0, M);
    p.set_int(1, kw);
    p.set_int(11, kh);
    const Dims dil = attr_ints("dilations", {1, 1}), st = attr_ints("strides", {1, 1});
    if (dil.size() != 2) fail_attr("dilations", "expected 2 values");
    if (st.size() != 2) fail_attr("strides", "expected 2 values");
    p.set_int(2, int(dil[1]));
    p.set_int(12, int(dil[0]));
    p.set_int(3, int(st[1]));
    p.set_int(13, int(st[0]));
    set_pads(p, 4, 15, 14, 16, false);
    std::vector<Tensor> weights{weight_tensor(Shape::vec(int(w.count())), w.v, "weight", w.source)};
    if (has_input(2)) {
      const Const& b = constant(2, "B");
      if (int64_t(b.count()) != M) fail("bias B has " + std::to_string(b.count()) + " values");
      p.set_int(5, 1);
      weights.push_back(weight_tensor(Shape::vec(M), b.v, "bias", b.source));
    }
    p.set_int(6, int(w.count()));
    std::string type = "Convolution";
    if (group > 1) {
      type = "ConvolutionDepthWise";
      p.set_int(7, group);
    }
    add_layer(type, node_name_, {x}, {out_name()}, p, std::move(weights));
  }

  // auto_pad / pads to ncnn pad params (ids for left, right, top, bottom); pooling gets
  // SAME as pad_mode instead of -233/-234.
  void set_pads(ParamDict& p, int left, int right, int top, int bottom, bool pooling) {
    const std::string auto_pad = attr_string("auto_pad", "NOTSET");
    if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      const int v = auto_pad == "SAME_UPPER" ? -233 : -234;
      if (pooling) {
        p.set_int(5, auto_pad == "SAME_UPPER" ? 2 : 3);
      } else {
        for (int id : {left, right, top, bottom}) p.set_int(id, v);
      }
      return;
    }
    if (auto_pad != "NOTSET" && auto_pad != "VALID")
      fail_attr("auto_pad", "value '" + auto_pad + "' is not supported");
    const Dims pads = auto_pad == "VALID" ? Dims{0, 0, 0, 0} : attr_ints("pads", {0, 0, 0, 0});
    if (pads.size() != 4) fail_attr("pads", "expected 4 values for 2-D, got " + dims_str(pads));
    p.set_int(top, int(pads[0]));
    p.set_int(left, int(pads[1]));
    p.set_int(bottom, int(pads[2]));
    p.set_int(right, int(pads[3]));
  }

  void pool() {
    const std::string x = dynamic(0);
    if (shape_of(x).dims != 3) fail("only 2-D pooling (rank-4 input) is supported");
    const Dims ks = attr_ints("kernel_shape");
    if (ks.size() != 2) fail_attr("kernel_shape", "expected 2 values, got " + dims_str(ks));
    const Dims st = attr_ints("strides", {1, 1});
    if (st.size() != 2) fail_attr("strides", "expected 2 values");
    for (int64_t d : attr_ints("dilations", {1, 1}))
      if (d != 1) fail_attr("dilations", "dilated pooling is not supported");
    if (node_->output_size() > 1 && !node_->output(1).empty())
      fail("the Indices output is not supported");
    ParamDict p;
    p.set_int(0, node_->op_type() == "MaxPool" ? 0 : 1);
    p.set_int(1, int(ks[1]));
    p.set_int(11, int(ks[0]));
    p.set_int(2, int(st[1]));
    p.set_int(12, int(st[0]));
    // ceil_mode maps to ncnn's full padding, floor mode to valid padding.
    p.set_int(5, attr_int("ceil_mode", 0) ? 0 : 1);
    const std::string auto_pad = attr_string("auto_pad", "NOTSET");
    if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      // Explicit pads rather than ncnn's SAME pad modes: ONNX excludes the padding from
      // an average unless count_include_pad, ncnn's SAME modes always count it.
      const Shape& in = shape_of(x);
      const auto same = [&](int size, int64_t k, int64_t s, int* lo, int* hi) {
        const int64_t out = (size + s - 1) / s;
        const int64_t total = std::max<int64_t>((out - 1) * s + k - size, 0);
        *lo = int(auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2);
        *hi = int(total) - *lo;
      };
      int l, r, t, b;
      same(in.w, ks[1], st[1], &l, &r);
      same(in.h, ks[0], st[0], &t, &b);
      p.set_int(3, l);
      p.set_int(14, r);
      p.set_int(13, t);
      p.set_int(15, b);
      p.set_int(5, 1);
    } else {
      set_pads(p, 3, 14, 13, 15, true);
    }
    p.set_int(6, int(attr_int("count_include_pad", 0)));
    add_layer("Pooling", node_name_, {x}, {out_name()}, p);
  }

  void global_pool() {
    const std::string x = dynamic(0);
    if (shape_of(x).dims != 3) fail("only rank-4 inputs are supported");
    ParamDict p;
    p.set_int(0, node_->op_type() == "GlobalMaxPool" ? 0 : 1);
    p.set_int(4, 1);
    const std::string flat = node_name_ + "_global";
    add_layer("Pooling", node_name_, {x}, {flat}, p);
    // ncnn's global pooling yields a vector; ONNX keeps [1, C, 1, 1].
    ParamDict r;
    r.set_int(0, 1);
    r.set_int(1, 1);
    r.set_int(2, shape_of(x).c);
    add_layer("Reshape", node_name_ + "_reshape", {flat}, {out_name()}, r);
  }

  // y = x W^T (+ b) for a dynamic [1, K] or [1, S, K] x and a constant weight.
  // w_source / bias_source: where w_nk / bias are stored as they are (or transposed).
  void inner_product(const std::string& x, std::vector<float> w_nk, int N,
                     const std::vector<float>* bias,
                     std::shared_ptr<const WeightSource> w_source = nullptr,
                     std::shared_ptr<const WeightSource> bias_source = nullptr) {
    ParamDict p;
    const int size = int(w_nk.size());
    p.set_int(0, N);
    p.set_int(2, size);
    std::vector<Tensor> weights{
        weight_tensor(Shape::vec(size), std::move(w_nk), "weight", std::move(w_source))};
    if (bias) {
      p.set_int(1, 1);
      weights.push_back(weight_tensor(Shape::vec(N), *bias, "bias", std::move(bias_source)));
    }
    add_layer("InnerProduct", node_name_, {x}, {out_name()}, p, std::move(weights));
  }

  void gemm() {
    const std::string a = dynamic(0);
    if (attr_int("transA", 0)) fail_attr("transA", "a transposed dynamic A is not supported");
    if (shape_of(a).dims != 1) fail("A must be [1, K], is " + dims_str(onnx_dims(a)));
    const Const& b = constant(1, "B");
    if (b.dims.size() != 2) fail("B must be 2-D, is " + dims_str(b.dims));
    const bool transB = attr_int("transB", 0);
    const int K = int(transB ? b.dims[1] : b.dims[0]), N = int(transB ? b.dims[0] : b.dims[1]);
    if (K != shape_of(a).w)
      fail("A has K=" + std::to_string(shape_of(a).w) + ", B " + dims_str(b.dims));
    const float alpha = attr_float("alpha", 1.f), beta = attr_float("beta", 1.f);
    std::vector<float> w(size_t(N) * K);
    for (int n = 0; n < N; n++)
      for (int k = 0; k < K; k++)
        w[size_t(n) * K + k] = alpha * (transB ? b.v[size_t(n) * K + k] : b.v[size_t(k) * N + n]);
    std::vector<float> bias;
    if (has_input(2)) {
      const Const& c = constant(2, "C");
      if (c.count() != 1 && int64_t(c.count()) != N)
        fail("C " + dims_str(c.dims) + " does not broadcast to [1, " + std::to_string(N) + "]");
      for (int n = 0; n < N; n++) bias.push_back(beta * c.v[c.count() == 1 ? 0 : n]);
    }
    // alpha = beta = 1 leave the values as stored (B^T read in place when not transB).
    std::shared_ptr<const WeightSource> w_source, bias_source;
    if (alpha == 1.f) w_source = transB ? b.source : transposed(b.source, N);
    if (has_input(2) && beta == 1.f && int64_t(constant(2, "C").count()) == N)
      bias_source = constant(2, "C").source;
    inner_product(a, std::move(w), N, has_input(2) ? &bias : nullptr, std::move(w_source),
                  std::move(bias_source));
  }

  void matmul() {
    if (is_const(node_->input(0))) fail("a constant first MatMul operand is not supported");
    const std::string a = dynamic(0);
    if (has_input(1) && is_const(node_->input(1))) {
      const Const& b = constant(1, "B");
      if (b.dims.size() != 2) fail("constant B must be 2-D, is " + dims_str(b.dims));
      const int K = int(b.dims[0]), N = int(b.dims[1]);
      if (shape_of(a).w != K)
        fail("A " + dims_str(onnx_dims(a)) + " and B " + dims_str(b.dims) + " differ in K");
      if (shape_of(a).dims > 2) fail("A must be [1, K] or [1, S, K]");
      std::vector<float> w(size_t(N) * K);
      for (int n = 0; n < N; n++)
        for (int k = 0; k < K; k++) w[size_t(n) * K + k] = b.v[size_t(k) * N + n];
      return inner_product(a, std::move(w), N, nullptr, transposed(b.source, N));
    }
    const std::string b = dynamic(1);
    if (shape_of(a).dims != 2 || shape_of(b).dims != 2)
      fail("dynamic MatMul needs [1, M, K] x [1, K, N]");
    add_layer("Gemm", node_name_, {a, b}, {out_name()});
  }

  void binary(const std::string& op) {
    static const std::map<std::string, int> types = {{"Add", 0}, {"Sub", 1}, {"Mul", 2},
                                                     {"Div", 3}, {"Max", 4}, {"Min", 5},
                                                     {"Pow", 6}};
    if (node_->input_size() != 2) fail("expects 2 inputs");
    int type = types.at(op);
    const bool c0 = is_const(node_->input(0)), c1 = is_const(node_->input(1));
    if (c0 && c1) fail("both operands are constants");
    const std::string x = dynamic(c0 ? 1 : 0);
    ParamDict p;
    if (!c0 && !c1) {
      const std::string y = dynamic(1);
      if (shape_of(x).dims != shape_of(y).dims)
        fail("operands of different rank " + dims_str(onnx_dims(x)) + " and " +
             dims_str(onnx_dims(y)) + " are not supported");
      p.set_int(0, type);
      add_layer("BinaryOp", node_name_, {x, y}, {out_name()}, p);
      return;
    }
    const Const& k = constant(c0 ? 0 : 1, "constant operand");
    if (k.count() == 1) {
      // Scalar: ncnn's with_scalar form; a constant first operand reverses the op.
      if (c0) type = type == 1 ? 7 : type == 3 ? 8 : type == 6 ? 9 : type;
      p.set_int(0, type);
      p.set_int(1, 1);
      p.set_float(2, k.v[0]);
      add_layer("BinaryOp", node_name_, {x}, {out_name()}, p);
      return;
    }
    // Align the constant to the activation's rank: opset < 7 places it at `axis` when
    // `broadcast` is set, later opsets align numpy-style from the right.
    const int rank = rank_of(x);
    Dims kd = k.dims;
    if (int(kd.size()) > rank)
      fail("constant " + dims_str(kd) + " has a higher rank than the input");
    const int64_t bcast = attr_int("broadcast", 0);
    int64_t axis = rank - int64_t(kd.size());
    if (opset_ < 7) {
      if (!bcast && kd != onnx_dims(x))
        fail_attr("broadcast", "0, but shapes " + dims_str(kd) + " and " +
                                   dims_str(onnx_dims(x)) + " differ");
      axis = attr_int("axis", axis);
      if (axis < 0) axis += rank;
    }
    Dims full(rank, 1);
    for (size_t i = 0; i < kd.size(); i++) {
      if (axis + int64_t(i) >= rank) fail_attr("axis", "constant does not fit");
      full[axis + i] = kd[i];
    }
    if (full[0] != 1) fail("constant " + dims_str(kd) + " broadcasts over the batch axis");
    const std::string m = memory_data(node_->input(c0 ? 0 : 1), full, k.v, k.source);
    p.set_int(0, type);
    add_layer("BinaryOp", node_name_, c0 ? std::vector<std::string>{m, x}
                                         : std::vector<std::string>{x, m},
              {out_name()}, p);
  }

  void batch_norm() {
    const std::string x = dynamic(0);
    const int c = shape_of(x).dims == 1 ? shape_of(x).w : shape_of(x).dims == 2 ? shape_of(x).h
                                                                                : shape_of(x).c;
    const Const &scale = constant(1, "scale"), &b = constant(2, "B"), &mean = constant(3, "mean"),
                &var = constant(4, "var");
    for (const Const* k : {&scale, &b, &mean, &var})
      if (int(k->count()) != c) fail("parameters must have " + std::to_string(c) + " values");
    ParamDict p;
    p.set_int(0, c);
    p.set_float(1, attr_float("epsilon", 1e-5f));
    add_layer("BatchNorm", node_name_, {x}, {out_name()}, p,
              {weight_tensor(Shape::vec(c), scale.v, "slope", scale.source),
               weight_tensor(Shape::vec(c), mean.v, "mean", mean.source),
               weight_tensor(Shape::vec(c), var.v, "var", var.source),
               weight_tensor(Shape::vec(c), b.v, "bias", b.source)});
  }

  void flatten() {
    const std::string x = dynamic(0);
    int64_t axis = attr_int("axis", 1);
    if (axis < 0) axis += rank_of(x);
    if (axis != 1) fail_attr("axis", std::to_string(axis) + " (only 1 is supported)");
    add_layer("Flatten", node_name_, {x}, {out_name()});
  }

  Dims reshape_spec() const {
    if (opset_ < 5 || !has_input(1)) {
      if (!attr("shape")) fail_attr("shape", "missing (and no shape input)");
      return attr_ints("shape");
    }
    return to_dims(constant(1, "shape"));
  }

  Dims resolve_reshape(const Dims& in, const Dims& spec) const {
    Dims out = spec;
    int infer = -1;
    const bool allow_zero = attr_int("allowzero", 0);
    for (size_t i = 0; i < out.size(); i++) {
      if (out[i] == 0 && !allow_zero) {
        if (i >= in.size())
          fail_attr("shape", "0 at position " + std::to_string(i) + " has no input dim");
        out[i] = in[i];
      } else if (out[i] == -1) {
        if (infer >= 0) fail_attr("shape", "more than one -1");
        infer = int(i);
      } else if (out[i] < 0) {
        fail_attr("shape", "invalid extent " + std::to_string(out[i]));
      }
    }
    if (infer >= 0) {
      int64_t known = 1;
      for (size_t i = 0; i < out.size(); i++)
        if (int(i) != infer) known *= out[i];
      if (known == 0 || product(in) % known)
        fail_attr("shape", "cannot infer -1 for " + dims_str(in));
      out[infer] = product(in) / known;
    }
    if (product(out) != product(in))
      fail_attr("shape", dims_str(spec) + " does not fit " + dims_str(in));
    return out;
  }

  void reshape() {
    const std::string x = dynamic(0);
    const Dims out = resolve_reshape(onnx_dims(x), reshape_spec());
    if (out.size() < 2 || out.size() > 5 || out[0] != 1)
      fail("result " + dims_str(out) + " must keep a leading batch of 1 and rank 2..5");
    ParamDict p;
    const std::vector<int> e(out.begin() + 1, out.end());
    const Shape s = Shape::from_outer_dims(e);
    p.set_int(0, s.w);
    if (s.dims >= 2) p.set_int(1, s.h);
    if (s.dims >= 3) p.set_int(2, s.c);
    if (s.dims == 4) p.set_int(11, s.d);
    add_layer("Reshape", node_name_, {x}, {out_name()}, p);
  }

  void transpose() {
    const std::string x = dynamic(0);
    const int rank = rank_of(x);
    Dims perm = attr_ints("perm");
    if (perm.empty())
      for (int i = rank - 1; i >= 0; i--) perm.push_back(i);
    if (int(perm.size()) != rank || perm[0] != 0)
      fail_attr("perm", dims_str(perm) + " must keep the batch axis first");
    std::vector<int> axes;
    for (int i = 1; i < rank; i++) axes.push_back(int(perm[i] - 1));
    for (int order = 0; order < 6; order++) {
      try {
        if (permute_axes(order, rank - 1) == axes) {
          ParamDict p;
          p.set_int(0, order);
          add_layer("Permute", node_name_, {x}, {out_name()}, p);
          return;
        }
      } catch (const ModelError&) {
      }
    }
    fail_attr("perm", dims_str(perm) + " is not supported");
  }

  void concat() {
    std::vector<std::string> ins;
    int rank = 0;
    for (int i = 0; i < node_->input_size(); i++)
      if (!is_const(node_->input(i))) rank = rank_of(dynamic(i));
    if (rank == 0) fail("all inputs are constants");
    for (int i = 0; i < node_->input_size(); i++) {
      if (is_const(node_->input(i))) {
        const Const& k = consts_.at(node_->input(i));
        if (int(k.dims.size()) != rank || k.dims[0] != 1)
          fail("constant input " + std::to_string(i) + " " + dims_str(k.dims) +
               " must be batch-1 of rank " + std::to_string(rank));
        ins.push_back(memory_data(node_->input(i), k.dims, k.v, k.source));
      } else {
        ins.push_back(dynamic(i));
      }
    }
    ParamDict p;
    p.set_int(0, ncnn_axis(attr_int("axis", 1), rank, "axis"));
    add_layer("Concat", node_name_, ins, {out_name()}, p);
  }

  void pad() {
    const std::string x = dynamic(0);
    const int rank = rank_of(x);
    const std::string mode = attr_string("mode", "constant");
    Dims pads;
    float value = 0.f;
    if (opset_ < 11) {
      pads = attr_ints(opset_ < 2 ? "paddings" : "pads");
      value = attr_float("value", 0.f);
    } else {
      pads = to_dims(constant(1, "pads"));
      if (has_input(2)) value = constant(2, "constant_value").v.at(0);
    }
    if (int(pads.size()) != 2 * rank)
      fail_attr("pads", dims_str(pads) + " does not match rank " + std::to_string(rank));
    if (pads[0] || pads[rank]) fail_attr("pads", "padding the batch axis is not supported");
    for (int64_t v : pads)
      if (v < 0) fail_attr("pads", "negative pads are not supported");
    ParamDict p;
    auto begin = [&](int axis) { return int(pads[axis]); };
    auto end = [&](int axis) { return int(pads[rank + axis]); };
    p.set_int(2, begin(rank - 1));
    p.set_int(3, end(rank - 1));
    if (rank >= 3) {
      p.set_int(0, begin(rank - 2));
      p.set_int(1, end(rank - 2));
    }
    if (rank == 4) {
      p.set_int(7, begin(1));
      p.set_int(8, end(1));
    }
    if (mode == "constant") p.set_int(4, 0);
    else if (mode == "edge") p.set_int(4, 1);
    else if (mode == "reflect") p.set_int(4, 2);
    else fail_attr("mode", "'" + mode + "' is not supported");
    p.set_float(5, value);
    add_layer("Padding", node_name_, {x}, {out_name()}, p);
  }

  void lrn() {
    ParamDict p;
    p.set_int(0, 0);
    p.set_int(1, int(attr_int("size", 0)));
    p.set_float(2, attr_float("alpha", 1e-4f));
    p.set_float(3, attr_float("beta", 0.75f));
    p.set_float(4, attr_float("bias", 1.f));
    if (p.get_int(1, 0) <= 0) fail_attr("size", "must be positive");
    simple("LRN", p);
  }

  const onnx::ModelProto& model_;
  std::string source_;
  std::shared_ptr<const ModelFile> file_;
  RawDataRanges ranges_;
  size_t node_index_ = 0;
  Graph g_;
  int opset_ = 1;
  std::map<std::string, Const> consts_;
  std::map<std::string, std::string> alias_;
  std::map<int, Shape> shapes_;
  const onnx::NodeProto* node_ = nullptr;
  std::string node_name_;
};

}  // namespace

Graph parse_onnx(const std::vector<uint8_t>& bytes, const std::string& source) {
  onnx::ModelProto model;
  if (bytes.empty() || !model.ParseFromArray(bytes.data(), int(bytes.size())))
    throw ModelError(source + ": not a valid ONNX model (protobuf parse failed)");
  if (!model.has_graph() || model.graph().node_size() == 0)
    throw ModelError(source + ": ONNX model has no graph nodes");
  return Converter(model, std::make_shared<const ModelFile>(ModelFile{source, bytes})).convert();
}

Graph load_onnx(const std::string& path) { return parse_onnx(read_file_bytes(path), path); }

}  // namespace rplayer::nn
