#include "nn/ncnn_loader.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>

#include "nn/file_bytes.h"
#include "nn/layer_spec.h"
#include "nn/model_error.h"

namespace rplayer::nn {
namespace {

constexpr int kMagic = 7767517;
constexpr int kMaxParamId = 32;  // ncnn's NCNN_MAX_PARAM_COUNT
constexpr uint32_t kTagFp16 = 0x01306B47;
constexpr uint32_t kTagInt8 = 0x000D4B38;
constexpr uint32_t kTagFp32Scaled = 0x0002C056;

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t pos = s.find(sep, start);
    out.emplace_back(s.substr(start, pos - start));
    if (pos == std::string_view::npos) break;
    start = pos + 1;
  }
  return out;
}

std::vector<std::string> tokens(const std::string& line) {
  std::istringstream in(line);
  return {std::istream_iterator<std::string>(in), std::istream_iterator<std::string>()};
}

bool parse_int(const std::string& s, int* v) {
  if (s.empty()) return false;
  errno = 0;
  char* end = nullptr;
  const long x = std::strtol(s.c_str(), &end, 10);
  if (errno != 0 || *end != '\0' || x < INT32_MIN || x > INT32_MAX) return false;
  *v = int(x);
  return true;
}

bool parse_float(const std::string& s, float* v) {
  if (s.empty()) return false;
  errno = 0;
  char* end = nullptr;
  const float x = std::strtof(s.c_str(), &end);
  if (*end != '\0') return false;
  *v = x;
  return true;
}

// ncnn decides int vs float per value by its spelling.
bool looks_float(const std::string& s) {
  return s.find_first_of(".eE") != std::string::npos || s.find("inf") != std::string::npos ||
         s.find("nan") != std::string::npos;
}

class ParamParser {
 public:
  ParamParser(std::string_view text, const std::string& source) : source_(source) {
    for (const std::string& l : split(text, '\n')) lines_.push_back(l);
  }

  Graph parse() {
    Graph g;
    g.source = source_;
    std::vector<std::string> t = next_line();
    int magic = 0;
    if (t.size() != 1 || !parse_int(t[0], &magic) || magic != kMagic)
      fail("bad magic '" + join(t) + "', expected " + std::to_string(kMagic) +
           " (not an ncnn .param file?)");
    t = next_line();
    int layer_count = 0, blob_count = 0;
    if (t.size() != 2 || !parse_int(t[0], &layer_count) || !parse_int(t[1], &blob_count) ||
        layer_count <= 0 || blob_count <= 0)
      fail("expected '<layer count> <blob count>', got '" + join(t) + "'");
    std::set<std::string> blob_names;
    for (int i = 0; i < layer_count; i++) {
      t = next_line();
      if (t.empty())
        fail("file ends after " + std::to_string(i) + " layers, header says " +
             std::to_string(layer_count));
      parse_layer(g, t, &blob_names);
    }
    // Like ncnn, lines past the declared layer count are not read (benchncnn's
    // nanodet_m.param carries one such trailing layer).
    // ncnn sizes its blob table from the header: more blobs fail, fewer are fine.
    if (int(blob_names.size()) > blob_count)
      throw ModelError(source_ + ": header declares " + std::to_string(blob_count) +
                       " blobs, layers use " + std::to_string(blob_names.size()));
    return g;
  }

 private:
  std::vector<std::string> next_line() {
    while (line_ < lines_.size()) {
      std::vector<std::string> t = tokens(lines_[line_++]);
      if (!t.empty()) return t;
    }
    line_ = lines_.size() + 1;
    return {};
  }

  static std::string join(const std::vector<std::string>& t) {
    std::string s;
    for (const std::string& x : t) s += (s.empty() ? "" : " ") + x;
    return s;
  }

  [[noreturn]] void fail(const std::string& msg) const {
    throw ModelError(source_ + ":" + std::to_string(line_) + ": " + msg);
  }
  [[noreturn]] void fail_layer(const std::string& type, const std::string& name,
                               const std::string& msg) const {
    fail("layer " + name + " (" + type + "): " + msg);
  }

