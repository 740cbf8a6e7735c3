// Disassembler for the rpq ISA. Its output re-assembles to exactly the same words.
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace rplayer::isa {

// One instruction, no newline. Branch targets print as `#offset`, followed by a comment
// with the absolute target index (pc_index is the instruction's own index). An illegal word
// prints as `.word 0x%016x  ; illegal`.
std::string disassemble_one(uint64_t word, uint32_t pc_index = 0);

// A whole program, one line per word. Branch targets within [0, size] get labels `L<index>:`
// on a line of their own; others print as `#offset`.
std::string disassemble(std::span<const uint64_t> words);

}  // namespace rplayer::isa
