// The driver's ioctl-shaped API, after Linux include/uapi/drm/v3d_drm.h. Calls return
// 0 or a negative errno; V3dDriver::last_error() says why in words.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "driver/hw_io.h"

namespace rplayer::driver {

enum class Param : uint32_t {
  HubIdent1,
  HubIdent2,
  HubIdent3,
  CoreIdent0,
  CoreIdent1,
  CoreIdent2,
  SupportsCsd,
  NumQpus,          // model: slices x QPUs per slice
  SharedBytes,      // per-workgroup shared memory
  Cfg4MinusOne,     // 1 if the hardware takes CFG4 = batches - 1 (informational)
};

struct CreateBo {
  uint32_t size = 0;  // bytes, rounded up to pages
  BoUsage usage = BoUsage::Scratch;
  bool gpu_writable = true;
  std::string label;
  // Weights filled with a byte range of a model file; reported in BoInfo::weight_source.
  bool has_weight_source = false;
  std::string weight_model;
  uint64_t weight_offset = 0, weight_length = 0;
  // out
  uint32_t handle = 0;
  uint32_t gpu_va = 0;
};

struct SubmitCsd {
  // CFG0..CFG6 as Mesa builds them: CFG4 = batches - 1 whatever the SKU; the driver
  // converts to what the hardware takes.
  uint32_t cfg[7] = {};
  std::vector<uint32_t> bo_handles;  // every BO the job touches
  // out
  uint64_t seqno = 0;
};

struct JobFault {
  uint64_t seqno = 0;
  uint32_t va = 0;        // MMU_VIO_ADDR
  uint32_t vio_id = 0;
  uint32_t hub_status = 0;
  bool hang = false;
  bool qpu_error = false;
};

}  // namespace rplayer::driver