  void parse_layer(Graph& g, const std::vector<std::string>& t, std::set<std::string>* blobs) {
    if (t.size() < 4) fail("layer line needs '<type> <name> <inputs> <outputs> ...'");
    const std::string& type = t[0];
    const std::string& name = t[1];
    if (!is_supported_layer_type(type))
      fail_layer(type, name, "unknown or unsupported layer type '" + type + "'");
    int nin = 0, nout = 0;
    if (!parse_int(t[2], &nin) || !parse_int(t[3], &nout) || nin < 0 || nout < 0)
      fail_layer(type, name, "bad input/output counts '" + t[2] + " " + t[3] + "'");
    if (t.size() < size_t(4 + nin + nout))
      fail_layer(type, name, "declares " + std::to_string(nin) + " inputs and " +
                                 std::to_string(nout) + " outputs but names fewer blobs");
    std::vector<std::string> ins(t.begin() + 4, t.begin() + 4 + nin);
    std::vector<std::string> outs(t.begin() + 4 + nin, t.begin() + 4 + nin + nout);
    for (const std::string& b : ins) blobs->insert(b);
    for (const std::string& b : outs) blobs->insert(b);
    ParamDict params;
    for (size_t i = 4 + nin + nout; i < t.size(); i++) parse_param(type, name, t[i], &params);
    Layer probe;
    probe.type = type;
    probe.name = name;
    probe.params = params;
    try {
      weight_specs(probe);  // rejects unsupported params with this line's context
      g.add_layer(type, name, ins, outs, std::move(params));
    } catch (const ModelError& e) {
      std::string msg = e.what();
      if (msg.rfind(source_ + ": ", 0) == 0) msg = msg.substr(source_.size() + 2);
      fail_layer(type, name, msg);
    }
  }

  void parse_param(const std::string& type, const std::string& name, const std::string& kv,
                   ParamDict* params) {
    const size_t eq = kv.find('=');
    int key = 0;
    if (eq == std::string::npos || !parse_int(kv.substr(0, eq), &key))
      fail_layer(type, name, "bad param '" + kv + "', expected <id>=<value>");
    const std::string value = kv.substr(eq + 1);
    const bool is_array = key <= -23300;
    const int id = is_array ? -key - 23300 : key;
    if (id < 0 || id >= kMaxParamId)
      fail_layer(type, name, "param id " + std::to_string(key) + " out of range");
    const std::string field = "param " + std::to_string(key);
    if (!is_array) {
      if (looks_float(value)) {
        float f;
        if (!parse_float(value, &f)) fail_layer(type, name, field + ": bad float '" + value + "'");
        params->set_float(id, f);
      } else {
        int v;
        if (!parse_int(value, &v)) fail_layer(type, name, field + ": bad integer '" + value + "'");
        params->set_int(id, v);
      }
      return;
    }
    const std::vector<std::string> items = split(value, ',');
    int count = 0;
    if (!parse_int(items[0], &count) || count < 0)
      fail_layer(type, name, field + ": bad array length '" + items[0] + "'");
    if (int(items.size()) - 1 != count)
      fail_layer(type, name, field + ": array declares " + std::to_string(count) +
                                 " values, has " + std::to_string(items.size() - 1));
    bool any_float = false;
    for (size_t i = 1; i < items.size(); i++) any_float |= looks_float(items[i]);
    std::vector<int> ints;
    std::vector<float> floats;
    for (size_t i = 1; i < items.size(); i++) {
      if (any_float) {
        float f;
        if (!parse_float(items[i], &f))
          fail_layer(type, name, field + ": bad float '" + items[i] + "' in array");
        floats.push_back(f);
      } else {
        int v;
        if (!parse_int(items[i], &v))
          fail_layer(type, name, field + ": bad integer '" + items[i] + "' in array");
        ints.push_back(v);
      }
    }
    if (any_float) params->set_floats(id, std::move(floats));
    else params->set_ints(id, std::move(ints));
  }

  std::string source_;
  std::vector<std::string> lines_;
  size_t line_ = 0;
};

class BinReader {
 public:
  explicit BinReader(std::shared_ptr<const ModelFile> file)
      : file_(std::move(file)), bin_(file_->bytes), source_(file_->path) {}

