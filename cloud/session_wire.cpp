#include "cloud/session_wire.h"

#include <zstd.h>

#include <cstring>

namespace rplayer::cloud {

namespace {

constexpr uint8_t kVersion = 1;
constexpr uint32_t kMaxString = 1u << 20;  // names, graph text: 1 MiB at most
constexpr uint32_t kMaxRanges = 1u << 20;

class Writer {
 public:
  explicit Writer(const char magic[4]) {
    bytes_.insert(bytes_.end(), magic, magic + 4), u8(kVersion);
  }
  void u8(uint8_t v) { bytes_.push_back(v); }
  void u32(uint32_t v) {
    for (int i = 0; i < 4; ++i) bytes_.push_back(uint8_t(v >> (8 * i)));
  }
  void u64(uint64_t v) {
    for (int i = 0; i < 8; ++i) bytes_.push_back(uint8_t(v >> (8 * i)));
  }
  void raw(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    bytes_.insert(bytes_.end(), b, b + n);
  }
  void blob(std::span<const uint8_t> b) { u32(uint32_t(b.size())), raw(b.data(), b.size()); }
  void str(const std::string& s) { u32(uint32_t(s.size())), raw(s.data(), s.size()); }
  std::vector<uint8_t> take() { return std::move(bytes_); }

 private:
  std::vector<uint8_t> bytes_;
};

class Reader {
 public:
  Reader(std::span<const uint8_t> d, const char magic[4]) : d_(d) {
    const uint8_t* m = take(4);
    if (m && std::memcmp(m, magic, 4) != 0) ok_ = false;
    if (u8() != kVersion) ok_ = false;
  }
  bool ok() const { return ok_; }
  bool done() const { return ok_ && pos_ == d_.size(); }
  const uint8_t* take(size_t n) {
    if (!ok_ || n > d_.size() - pos_) {
      ok_ = false;
      return nullptr;
    }
    const uint8_t* p = d_.data() + pos_;
    pos_ += n;
    return p;
  }
  uint64_t le(size_t n) {
    const uint8_t* p = take(n);
    uint64_t v = 0;
    for (size_t i = 0; p && i < n; ++i) v |= uint64_t(p[i]) << (8 * i);
    return v;
  }
  uint8_t u8() { return uint8_t(le(1)); }
  uint32_t u32() { return uint32_t(le(4)); }
  uint64_t u64() { return le(8); }
  std::string str(uint32_t max = kMaxString) {
    const uint32_t n = u32();
    if (n > max) ok_ = false;
    const uint8_t* p = take(n);
    return p ? std::string(reinterpret_cast<const char*>(p), n) : std::string();
  }
  std::vector<uint8_t> blob(uint64_t max) {
    const uint32_t n = u32();
    if (n > max) ok_ = false;
    const uint8_t* p = take(n);
    return p ? std::vector<uint8_t>(p, p + n) : std::vector<uint8_t>();
  }
  template <size_t N>
  void array(std::array<uint8_t, N>* a) {
    if (const uint8_t* p = take(N)) std::memcpy(a->data(), p, N);
  }

