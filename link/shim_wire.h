// The GPU shim protocol: what the cloud's DriverShim asks of the device's GPUShim and what
// comes back, as plaintext frames (the secure channel, link/secure_channel.h, wraps them).
//
// A request frame is an ordered list of operations; the device applies them in order and
// answers with one result per operation that returns something (Read, Poll, Wait), or
// with a refusal naming the operation at fault, which ends the session. Writes, updates
// and pages return nothing, so a cloud that defers may post any number of them in front of
// the one operation whose result it waits for.
//
// Decoding is as strict as the recording decoder's: every field checked, nothing left
// over, every count and size bounded. Secure-world code: no exceptions, no iostreams.
//
//   request  "RPSQ" u8 version u8 0 u16 0 u32 seq u32 count, count x op
//   op       u8 kind, then by kind:
//     Write   u8 block u32 offset u32 value
//     Update  u8 block u32 offset u32 and u32 or        value := (reg & and) | or
//     Read    u8 block u32 offset
//     Poll    u8 block u32 offset u32 mask u32 value u32 timeout_us
//     Wait    u8 line u32 timeout_us                   timeout 0: is the line asserted now
//     Page    u64 pa u8 encoding (0 raw: 4096 bytes; 1 zero; 2 zstd: u32 size, bytes)
//   reply    "RPSR" u8 version u8 status u16 0 u32 seq u32 count, then
//            status 0: count x result: u8 kind, then Read: u32 value;
//                      Poll: u8 matched u32 last u32 reads; Wait: u8 hit u32 device_us
//            status != 0 (a ShimRefusal): u32 op index u16 length, text
// All integers little endian.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace rplayer::link {

inline constexpr uint32_t kShimPage = 4096;
inline constexpr uint8_t kShimWireVersion = 1;

enum class ShimOpKind : uint8_t { Write = 1, Update = 2, Read = 3, Poll = 4, Wait = 5, Page = 6 };
enum class PageEncoding : uint8_t { Raw = 0, Zero = 1, Zstd = 2 };

struct ShimOp {
  ShimOpKind kind = ShimOpKind::Write;
  uint8_t block = 0;        // Write, Update, Read, Poll: hw::RegBlock; Wait: the interrupt line
  uint32_t offset = 0;      // register offset
  uint32_t a = 0;           // Write: value; Update: and; Poll: mask
  uint32_t b = 0;           // Update: or; Poll: value
  uint32_t timeout_us = 0;  // Poll, Wait
  uint64_t pa = 0;          // Page
  PageEncoding encoding = PageEncoding::Raw;  // Page: how it travels
  // Page: what travels (Raw: the 4096 bytes, Zstd: the compressed frame, Zero: nothing).
  // decode_request leaves the 4096 decoded bytes here for Raw and Zstd alike.
  std::vector<uint8_t> data;
};

struct ShimResult {
  ShimOpKind kind = ShimOpKind::Read;
  uint32_t value = 0;  // Read: the value; Poll: the last value read
  bool ok = false;     // Poll: matched; Wait: asserted
  uint32_t count = 0;  // Poll: reads made; Wait: microseconds the device waited
};

// Why the device ended the session.
enum class ShimRefusal : uint8_t {
  None = 0,
  Malformed,           // the frame does not decode
  TooLarge,            // frame, op count or page over the limits
  BlockNotAllowed,     // TrustZone controller, ownership mailbox, or a block the GPU lacks
  RegisterNotAllowed,  // a write outside the allowlist
  ValueNotAllowed,     // an allowed register, a forbidden value (MMU off, bypass, world bits)
  PageOutsidePool,     // a page, the page table or the illegal-address page not in the pool
  ForeignPte,          // a page-table entry pointing outside the pool or into the page table
  BadLine,             // an interrupt line the GPU does not have
  Unbounded,           // a poll or wait longer than allowed
  NotOpen,             // no session
  DeviceTimeout,       // the GPU did not answer within the device's own bound
  Channel,             // the secure channel refused the message (forged, replayed, reordered)
};
const char* shim_refusal_name(ShimRefusal r);

struct ShimLimits {
  size_t max_frame_bytes = 64u << 20;
  uint32_t max_ops = 1u << 20;
};

enum class WireCode : uint8_t {
  Ok,
  Truncated,
  BadMagic,
  BadVersion,
  Reserved,
  BadKind,
  TooLarge,
  BadPage,
  TrailingBytes
};
const char* wire_code_name(WireCode c);

// Request frames.
void encode_request(uint32_t seq, std::span<const ShimOp> ops, std::vector<uint8_t>* out);
WireCode decode_request(std::span<const uint8_t> frame, const ShimLimits& lim, uint32_t* seq,
                        std::vector<ShimOp>* ops);
// A page op for `bytes` (4096). compress: Zero if all zero, else zstd if that is smaller,
// else raw; otherwise raw.
ShimOp page_op(uint64_t pa, const uint8_t* bytes, bool compress);

// Reply frames.
struct ShimReply {
  uint32_t seq = 0;
  ShimRefusal refusal = ShimRefusal::None;
  uint32_t failed_op = 0;  // refusals: the index of the operation at fault
  std::string why;         // refusals: what was wrong, for the log (at most 512 bytes)
  std::vector<ShimResult> results;
};
void encode_reply(const ShimReply& r, std::vector<uint8_t>* out);
WireCode decode_reply(std::span<const uint8_t> frame, const ShimLimits& lim, ShimReply* out);

// What the cloud's driver learns at the start: the GPU's identity and the pool, which
// becomes its physical memory window.
struct ShimHello {
  uint32_t hub_ident[4] = {};   // HUB_IDENT0..3
  uint32_t core_ident[3] = {};  // CTL_IDENT0..2
  uint8_t blocks = 0;     // bit per hw::RegBlock index the cloud may use (Hub, Core0, Sms, Bridge)
  uint8_t irq_lines = 0;  // the GPU's interrupt lines
  uint64_t pool_pa = 0, pool_bytes = 0;
};
inline constexpr size_t kShimHelloBytes = 4 * 4 + 3 * 4 + 1 + 1 + 8 + 8;
void encode_hello(const ShimHello& h, uint8_t out[kShimHelloBytes]);
bool decode_hello(std::span<const uint8_t> in, ShimHello* h);

// The device's account of a session, in its acknowledgement of the cloud's final message:
// frames, operations and pages applied, microseconds waiting for interrupts and in all.
struct DeviceStats {
  uint64_t frames = 0, ops = 0, pages = 0, wait_us = 0, busy_us = 0;
};
std::vector<uint8_t> encode_device_stats(const DeviceStats& s);
bool decode_device_stats(std::span<const uint8_t> in, DeviceStats* s);

// Bytes an op takes on the wire (what a DriverShim counts before sending).
size_t encoded_size(const ShimOp& op);

}  // namespace rplayer::link
