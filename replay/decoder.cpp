#include "replay/decoder.h"

#include <xxhash.h>
#include <zstd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "replay/checked_math.h"

namespace rplayer::replay {
namespace {

constexpr const char* kMessages[] = {
    "ok",
    "truncated",
    "bad magic",
    "unsupported format version",
    "reserved field or flag bit set",
    "wrong section count",
    "unknown section type",
    "duplicate section",
    "sections out of order",
    "gap or overlap between sections",
    "section extends past end of file",
    "trailing bytes",
    "checksum mismatch",
    "malformed signature section",
    "signing key not in trust store",
    "bad signature",
    "crypto or compression library failure",
    "limit exceeded",
    "bad string",
    "duplicate name",
    "unknown enum value",
    "region not page-aligned, empty or past 4 GiB",
    "index out of range",
    "blob is not one page once decompressed",
    "zero page stored as a blob",
    "duplicate blob",
    "blob unreferenced or not in first-use order",
    "load into a bound Weights region of a weight-less recording",
    "decoding would exceed the memory budget",
};
static_assert(sizeof kMessages / sizeof kMessages[0] ==
              static_cast<size_t>(DecodeCode::MemoryBudget) + 1);

constexpr const char* kSectionNames[] = {"HEADER", "METADATA", "REGIONS",  "BLOBS",
                                         "LOADS",  "ACTIONS",  "BINDINGS", "SIGNATURE"};

// Bounds-checked little-endian reader over one byte range. The first failure sticks and
// later reads return zeros, so parsers need to test ok() only where a value is used.
class Reader {
 public:
  Reader(const uint8_t* data, size_t size, SectionType section, DecodeError* err,
         uint64_t* budget = nullptr)
      : data_(data), size_(size), section_(section), err_(err), budget_(budget) {}

  bool ok() const { return err_->code == DecodeCode::Ok; }
  size_t remaining() const { return size_ - pos_; }
  void at(int32_t index) { index_ = index; }

  bool fail(DecodeCode code, const char* field) {
    if (ok()) *err_ = {code, section_, field, index_};
    return false;
  }

  const uint8_t* take(size_t len, const char* field) {
    if (!ok()) return nullptr;
    if (len > remaining()) {
      fail(DecodeCode::Truncated, field);
      return nullptr;
    }
    const uint8_t* p = data_ + pos_;
    pos_ += len;
    return p;
  }

  template <typename T>
  T get(const char* field) {
    const uint8_t* p = take(sizeof(T), field);
    uint64_t v = 0;
    for (size_t i = 0; p != nullptr && i < sizeof(T); ++i) v |= uint64_t{p[i]} << (8 * i);
    return static_cast<T>(v);
  }

  // u16 length + bytes, min <= length <= max.
  bool str(std::string* s, uint32_t min, uint32_t max, const char* field) {
    uint16_t len = get<uint16_t>(field);
    if (len > max) return fail(DecodeCode::LimitExceeded, field);
    if (len < min) return fail(DecodeCode::BadString, field);
    const uint8_t* p = take(len, field);
    if (p != nullptr) s->assign(reinterpret_cast<const char*>(p), len);
    return p != nullptr;
  }

  // u32 element count. Each element takes at least min_bytes in the file, so a lying count
  // fails here, and at most decoded_bytes in memory, charged to the budget before anything
  // is allocated for it.
  uint32_t count(uint32_t max, size_t min_bytes, uint64_t decoded_bytes, const char* field) {
    uint32_t n = get<uint32_t>(field);
    if (n > max) fail(DecodeCode::LimitExceeded, field);
    if (n > remaining() / min_bytes) fail(DecodeCode::Truncated, field);
    uint64_t bytes = 0;
    if (ok() && budget_ && (!checked_mul(n, decoded_bytes, &bytes) || bytes > *budget_))
      fail(DecodeCode::MemoryBudget, field);
    if (ok() && budget_) *budget_ -= bytes;
    return ok() ? n : 0;
  }

