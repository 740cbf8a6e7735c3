// The modeled SoC: DRAM with a secure carve-out, the V3D-shaped GPU, interrupt lines
// and the event thread, with one SocPort per world.
#pragma once

#include <memory>
#include <string>

#include "hw/event_queue.h"
#include "hw/fault_injection.h"
#include "hw/irq.h"
#include "hw/phys_memory.h"
#include "hw/soc_port.h"
#include "hw/v3d_gpu.h"

namespace rplayer::hw {

struct SocConfig {
  std::string sku = "v3d-7.1";
  uint64_t normal_bytes = 512ull << 20;
  uint64_t secure_bytes = 128ull << 20;
  int device_threads = 2;  // host threads executing QPU workgroups
  GpuTiming timing;
};

class ModeledSoc {
 public:
  // Throws std::invalid_argument for an unknown SKU name.
  explicit ModeledSoc(const SocConfig& cfg = {});
  ~ModeledSoc();

  SocPort& port(World w);
  V3dGpu& gpu() { return *gpu_; }
  PhysMemory& memory() { return mem_; }
  FaultInjection& faults() { return faults_; }
  IrqLines& irq() { return irq_; }
  EventQueue& events() { return events_; }
  const Sku& sku() const { return gpu_->sku(); }

 private:
  class Port;
  FaultInjection faults_;
  PhysMemory mem_;
  IrqLines irq_;
  EventQueue events_;
  std::unique_ptr<V3dGpu> gpu_;
  std::unique_ptr<Port> normal_port_, secure_port_;
};

}  // namespace rplayer::hw
