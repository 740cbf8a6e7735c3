// Round trips: decode(encode(R)) == canonicalize(R), and re-encoding gives the same bytes.
#include <gtest/gtest.h>
#include <xxhash.h>

#include <cstring>

#include "tests/record_format/format_util.h"

namespace rplayer::test {
namespace {

using namespace replay;
using record::canonicalize;
using record::encode_recording;
using record::EncodeError;

// Encodes, decodes and re-encodes; returns the decoded recording.
Recording round_trip(const Recording& in) {
  Bytes bytes = encode_recording(in, trusted_key());
  Recording out;
  DecodeError err = decode(bytes, &out);
  char msg[160];
  EXPECT_TRUE(err.ok()) << err.format(msg, sizeof msg);
  Recording want = in;
  canonicalize(want);
  EXPECT_TRUE(out == want);
  EXPECT_EQ(encode_recording(out, trusted_key()), bytes);
  return out;
}

TEST(RecordFormatRoundTrip, Empty) {
  Recording r = round_trip(Recording{});
  EXPECT_TRUE(r == Recording{});
  Bytes bytes = encode_recording(Recording{}, trusted_key());
  // Header, table, six empty sections of a u32 count each, the empty weights part of
  // BINDINGS (file name, size, digest, count), signature.
  EXPECT_EQ(bytes.size(), kSectionsStart + 6 * 4 + (2 + 8 + 32 + 4) + kSignatureSectionBytes);
}

TEST(RecordFormatRoundTrip, Small) {
  Recording in = small_recording();
  Recording out = round_trip(in);
  EXPECT_TRUE(out == in);  // already canonical
}

TEST(RecordFormatRoundTrip, RandomCanonical) {
  for (uint32_t seed = 1; seed <= 40; ++seed) {
    SCOPED_TRACE(seed);
    Recording in = random_recording(seed, false);
    Recording out = round_trip(in);
    EXPECT_TRUE(out == in);
  }
}

TEST(RecordFormatRoundTrip, RandomNonCanonicalBlobs) {
  for (uint32_t seed = 100; seed <= 140; ++seed) {
    SCOPED_TRACE(seed);
    Recording in = random_recording(seed, true);
    Recording out = round_trip(in);
    for (const PageBlob& b : out.blobs) {
      EXPECT_NE(std::count(b.data.begin(), b.data.end(), 0), 4096);
    }
  }
}

TEST(RecordFormatRoundTrip, DeterministicBytes) {
  Recording r = random_recording(7, true);
  EXPECT_EQ(encode_recording(r, trusted_key()), encode_recording(r, trusted_key()));
  Recording c = r;
  canonicalize(c);
  EXPECT_EQ(encode_recording(c, trusted_key()), encode_recording(r, trusted_key()));
  Recording cc = c;
  canonicalize(cc);
  EXPECT_TRUE(cc == c);
}

TEST(RecordFormatRoundTrip, DedupAndZeroPages) {
  Recording r = small_recording();
  Bytes page(kPageBytes, 0);
  page[100] = 9;
  // Blobs: [0] the original, [1] zeros, [2] a copy of page, [3] page, [4] unreferenced.
  Bytes other(kPageBytes, 0xaa);
  r.blobs.push_back({0, Bytes(kPageBytes, 0)});
  r.blobs.push_back({0, page});
  r.blobs.push_back({0, page});
  r.blobs.push_back({0, other});
  r.loads = {{1, 0, 3}, {1, 1, 1}, {0, 0, 2}, {0, 0, 0}, {1, 0, 2}};
  Bytes bytes = encode_recording(r, trusted_key());
  Recording out;
  ASSERT_TRUE(decode(bytes, &out).ok());
  ASSERT_EQ(out.blobs.size(), 2u);
  EXPECT_EQ(out.blobs[0].data, page);
  EXPECT_EQ(out.blobs[0].hash, XXH64(page.data(), page.size(), 0));
  EXPECT_EQ(out.blobs[1].data, r.blobs[0].data);
  std::vector<PageLoad> want = {{1, 0, 0}, {1, 1, kZeroBlob}, {0, 0, 0}, {0, 0, 1}, {1, 0, 0}};
  EXPECT_TRUE(out.loads == want);
  round_trip(r);
}

TEST(RecordFormatRoundTrip, IncompressiblePagesStoredRaw) {
  Recording r = small_recording();
  uint32_t x = 1;
  for (auto& b : r.blobs[0].data) b = static_cast<uint8_t>((x = x * 1103515245u + 12345u) >> 24);
  Bytes bytes = encode_recording(r, trusted_key());
  Parts p = split(bytes);
  EXPECT_EQ(p.section(SectionType::Blobs).size(), 4u + 4u + kPageBytes);
  round_trip(r);
}

TEST(RecordFormatRoundTrip, MaxActions) {
  Recording r = small_recording();
  r.actions.resize(kMaxActions);
  for (uint32_t i = 0; i < kMaxActions; ++i) {
    r.actions[i] = {
        .op = ActionOp::Write, .block = Block::Core0, .offset = i % 256 * 4, .value = i};
  }
  Recording out = round_trip(r);
  EXPECT_EQ(out.actions.size(), kMaxActions);
  r.actions.push_back({.op = ActionOp::JobBoundary});
  EXPECT_THROW(encode_recording(r, trusted_key()), EncodeError);
}

// Decoded memory is charged before it is allocated: 2,000 distinct pages (about 8 MiB
// decoded, ~10 KiB compressed) fail against a 1 MiB budget at the blob count.
TEST(RecordFormatRoundTrip, DecodedMemoryIsBudgetedBeforeAllocation) {
  Recording r = small_recording();
  const uint32_t n = 2000;
  r.blobs.resize(n);
  r.loads.clear();
  for (uint32_t i = 0; i < n; ++i) {
    r.blobs[i].data.assign(kPageBytes, 0);
    std::memcpy(r.blobs[i].data.data(), &i, 4);
    r.blobs[i].data[100] = 1;
    r.loads.push_back({0, 0, i});
  }
  for (Action& a : r.actions)
    if (a.op == ActionOp::LoadMemory) a.first = 0, a.count = n;
  const Bytes bytes = encode_recording(r, trusted_key());
  EXPECT_LT(bytes.size(), 200u * 1024) << "compressed";
  Recording out;
  const DecodeError e = decode_recording(bytes, trust_store(), &out, 1u << 20);
  EXPECT_EQ(e.code, DecodeCode::MemoryBudget);
  EXPECT_EQ(e.section, SectionType::Blobs);
  EXPECT_TRUE(out.blobs.empty());
  EXPECT_TRUE(decode_recording(bytes, trust_store(), &out, 64u << 20).ok());
  EXPECT_EQ(out.blobs.size(), n);
}

TEST(RecordFormatRoundTrip, LimitsAtTheBoundary) {
  Recording r = small_recording();
  r.sku_name = std::string(31, 'x');
  r.metadata = {{std::string(kMaxMetadataKey, 'k'), std::string(kMaxMetadataValue, 'v')}};
  r.regions[0].label = std::string(kMaxLabel, 'l');
  r.regions.push_back({0xffff0000, 0x10000, RegionKind::Scratch, true, ""});  // ends at 4 GiB
  r.bindings[0].name = std::string(kMaxBindingName, 'n');
  r.bindings[0].shape.assign(kMaxRank, 3);
  r.bindings[0].layout = std::string(kMaxLayout, 'c');
  round_trip(r);

  auto rejects = [](Recording bad) {
    EXPECT_THROW(encode_recording(bad, trusted_key()), EncodeError);
  };
  Recording bad = r;
  bad.sku_name += "x";
  rejects(bad);
  bad = r;
  bad.metadata[0].first += "k";
  rejects(bad);
  bad = r;
  bad.metadata[0].second += "v";
  rejects(bad);
  bad = r;
  bad.regions[0].label += "l";
  rejects(bad);
  bad = r;
  bad.bindings[0].shape.push_back(1);
  rejects(bad);
  bad = r;
  bad.bindings[0].layout += "c";
  rejects(bad);
  bad = r;
  bad.regions.back().size += 4096;  // past 4 GiB: caught by the decoder self-check
  rejects(bad);
}

TEST(RecordFormatEncoder, RejectsWhatItCannotRepresent) {
  auto message = [](const Recording& r) {
    try {
      encode_recording(r, trusted_key());
    } catch (const EncodeError& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  Recording r = small_recording();
  r.actions[1].mask = 1;  // Write does not encode a mask
  EXPECT_NE(message(r).find("actions[1].op"), std::string::npos) << message(r);
  r = small_recording();
  r.actions[0].op = static_cast<ActionOp>(9);
  EXPECT_NE(message(r).find("unknown"), std::string::npos);
  r = small_recording();
  r.version_major = 1;
  EXPECT_NE(message(r).find("version"), std::string::npos);
  r = small_recording();
  r.blobs[0].data.pop_back();
  EXPECT_NE(message(r).find("not one page"), std::string::npos);
  r = small_recording();
  r.loads[0].blob = 5;
  EXPECT_NE(message(r).find("loads[0].blob"), std::string::npos);
  // Errors found by the self-check carry the decoder's location.
  r = small_recording();
  r.regions[0].size = 100;
  EXPECT_EQ(message(r),
            "recording violates the format: REGIONS[0].size: region not "
            "page-aligned, empty or past 4 GiB");
  r = small_recording();
  r.metadata.push_back(r.metadata[0]);
  EXPECT_EQ(message(r), "recording violates the format: METADATA[1].key: duplicate name");
  r = small_recording();
  r.weights_omitted = true;
  r.regions[0].kind = RegionKind::Weights;
  r.weights_file = {"w.bin", 4096, {}};
  r.weight_bindings = {{0, 0, 4096, {}}};
  EXPECT_EQ(message(r),
            "recording violates the format: BINDINGS[0].loads: load into a bound Weights "
            "region of a weight-less recording");
  r.weights_file.size = 100;  // the range ends past the file
  EXPECT_EQ(message(r),
            "recording violates the format: BINDINGS[0].weights.offset: index out of range");
}

TEST(RecordFormatDecoder, ErrorFormat) {
  DecodeError e{DecodeCode::BadEnum, SectionType::Regions, "kind", 3};
  char buf[128];
  EXPECT_STREQ(e.format(buf, sizeof buf), "REGIONS[3].kind: unknown enum value");
  e = {DecodeCode::UnknownKey, SectionType::Signature, "key_id", -1};
  EXPECT_STREQ(e.format(buf, sizeof buf), "SIGNATURE.key_id: signing key not in trust store");
  char tiny[8];
  EXPECT_STREQ(e.format(tiny, sizeof tiny), "SIGNATU");
}

TEST(RecordFormatDecoder, FailureLeavesOutputEmpty) {
  Bytes bytes = encode_recording(small_recording(), trusted_key());
  bytes.back() ^= 1;
  Recording out = small_recording();
  EXPECT_EQ(decode(bytes, &out).code, DecodeCode::BadSignature);
  EXPECT_TRUE(out == Recording{});
}

}  // namespace
}  // namespace rplayer::test
