#include "tests/record_format/format_util.h"

#include <sodium.h>
#include <xxhash.h>

#include <random>
#include <string>

namespace rplayer::replay {
void PrintTo(DecodeCode code, std::ostream* os) {
  DecodeError e;
  e.code = code;
  *os << e.message() << " (" << static_cast<int>(code) << ")";
}
void PrintTo(SectionType type, std::ostream* os) { *os << section_name(type); }
}  // namespace rplayer::replay

namespace rplayer::test {

using namespace replay;

const keyring::KeyPair& trusted_key() {
  static const keyring::KeyPair k = keyring::keypair_from_seed({1, 2, 3});
  return k;
}
const keyring::KeyPair& other_key() {
  static const keyring::KeyPair k = keyring::keypair_from_seed({9, 9, 9});
  return k;
}
std::vector<PublicKey> trust_store() { return {trusted_key().public_key}; }

Recording small_recording() {
  Recording r;
  r.sku_name = "v3d-7.1";
  r.sku = {0x000e1171, 0x00000100, 0x71443356, 0x81001422};
  r.metadata = {{"workload", "unit"}};
  r.regions = {{0x10000, 4096, RegionKind::Code, false, "k"},
               {0x20000, 8192, RegionKind::Output, true, "o"}};
  PageBlob b;
  b.data.assign(kPageBytes, 0);
  b.data[0] = 0x42;
  b.hash = XXH64(b.data.data(), kPageBytes, 0);
  r.blobs = {b};
  r.loads = {{0, 0, 0}, {1, 1, kZeroBlob}};
  Action load{.op = ActionOp::LoadMemory, .first = 0, .count = 2};
  Action write{.op = ActionOp::Write, .block = Block::Core0, .offset = 0x100, .value = 7};
  Action poll{.op = ActionOp::Poll,
              .block = Block::Hub,
              .offset = 4,
              .value = 1,
              .mask = 1,
              .timeout_us = 1000};
  Action irq{.op = ActionOp::WaitIrq, .line = 1, .timeout_us = 5000};
  Action read{.op = ActionOp::Read, .block = Block::Tzpc, .offset = 8, .value = 3, .mask = 2};
  Action job{.op = ActionOp::JobBoundary, .value = 1};
  r.actions = {load, write, poll, irq, read, job};
  Binding out;
  out.name = "prob";
  out.region = 1;
  out.offset = 16;
  out.bytes = 64;
  out.shape = {16};
  out.layout = "c";
  r.bindings = {out};
  return r;
}

Recording random_recording(uint32_t seed, bool raw_blobs) {
  std::mt19937 rng(seed);
  auto pick = [&](uint32_t n) { return static_cast<uint32_t>(rng() % n); };
  auto text = [&](uint32_t max_len, uint32_t min_len) {
    std::string s(min_len + pick(max_len - min_len + 1), '\0');
    for (char& c : s) c = static_cast<char>(pick(256));  // any bytes, NUL included
    return s;
  };
  Recording r;
  r.sku_name = text(31, 0);
  std::erase(r.sku_name, '\0');
  r.sku = {static_cast<uint32_t>(rng()), static_cast<uint32_t>(rng()), static_cast<uint32_t>(rng()),
           static_cast<uint32_t>(rng())};
  r.weights_omitted = pick(2);
  for (uint32_t i = 0, n = pick(6); i < n; ++i) {
    r.metadata.push_back({"k" + std::to_string(i) + ":" + text(8, 0), text(40, 0)});
  }
  uint32_t va = 0x1000 * pick(16);
  for (uint32_t i = 0, n = pick(8); i < n; ++i) {
    Region g;
    g.size = 4096 * (1 + pick(4));
    g.gpu_va = va;
    va += g.size + 4096 * pick(3);
    g.kind = static_cast<RegionKind>(pick(7));
    g.gpu_writable = pick(2);
    g.label = text(20, 0);
    r.regions.push_back(g);
  }
  // Pages: random (incompressible, stored raw), sparse (compressible), duplicates, zeros.
  std::vector<Bytes> pages;
  for (uint32_t i = 0, n = pick(10); i < n; ++i) {
    Bytes p(kPageBytes, 0);
    if (pick(2)) {
      for (auto& x : p) x = static_cast<uint8_t>(rng());
    } else {
      for (uint32_t j = 0, m = 1 + pick(50); j < m; ++j) p[pick(kPageBytes)] = 1 + pick(255);
    }
    pages.push_back(p);
  }
  if (raw_blobs) {
    for (const Bytes& p : pages) r.blobs.push_back({0, p});
    for (uint32_t i = 0, n = pick(3); i < n && !pages.empty(); ++i) {
      r.blobs.push_back({0, pages[pick(pages.size())]});  // duplicate
    }
    for (uint32_t i = 0, n = pick(3); i < n; ++i) r.blobs.push_back({0, Bytes(kPageBytes, 0)});
  }
  for (const Region& g : r.regions) {
    if (r.weights_omitted && g.kind == RegionKind::Weights) continue;
    uint32_t region = static_cast<uint32_t>(&g - r.regions.data());
    for (uint32_t page = 0; page < g.size / kPageBytes; ++page) {
      if (pick(3) == 0) continue;
      PageLoad l{region, page, kZeroBlob};
      if (raw_blobs && !r.blobs.empty()) {
        l.blob = pick(r.blobs.size());
      } else if (!raw_blobs && !pages.empty() && pick(4) != 0) {
        l.blob = pick(pages.size());
      }
      r.loads.push_back(l);
    }
  }
  if (!raw_blobs) {
    // Canonical already: blobs in first-use order, each used page once.
    std::vector<uint32_t> index(pages.size(), kZeroBlob);
    for (PageLoad& l : r.loads) {
      if (l.blob == kZeroBlob) continue;
      if (index[l.blob] == kZeroBlob) {
        index[l.blob] = static_cast<uint32_t>(r.blobs.size());
        r.blobs.push_back({XXH64(pages[l.blob].data(), kPageBytes, 0), pages[l.blob]});
      }
      l.blob = index[l.blob];
    }
  }
  for (uint32_t i = 0, n = pick(200); i < n; ++i) {
    Action a;
    a.op = static_cast<ActionOp>(1 + pick(6));
    switch (a.op) {
      case ActionOp::Poll:
        a.timeout_us = static_cast<uint32_t>(rng());
        [[fallthrough]];
      case ActionOp::Read:
        a.mask = static_cast<uint32_t>(rng());
        [[fallthrough]];
      case ActionOp::Write:
        a.block = static_cast<Block>(pick(5));
        a.offset = static_cast<uint32_t>(rng());
        a.value = static_cast<uint32_t>(rng());
        break;
      case ActionOp::WaitIrq:
        a.line = static_cast<uint8_t>(rng());
        a.timeout_us = static_cast<uint32_t>(rng());
        break;
      case ActionOp::LoadMemory:
        a.first = pick(r.loads.size() + 1);
        a.count = pick(r.loads.size() - a.first + 1);
        break;
      case ActionOp::JobBoundary:
        a.value = i;
        break;
    }
    r.actions.push_back(a);
  }
  for (uint32_t i = 0, n = r.regions.empty() ? 0 : pick(4); i < n; ++i) {
    Binding b;
    b.name = "t" + std::to_string(i) + ":" + text(10, 0);
    b.is_input = pick(2);
    b.region = pick(r.regions.size());
    b.offset = pick(r.regions[b.region].size);
    b.bytes = pick(r.regions[b.region].size - b.offset + 1);
    b.dtype = static_cast<DType>(pick(2));
    for (uint32_t d = 0, rank = pick(9); d < rank; ++d) b.shape.push_back(rng());
    b.layout = text(16, 0);
    r.bindings.push_back(b);
  }
  return r;
}

B& B::u8(uint8_t x) {
  v.push_back(x);
  return *this;
}
B& B::u16(uint16_t x) { return u8(x & 0xff).u8(x >> 8); }
B& B::u32(uint32_t x) { return u16(x & 0xffff).u16(x >> 16); }
B& B::u64(uint64_t x) { return u32(static_cast<uint32_t>(x)).u32(x >> 32); }
B& B::str(std::string_view s) {
  u16(static_cast<uint16_t>(s.size()));
  v.insert(v.end(), s.begin(), s.end());
  return *this;
}
B& B::raw(const Bytes& b) {
  v.insert(v.end(), b.begin(), b.end());
  return *this;
}

static uint64_t get_u64(const Bytes& f, size_t at) {
  uint64_t x = 0;
  for (int i = 7; i >= 0; --i) x = (x << 8) | f.at(at + i);
  return x;
}

size_t table_field(uint32_t entry, size_t field_offset) {
  return kHeaderBytes + entry * kSectionEntryBytes + field_offset;
}

void put_u64(Bytes& file, size_t at, uint64_t v) {
  for (int i = 0; i < 8; ++i) file.at(at + i) = static_cast<uint8_t>(v >> (8 * i));
}
void put_u32(Bytes& file, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) file.at(at + i) = static_cast<uint8_t>(v >> (8 * i));
}

