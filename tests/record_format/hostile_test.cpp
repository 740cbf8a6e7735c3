// Hostile input: corruption (every single-byte change, every truncation) and hand-built
// recordings that carry valid checksums and a valid signature, so that the structural parser
// is what must reject them. Each case expects one specific error.
#include <gtest/gtest.h>
#include <zstd.h>

#include <random>
#include <tuple>

#include "tests/record_format/format_util.h"

namespace rplayer::test {
namespace {

using namespace replay;
using record::encode_recording;

Bytes small_file() { return encode_recording(small_recording(), trusted_key()); }

TEST(RecordFormatCorruption, EverySingleByteChangeRejected) {
  const Bytes good = small_file();
  ASSERT_TRUE(decode(good).ok());
  ASSERT_LT(good.size(), 1000u);  // keeps the exhaustive loop quick
  int by_code[64] = {};
  for (size_t i = 0; i < good.size(); ++i) {
    Bytes bad = good;
    for (int delta = 1; delta < 256; ++delta) {
      bad[i] = static_cast<uint8_t>(good[i] + delta);
      DecodeError err = decode(bad);
      ASSERT_FALSE(err.ok()) << "byte " << i << " + " << delta << " accepted";
      ++by_code[static_cast<int>(err.code)];
    }
  }
  // Sections are caught by checksums, the table and header by structure or signature.
  EXPECT_GT(by_code[static_cast<int>(DecodeCode::ChecksumMismatch)], 0);
  EXPECT_GT(by_code[static_cast<int>(DecodeCode::BadSignature)], 0);
  EXPECT_GT(by_code[static_cast<int>(DecodeCode::UnknownKey)], 0);
  EXPECT_GT(by_code[static_cast<int>(DecodeCode::SectionLayout)], 0);
}

TEST(RecordFormatCorruption, EveryTruncationRejected) {
  const Bytes good = small_file();
  for (size_t n = 0; n < good.size(); ++n) {
    Bytes bad(good.begin(), good.begin() + n);
    ASSERT_FALSE(decode(bad).ok()) << "prefix of " << n << " bytes accepted";
  }
  Bytes longer = good;
  longer.push_back(0);
  EXPECT_EQ(decode(longer).code, DecodeCode::TrailingBytes);
}

TEST(RecordFormatCorruption, RandomRecordingsRandomFlips) {
  for (uint32_t seed = 1; seed <= 10; ++seed) {
    const Bytes good = encode_recording(random_recording(seed, true), trusted_key());
    for (size_t k = 0; k < 300; ++k) {
      Bytes bad = good;
      size_t i = (k * 2654435761u + seed) % bad.size();
      bad[i] ^= static_cast<uint8_t>(1u << (k % 8));
      ASSERT_FALSE(decode(bad).ok());
    }
  }
}

// Random edits inside sections, resealed so that the structural parser sees them. Nothing
// may crash, and whatever is accepted must be canonical: re-encoding the decoded recording
// gives the same bytes. BLOBS is exempt from the byte comparison: how a page is compressed
// is the one thing the decoder cannot pin down.
TEST(RecordFormatCorruption, SignedSectionEditsAreRejectedOrCanonical) {
  std::mt19937 rng(1234);
  int accepted = 0, rejected = 0;
  for (uint32_t seed = 1; seed <= 60; ++seed) {
    const Parts base = split(encode_recording(random_recording(seed, true), trusted_key()));
    for (int k = 0; k < 40; ++k) {
      Parts p = base;
      const size_t s = rng() % 6;
      Bytes& body = p.body[s];
      for (int e = 0, n = 1 + rng() % 3; e < n; ++e) {
        size_t at = rng() % body.size();
        switch (rng() % 4) {
          case 0:
            body.insert(body.begin() + at, static_cast<uint8_t>(rng()));
            break;
          case 1:
            if (body.size() > 1) body.erase(body.begin() + at);
            break;
          default:
            body[at] = static_cast<uint8_t>(rng());
        }
      }
      const Bytes file = seal(p);
      Recording out;
      if (!decode(file, &out).ok()) {
        ++rejected;
        continue;
      }
      ++accepted;
      const Bytes again = encode_recording(out, trusted_key());
      if (s != 2) {
        EXPECT_EQ(again, file) << "seed " << seed << " edit " << k << " in section " << s;
      }
      Recording out2;
      ASSERT_TRUE(decode(again, &out2).ok());
      EXPECT_TRUE(out2 == out);
    }
  }
  RecordProperty("accepted", accepted);
  RecordProperty("rejected", rejected);
  EXPECT_GT(accepted, 0);
  EXPECT_GT(rejected, 0);
}

// --- Hand-built, validly signed files -------------------------------------------------

void expect(const Bytes& file, DecodeCode code, SectionType section, const char* field = nullptr) {
  Recording out;
  DecodeError err = decode(file, &out);
  char msg[160];
  EXPECT_EQ(err.code, code) << err.format(msg, sizeof msg);
  EXPECT_EQ(err.section, section) << err.format(msg, sizeof msg);
  if (field != nullptr) {
    EXPECT_STREQ(err.field, field);
  }
  EXPECT_TRUE(out == Recording{});
}

Parts small_parts() { return split(small_file()); }

// Header and table edits: patch, then re-sign over the patched bytes.
Bytes patched_header(size_t at, const Bytes& bytes) {
  Bytes f = small_file();
  std::copy(bytes.begin(), bytes.end(), f.begin() + at);
  resign(f);
  return f;
}

TEST(RecordFormatHostile, SealedBaselineDecodes) {
  // The tools below produce accepted files when nothing is changed.
  EXPECT_TRUE(decode(seal(small_parts())).ok());
  Bytes f = small_file();
  resign(f);
  EXPECT_TRUE(decode(f).ok());
}

TEST(RecordFormatHostile, Empty) { expect({}, DecodeCode::Truncated, SectionType::Header); }

TEST(RecordFormatHostile, WrongMagic) {
  expect(patched_header(0, B().raw({'R', 'P', 'L', 'A', 'Y', 'R', 'E', 'D'})), DecodeCode::BadMagic,
         SectionType::Header, "magic");
}

TEST(RecordFormatHostile, UnsupportedMajorVersion) {
  expect(patched_header(8, B().u16(1)), DecodeCode::UnsupportedVersion, SectionType::Header);
  expect(patched_header(8, B().u16(3)), DecodeCode::UnsupportedVersion, SectionType::Header);
}

TEST(RecordFormatHostile, UnsupportedMinorVersion) {
  expect(patched_header(10, B().u16(1)), DecodeCode::UnsupportedVersion, SectionType::Header);
}

TEST(RecordFormatHostile, UnknownFlag) {
  expect(patched_header(12, B().u32(2)), DecodeCode::BadReserved, SectionType::Header, "flags");
}

TEST(RecordFormatHostile, SkuNameNotNulPadded) {
  // "v3d-7.1\0" then garbage after the terminator.
  expect(patched_header(32 + 10, B().u8('x')), DecodeCode::BadString, SectionType::Header,
         "sku_name");
  Bytes full(kSkuNameBytes, 'a');
  expect(patched_header(32, full), DecodeCode::BadString, SectionType::Header, "sku_name");
}

TEST(RecordFormatHostile, WrongSectionCount) {
  expect(patched_header(64, B().u32(8)), DecodeCode::BadSectionCount, SectionType::Header);
  expect(patched_header(64, B().u32(0xffffffff)), DecodeCode::BadSectionCount, SectionType::Header);
}

TEST(RecordFormatHostile, HeaderReserved) {
  expect(patched_header(68, B().u32(1)), DecodeCode::BadReserved, SectionType::Header, "reserved");
}

TEST(RecordFormatHostile, UnknownSectionType) {
  expect(patched_header(table_field(2, 0), B().u32(9)), DecodeCode::UnknownSection,
         SectionType::Header);
  expect(patched_header(table_field(0, 0), B().u32(0)), DecodeCode::UnknownSection,
         SectionType::Header);
}

TEST(RecordFormatHostile, SectionsOutOfOrder) {
  expect(patched_header(table_field(1, 0), B().u32(3)), DecodeCode::SectionOrder,
         SectionType::Header);
}

TEST(RecordFormatHostile, DuplicateSection) {
  expect(patched_header(table_field(2, 0), B().u32(2)), DecodeCode::DuplicateSection,
         SectionType::Header);
}

TEST(RecordFormatHostile, TableReserved) {
  expect(patched_header(table_field(3, 4), B().u32(1)), DecodeCode::BadReserved,
         SectionType::Header, "table.reserved");
}

TEST(RecordFormatHostile, OverlappingSections) {
  Bytes f = small_file();
  Parts p = split(f);
  uint64_t off = kSectionsStart + p.body[0].size() - 1;  // REGIONS starts inside METADATA
  expect(patched_header(table_field(1, 8), B().u64(off)), DecodeCode::SectionLayout,
         SectionType::Header, "table.offset");
}

TEST(RecordFormatHostile, GapBetweenSections) {
  Bytes f = small_file();
  Parts p = split(f);
  uint64_t len = p.body[0].size() - 1;  // METADATA ends a byte before REGIONS starts
  expect(patched_header(table_field(0, 16), B().u64(len)), DecodeCode::SectionLayout,
         SectionType::Header);
}

TEST(RecordFormatHostile, SectionPastEnd) {
  Bytes f = small_file();
  expect(patched_header(table_field(5, 16), B().u64(f.size())), DecodeCode::SectionBounds,
         SectionType::Header, "table.length");
}

TEST(RecordFormatHostile, OffsetPlusLengthOverflows) {
  // offset + length wraps to a small number; the check must not add them.
  expect(patched_header(table_field(4, 16), B().u64(~uint64_t{0} - 100)), DecodeCode::SectionBounds,
         SectionType::Header);
  expect(patched_header(table_field(0, 8), B().u64(~uint64_t{0})), DecodeCode::SectionLayout,
         SectionType::Header);
}

TEST(RecordFormatHostile, TrailingBytesAfterSignature) {
  Bytes f = small_file();
  f.push_back(0);  // found from the table, before the signature is looked at
  expect(f, DecodeCode::TrailingBytes, SectionType::Header, "end");
}

TEST(RecordFormatHostile, SignatureSectionWrongLength) {
  Bytes f = small_file();
  f.push_back(0);
  put_u64(f, table_field(6, 16), kSignatureSectionBytes + 1);
  resign(f);
  expect(f, DecodeCode::BadSignatureSection, SectionType::Header);
}

TEST(RecordFormatHostile, SignatureChecksumNotZero) {
  expect(patched_header(table_field(6, 24), B().u64(1)), DecodeCode::BadReserved,
         SectionType::Header, "table.checksum");
}

TEST(RecordFormatHostile, ChecksumMismatch) {
  Bytes f = small_file();
  Parts p = split(f);
  f[kSectionsStart + p.body[0].size() + 2] ^= 1;  // inside REGIONS
  expect(f, DecodeCode::ChecksumMismatch, SectionType::Regions);
}

TEST(RecordFormatHostile, SignedByUntrustedKey) {
  expect(seal(small_parts(), other_key()), DecodeCode::UnknownKey, SectionType::Signature,
         "key_id");
}

TEST(RecordFormatHostile, BadSignatureFromKnownKey) {
  Bytes f = small_file();
  f[f.size() - 1] ^= 0x80;
  expect(f, DecodeCode::BadSignature, SectionType::Signature);
  // A signature by another key under the trusted key's id.
  f = small_file();
  Bytes g = seal(small_parts(), other_key());
  std::copy(g.end() - kSignatureBytes, g.end(), f.end() - kSignatureBytes);
  expect(f, DecodeCode::BadSignature, SectionType::Signature);
}

TEST(RecordFormatHostile, ChecksumsCheckedBeforeSignature) {
  Parts p = small_parts();
  Bytes f = seal(p, other_key());
  f[kSectionsStart] ^= 1;
  expect(f, DecodeCode::ChecksumMismatch, SectionType::Metadata);
}

// --- Section content ------------------------------------------------------------------

Bytes with(SectionType t, const Bytes& payload) {
  Parts p = small_parts();
  p.section(t) = payload;
  return seal(p);
}

// The weights part of BINDINGS: file name, size, digest, then (region, offset, length,
// digest) per weight binding. Empty by default.
struct WeightPart {
  std::string file;
  uint64_t size = 0;
  std::vector<std::tuple<uint32_t, uint64_t, uint32_t>> ranges;
  uint32_t count_override = ~0u;
};
Bytes weights_part(const WeightPart& w = {}) {
  B b;
  b.str(w.file).u64(w.size).raw(Bytes(32, 0));
  b.u32(w.count_override != ~0u ? w.count_override : uint32_t(w.ranges.size()));
  for (const auto& [region, offset, length] : w.ranges)
    b.u32(region).u64(offset).u32(length).raw(Bytes(32, 0));
  return b;
}

Bytes binding(uint8_t flags, uint8_t dtype, uint32_t region, uint32_t offset, uint32_t bytes,
              uint8_t rank, const WeightPart& weights = {}) {
  B b;
  b.u32(1).str("prob").u8(flags).u8(dtype).u32(region).u32(offset).u32(bytes).u8(rank);
  for (uint8_t i = 0; i < rank; ++i) b.u32(16);
  return b.str("c").raw(weights_part(weights));
}

TEST(RecordFormatHostile, MetadataHugeCount) {
  expect(with(SectionType::Metadata, B().u32(0xffffffff)), DecodeCode::LimitExceeded,
         SectionType::Metadata, "count");
}

TEST(RecordFormatHostile, MetadataCountPastEnd) {
  expect(with(SectionType::Metadata, B().u32(200).str("a").str("b")), DecodeCode::Truncated,
         SectionType::Metadata, "count");
}

TEST(RecordFormatHostile, MetadataStringPastEnd) {
  expect(with(SectionType::Metadata, B().u32(1).u16(10).raw({'a', 'b'}).u16(0)),
         DecodeCode::Truncated, SectionType::Metadata, "key");
}

TEST(RecordFormatHostile, OversizedString) {
  Bytes f =
      with(SectionType::Metadata, B().u32(1).str(std::string(kMaxMetadataKey + 1, 'k')).str("v"));
  expect(f, DecodeCode::LimitExceeded, SectionType::Metadata, "key");
  f = with(SectionType::Metadata, B().u32(1).u16(0xffff).str("v"));
  expect(f, DecodeCode::LimitExceeded, SectionType::Metadata, "key");
}

TEST(RecordFormatHostile, EmptyMetadataKey) {
  expect(with(SectionType::Metadata, B().u32(1).str("").str("v")), DecodeCode::BadString,
         SectionType::Metadata);
}

TEST(RecordFormatHostile, DuplicateMetadataKey) {
  expect(with(SectionType::Metadata, B().u32(2).str("a").str("1").str("a").str("2")),
         DecodeCode::DuplicateName, SectionType::Metadata);
}

TEST(RecordFormatHostile, TrailingBytesInSection) {
  expect(with(SectionType::Metadata, B().u32(0).u8(0)), DecodeCode::TrailingBytes,
         SectionType::Metadata, "end");
}

// The two regions of small_recording(), with one field changed.
Bytes regions(uint32_t va0, uint32_t size0, uint8_t kind0, uint8_t flags0) {
  return B()
      .u32(2)
      .u32(va0)
      .u32(size0)
      .u8(kind0)
      .u8(flags0)
      .str("k")
      .u32(0x20000)
      .u32(8192)
      .u8(5)
      .u8(1)
      .str("o");
}

TEST(RecordFormatHostile, RegionsBaselineMatches) {
  EXPECT_EQ(regions(0x10000, 4096, 1, 0), small_parts().section(SectionType::Regions));
}

TEST(RecordFormatHostile, RegionUnknownKind) {
  expect(with(SectionType::Regions, regions(0x10000, 4096, 7, 0)), DecodeCode::BadEnum,
         SectionType::Regions, "kind");
}

TEST(RecordFormatHostile, RegionReservedFlag) {
  expect(with(SectionType::Regions, regions(0x10000, 4096, 1, 2)), DecodeCode::BadReserved,
         SectionType::Regions, "flags");
}

TEST(RecordFormatHostile, RegionNotPageMultiple) {
  expect(with(SectionType::Regions, regions(0x10000, 4095, 1, 0)), DecodeCode::BadRegion,
         SectionType::Regions);
  expect(with(SectionType::Regions, regions(0x10001, 4096, 1, 0)), DecodeCode::BadRegion,
         SectionType::Regions);
  expect(with(SectionType::Regions, regions(0x10000, 0, 1, 0)), DecodeCode::BadRegion,
         SectionType::Regions);
}

TEST(RecordFormatHostile, RegionWrapsAddressSpace) {
  expect(with(SectionType::Regions, regions(0xfffff000, 0x2000, 1, 0)), DecodeCode::BadRegion,
         SectionType::Regions);
}

TEST(RecordFormatHostile, RegionCountTooLarge) {
  expect(with(SectionType::Regions, B().u32(kMaxRegions + 1)), DecodeCode::LimitExceeded,
         SectionType::Regions);
}

// BLOBS with one stored blob of `payload` (length-prefixed).
Bytes blob_section(const std::vector<Bytes>& stored) {
  B b;
  b.u32(static_cast<uint32_t>(stored.size()));
  for (const Bytes& s : stored) b.u32(static_cast<uint32_t>(s.size())).raw(s);
  return b;
}

Bytes page_with(uint8_t first) {
  Bytes p(kPageBytes, 0);
  p[0] = first;
  return p;
}

Bytes zstd(const Bytes& data, bool content_size = true) {
  Bytes out(ZSTD_compressBound(data.size()));
  ZSTD_CCtx* c = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, content_size ? 1 : 0);
  size_t n = ZSTD_compress2(c, out.data(), out.size(), data.data(), data.size());
  ZSTD_freeCCtx(c);
  EXPECT_FALSE(ZSTD_isError(n));
  out.resize(n);
  return out;
}

// A zstd frame whose header claims `claimed` bytes but whose blocks hold data.size().
Bytes lying_frame(const Bytes& data, uint32_t claimed) {
  Bytes f = zstd(data);
  // Single-segment frame: the content size follows the descriptor byte, 2 bytes holding
  // size - 256 (flag 1) or 4 bytes holding the size (flag 2).
  EXPECT_TRUE(f[4] & 0x20);
  if ((f[4] >> 6) == 1) {
    f[5] = static_cast<uint8_t>((claimed - 256) & 0xff);
    f[6] = static_cast<uint8_t>((claimed - 256) >> 8);
  } else {
    EXPECT_EQ(f[4] >> 6, 2);
    put_u32(f, 5, claimed);
  }
  EXPECT_EQ(ZSTD_getFrameContentSize(f.data(), f.size()), claimed);
  return f;
}

TEST(RecordFormatHostile, BlobBaselineMatches) {
  Bytes page = page_with(0x42);
  EXPECT_TRUE(decode(with(SectionType::Blobs, blob_section({zstd(page)}))).ok());
  EXPECT_TRUE(decode(with(SectionType::Blobs, blob_section({page}))).ok());  // raw
}

TEST(RecordFormatHostile, BlobDecompressesToMoreThanAPage) {
  Bytes big(2 * kPageBytes, 7);
  expect(with(SectionType::Blobs, blob_section({zstd(big)})), DecodeCode::BadBlob,
         SectionType::Blobs, "data");
}

TEST(RecordFormatHostile, ZstdBombClaimingOnePage) {
  Bytes big(64 * kPageBytes, 7);
  expect(with(SectionType::Blobs, blob_section({lying_frame(big, kPageBytes)})),
         DecodeCode::BadBlob, SectionType::Blobs, "data");
}

TEST(RecordFormatHostile, BlobDecompressesToLessThanAPage) {
  Bytes small(1000, 7);
  expect(with(SectionType::Blobs, blob_section({zstd(small)})), DecodeCode::BadBlob,
         SectionType::Blobs);
  expect(with(SectionType::Blobs, blob_section({lying_frame(small, kPageBytes)})),
         DecodeCode::BadBlob, SectionType::Blobs);
}

TEST(RecordFormatHostile, BlobWithoutContentSize) {
  expect(with(SectionType::Blobs, blob_section({zstd(page_with(0x42), false)})),
         DecodeCode::BadBlob, SectionType::Blobs);
}

TEST(RecordFormatHostile, BlobWithSecondFrame) {
  Bytes two = zstd(page_with(0x42));
  Bytes extra = zstd(Bytes(10, 1));
  two.insert(two.end(), extra.begin(), extra.end());
  expect(with(SectionType::Blobs, blob_section({two})), DecodeCode::BadBlob, SectionType::Blobs);
}

TEST(RecordFormatHostile, BlobStoredLengthTooLarge) {
  expect(with(SectionType::Blobs, B().u32(1).u32(kPageBytes + 1).raw(Bytes(kPageBytes + 1, 1))),
         DecodeCode::BadBlob, SectionType::Blobs, "length");
  expect(with(SectionType::Blobs, B().u32(1).u32(0xffffffff).raw(Bytes(16, 1))),
         DecodeCode::BadBlob, SectionType::Blobs, "length");
}

TEST(RecordFormatHostile, BlobLengthPastEnd) {
  expect(with(SectionType::Blobs, B().u32(1).u32(4000).raw(Bytes(10, 1))), DecodeCode::Truncated,
         SectionType::Blobs, "data");
}

TEST(RecordFormatHostile, ZeroPageStored) {
  expect(with(SectionType::Blobs, blob_section({Bytes(kPageBytes, 0)})), DecodeCode::ZeroBlob,
         SectionType::Blobs);
  expect(with(SectionType::Blobs, blob_section({zstd(Bytes(kPageBytes, 0))})), DecodeCode::ZeroBlob,
         SectionType::Blobs);
}

TEST(RecordFormatHostile, DuplicateBlob) {
  Parts p = small_parts();
  Bytes page = page_with(0x42);
  p.section(SectionType::Blobs) = blob_section({zstd(page), page});  // same content twice
  p.section(SectionType::Loads) = B().u32(2).u32(0).u32(0).u32(0).u32(1).u32(1).u32(1);
  Bytes f = seal(p);
  Recording out;
  DecodeError err = decode(f, &out);
  EXPECT_EQ(err.code, DecodeCode::DuplicateBlob);
  EXPECT_EQ(err.index, 1);
}

TEST(RecordFormatHostile, UnreferencedBlob) {
  Parts p = small_parts();
  p.section(SectionType::Blobs) = blob_section({zstd(page_with(1)), zstd(page_with(2))});
  Bytes f = seal(p);  // loads use blob 0 only
  expect(f, DecodeCode::BlobOrder, SectionType::Loads, "blob");
}

TEST(RecordFormatHostile, BlobsNotInFirstUseOrder) {
  Parts p = small_parts();
  p.section(SectionType::Blobs) = blob_section({zstd(page_with(1)), zstd(page_with(2))});
  p.section(SectionType::Loads) = B().u32(2).u32(0).u32(0).u32(1).u32(1).u32(1).u32(0);
  expect(seal(p), DecodeCode::BlobOrder, SectionType::Loads, "blob");
}

TEST(RecordFormatHostile, LoadReferencesOutOfRange) {
  auto loads = [](uint32_t region, uint32_t page, uint32_t blob) {
    return with(SectionType::Loads,
                B().u32(2).u32(region).u32(page).u32(blob).u32(1).u32(1).u32(kZeroBlob));
  };
  expect(loads(2, 0, 0), DecodeCode::BadIndex, SectionType::Loads, "region");
  expect(loads(0, 1, 0), DecodeCode::BadIndex, SectionType::Loads, "page");
  expect(loads(0, 0, 1), DecodeCode::BadIndex, SectionType::Loads, "blob");
  expect(loads(0xffffffff, 0, 0), DecodeCode::BadIndex, SectionType::Loads, "region");
}

TEST(RecordFormatHostile, LoadCountPastEnd) {
  expect(with(SectionType::Loads, B().u32(kMaxLoads).u32(0)), DecodeCode::Truncated,
         SectionType::Loads, "count");
  expect(with(SectionType::Loads, B().u32(kMaxLoads + 1)), DecodeCode::LimitExceeded,
         SectionType::Loads, "count");
}

TEST(RecordFormatHostile, LoadIntoOmittedWeights) {
  Parts p = small_parts();
  put_u32(p.header, 12, kFlagWeightsOmitted);
  p.section(SectionType::Regions) = regions(0x10000, 4096, 3, 0);  // region 0: Weights
  // Region 0 bound to a range of the model file: its image must come from the file.
  p.section(SectionType::Bindings) = binding(0, 0, 1, 16, 64, 1, {"w.bin", 4096, {{0, 0, 4096}}});
  expect(seal(p), DecodeCode::WeightsOmitted, SectionType::Bindings, "loads");
}

TEST(RecordFormatHostile, ActionUnknownOp) {
  expect(with(SectionType::Actions, B().u32(1).u8(7).u32(0)), DecodeCode::BadEnum,
         SectionType::Actions, "op");
  expect(with(SectionType::Actions, B().u32(1).u8(0).u32(0)), DecodeCode::BadEnum,
         SectionType::Actions, "op");
}

TEST(RecordFormatHostile, ActionUnknownBlock) {
  expect(with(SectionType::Actions, B().u32(1).u8(1).u8(5).u32(0).u32(0)), DecodeCode::BadEnum,
         SectionType::Actions, "block");
}

TEST(RecordFormatHostile, ActionCountTooLarge) {
  expect(with(SectionType::Actions, B().u32(kMaxActions + 1).raw(Bytes(64, 6))),
         DecodeCode::LimitExceeded, SectionType::Actions, "count");
}

TEST(RecordFormatHostile, ActionTruncated) {
  expect(with(SectionType::Actions, B().u32(2).u8(6).u32(1).u8(3).u8(0).u32(4)),
         DecodeCode::Truncated, SectionType::Actions);
}

TEST(RecordFormatHostile, LoadMemoryRangeOverflow) {
  // first + count wraps to 1 in 32 bits; 2 loads exist.
  expect(with(SectionType::Actions, B().u32(1).u8(5).u32(0xffffffff).u32(2)), DecodeCode::BadIndex,
         SectionType::Actions, "count");
  expect(with(SectionType::Actions, B().u32(1).u8(5).u32(1).u32(2)), DecodeCode::BadIndex,
         SectionType::Actions, "count");
}

// One binding of small_recording(), fields adjustable.
TEST(RecordFormatHostile, BindingBaselineMatches) {
  EXPECT_EQ(binding(0, 0, 1, 16, 64, 1), small_parts().section(SectionType::Bindings));
}

TEST(RecordFormatHostile, WeightBindingsMustStayInsideTheFile) {
  auto with_weights = [](const WeightPart& w) {
    return with(SectionType::Bindings, binding(0, 0, 1, 16, 64, 1, w));
  };
  const Bytes ok = with_weights({"w.bin", 8192, {{0, 4096, 4096}}});
  Recording out;
  ASSERT_TRUE(decode(ok, &out).ok());
  ASSERT_EQ(out.weight_bindings.size(), 1u);
  EXPECT_EQ(out.weight_bindings[0].offset, 4096u);
  expect(with_weights({"w.bin", 8192, {{7, 0, 4096}}}), DecodeCode::BadIndex, SectionType::Bindings,
         "weights.region");
  expect(with_weights({"w.bin", 8192, {{0, 4097, 4096}}}), DecodeCode::BadIndex,
         SectionType::Bindings, "weights.offset");
  expect(with_weights({"w.bin", 8192, {{0, ~0ull - 10, 4096}}}), DecodeCode::BadIndex,
         SectionType::Bindings, "weights.offset");  // offset + length wraps
  expect(with_weights({"w.bin", 8192, {{0, 0, 0}}}), DecodeCode::BadIndex, SectionType::Bindings,
         "weights.offset");
  expect(with_weights({"", 8192, {{0, 0, 4096}}}), DecodeCode::BadString, SectionType::Bindings,
         "weights.file");
  expect(with_weights({"w.bin", 8192, {}}), DecodeCode::BadString, SectionType::Bindings,
         "weights.file");
  WeightPart lying{"w.bin", 8192, {{0, 0, 4096}}};
  lying.count_override = 1000;
  expect(with_weights(lying), DecodeCode::Truncated, SectionType::Bindings, "weights.count");
}

TEST(RecordFormatHostile, BindingUnknownDtype) {
  expect(with(SectionType::Bindings, binding(0, 2, 1, 16, 64, 1)), DecodeCode::BadEnum,
         SectionType::Bindings, "dtype");
}

TEST(RecordFormatHostile, BindingReservedFlag) {
  expect(with(SectionType::Bindings, binding(0x80, 0, 1, 16, 64, 1)), DecodeCode::BadReserved,
         SectionType::Bindings, "flags");
}

TEST(RecordFormatHostile, BindingOutsideRegion) {
  expect(with(SectionType::Bindings, binding(0, 0, 1, 8192 - 63, 64, 1)), DecodeCode::BadIndex,
         SectionType::Bindings);
  expect(with(SectionType::Bindings, binding(0, 0, 1, 0xffffffff, 2, 1)), DecodeCode::BadIndex,
         SectionType::Bindings);
  expect(with(SectionType::Bindings, binding(0, 0, 2, 0, 4, 1)), DecodeCode::BadIndex,
         SectionType::Bindings);
}

TEST(RecordFormatHostile, BindingRankTooLarge) {
  expect(with(SectionType::Bindings, binding(0, 0, 1, 16, 64, kMaxRank + 1)),
         DecodeCode::LimitExceeded, SectionType::Bindings, "rank");
}

TEST(RecordFormatHostile, BindingDuplicateName) {
  Bytes one = binding(0, 0, 1, 16, 64, 1);
  const Bytes entry(one.begin() + 4, one.end() - long(weights_part().size()));
  B two;
  two.u32(2).raw(entry).raw(entry).raw(weights_part());
  expect(with(SectionType::Bindings, two), DecodeCode::DuplicateName, SectionType::Bindings);
}

}  // namespace
}  // namespace rplayer::test