  void digest(Digest* d, const char* field) {
    if (const uint8_t* p = take(d->size(), field)) std::memcpy(d->data(), p, d->size());
  }

  uint8_t enum_u8(uint8_t max, const char* field) {
    uint8_t v = get<uint8_t>(field);
    if (v > max) fail(DecodeCode::BadEnum, field);
    return v;
  }

  // A section's content must fill it exactly.
  bool finish() {
    at(-1);
    if (ok() && remaining() != 0) fail(DecodeCode::TrailingBytes, "end");
    return ok();
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  SectionType section_;
  DecodeError* err_;
  uint64_t* budget_;
  int32_t index_ = -1;
};

bool parse_metadata(Reader& r, Recording* rec) {
  uint32_t n = r.count(kMaxMetadata, 5,
                       sizeof(rec->metadata[0]) + kMaxMetadataKey + kMaxMetadataValue, "count");
  rec->metadata.reserve(n);
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    r.at(static_cast<int32_t>(i));
    auto& [key, value] = rec->metadata.emplace_back();
    r.str(&key, 1, kMaxMetadataKey, "key");
    r.str(&value, 0, kMaxMetadataValue, "value");
    for (uint32_t j = 0; j < i; ++j) {
      if (rec->metadata[j].first == key) r.fail(DecodeCode::DuplicateName, "key");
    }
  }
  return r.finish();
}

bool parse_regions(Reader& r, Recording* rec) {
  uint32_t n = r.count(kMaxRegions, 12, sizeof(Region) + kMaxLabel, "count");
  rec->regions.reserve(n);
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    r.at(static_cast<int32_t>(i));
    Region& g = rec->regions.emplace_back();
    g.gpu_va = r.get<uint32_t>("gpu_va");
    g.size = r.get<uint32_t>("size");
    g.kind = static_cast<RegionKind>(r.enum_u8(static_cast<uint8_t>(RegionKind::Scratch), "kind"));
    uint8_t flags = r.get<uint8_t>("flags");
    r.str(&g.label, 0, kMaxLabel, "label");
    if (flags & ~1u) r.fail(DecodeCode::BadReserved, "flags");
    g.gpu_writable = flags & 1u;
    if (g.gpu_va % kPageBytes != 0 || g.size % kPageBytes != 0 || g.size == 0 ||
        uint64_t{g.gpu_va} + g.size > (uint64_t{1} << 32)) {
      r.fail(DecodeCode::BadRegion, "size");
    }
  }
  return r.finish();
}

bool is_zero_page(const uint8_t* p) {
  uint8_t acc = 0;
  for (size_t i = 0; i < kPageBytes; ++i) acc |= p[i];
  return acc == 0;
}

// Blob i: u32 stored length, then the page raw (length 4096) or one zstd frame (< 4096).
bool parse_blobs(Reader& r, Recording* rec) {
  uint32_t n = r.count(kMaxBlobs, 5, sizeof(PageBlob) + kPageBytes, "count");
  rec->blobs.reserve(n);
  ZSTD_DCtx* zstd = n > 0 ? ZSTD_createDCtx() : nullptr;
  if (n > 0 && zstd == nullptr) return r.fail(DecodeCode::LibraryFailure, "zstd");
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    r.at(static_cast<int32_t>(i));
    uint32_t len = r.get<uint32_t>("length");
    if (len > kPageBytes) r.fail(DecodeCode::BadBlob, "length");
    const uint8_t* p = r.take(len, "data");
    if (p == nullptr) break;
    PageBlob& b = rec->blobs.emplace_back();
    b.data.resize(kPageBytes);
    if (len == kPageBytes) {
      std::memcpy(b.data.data(), p, kPageBytes);
    } else if (ZSTD_getFrameContentSize(p, len) != kPageBytes ||
               ZSTD_findFrameCompressedSize(p, len) != len ||
               ZSTD_decompressDCtx(zstd, b.data.data(), kPageBytes, p, len) != kPageBytes) {
      // Exactly one frame that declares one page and yields one page: a bomb stops at the
      // 4096-byte output buffer.
      r.fail(DecodeCode::BadBlob, "data");
      break;
    }
    if (is_zero_page(b.data.data())) r.fail(DecodeCode::ZeroBlob, "data");
    b.hash = XXH64(b.data.data(), kPageBytes, 0);
  }
  ZSTD_freeDCtx(zstd);
  if (!r.finish()) return false;

