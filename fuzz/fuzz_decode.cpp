// Target 1: the trusted decoder and the static verifier on hostile bytes.
//
// The first input byte picks the mode. Odd: the rest is a payload (sealed_payload.h) that
// the harness signs with the trusted fuzz key, so that mutations reach the section
// parsers, the reference checks and the verifier. Even: the rest is a whole file as it
// would arrive, which exercises the header, table, checksum and signature checks (a
// mutated file almost never carries a valid signature).
//
// Oracles: ASan/UBSan, and for every recording the decoder accepts, the round trip
// decode(encode(rec)) == rec (the format is canonical: whatever the trusted decoder
// accepts the encoder must be able to write back, unchanged).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>

#include "fuzz/sealed_payload.h"
#include "hw/sku.h"
#include "record/encoder.h"
#include "replay/decoder.h"
#include "replay/verifier.h"

using namespace rplayer;

namespace {

// Keeps the decoder's allocations well under libFuzzer's RSS limit.
constexpr uint64_t kDecodeBudget = 64ull << 20;

void check_verifier(const replay::Recording& rec) {
  char buf[256];
  replay::VerifyLimits small;
  small.max_memory_bytes = 4ull << 20;
  small.max_actions = 10000;
  small.max_poll_us = 20000;
  small.max_irq_wait_us = 20000;
  small.max_page_copies = 4096;
  small.max_replay_ms = 500;
  for (const replay::VerifyLimits& limits : {replay::VerifyLimits{}, small}) {
    (void)replay::replay_budget_us(rec, limits);
    (void)replay::recording_sku(rec);
    replay::verify_recording(rec, rec.sku, limits).format(buf, sizeof buf);
    // Against each GPU the replayer knows (SkuMismatch paths, per-SKU allowlists).
    for (const hw::Sku& sku : hw::all_skus()) {
      const replay::SkuIdentity present{sku.hub_ident1, sku.hub_ident3, sku.core_ident0,
                                        sku.core_ident1};
      replay::verify_recording(rec, present, limits).format(buf, sizeof buf);
    }
  }
}

void check_round_trip(const replay::Recording& rec) {
  static const keyring::KeyPair key = keyring::keypair_from_seed({7, 7, 7});
  std::vector<uint8_t> again;
  try {
    again = record::encode_recording(rec, key);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "the decoder accepted a recording the encoder refuses: %s\n", e.what());
    std::abort();
  }
  replay::Recording back;
  const replay::PublicKey pk = key.public_key;
  const replay::DecodeError e = replay::decode_recording(again, {&pk, 1}, &back, kDecodeBudget);
  if (!e.ok() || !(back == rec)) {
    char buf[256];
    std::fprintf(stderr, "round trip changed the recording: %s\n", e.format(buf, sizeof buf));
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const bool payload_mode = data[0] & 1;
  const std::span<const uint8_t> rest(data + 1, size - 1);
  std::vector<uint8_t> file = payload_mode ? fuzz::seal_payload(rest)
                                           : std::vector<uint8_t>(rest.begin(), rest.end());
  const replay::PublicKey trusted[] = {fuzz::fuzz_public_key()};
  replay::Recording rec;
  const replay::DecodeError e = replay::decode_recording(file, trusted, &rec, kDecodeBudget);
  char buf[256];
  e.format(buf, sizeof buf);
  if (!e.ok()) {
    if (!(rec == replay::Recording{})) {  // documented: on failure *out is left empty
      std::fprintf(stderr, "decode failed (%s) but left a partial recording\n", buf);
      std::abort();
    }
    return 0;
  }
  check_verifier(rec);
  check_round_trip(rec);
  return 0;
}
