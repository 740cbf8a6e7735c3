// Text assembler for the rpq ISA (syntax in docs/isa.md) and the binary program format.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace rplayer::isa {

struct AsmError {
  int line;  // 1-based source line
  std::string message;
};

struct AsmResult {
  std::vector<uint64_t> words;  // empty whenever errors is not
  std::vector<AsmError> errors;
  bool ok() const { return errors.empty(); }
};

// Assembles a whole program. Never throws; every problem is reported with its line and
// assembly continues so that one pass reports all errors. Every emitted instruction is
// canonical (passes isa::decode), except raw `.word` directives.
AsmResult assemble(std::string_view source);

// Program binary: the words in order, each 8 bytes little-endian.
std::vector<uint8_t> to_bytes(std::span<const uint64_t> words);
// nullopt unless bytes.size() is a multiple of 8.
std::optional<std::vector<uint64_t>> from_bytes(std::span<const uint8_t> bytes);

}  // namespace rplayer::isa
