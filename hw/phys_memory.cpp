#include "hw/phys_memory.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace rplayer::hw {

PhysMemory::PhysMemory(uint64_t normal_bytes, uint64_t secure_bytes)
    : normal_(normal_bytes), secure_(secure_bytes) {
  if (normal_ % 4096 || secure_ % 4096 || normal_ == 0)
    throw std::runtime_error("DRAM sizes must be non-zero multiples of 4 KiB");
  fd_ = memfd_create("rplayer-dram", MFD_CLOEXEC);
  if (fd_ < 0) throw std::runtime_error(std::string("memfd_create: ") + std::strerror(errno));
  if (ftruncate(fd_, off_t(size())) != 0) {
    int e = errno;
    close(fd_);
    throw std::runtime_error(std::string("ftruncate DRAM: ") + std::strerror(e));
  }
  void* p = mmap(nullptr, size(), PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
  if (p == MAP_FAILED) {
    int e = errno;
    close(fd_);
    throw std::runtime_error(std::string("mmap DRAM: ") + std::strerror(e));
  }
  base_ = static_cast<uint8_t*>(p);
}

PhysMemory::~PhysMemory() {
  if (base_) munmap(base_, size());
  if (fd_ >= 0) close(fd_);
}

MemoryWindow PhysMemory::window(World w) {
  if (w == World::Secure) return {base_, 0, size()};
  return {base_, 0, normal_};
}

}  // namespace rplayer::hw
