#include "hw/phys_memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace rplayer::hw {

namespace {
int make_memfd(const char* name, uint64_t bytes) {
  int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) throw std::runtime_error(std::string("memfd_create: ") + std::strerror(errno));
  if (ftruncate(fd, off_t(bytes)) != 0) {
    int e = errno;
    close(fd);
    throw std::runtime_error(std::string("ftruncate DRAM: ") + std::strerror(e));
  }
  // DRAM does not change size: a world process holding the fd must not be able to
  // truncate it under the SoC (which would fault on its next access).
  if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    int e = errno;
    close(fd);
    throw std::runtime_error(std::string("sealing DRAM: ") + std::strerror(e));
  }
  return fd;
}
}  // namespace

PhysMemory::PhysMemory(uint64_t normal_bytes, uint64_t secure_bytes)
    : normal_(normal_bytes), secure_(secure_bytes) {
  if (normal_ % 4096 || secure_ % 4096 || normal_ == 0)
    throw std::runtime_error("DRAM sizes must be non-zero multiples of 4 KiB");
  normal_fd_ = make_memfd("rplayer-dram", normal_);
  if (secure_) secure_fd_ = make_memfd("rplayer-carveout", secure_);
  // Reserve one range, then place both files in it back to back.
  void* p = mmap(nullptr, size(), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  bool ok = p != MAP_FAILED;
  if (ok) base_ = static_cast<uint8_t*>(p);
  ok = ok && mmap(base_, normal_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, normal_fd_,
                  0) != MAP_FAILED;
  ok = ok && (!secure_ || mmap(base_ + normal_, secure_, PROT_READ | PROT_WRITE,
                               MAP_SHARED | MAP_FIXED, secure_fd_, 0) != MAP_FAILED);
  if (!ok) {
    int e = errno;
    if (base_) munmap(base_, size());
    close(normal_fd_);
    if (secure_fd_ >= 0) close(secure_fd_);
    throw std::runtime_error(std::string("mmap DRAM: ") + std::strerror(e));
  }
}

PhysMemory::~PhysMemory() {
  if (base_) munmap(base_, size());
  if (normal_fd_ >= 0) close(normal_fd_);
  if (secure_fd_ >= 0) close(secure_fd_);
}

MemoryWindow PhysMemory::window(World w) {
  if (w == World::Secure) return {base_, 0, size(), -1};
  return {base_, 0, normal_, normal_fd_};
}

MemoryWindow PhysMemory::carve_out() { return {base_ + normal_, normal_, secure_, secure_fd_}; }

}  // namespace rplayer::hw