  // Sorting by (hash, content) puts identical pages next to each other.
  std::vector<uint32_t> order(rec->blobs.size());
  for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  auto cmp = [&](uint32_t a, uint32_t b) {
    const PageBlob &x = rec->blobs[a], &y = rec->blobs[b];
    if (x.hash != y.hash) return x.hash < y.hash;
    return std::memcmp(x.data.data(), y.data.data(), kPageBytes) < 0;
  };
  std::sort(order.begin(), order.end(), cmp);
  for (size_t i = 1; i < order.size(); ++i) {
    if (!cmp(order[i - 1], order[i])) {
      r.at(static_cast<int32_t>(std::max(order[i - 1], order[i])));
      return r.fail(DecodeCode::DuplicateBlob, "data");
    }
  }
  return true;
}

bool parse_loads(Reader& r, Recording* rec) {
  const uint32_t num_regions = static_cast<uint32_t>(rec->regions.size());
  const uint32_t num_blobs = static_cast<uint32_t>(rec->blobs.size());
  uint32_t n = r.count(kMaxLoads, 12, sizeof(PageLoad), "count");
  rec->loads.reserve(n);
  uint32_t next_new_blob = 0;  // blobs must appear in the order of their first load
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    r.at(static_cast<int32_t>(i));
    PageLoad& l = rec->loads.emplace_back();
    l.region = r.get<uint32_t>("region");
    l.page = r.get<uint32_t>("page");
    l.blob = r.get<uint32_t>("blob");
    if (!r.ok()) break;
    if (l.region >= num_regions) {
      r.fail(DecodeCode::BadIndex, "region");
    } else if (l.page >= rec->regions[l.region].size / kPageBytes) {
      r.fail(DecodeCode::BadIndex, "page");
    } else if (l.blob == kZeroBlob) {
      continue;
    } else if (l.blob >= num_blobs) {
      r.fail(DecodeCode::BadIndex, "blob");
    } else if (l.blob > next_new_blob) {
      r.fail(DecodeCode::BlobOrder, "blob");
    } else if (l.blob == next_new_blob) {
      ++next_new_blob;
    }
  }
  if (!r.finish()) return false;
  if (next_new_blob != num_blobs) return r.fail(DecodeCode::BlobOrder, "blob");
  return true;
}

bool parse_actions(Reader& r, Recording* rec) {
  const uint32_t num_loads = static_cast<uint32_t>(rec->loads.size());
  uint32_t n = r.count(kMaxActions, 5, sizeof(Action), "count");
  rec->actions.reserve(n);
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    r.at(static_cast<int32_t>(i));
    Action& a = rec->actions.emplace_back();
    uint8_t op = r.get<uint8_t>("op");
    if (op == 0 || op > kMaxActionOp) {
      r.fail(DecodeCode::BadEnum, "op");
      break;
    }
    a.op = static_cast<ActionOp>(op);
    const uint8_t f = kActionFields[op];
    if (f & kFieldBlock) {
      a.block = static_cast<Block>(r.enum_u8(static_cast<uint8_t>(Block::Tzpc), "block"));
    }
    if (f & kFieldLine) a.line = r.get<uint8_t>("line");
    if (f & kFieldOffset) a.offset = r.get<uint32_t>("offset");
    if (f & kFieldValue) a.value = r.get<uint32_t>("value");
    if (f & kFieldMask) a.mask = r.get<uint32_t>("mask");
    if (f & kFieldTimeout) a.timeout_us = r.get<uint32_t>("timeout_us");
    if (f & kFieldRange) {
      a.first = r.get<uint32_t>("first");
      a.count = r.get<uint32_t>("count");
      if (a.first > num_loads || a.count > num_loads - a.first) {
        r.fail(DecodeCode::BadIndex, "count");
      }
    }
  }
  return r.finish();
}

