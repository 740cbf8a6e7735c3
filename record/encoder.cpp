#include "record/encoder.h"

#include <sodium.h>
#include <xxhash.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>

#include "replay/decoder.h"

namespace rplayer::record {
namespace {

using replay::kPageBytes;

struct BlobPlan {
  std::vector<uint32_t> order;          // old index of each canonical blob, in new order
  std::vector<replay::PageLoad> loads;  // blob indices renumbered to `order`
};

BlobPlan plan_blobs(const replay::Recording& rec) {
  const size_t n = rec.blobs.size();
  // First blob with the same content, or kZeroBlob for zero pages.
  std::vector<uint32_t> rep(n, replay::kZeroBlob);
  std::unordered_map<uint64_t, std::vector<uint32_t>> by_hash;
  for (uint32_t i = 0; i < n; ++i) {
    const std::vector<uint8_t>& data = rec.blobs[i].data;
    if (data.size() != kPageBytes) {
      throw EncodeError("blobs[" + std::to_string(i) + "]: " + std::to_string(data.size()) +
                        " bytes, not one page");
    }
    if (std::all_of(data.begin(), data.end(), [](uint8_t b) { return b == 0; })) continue;
    std::vector<uint32_t>& same_hash = by_hash[XXH64(data.data(), kPageBytes, 0)];
    rep[i] = i;
    for (uint32_t j : same_hash) {
      if (rec.blobs[j].data == data) rep[i] = j;
    }
    if (rep[i] == i) same_hash.push_back(i);
  }
  BlobPlan plan;
  plan.loads = rec.loads;
  std::vector<uint32_t> new_index(n, replay::kZeroBlob);
  for (size_t i = 0; i < plan.loads.size(); ++i) {
    uint32_t& blob = plan.loads[i].blob;
    if (blob == replay::kZeroBlob) continue;
    if (blob >= n) throw EncodeError("loads[" + std::to_string(i) + "].blob: out of range");
    const uint32_t r = rep[blob];
    if (r != replay::kZeroBlob && new_index[r] == replay::kZeroBlob) {
      new_index[r] = static_cast<uint32_t>(plan.order.size());
      plan.order.push_back(r);
    }
    blob = r == replay::kZeroBlob ? replay::kZeroBlob : new_index[r];
  }
  return plan;
}

class Writer {
 public:
  std::vector<uint8_t> out;

