#include "hw/soc.h"

#include <stdexcept>

namespace rplayer::hw {

class ModeledSoc::Port final : public SocPort {
 public:
  Port(ModeledSoc& soc, World w) : soc_(soc), world_(w) {}
  bool has_block(RegBlock b) const override { return soc_.gpu_->has_block(b); }
  uint32_t read32(RegBlock b, uint32_t off) override { return soc_.gpu_->read(world_, b, off); }
  void write32(RegBlock b, uint32_t off, uint32_t v) override {
    soc_.gpu_->write(world_, b, off, v);
  }
  MemoryWindow memory() override { return soc_.mem_.window(world_); }
  int num_irq_lines() const override { return soc_.irq_.count(); }
  bool wait_irq(int line, std::chrono::microseconds timeout) override {
    return soc_.irq_.wait(line, world_ == World::Secure, timeout);
  }

 private:
  ModeledSoc& soc_;
  World world_;
};

static const Sku& sku_or_throw(const std::string& name) {
  const Sku* s = find_sku(name);
  if (!s) throw std::invalid_argument("unknown GPU SKU '" + name + "' (known: v3d-7.1, v3d-4.2)");
  return *s;
}

ModeledSoc::ModeledSoc(const SocConfig& cfg)
    : mem_(cfg.normal_bytes, cfg.secure_bytes), irq_(sku_or_throw(cfg.sku).mbox_irq_line() + 1) {
  gpu_ = std::make_unique<V3dGpu>(sku_or_throw(cfg.sku), mem_, irq_, events_, faults_, cfg.timing,
                                  cfg.device_threads);
  normal_port_ = std::make_unique<Port>(*this, World::Normal);
  secure_port_ = std::make_unique<Port>(*this, World::Secure);
}

SocPort& ModeledSoc::port(World w) {
  return w == World::Secure ? *secure_port_ : *normal_port_;
}

ModeledSoc::~ModeledSoc() {
  // Stop timed events first (and wait for a running one): they call into the GPU.
  events_.cancel_all();
  events_.drain();
  gpu_.reset();
}

}  // namespace rplayer::hw