// After the tensor bindings: the model file, then each bound Weights region's range of it.
bool parse_weight_bindings(Reader& r, Recording* rec) {
  if (!r.ok()) return false;
  r.at(-1);
  WeightsFile& f = rec->weights_file;
  r.str(&f.name, 0, kMaxWeightsFileName, "weights.file");
  f.size = r.get<uint64_t>("weights.size");
  r.digest(&f.digest, "weights.digest");
  const uint32_t n =
      r.count(kMaxRegions, kWeightBindingBytes, sizeof(WeightBinding), "weights.count");
  if (r.ok() && (n == 0) != f.name.empty()) return r.fail(DecodeCode::BadString, "weights.file");
  std::vector<bool> bound(rec->regions.size(), false);
  rec->weight_bindings.reserve(n);
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    r.at(static_cast<int32_t>(i));
    WeightBinding& w = rec->weight_bindings.emplace_back();
    w.region = r.get<uint32_t>("weights.region");
    w.offset = r.get<uint64_t>("weights.offset");
    w.length = r.get<uint32_t>("weights.length");
    r.digest(&w.digest, "weights.digest");
    uint64_t end = 0;
    if (!r.ok()) break;
    if (w.region >= rec->regions.size()) {
      r.fail(DecodeCode::BadIndex, "weights.region");
    } else if (w.length == 0 || !checked_add(w.offset, w.length, &end) || end > f.size) {
      r.fail(DecodeCode::BadIndex, "weights.offset");
    } else {
      bound[w.region] = true;
    }
  }
  // A weight-less recording leaves bound regions to the model file: no image of its own.
  for (size_t k = 0; rec->weights_omitted && r.ok() && k < rec->loads.size(); ++k) {
    if (bound[rec->loads[k].region]) {
      r.at(static_cast<int32_t>(k));
      r.fail(DecodeCode::WeightsOmitted, "loads");
    }
  }
  return r.ok();
}

bool parse_bindings(Reader& r, Recording* rec) {
  uint32_t n = r.count(kMaxBindings, 20,
                       sizeof(Binding) + kMaxBindingName + kMaxRank * 4 + kMaxLayout, "count");
  rec->bindings.reserve(n);
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    r.at(static_cast<int32_t>(i));
    Binding& b = rec->bindings.emplace_back();
    r.str(&b.name, 1, kMaxBindingName, "name");
    uint8_t flags = r.get<uint8_t>("flags");
    if (flags & ~1u) r.fail(DecodeCode::BadReserved, "flags");
    b.is_input = flags & 1u;
    b.dtype = static_cast<DType>(r.enum_u8(static_cast<uint8_t>(DType::Int32), "dtype"));
    b.region = r.get<uint32_t>("region");
    b.offset = r.get<uint32_t>("offset");
    b.bytes = r.get<uint32_t>("bytes");
    uint8_t rank = r.get<uint8_t>("rank");
    if (rank > kMaxRank) r.fail(DecodeCode::LimitExceeded, "rank");
    for (uint8_t d = 0; d < rank && r.ok(); ++d) b.shape.push_back(r.get<uint32_t>("shape"));
    r.str(&b.layout, 0, kMaxLayout, "layout");
    if (!r.ok()) break;
    if (b.region >= rec->regions.size() ||
        uint64_t{b.offset} + b.bytes > rec->regions[b.region].size) {
      r.fail(DecodeCode::BadIndex, "region");
    }
    for (uint32_t j = 0; j < i; ++j) {
      if (rec->bindings[j].name == b.name) r.fail(DecodeCode::DuplicateName, "name");
    }
  }
  return parse_weight_bindings(r, rec) && r.finish();
}

