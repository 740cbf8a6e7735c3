#include "link/shim_wire.h"

#include <zstd.h>

#include <algorithm>
#include <cstring>

namespace rplayer::link {
namespace {

constexpr uint8_t kRequestMagic[4] = {'R', 'P', 'S', 'Q'};
constexpr uint8_t kReplyMagic[4] = {'R', 'P', 'S', 'R'};
constexpr size_t kHeaderBytes = 16;
constexpr size_t kMaxWhy = 512;

void put8(std::vector<uint8_t>* o, uint8_t v) { o->push_back(v); }
void put16(std::vector<uint8_t>* o, uint16_t v) {
  o->push_back(uint8_t(v));
  o->push_back(uint8_t(v >> 8));
}
void put32(std::vector<uint8_t>* o, uint32_t v) {
  for (int i = 0; i < 4; ++i) o->push_back(uint8_t(v >> (8 * i)));
}
void put64(std::vector<uint8_t>* o, uint64_t v) {
  for (int i = 0; i < 8; ++i) o->push_back(uint8_t(v >> (8 * i)));
}
void put_header(std::vector<uint8_t>* o, const uint8_t magic[4], uint8_t status, uint32_t seq,
                uint32_t count) {
  o->insert(o->end(), magic, magic + 4);
  put8(o, kShimWireVersion);
  put8(o, status);
  put16(o, 0);
  put32(o, seq);
  put32(o, count);
}

// Bounds-checked reader; the first failure sticks and later reads return zeros.
class Reader {
 public:
  explicit Reader(std::span<const uint8_t> d) : d_(d) {}
  bool ok() const { return code_ == WireCode::Ok; }
  WireCode code() const { return code_; }
  void fail(WireCode c) {
    if (ok()) code_ = c;
  }
  size_t left() const { return d_.size() - pos_; }
  const uint8_t* take(size_t n) {
    if (!ok() || n > left()) {
      fail(WireCode::Truncated);
      return nullptr;
    }
    const uint8_t* p = d_.data() + pos_;
    pos_ += n;
    return p;
  }
  uint64_t le(size_t n) {
    const uint8_t* p = take(n);
    uint64_t v = 0;
    if (p)
      for (size_t i = 0; i < n; ++i) v |= uint64_t(p[i]) << (8 * i);
    return v;
  }
  uint8_t u8() { return uint8_t(le(1)); }
  uint16_t u16() { return uint16_t(le(2)); }
  uint32_t u32() { return uint32_t(le(4)); }
  uint64_t u64() { return le(8); }