Parts split(const Bytes& file) {
  Parts p;
  p.header.assign(file.begin(), file.begin() + kHeaderBytes);
  for (uint32_t i = 0; i < 6; ++i) {
    uint64_t off = get_u64(file, table_field(i, 8)), len = get_u64(file, table_field(i, 16));
    p.body[i].assign(file.begin() + off, file.begin() + off + len);
  }
  return p;
}

Bytes seal(const Parts& parts, const keyring::KeyPair& key) {
  Bytes f = parts.header;
  f.resize(kSectionsStart);
  uint64_t off = kSectionsStart;
  for (uint32_t i = 0; i < kNumSections; ++i) {
    const bool sig = i == 6;
    uint64_t len = sig ? kSignatureSectionBytes : parts.body[i].size();
    put_u32(f, table_field(i, 0), i + 1);
    put_u64(f, table_field(i, 8), off);
    put_u64(f, table_field(i, 16), len);
    put_u64(f, table_field(i, 24), sig ? 0 : XXH64(parts.body[i].data(), parts.body[i].size(), 0));
    off += len;
  }
  for (const Bytes& b : parts.body) f.insert(f.end(), b.begin(), b.end());
  f.resize(f.size() + kSignatureSectionBytes);
  resign(f, key);
  return f;
}

void resign(Bytes& file, const keyring::KeyPair& key) {
  size_t at = file.size() - kSignatureSectionBytes;
  KeyId id = key_id(key.public_key);
  std::copy(id.begin(), id.end(), file.begin() + at);
  crypto_sign_detached(file.data() + at + kKeyIdBytes, nullptr, file.data(), at,
                       key.secret_key.data());
}

DecodeError decode(const Bytes& file, Recording* out) {
  Recording scratch;
  auto keys = trust_store();
  return decode_recording(file, keys, out ? out : &scratch);
}

}  // namespace rplayer::test