struct SectionEntry {
  uint64_t offset = 0, length = 0, checksum = 0;
};

// Header and section table: everything needed to find, checksum and verify the sections.
bool parse_layout(std::span<const uint8_t> bytes, Reader& h, Recording* rec,
                  SectionEntry (&table)[kNumSections]) {
  const uint8_t* magic = h.take(sizeof kMagic, "magic");
  if (magic != nullptr && std::memcmp(magic, kMagic, sizeof kMagic) != 0) {
    h.fail(DecodeCode::BadMagic, "magic");
  }
  rec->version_major = h.get<uint16_t>("version_major");
  rec->version_minor = h.get<uint16_t>("version_minor");
  // A newer minor may add fields this decoder would not check: reject it too.
  if (rec->version_major != kFormatMajor || rec->version_minor > kFormatMinor) {
    h.fail(DecodeCode::UnsupportedVersion, "version");
  }
  uint32_t flags = h.get<uint32_t>("flags");
  if (flags & ~kFlagWeightsOmitted) h.fail(DecodeCode::BadReserved, "flags");
  rec->weights_omitted = flags & kFlagWeightsOmitted;
  rec->sku.hub_ident1 = h.get<uint32_t>("hub_ident1");
  rec->sku.hub_ident3 = h.get<uint32_t>("hub_ident3");
  rec->sku.core_ident0 = h.get<uint32_t>("core_ident0");
  rec->sku.core_ident1 = h.get<uint32_t>("core_ident1");
  const uint8_t* name = h.take(kSkuNameBytes, "sku_name");
  if (name != nullptr) {
    const void* nul = std::memchr(name, 0, kSkuNameBytes);
    size_t len = nul != nullptr ? static_cast<const uint8_t*>(nul) - name : kSkuNameBytes;
    bool padded = nul != nullptr;
    for (size_t i = len; i < kSkuNameBytes; ++i) padded = padded && name[i] == 0;
    if (!padded) h.fail(DecodeCode::BadString, "sku_name");
    rec->sku_name.assign(reinterpret_cast<const char*>(name), len);
  }
  if (h.get<uint32_t>("section_count") != kNumSections) {
    h.fail(DecodeCode::BadSectionCount, "section_count");
  }
  if (h.get<uint32_t>("reserved") != 0) h.fail(DecodeCode::BadReserved, "reserved");

  // Sections follow the table in type order, each starting where the previous one ended.
  uint64_t expected = kSectionsStart;
  for (uint32_t i = 0; i < kNumSections && h.ok(); ++i) {
    h.at(static_cast<int32_t>(i));
    const uint32_t want = i + 1;
    uint32_t type = h.get<uint32_t>("table.type");
    uint32_t reserved = h.get<uint32_t>("table.reserved");
    SectionEntry& e = table[i];
    e.offset = h.get<uint64_t>("table.offset");
    e.length = h.get<uint64_t>("table.length");
    e.checksum = h.get<uint64_t>("table.checksum");
    if (!h.ok()) break;
    if (type == 0 || type > kNumSections) {
      h.fail(DecodeCode::UnknownSection, "table.type");
    } else if (type < want) {  // earlier types were checked: this one is a repeat
      h.fail(DecodeCode::DuplicateSection, "table.type");
    } else if (type > want) {
      h.fail(DecodeCode::SectionOrder, "table.type");
    } else if (reserved != 0) {
      h.fail(DecodeCode::BadReserved, "table.reserved");
    } else if (e.offset != expected) {
      h.fail(DecodeCode::SectionLayout, "table.offset");
    } else if (e.offset > bytes.size() || e.length > bytes.size() - e.offset) {
      h.fail(DecodeCode::SectionBounds, "table.length");
    } else if (want == kNumSections && e.length != kSignatureSectionBytes) {
      h.fail(DecodeCode::BadSignatureSection, "table.length");
    } else if (want == kNumSections && e.checksum != 0) {
      // The signature covers the table, so it cannot also carry its own checksum.
      h.fail(DecodeCode::BadReserved, "table.checksum");
    }
    expected = e.offset + e.length;
  }
  h.at(-1);
  if (h.ok() && expected != bytes.size()) h.fail(DecodeCode::TrailingBytes, "end");
  return h.ok();
}