  template <typename T>
  void put(T v) {
    for (size_t i = 0; i < sizeof(T); ++i)
      out.push_back(static_cast<uint8_t>(uint64_t{v} >> (8 * i)));
  }
  void bytes(const void* p, size_t n) {
    const uint8_t* b = static_cast<const uint8_t*>(p);
    out.insert(out.end(), b, b + n);
  }
  void str(const std::string& s, uint32_t max, const std::string& what) {
    if (s.size() > max) {
      throw EncodeError(what + ": " + std::to_string(s.size()) + " bytes, at most " +
                        std::to_string(max));
    }
    put<uint16_t>(static_cast<uint16_t>(s.size()));
    bytes(s.data(), s.size());
  }
  void count(size_t n, uint32_t max, const std::string& what) {
    if (n > max) {
      throw EncodeError(what + ": " + std::to_string(n) + " entries, at most " +
                        std::to_string(max));
    }
    put<uint32_t>(static_cast<uint32_t>(n));
  }
};

std::string at(const char* section, size_t i, const char* field) {
  return std::string(section) + "[" + std::to_string(i) + "]." + field;
}

void write_actions(Writer& w, const std::vector<replay::Action>& actions) {
  using namespace replay;
  w.count(actions.size(), kMaxActions, "actions");
  for (size_t i = 0; i < actions.size(); ++i) {
    const Action& a = actions[i];
    const uint8_t op = static_cast<uint8_t>(a.op);
    if (op == 0 || op > kMaxActionOp) throw EncodeError(at("actions", i, "op") + ": unknown");
    const uint8_t f = kActionFields[op];
    // Fields the op does not encode would be lost on decode: they must be zero.
    const bool unused_set =
        (!(f & kFieldBlock) && a.block != Block::Hub) || (!(f & kFieldLine) && a.line != 0) ||
        (!(f & kFieldOffset) && a.offset != 0) || (!(f & kFieldValue) && a.value != 0) ||
        (!(f & kFieldMask) && a.mask != 0) || (!(f & kFieldTimeout) && a.timeout_us != 0) ||
        (!(f & kFieldRange) && (a.first != 0 || a.count != 0));
    if (unused_set) {
      throw EncodeError(at("actions", i, "op") + ": a field this op does not use is nonzero");
    }
    w.put<uint8_t>(op);
    if (f & kFieldBlock) w.put<uint8_t>(static_cast<uint8_t>(a.block));
    if (f & kFieldLine) w.put<uint8_t>(a.line);
    if (f & kFieldOffset) w.put<uint32_t>(a.offset);
    if (f & kFieldValue) w.put<uint32_t>(a.value);
    if (f & kFieldMask) w.put<uint32_t>(a.mask);
    if (f & kFieldTimeout) w.put<uint32_t>(a.timeout_us);
    if (f & kFieldRange) {
      w.put<uint32_t>(a.first);
      w.put<uint32_t>(a.count);
    }
  }
}

void write_blobs(Writer& w, const replay::Recording& rec, const BlobPlan& plan) {
  w.count(plan.order.size(), replay::kMaxBlobs, "blobs");
  std::unique_ptr<ZSTD_CCtx, size_t (*)(ZSTD_CCtx*)> cctx(ZSTD_createCCtx(), ZSTD_freeCCtx);
  if (!cctx) throw EncodeError("zstd: cannot create a compression context");
  std::vector<uint8_t> buf(ZSTD_compressBound(kPageBytes));
  for (uint32_t old : plan.order) {
    const uint8_t* page = rec.blobs[old].data.data();
    size_t n = ZSTD_compressCCtx(cctx.get(), buf.data(), buf.size(), page, kPageBytes, kZstdLevel);
    if (ZSTD_isError(n)) throw EncodeError(std::string("zstd: ") + ZSTD_getErrorName(n));
    // Stored raw when compression does not save anything: the length says which.
    if (n < kPageBytes) {
      w.put<uint32_t>(static_cast<uint32_t>(n));
      w.bytes(buf.data(), n);
    } else {
      w.put<uint32_t>(kPageBytes);
      w.bytes(page, kPageBytes);
    }
  }
}

}  // namespace

void canonicalize(replay::Recording& rec) {
  BlobPlan plan = plan_blobs(rec);
  std::vector<replay::PageBlob> blobs(plan.order.size());
  for (size_t i = 0; i < blobs.size(); ++i) {
    blobs[i].data = std::move(rec.blobs[plan.order[i]].data);
    blobs[i].hash = XXH64(blobs[i].data.data(), kPageBytes, 0);
  }
  rec.blobs = std::move(blobs);
  rec.loads = std::move(plan.loads);
}

std::vector<uint8_t> encode_recording(const replay::Recording& rec, const keyring::KeyPair& key) {
  using namespace replay;
  if (rec.version_major != kFormatMajor || rec.version_minor != kFormatMinor) {
    throw EncodeError("version: this encoder writes format 2.0 only");
  }
  if (rec.sku_name.size() >= kSkuNameBytes || rec.sku_name.find('\0') != std::string::npos) {
    throw EncodeError("sku_name: at most 31 bytes, no NUL");
  }
  if (!crypto_ready()) throw EncodeError("libsodium initialisation failed");
  const BlobPlan plan = plan_blobs(rec);

  Writer w;
  w.bytes(kMagic, sizeof kMagic);
  w.put<uint16_t>(kFormatMajor);
  w.put<uint16_t>(kFormatMinor);
  w.put<uint32_t>(rec.weights_omitted ? kFlagWeightsOmitted : 0);
  w.put<uint32_t>(rec.sku.hub_ident1);
  w.put<uint32_t>(rec.sku.hub_ident3);
  w.put<uint32_t>(rec.sku.core_ident0);
  w.put<uint32_t>(rec.sku.core_ident1);
  char name[kSkuNameBytes] = {};
  std::memcpy(name, rec.sku_name.data(), rec.sku_name.size());
  w.bytes(name, sizeof name);
  w.put<uint32_t>(kNumSections);
  w.put<uint32_t>(0);
  w.out.resize(kSectionsStart);  // section table, filled in below

  size_t start[kNumSections + 1];
  start[0] = w.out.size();
  w.count(rec.metadata.size(), kMaxMetadata, "metadata");
  for (size_t i = 0; i < rec.metadata.size(); ++i) {
    w.str(rec.metadata[i].first, kMaxMetadataKey, at("metadata", i, "key"));
    w.str(rec.metadata[i].second, kMaxMetadataValue, at("metadata", i, "value"));
  }
  start[1] = w.out.size();
  w.count(rec.regions.size(), kMaxRegions, "regions");
  for (size_t i = 0; i < rec.regions.size(); ++i) {
    const Region& g = rec.regions[i];
    w.put<uint32_t>(g.gpu_va);
    w.put<uint32_t>(g.size);
    w.put<uint8_t>(static_cast<uint8_t>(g.kind));
    w.put<uint8_t>(g.gpu_writable ? 1 : 0);
    w.str(g.label, kMaxLabel, at("regions", i, "label"));
  }
  start[2] = w.out.size();
  write_blobs(w, rec, plan);
  start[3] = w.out.size();
  w.count(plan.loads.size(), kMaxLoads, "loads");
  for (const PageLoad& l : plan.loads) {
    w.put<uint32_t>(l.region);
    w.put<uint32_t>(l.page);
    w.put<uint32_t>(l.blob);
  }
  start[4] = w.out.size();
  write_actions(w, rec.actions);
  start[5] = w.out.size();
  w.count(rec.bindings.size(), kMaxBindings, "bindings");
  for (size_t i = 0; i < rec.bindings.size(); ++i) {
    const Binding& b = rec.bindings[i];
    w.str(b.name, kMaxBindingName, at("bindings", i, "name"));
    w.put<uint8_t>(b.is_input ? 1 : 0);
    w.put<uint8_t>(static_cast<uint8_t>(b.dtype));
    w.put<uint32_t>(b.region);
    w.put<uint32_t>(b.offset);
    w.put<uint32_t>(b.bytes);
    if (b.shape.size() > kMaxRank) throw EncodeError(at("bindings", i, "shape") + ": rank > 8");
    w.put<uint8_t>(static_cast<uint8_t>(b.shape.size()));
    for (uint32_t d : b.shape) w.put<uint32_t>(d);
    w.str(b.layout, kMaxLayout, at("bindings", i, "layout"));
  }
  w.str(rec.weights_file.name, kMaxWeightsFileName, "weights.file");
  w.put<uint64_t>(rec.weights_file.size);
  w.bytes(rec.weights_file.digest.data(), rec.weights_file.digest.size());
  w.count(rec.weight_bindings.size(), kMaxRegions, "weights");
  for (const WeightBinding& b : rec.weight_bindings) {
    w.put<uint32_t>(b.region);
    w.put<uint64_t>(b.offset);
    w.put<uint32_t>(b.length);
    w.bytes(b.digest.data(), b.digest.size());
  }
  start[6] = w.out.size();
  start[7] = start[6] + kSignatureSectionBytes;

  // The table is signed, so it is complete before signing; the signature entry carries no
  // checksum.
  Writer table;
  for (uint32_t i = 0; i < kNumSections; ++i) {
    const uint64_t length = start[i + 1] - start[i];
    table.put<uint32_t>(i + 1);
    table.put<uint32_t>(0);
    table.put<uint64_t>(start[i]);
    table.put<uint64_t>(length);
    table.put<uint64_t>(i + 1 == kNumSections ? 0 : XXH64(w.out.data() + start[i], length, 0));
  }
  std::copy(table.out.begin(), table.out.end(), w.out.begin() + kHeaderBytes);

  const KeyId id = key_id(key.public_key);
  uint8_t sig[kSignatureBytes];
  crypto_sign_detached(sig, nullptr, w.out.data(), w.out.size(), key.secret_key.data());
  w.bytes(id.data(), id.size());
  w.bytes(sig, sizeof sig);

  Recording check;
  const PublicKey trusted[] = {key.public_key};
  DecodeError err = decode_recording(w.out, trusted, &check);
  if (!err.ok()) {
    char msg[160];
    throw EncodeError(std::string("recording violates the format: ") + err.format(msg, sizeof msg));
  }
  return std::move(w.out);
}

}  // namespace rplayer::record
