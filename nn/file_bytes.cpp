#include "nn/file_bytes.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace rplayer::nn {

bool read_whole_file(const std::string& path, std::vector<uint8_t>* out, std::string* error) {
  out->clear();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return *error = std::string("cannot open: ") + std::strerror(errno), false;
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    ::close(fd);
    return *error = "cannot open: Is a directory", false;
  }
  // Regular files: one allocation of the stat size. Pipes and the like report 0 and
  // grow as they are read; a file that grows meanwhile is read to its end.
  out->resize(S_ISREG(st.st_mode) ? size_t(st.st_size) : 0);
  size_t used = 0;
  for (;;) {
    if (used == out->size()) out->resize(used < 65536 ? 65536 : used * 2);
    const ssize_t n = ::read(fd, out->data() + used, out->size() - used);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *error = std::string("read error: ") + std::strerror(errno);
      ::close(fd);
      out->clear();
      return false;
    }
    if (n == 0) break;
    used += size_t(n);
  }
  ::close(fd);
  out->resize(used);
  return true;
}

std::vector<uint8_t> read_whole_file(const std::string& path) {
  std::vector<uint8_t> bytes;
  std::string error;
  if (!read_whole_file(path, &bytes, &error)) throw std::runtime_error(path + ": " + error);
  return bytes;
}

}  // namespace rplayer::nn