 private:
  std::span<const uint8_t> d_;
  size_t pos_ = 0;
  bool ok_ = true;
};

void put_shape(Writer& w, const nn::Shape& s) {
  for (int v : {s.dims, s.w, s.h, s.d, s.c}) w.u32(uint32_t(v));
}
nn::Shape get_shape(Reader& r, bool* ok) {
  nn::Shape s;
  int* f[] = {&s.dims, &s.w, &s.h, &s.d, &s.c};
  for (int* p : f) {
    const uint32_t v = r.u32();
    if (v > (1u << 24)) *ok = false;
    *p = int(v);
  }
  if (s.dims > 4) *ok = false;
  return s;
}

}  // namespace

const char* record_mode_name(RecordMode m) {
  switch (m) {
    case RecordMode::Naive:
      return "naive";
    case RecordMode::Deferral:
      return "deferral";
    case RecordMode::Full:
      return "full";
  }
  return "?";
}

bool parse_record_mode(const std::string& s, RecordMode* m) {
  for (RecordMode c : {RecordMode::Naive, RecordMode::Deferral, RecordMode::Full})
    if (s == record_mode_name(c)) return *m = c, true;
  return false;
}

DriverShimOptions options_for(RecordMode m) {
  switch (m) {
    case RecordMode::Naive:
      return DriverShimOptions::naive();
    case RecordMode::Deferral:
      return DriverShimOptions::deferral();
    case RecordMode::Full:
      break;
  }
  return DriverShimOptions::full();
}

std::vector<uint8_t> encode_request(const RecordRequest& req) {
  Writer w("RPCQ");
  w.u8(uint8_t(req.mode));
  w.raw(req.device_key.data(), req.device_key.size());
  const ModelSkeleton& m = req.model;
  w.str(m.info.name);
  w.str(m.info.input_blob);
  w.str(m.info.output_blob);
  put_shape(w, m.info.input_shape);
  w.u8(uint8_t(m.info.preprocess));
  w.str(m.graph_text);
  w.str(m.weights_name);
  std::vector<uint8_t> z(ZSTD_compressBound(m.weights.size()));
  const size_t zn = ZSTD_compress(z.data(), z.size(), m.weights.data(), m.weights.size(), 3);
  z.resize(ZSTD_isError(zn) ? 0 : zn);
  w.u64(m.weights.size());
  w.blob(z);
  const record::WeightsManifest& mf = *m.manifest;
  w.str(mf.file.name);
  w.u64(mf.file.size);
  w.raw(mf.file.digest.data(), mf.file.digest.size());
  w.u32(uint32_t(mf.ranges.size()));
  for (const auto& [range, digest] : mf.ranges) {
    w.u64(range.first), w.u64(range.second);
    w.raw(digest.data(), digest.size());
  }
  return w.take();
}

bool decode_request(std::span<const uint8_t> bytes, RecordRequest* req, std::string* why) {
  if (bytes.size() > kMaxRequestBytes) return *why = "request too large", false;
  Reader r(bytes, "RPCQ");
  bool ok = true;
  const uint8_t mode = r.u8();
  if (mode > uint8_t(RecordMode::Full)) ok = false;
  req->mode = RecordMode(mode);
  r.array(&req->device_key);
  ModelSkeleton& m = req->model;
  m.info.name = r.str(256);
  m.info.input_blob = r.str(256);
  m.info.output_blob = r.str(256);
  m.info.input_shape = get_shape(r, &ok);
  const uint8_t pre = r.u8();
  if (pre > uint8_t(nn::Preprocess::kNone)) ok = false;
  m.info.preprocess = nn::Preprocess(pre);
  m.graph_text = r.str();
  m.weights_name = r.str(256);
  const uint64_t raw = r.u64();
  const std::vector<uint8_t> z = r.blob(kMaxRequestBytes);
  if (!r.ok() || !ok || raw > kMaxRequestBytes) return *why = "malformed request header", false;
  if (ZSTD_getFrameContentSize(z.data(), z.size()) != raw)
    return *why = "weights skeleton: size mismatch", false;
  m.weights.resize(raw);
  const size_t got = ZSTD_decompress(m.weights.data(), raw, z.data(), z.size());
  if (ZSTD_isError(got) || got != raw) return *why = "weights skeleton does not decompress", false;
  auto mf = std::make_shared<record::WeightsManifest>();
  mf->file.name = r.str(256);
  mf->file.size = r.u64();
  r.array(&mf->file.digest);
  const uint32_t n = r.u32();
  if (n > kMaxRanges) return *why = "too many weight ranges", false;
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    const uint64_t off = r.u64(), len = r.u64();
    replay::Digest d{};
    r.array(&d);
    if (off > raw || len > raw - off) return *why = "weight range outside the file", false;
    mf->ranges[{off, len}] = d;
  }
  if (!r.done()) return *why = "malformed request", false;
  if (mf->file.size != raw || mf->file.name != m.weights_name)
    return *why = "manifest does not describe the weights file", false;
  m.info.path = m.graph_text.empty() ? m.weights_name : m.info.name + ".param";
  m.manifest = std::move(mf);
  return true;
}

std::vector<uint8_t> encode_hello(const CloudHello& h) {
  Writer w("RPCH");
  w.raw(h.cloud_key.data(), h.cloud_key.size());
  w.blob(h.channel_hello);
  return w.take();
}

bool decode_hello(std::span<const uint8_t> bytes, CloudHello* h) {
  Reader r(bytes, "RPCH");
  r.array(&h->cloud_key);
  h->channel_hello = r.blob(4096);
  return r.done();
}

std::vector<uint8_t> encode_result(const RecordResult& res) {
  Writer w("RPCD");
  w.u8(res.ok ? 1 : 0);
  w.str(res.error);
  w.blob(res.recording);
  w.str(res.stats_json);
  return w.take();
}

bool decode_result(std::span<const uint8_t> bytes, RecordResult* res) {
  Reader r(bytes, "RPCD");
  const uint8_t ok = r.u8();
  res->ok = ok == 1;
  res->error = r.str(4096);
  res->recording = r.blob(1u << 30);
  res->stats_json = r.str();
  return r.done() && ok <= 1;
}

}  // namespace rplayer::cloud