DecodeError decode(std::span<const uint8_t> bytes, std::span<const PublicKey> trusted,
                   uint64_t budget, Recording* rec) {
  DecodeError err;
  Reader h(bytes.data(), bytes.size(), SectionType::Header, &err);
  SectionEntry table[kNumSections];
  if (!parse_layout(bytes, h, rec, table)) return err;

  // Checksums first: cheap, and they name the corrupted section.
  for (uint32_t i = 0; i + 1 < kNumSections; ++i) {
    if (XXH64(bytes.data() + table[i].offset, table[i].length, 0) != table[i].checksum) {
      return {DecodeCode::ChecksumMismatch, static_cast<SectionType>(i + 1), "checksum", -1};
    }
  }

  // The signature covers every byte before its section. Nothing below runs on unsigned data.
  const uint8_t* sig = bytes.data() + table[kNumSections - 1].offset;
  KeyId id;
  std::memcpy(id.data(), sig, kKeyIdBytes);
  uint8_t signature[kSignatureBytes];
  std::memcpy(signature, sig + kKeyIdBytes, kSignatureBytes);
  switch (verify_signature(bytes.first(table[kNumSections - 1].offset), id, signature, trusted)) {
    case SigResult::Ok:
      break;
    case SigResult::UnknownKey:
      return {DecodeCode::UnknownKey, SectionType::Signature, "key_id", -1};
    case SigResult::BadSignature:
      return {DecodeCode::BadSignature, SectionType::Signature, "signature", -1};
    case SigResult::CryptoInit:
      return {DecodeCode::LibraryFailure, SectionType::Signature, "libsodium", -1};
  }

  // In section order, so that every reference points at a section already parsed.
  bool (*const parsers[])(Reader&, Recording*) = {parse_metadata, parse_regions, parse_blobs,
                                                  parse_loads,    parse_actions, parse_bindings};
  for (uint32_t i = 0; i + 1 < kNumSections; ++i) {
    Reader r(bytes.data() + table[i].offset, table[i].length, static_cast<SectionType>(i + 1), &err,
             &budget);
    if (!parsers[i](r, rec)) break;
  }
  return err;
}

}  // namespace

const char* section_name(SectionType type) {
  size_t i = static_cast<size_t>(type);
  return i < sizeof kSectionNames / sizeof kSectionNames[0] ? kSectionNames[i] : "?";
}

const char* DecodeError::message() const {
  size_t i = static_cast<size_t>(code);
  return i < sizeof kMessages / sizeof kMessages[0] ? kMessages[i] : "?";
}

const char* DecodeError::format(char* buf, size_t size) const {
  if (index >= 0) {
    std::snprintf(buf, size, "%s[%d].%s: %s", section_name(section), static_cast<int>(index), field,
                  message());
  } else {
    std::snprintf(buf, size, "%s.%s: %s", section_name(section), field, message());
  }
  return buf;
}

DecodeError decode_recording(std::span<const uint8_t> bytes, std::span<const PublicKey> trusted,
                             Recording* out, uint64_t memory_budget) {
  *out = Recording{};
  DecodeError err = decode(bytes, trusted, memory_budget, out);
  if (!err.ok()) *out = Recording{};
  return err;
}

}  // namespace rplayer::replay
