#include "fuzz/sealed_payload.h"

#include <sodium.h>
#include <xxhash.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "replay/decoder.h"

namespace rplayer::fuzz {

using namespace replay;

namespace {

struct FuzzKey {
  PublicKey pk{};
  uint8_t sk[crypto_sign_SECRETKEYBYTES];
  FuzzKey() {
    if (!crypto_ready()) std::abort();
    // Deterministic, so that a crash input reproduces with any build of the harness.
    uint8_t seed[crypto_sign_SEEDBYTES] = {'r', 'p', 'l', 'a', 'y', 'e', 'r', '-',
                                           'f', 'u', 'z', 'z'};
    crypto_sign_seed_keypair(pk.data(), sk, seed);
  }
};

const FuzzKey& key() {
  static const FuzzKey k;
  return k;
}

void put_u32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = uint8_t(v >> (8 * i));
}
void put_u64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = uint8_t(v >> (8 * i));
}
uint64_t get_u64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t(p[i]) << (8 * i);
  return v;
}

void sign_in_place(std::vector<uint8_t>& file) {
  const size_t at = file.size() - kSignatureSectionBytes;
  const KeyId id = key_id(key().pk);
  std::copy(id.begin(), id.end(), file.begin() + ptrdiff_t(at));
  crypto_sign_detached(file.data() + at + kKeyIdBytes, nullptr, file.data(), at, key().sk);
}

}  // namespace

const PublicKey& fuzz_public_key() { return key().pk; }

std::vector<uint8_t> seal_payload(std::span<const uint8_t> payload) {
  std::vector<uint8_t> file(kSectionsStart, 0);
  std::memcpy(file.data(), payload.data(), std::min(payload.size(), kHeaderBytes));
  size_t pos = std::min(payload.size(), kHeaderBytes);
  uint64_t off = kSectionsStart;
  for (uint32_t i = 0; i < kNumSections; ++i) {
    const bool sig = i == kNumSections - 1;
    size_t len = 0;
    if (sig) {
      len = kSignatureSectionBytes;
    } else if (payload.size() - pos >= 4) {
      const uint32_t want = uint32_t(payload[pos]) | uint32_t(payload[pos + 1]) << 8 |
                            uint32_t(payload[pos + 2]) << 16 | uint32_t(payload[pos + 3]) << 24;
      pos += 4;
      len = std::min<size_t>(want, payload.size() - pos);
    }
    uint8_t* e = file.data() + kHeaderBytes + i * kSectionEntryBytes;
    put_u32(e, i + 1);
    put_u64(e + 8, off);
    put_u64(e + 16, len);
    if (!sig) {
      put_u64(e + 24, XXH64(payload.data() + pos, len, 0));
      file.insert(file.end(), payload.begin() + ptrdiff_t(pos),
                  payload.begin() + ptrdiff_t(pos + len));
      pos += len;
    }
    off += len;
  }
  file.resize(file.size() + kSignatureSectionBytes);
  sign_in_place(file);
  return file;
}

std::vector<uint8_t> payload_of(std::span<const uint8_t> file) {
  if (file.size() < kSectionsStart) return {};
  std::vector<uint8_t> p(file.begin(), file.begin() + kHeaderBytes);
  for (uint32_t i = 0; i + 1 < kNumSections; ++i) {
    const uint8_t* e = file.data() + kHeaderBytes + i * kSectionEntryBytes;
    const uint64_t off = get_u64(e + 8), len = get_u64(e + 16);
    if (off > file.size() || len > file.size() - off) return {};
    uint8_t n[4];
    put_u32(n, uint32_t(len));
    p.insert(p.end(), n, n + 4);
    p.insert(p.end(), file.begin() + ptrdiff_t(off), file.begin() + ptrdiff_t(off + len));
  }
  return p;
}

bool resign_with_fuzz_key(std::vector<uint8_t>& file) {
  if (file.size() < kSectionsStart + kSignatureSectionBytes) return false;
  sign_in_place(file);
  return true;
}

}  // namespace rplayer::fuzz
