// Reading a whole file into memory in one allocation (models, images, recordings).
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace rplayer::nn {

// The file's bytes in *out; false with a reason ("cannot open: No such file or
// directory", "read error: ...") in *error. Sized from fstat and read with read(2):
// ~20x faster than istreambuf_iterator on the 45-55 MB weight files and recordings.
bool read_whole_file(const std::string& path, std::vector<uint8_t>* out, std::string* error);
// The same, throwing std::runtime_error("PATH: reason").
std::vector<uint8_t> read_whole_file(const std::string& path);

}  // namespace rplayer::nn
