// Decoder of the signed recording format (docs/recording-format.md): bytes -> Recording.
//
// Part of the trusted core: every byte is hostile until the signature has been checked, and
// the signature is checked before any section content is parsed. No exceptions, no RTTI.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "replay/recording.h"
#include "replay/signature.h"

namespace rplayer::replay {

// Layout constants.
inline constexpr char kMagic[8] = {'R', 'P', 'L', 'A', 'Y', 'R', 'E', 'C'};
inline constexpr uint16_t kFormatMajor = 2;  // 2.0: BINDINGS also lists weight bindings
inline constexpr uint16_t kFormatMinor = 0;
inline constexpr uint32_t kFlagWeightsOmitted = 1u << 0;
inline constexpr size_t kSkuNameBytes = 32;  // NUL-padded, so at most 31 characters
inline constexpr size_t kHeaderBytes = 72;
inline constexpr size_t kSectionEntryBytes = 32;
inline constexpr uint32_t kNumSections = 7;
inline constexpr size_t kSectionsStart = kHeaderBytes + kNumSections * kSectionEntryBytes;
inline constexpr size_t kSignatureSectionBytes = kKeyIdBytes + kSignatureBytes;
inline constexpr size_t kPageBytes = 4096;

// Section types, in the only order they may appear. Header names errors in header or table.
enum class SectionType : uint8_t {
  Header = 0,
  Metadata = 1,
  Regions = 2,
  Blobs = 3,
  Loads = 4,
  Actions = 5,
  Bindings = 6,
  Signature = 7,
};

// Limits: a recording beyond them is invalid, whatever the decoder's memory.
inline constexpr uint32_t kMaxMetadata = 256;
inline constexpr uint32_t kMaxMetadataKey = 64;
inline constexpr uint32_t kMaxMetadataValue = 1024;
inline constexpr uint32_t kMaxRegions = 16384;
inline constexpr uint32_t kMaxLabel = 255;
inline constexpr uint32_t kMaxBlobs = 131072;  // x 4096 bytes: 512 MiB decompressed at most
inline constexpr uint32_t kMaxLoads = 1u << 22;
inline constexpr uint32_t kMaxActions = 1000000;
inline constexpr uint32_t kMaxBindings = 1024;
inline constexpr uint32_t kMaxBindingName = 255;
inline constexpr uint32_t kMaxRank = 8;
inline constexpr uint32_t kMaxLayout = 16;
inline constexpr uint32_t kMaxWeightsFileName = 255;
inline constexpr size_t kWeightBindingBytes = 4 + 8 + 4 + 32;

// Which Action fields each ActionOp encodes, in this order; the others must be zero.
enum ActionField : uint8_t {
  kFieldBlock = 1 << 0,    // u8
  kFieldLine = 1 << 1,     // u8
  kFieldOffset = 1 << 2,   // u32
  kFieldValue = 1 << 3,    // u32
  kFieldMask = 1 << 4,     // u32
  kFieldTimeout = 1 << 5,  // u32
  kFieldRange = 1 << 6,    // u32 first, u32 count
};
inline constexpr uint8_t kMaxActionOp = 6;
inline constexpr uint8_t kActionFields[kMaxActionOp + 1] = {
    0,                                                                      // (invalid)
    kFieldBlock | kFieldOffset | kFieldValue,                               // Write
    kFieldBlock | kFieldOffset | kFieldValue | kFieldMask,                  // Read
    kFieldBlock | kFieldOffset | kFieldValue | kFieldMask | kFieldTimeout,  // Poll
    kFieldLine | kFieldTimeout,                                             // WaitIrq
    kFieldRange,                                                            // LoadMemory
    kFieldValue,                                                            // JobBoundary
};

enum class DecodeCode : uint8_t {
  Ok,
  Truncated,  // a read runs past the end of the file or section
  BadMagic,
  UnsupportedVersion,
  BadReserved,  // a reserved field or unknown flag bit is nonzero
  BadSectionCount,
  UnknownSection,
  DuplicateSection,
  SectionOrder,
  SectionLayout,  // a gap or overlap between sections
  SectionBounds,  // a section extends past the end of the file
  TrailingBytes,  // bytes after the last section, or after a section's content
  ChecksumMismatch,
  BadSignatureSection,
  UnknownKey,  // signed by a key that is not in the trust store
  BadSignature,
  LibraryFailure,  // libsodium or zstd could not be initialised
  LimitExceeded,
  BadString,  // empty where not allowed, or SKU name not NUL-padded
  DuplicateName,
  BadEnum,
  BadRegion,  // region not page-aligned, empty, or past 4 GiB
  BadIndex,   // a reference to a region, page, blob or load out of range
  BadBlob,    // a blob that is not exactly one page once decompressed
  ZeroBlob,
  DuplicateBlob,
  BlobOrder,       // blobs not in first-use order, or unreferenced
  WeightsOmitted,  // a load into a bound Weights region of a weights_omitted recording
  MemoryBudget,    // the decoded recording would not fit the caller's memory budget
};

// Where decoding stopped: code, section, field and element index (-1: none).
struct DecodeError {
  DecodeCode code = DecodeCode::Ok;
  SectionType section = SectionType::Header;
  const char* field = "";
  int32_t index = -1;

  bool ok() const { return code == DecodeCode::Ok; }
  const char* message() const;
  // "REGIONS[3].size: region not page-aligned, empty or past 4 GiB"; returns buf.
  const char* format(char* buf, size_t size) const;
};

const char* section_name(SectionType type);

// Memory a decoded recording may take unless the caller says otherwise: the largest one
// the limits allow (512 MiB of blobs) fits, so only callers with less to give pass a budget.
inline constexpr uint64_t kDefaultDecodeBudget = 1ull << 30;

// Decodes `bytes`, accepting only recordings signed by one of `trusted`. Checks, in order:
// header, section table, checksums, signature, then the sections and their references.
// Every section's elements are charged to `memory_budget` (bytes, an upper bound of what
// they take decoded) before they are allocated. On failure *out is left empty.
DecodeError decode_recording(std::span<const uint8_t> bytes, std::span<const PublicKey> trusted,
                             Recording* out, uint64_t memory_budget = kDefaultDecodeBudget);

}  // namespace rplayer::replay