  // The decoded floats, with the stored range they came from when the GPU can upload
  // that range as is (fp32 and fp16 storage; not the codebook-quantized form).
  Tensor read(const Layer& l, const WeightSpec& spec) {
    const size_t count = spec.shape.total();
    std::vector<float> v(count);
    if (!spec.tagged) {
      const size_t at = pos_;
      read_floats(l, spec, "fp32 data", v.data(), count);
      return stored(spec, std::move(v), at, StorageType::kFloat32);
    }
    uint32_t tag;
    take(l, spec, "storage tag", &tag, 4);
    uint8_t f[4];
    std::memcpy(f, &tag, 4);
    const size_t at = pos_;
    if (tag == kTagFp16) {
      std::vector<uint16_t> half((count * 2 + 3) / 4 * 2);
      take(l, spec, "fp16 data", half.data(), (count * 2 + 3) / 4 * 4);
      for (size_t i = 0; i < count; i++) v[i] = half_to_float(half[i]);
      return stored(spec, std::move(v), at, StorageType::kFloat16);
    } else if (tag == kTagInt8) {
      fail(l, spec, "int8 weights are not supported");
    } else if (tag == kTagFp32Scaled) {
      read_floats(l, spec, "fp32 data", v.data(), count);
      return stored(spec, std::move(v), at, StorageType::kFloat32);
    } else if (f[0] + f[1] + f[2] + f[3] != 0) {
      // 256-entry codebook, then one byte index per weight. Decoded here: no stored
      // range holds the floats, so the GPU gets them as derived data.
      float table[256];
      take(l, spec, "quantization table", table, sizeof table);
      std::vector<uint8_t> index((count + 3) / 4 * 4);
      take(l, spec, "quantized indices", index.data(), index.size());
      for (size_t i = 0; i < count; i++) v[i] = table[index[i]];
    } else {
      read_floats(l, spec, "fp32 data", v.data(), count);
      return stored(spec, std::move(v), at, StorageType::kFloat32);
    }
    return Tensor(spec.shape, std::move(v), spec.name);
  }

  size_t remaining() const { return bin_.size() - pos_; }

 private:
  void read_floats(const Layer& l, const WeightSpec& spec, const char* what, float* out,
                   size_t count) {
    take(l, spec, what, out, count * sizeof(float));
  }

  void take(const Layer& l, const WeightSpec& spec, const char* what, void* out, size_t n) {
    if (remaining() < n)
      fail(l, spec, std::string("truncated: needs ") + std::to_string(n) + " bytes of " + what +
                        " at offset " + std::to_string(pos_) + ", " +
                        std::to_string(remaining()) + " left");
    std::memcpy(out, bin_.data() + pos_, n);
    pos_ += n;
  }

  [[noreturn]] void fail(const Layer& l, const WeightSpec& spec, const std::string& msg) {
    throw ModelError(source_ + ": layer " + l.name + " (" + l.type + ") weight '" + spec.name +
                     "' (" + std::to_string(spec.shape.total()) + " values): " + msg);
  }

  Tensor stored(const WeightSpec& spec, std::vector<float> v, size_t at, StorageType storage) {
    Tensor t(spec.shape, std::move(v), spec.name);
    auto src = std::make_shared<WeightSource>();
    src->file = file_;
    src->offset = at;
    src->count = t.size();
    src->storage = storage;
    src->length = src->count * storage_element_size(storage);
    t.set_source(std::move(src));
    return t;
  }

  std::shared_ptr<const ModelFile> file_;
  const std::vector<uint8_t>& bin_;
  const std::string& source_;
  size_t pos_ = 0;
};

}  // namespace

std::vector<uint8_t> read_file_bytes(const std::string& path) {
  std::vector<uint8_t> bytes;
  std::string error;
  if (!read_whole_file(path, &bytes, &error)) throw ModelError(path + ": " + error);
  return bytes;
}

Graph parse_ncnn_param(std::string_view text, const std::string& source) {
  return ParamParser(text, source).parse();
}

Graph load_ncnn_param(const std::string& param_path) {
  const std::vector<uint8_t> bytes = read_file_bytes(param_path);
  return parse_ncnn_param(std::string_view(reinterpret_cast<const char*>(bytes.data()),
                                           bytes.size()),
                          param_path);
}

void parse_ncnn_bin(Graph& graph, std::shared_ptr<const ModelFile> bin) {
  BinReader reader(bin);
  for (Layer& l : graph.layers()) {
    l.weights.clear();
    for (const WeightSpec& spec : weight_specs(l)) l.weights.push_back(reader.read(l, spec));
  }
  if (reader.remaining() != 0)
    throw ModelError(bin->path + ": " + std::to_string(reader.remaining()) +
                     " bytes left after the last layer's weights (wrong .param for this .bin?)");
}

void parse_ncnn_bin(Graph& graph, const std::vector<uint8_t>& bin, const std::string& source) {
  parse_ncnn_bin(graph, std::make_shared<const ModelFile>(ModelFile{source, bin}));
}

void load_ncnn_bin(Graph& graph, const std::string& bin_path) {
  parse_ncnn_bin(graph, std::make_shared<const ModelFile>(
                            ModelFile{bin_path, read_file_bytes(bin_path)}));
}

Graph load_ncnn(const std::string& param_path, const std::string& bin_path) {
  Graph g = load_ncnn_param(param_path);
  load_ncnn_bin(g, bin_path);
  return g;
}

}  // namespace rplayer::nn
