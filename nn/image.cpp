#include "nn/image.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

#include "nn/file_bytes.h"

// The implementation is compiled here with internal linkage, so this library neither
// needs Debian's libstb.so at run time nor clashes with it.
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_STATIC
#define STBI_FAILURE_USERMSG
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#include <stb/stb_image.h>
#pragma GCC diagnostic pop

namespace rplayer::nn {

namespace {

// stb reads a cut-off binary PNM as if the missing pixels were zero; reject it instead.
void check_pnm_size(const std::vector<uint8_t>& b, const std::string& name) {
  if (b.size() < 2 || b[0] != 'P' || (b[1] != '5' && b[1] != '6')) return;
  size_t pos = 2;
  long fields[3] = {0, 0, 0};
  for (long& f : fields) {
    while (pos < b.size() && (std::isspace(b[pos]) || b[pos] == '#')) {
      if (b[pos] == '#')
        while (pos < b.size() && b[pos] != '\n') pos++;
      else
        pos++;
    }
    while (pos < b.size() && std::isdigit(b[pos])) f = f * 10 + (b[pos++] - '0');
  }
  pos++;  // the single whitespace after maxval
  const size_t bytes_per = (fields[2] > 255 ? 2 : 1) * (b[1] == '6' ? 3 : 1);
  const size_t need = size_t(fields[0]) * size_t(fields[1]) * bytes_per;
  if (b.size() < pos || b.size() - pos < need)
    throw ImageError(name + ": truncated PNM: " + std::to_string(need) + " pixel bytes expected, " +
                     std::to_string(b.size() < pos ? 0 : b.size() - pos) + " present");
}

// Debian 12's stb_image (2.27) does not bound a JPEG Huffman table's symbol count: a DHT
// segment whose 16 code-length counts sum past 256 makes stbi__build_huffman and the symbol
// copy write past the table's arrays (later upstream versions check it). This decoder runs in the
// TEE on bytes from the normal world, so refuse such files before stb sees them (found by
// fuzz/fuzz_image). The walk follows stb's: segments by their length, entropy-coded data up
// to the next marker that is not a stuffed byte or a restart marker.
void check_jpeg_huffman_tables(const std::vector<uint8_t>& b, const std::string& name) {
  if (b.size() < 2 || b[0] != 0xFF || b[1] != 0xD8) return;
  size_t pos = 2;
  while (pos + 1 < b.size()) {
    if (b[pos] != 0xFF) {  // entropy-coded data
      pos++;
      continue;
    }
    const uint8_t m = b[pos + 1];
    if (m == 0xFF) {  // fill byte
      pos++;
      continue;
    }
    if (m == 0x00 || m == 0x01 || m == 0xD8 || (m >= 0xD0 && m <= 0xD7)) {  // no length
      pos += 2;
      continue;
    }
    if (m == 0xD9 || pos + 4 > b.size()) return;  // EOI, or a segment cut short (stb fails)
    const size_t len = size_t(b[pos + 2]) << 8 | b[pos + 3];
    if (m == 0xC4) {
      const size_t end = std::min(b.size(), pos + 2 + len);
      for (size_t q = pos + 4; q + 17 <= end;) {
        size_t n = 0;
        for (size_t i = 1; i <= 16; ++i) n += b[q + i];
        if (n > 256)
          throw ImageError(name + ": cannot decode image: corrupt JPEG (a Huffman table with " +
                           std::to_string(n) + " symbols, at most 256)");
        q += 17 + n;
      }
    }
    pos += 2 + len;
  }
}

}  // namespace

Image decode_image(const std::vector<uint8_t>& bytes, const std::string& name, int channels) {
  if (channels != 0 && channels != 1 && channels != 3)
    throw ImageError(name + ": can only decode to 1 or 3 channels");
  if (bytes.empty()) throw ImageError(name + ": empty file");
  check_pnm_size(bytes, name);
  check_jpeg_huffman_tables(bytes, name);
  int w = 0, h = 0, stored = 0;
  if (!stbi_info_from_memory(bytes.data(), int(bytes.size()), &w, &h, &stored))
    throw ImageError(name + ": cannot decode image: " + stbi_failure_reason());
  // A few bytes of header can claim gigapixels: refuse before allocating (this decoder
  // also runs inside the TEE on bytes from the normal world).
  if (uint64_t(w) * uint64_t(h) > kMaxImagePixels)
    throw ImageError(name + ": image too large: " + std::to_string(w) + "x" + std::to_string(h));
  const int want = channels ? channels : (stored <= 2 ? 1 : 3);
  unsigned char* data = stbi_load_from_memory(bytes.data(), int(bytes.size()), &w, &h, &stored,
                                              want);
  if (!data) throw ImageError(name + ": cannot decode image: " + stbi_failure_reason());
  Image img;
  img.w = w;
  img.h = h;
  img.channels = want;
  img.pixels.assign(data, data + size_t(w) * h * want);
  stbi_image_free(data);
  return img;
}

Image load_image(const std::string& path, int channels) {
  std::vector<uint8_t> bytes;
  std::string error;
  if (!read_whole_file(path, &bytes, &error)) throw ImageError(path + ": " + error);
  return decode_image(bytes, path, channels);
}

}  // namespace rplayer::nn