 private:
  std::span<const uint8_t> d_;
  size_t pos_ = 0;
  WireCode code_ = WireCode::Ok;
};

// Header fields after the magic; returns the count.
uint32_t read_header(Reader& r, const uint8_t magic[4], uint8_t* status, uint32_t* seq) {
  const uint8_t* m = r.take(4);
  if (!m) return 0;
  if (std::memcmp(m, magic, 4) != 0) r.fail(WireCode::BadMagic);
  if (r.u8() != kShimWireVersion) r.fail(WireCode::BadVersion);
  *status = r.u8();
  if (r.u16() != 0) r.fail(WireCode::Reserved);
  *seq = r.u32();
  return r.u32();
}

bool is_register_op(ShimOpKind k) {
  return k == ShimOpKind::Write || k == ShimOpKind::Update || k == ShimOpKind::Read ||
         k == ShimOpKind::Poll;
}

void put32le(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = uint8_t(v >> (8 * i));
}
uint32_t get32le(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

}  // namespace

void encode_hello(const ShimHello& h, uint8_t out[kShimHelloBytes]) {
  uint8_t* p = out;
  for (uint32_t v : h.hub_ident) put32le(p, v), p += 4;
  for (uint32_t v : h.core_ident) put32le(p, v), p += 4;
  *p++ = h.blocks;
  *p++ = h.irq_lines;
  put32le(p, uint32_t(h.pool_pa)), put32le(p + 4, uint32_t(h.pool_pa >> 32)), p += 8;
  put32le(p, uint32_t(h.pool_bytes)), put32le(p + 4, uint32_t(h.pool_bytes >> 32));
}

bool decode_hello(std::span<const uint8_t> in, ShimHello* h) {
  if (in.size() != kShimHelloBytes) return false;
  const uint8_t* p = in.data();
  for (uint32_t& v : h->hub_ident) v = get32le(p), p += 4;
  for (uint32_t& v : h->core_ident) v = get32le(p), p += 4;
  h->blocks = *p++;
  h->irq_lines = *p++;
  h->pool_pa = (get32le(p) | uint64_t(get32le(p + 4)) << 32), p += 8;
  h->pool_bytes = (get32le(p) | uint64_t(get32le(p + 4)) << 32);
  return h->irq_lines > 0 && (h->blocks >> 4) == 0 && h->pool_bytes % kShimPage == 0;
}

std::vector<uint8_t> encode_device_stats(const DeviceStats& s) {
  std::vector<uint8_t> out;
  for (uint64_t v : {s.frames, s.ops, s.pages, s.wait_us, s.busy_us}) put64(&out, v);
  return out;
}

bool decode_device_stats(std::span<const uint8_t> in, DeviceStats* s) {
  if (in.size() != 5 * 8) return false;
  uint64_t v[5];
  for (int i = 0; i < 5; ++i) v[i] = get32le(&in[8 * i]) | uint64_t(get32le(&in[8 * i + 4])) << 32;
  *s = {v[0], v[1], v[2], v[3], v[4]};
  return true;
}

const char* shim_refusal_name(ShimRefusal r) {
  switch (r) {
    case ShimRefusal::None:
      return "none";
    case ShimRefusal::Malformed:
      return "malformed frame";
    case ShimRefusal::TooLarge:
      return "frame over the limits";
    case ShimRefusal::BlockNotAllowed:
      return "register block not allowed";
    case ShimRefusal::RegisterNotAllowed:
      return "register write outside the allowlist";
    case ShimRefusal::ValueNotAllowed:
      return "register value not allowed";
    case ShimRefusal::PageOutsidePool:
      return "physical page outside the pool";
    case ShimRefusal::ForeignPte:
      return "page-table entry outside the pool";
    case ShimRefusal::BadLine:
      return "no such interrupt line";
    case ShimRefusal::Unbounded:
      return "poll or wait over the device's bound";
    case ShimRefusal::NotOpen:
      return "no session";
    case ShimRefusal::DeviceTimeout:
      return "the GPU did not answer in time";
    case ShimRefusal::Channel:
      return "secure channel refused the message";
  }
  return "unknown refusal";
}

const char* wire_code_name(WireCode c) {
  switch (c) {
    case WireCode::Ok:
      return "ok";
    case WireCode::Truncated:
      return "truncated";
    case WireCode::BadMagic:
      return "bad magic";
    case WireCode::BadVersion:
      return "unsupported version";
    case WireCode::Reserved:
      return "reserved field set";
    case WireCode::BadKind:
      return "unknown operation or encoding";
    case WireCode::TooLarge:
      return "over the limits";
    case WireCode::BadPage:
      return "page does not decode to 4096 bytes";
    case WireCode::TrailingBytes:
      return "trailing bytes";
  }
  return "unknown";
}

size_t encoded_size(const ShimOp& op) {
  switch (op.kind) {
    case ShimOpKind::Write:
      return 1 + 1 + 4 + 4;
    case ShimOpKind::Update:
      return 1 + 1 + 4 + 4 + 4;
    case ShimOpKind::Read:
      return 1 + 1 + 4;
    case ShimOpKind::Poll:
      return 1 + 1 + 4 + 4 + 4 + 4;
    case ShimOpKind::Wait:
      return 1 + 1 + 4;
    case ShimOpKind::Page:
      return 1 + 8 + 1 +
             (op.encoding == PageEncoding::Zstd  ? 4 + op.data.size()
              : op.encoding == PageEncoding::Raw ? kShimPage
                                                 : 0);
  }
  return 0;
}

ShimOp page_op(uint64_t pa, const uint8_t* bytes, bool compress) {
  ShimOp op;
  op.kind = ShimOpKind::Page;
  op.pa = pa;
  if (compress && std::all_of(bytes, bytes + kShimPage, [](uint8_t b) { return b == 0; })) {
    op.encoding = PageEncoding::Zero;
    return op;
  }
  if (compress) {
    std::vector<uint8_t> z(ZSTD_compressBound(kShimPage));
    const size_t n = ZSTD_compress(z.data(), z.size(), bytes, kShimPage, 1);
    if (!ZSTD_isError(n) && n < kShimPage) {
      z.resize(n);
      op.encoding = PageEncoding::Zstd;
      op.data = std::move(z);
      return op;
    }
  }
  op.encoding = PageEncoding::Raw;
  op.data.assign(bytes, bytes + kShimPage);
  return op;
}

void encode_request(uint32_t seq, std::span<const ShimOp> ops, std::vector<uint8_t>* out) {
  out->clear();
  size_t bytes = kHeaderBytes;
  for (const ShimOp& op : ops) bytes += encoded_size(op);
  out->reserve(bytes);
  put_header(out, kRequestMagic, 0, seq, uint32_t(ops.size()));
  for (const ShimOp& op : ops) {
    put8(out, uint8_t(op.kind));
    switch (op.kind) {
      case ShimOpKind::Write:
        put8(out, op.block), put32(out, op.offset), put32(out, op.a);
        break;
      case ShimOpKind::Update:
        put8(out, op.block), put32(out, op.offset), put32(out, op.a), put32(out, op.b);
        break;
      case ShimOpKind::Read:
        put8(out, op.block), put32(out, op.offset);
        break;
      case ShimOpKind::Poll:
        put8(out, op.block), put32(out, op.offset), put32(out, op.a), put32(out, op.b);
        put32(out, op.timeout_us);
        break;
      case ShimOpKind::Wait:
        put8(out, op.block), put32(out, op.timeout_us);
        break;
      case ShimOpKind::Page:
        put64(out, op.pa), put8(out, uint8_t(op.encoding));
        if (op.encoding == PageEncoding::Zstd) put32(out, uint32_t(op.data.size()));
        if (op.encoding != PageEncoding::Zero)
          out->insert(out->end(), op.data.begin(), op.data.end());
        break;
    }
  }
}

WireCode decode_request(std::span<const uint8_t> frame, const ShimLimits& lim, uint32_t* seq,
                        std::vector<ShimOp>* ops) {
  ops->clear();
  if (frame.size() > lim.max_frame_bytes) return WireCode::TooLarge;
  Reader r(frame);
  uint8_t status = 0;
  const uint32_t count = read_header(r, kRequestMagic, &status, seq);
  if (status != 0) r.fail(WireCode::Reserved);
  // Every op takes at least 6 bytes: a count the frame cannot hold is refused up front.
  if (r.ok() && (count > lim.max_ops || count > r.left() / 6)) r.fail(WireCode::TooLarge);
  if (!r.ok()) return r.code();
  ops->reserve(count);
  for (uint32_t i = 0; i < count && r.ok(); ++i) {
    ShimOp op;
    const uint8_t kind = r.u8();
    if (kind < uint8_t(ShimOpKind::Write) || kind > uint8_t(ShimOpKind::Page)) {
      r.fail(WireCode::BadKind);
      break;
    }
    op.kind = ShimOpKind(kind);
    if (is_register_op(op.kind)) {
      op.block = r.u8();
      op.offset = r.u32();
    }
    switch (op.kind) {
      case ShimOpKind::Write:
        op.a = r.u32();
        break;
      case ShimOpKind::Update:
        op.a = r.u32(), op.b = r.u32();
        break;
      case ShimOpKind::Read:
        break;
      case ShimOpKind::Poll:
        op.a = r.u32(), op.b = r.u32(), op.timeout_us = r.u32();
        break;
      case ShimOpKind::Wait:
        op.block = r.u8(), op.timeout_us = r.u32();
        break;
      case ShimOpKind::Page: {
        op.pa = r.u64();
        const uint8_t enc = r.u8();
        if (enc > uint8_t(PageEncoding::Zstd)) {
          r.fail(WireCode::BadKind);
          break;
        }
        op.encoding = PageEncoding(enc);
        if (op.encoding == PageEncoding::Raw) {
          if (const uint8_t* p = r.take(kShimPage)) op.data.assign(p, p + kShimPage);
        } else if (op.encoding == PageEncoding::Zstd) {
          const uint32_t n = r.u32();
          const uint8_t* p = r.take(n);
          if (!p) break;
          // The frame must say it holds exactly one page before anything is inflated.
          if (ZSTD_getFrameContentSize(p, n) != kShimPage) {
            r.fail(WireCode::BadPage);
            break;
          }
          op.data.resize(kShimPage);
          const size_t got = ZSTD_decompress(op.data.data(), kShimPage, p, n);
          if (ZSTD_isError(got) || got != kShimPage) r.fail(WireCode::BadPage);
        }
        break;
      }
    }
    if (r.ok()) ops->push_back(std::move(op));
  }
  if (r.ok() && r.left() != 0) r.fail(WireCode::TrailingBytes);
  if (!r.ok()) ops->clear();
  return r.code();
}

void encode_reply(const ShimReply& rep, std::vector<uint8_t>* out) {
  out->clear();
  const bool refused = rep.refusal != ShimRefusal::None;
  put_header(out, kReplyMagic, uint8_t(rep.refusal), rep.seq,
             refused ? 0 : uint32_t(rep.results.size()));
  if (refused) {
    const size_t n = std::min(rep.why.size(), kMaxWhy);
    put32(out, rep.failed_op);
    put16(out, uint16_t(n));
    out->insert(out->end(), rep.why.begin(), rep.why.begin() + n);
    return;
  }
  for (const ShimResult& res : rep.results) {
    put8(out, uint8_t(res.kind));
    switch (res.kind) {
      case ShimOpKind::Read:
        put32(out, res.value);
        break;
      case ShimOpKind::Poll:
        put8(out, res.ok), put32(out, res.value), put32(out, res.count);
        break;
      case ShimOpKind::Wait:
        put8(out, res.ok), put32(out, res.count);
        break;
      default:
        break;  // no other op returns a result
    }
  }
}

WireCode decode_reply(std::span<const uint8_t> frame, const ShimLimits& lim, ShimReply* out) {
  *out = ShimReply{};
  if (frame.size() > lim.max_frame_bytes) return WireCode::TooLarge;
  Reader r(frame);
  uint8_t status = 0;
  const uint32_t count = read_header(r, kReplyMagic, &status, &out->seq);
  if (!r.ok()) return r.code();
  if (status > uint8_t(ShimRefusal::Channel)) return WireCode::BadKind;
  out->refusal = ShimRefusal(status);
  if (out->refusal != ShimRefusal::None) {
    if (count != 0) return WireCode::Reserved;
    out->failed_op = r.u32();
    const uint16_t n = r.u16();
    if (n > kMaxWhy) return WireCode::TooLarge;
    if (const uint8_t* p = r.take(n)) out->why.assign(reinterpret_cast<const char*>(p), n);
  } else {
    if (count > lim.max_ops || count > r.left() / 5) return WireCode::TooLarge;
    out->results.reserve(count);
    for (uint32_t i = 0; i < count && r.ok(); ++i) {
      ShimResult res;
      const uint8_t kind = r.u8();
      res.kind = ShimOpKind(kind);
      switch (res.kind) {
        case ShimOpKind::Read:
          res.value = r.u32();
          break;
        case ShimOpKind::Poll: {
          const uint8_t m = r.u8();
          if (m > 1) r.fail(WireCode::Reserved);
          res.ok = m, res.value = r.u32(), res.count = r.u32();
          break;
        }
        case ShimOpKind::Wait: {
          const uint8_t h = r.u8();
          if (h > 1) r.fail(WireCode::Reserved);
          res.ok = h, res.count = r.u32();
          break;
        }
        default:
          r.fail(WireCode::BadKind);
          break;
      }
      if (r.ok()) out->results.push_back(res);
    }
  }
  if (r.ok() && r.left() != 0) r.fail(WireCode::TrailingBytes);
  if (!r.ok()) out->results.clear();
  return r.code();
}

}  // namespace rplayer::link
