// The cloud's recording session: the whole normal-world stack (NN framework, runtime + JIT,
// driver) and the recorder, over a DriverShim instead of a GPU, on a model skeleton.
#pragma once

#include <cstdint>

#include "cloud/driver_shim.h"
#include "cloud/model_skeleton.h"
#include "replay/recording.h"

namespace rplayer::cloud {

struct CloudRecordResult {
  replay::Recording recording;  // unsigned; weight-less, bound to the device's model file
  LinkCounts link;
  uint64_t jobs = 0;
  double wall_ms = 0, cloud_cpu_ms = 0;  // the session; the cloud process's CPU time in it
};

// Records one inference of the skeleton's model on the device behind `transport` (whose
// GPUShim said `hello`). Throws std::runtime_error or nn::ModelError: a refused frame, a
// dead link, a failed job. Nothing partial is returned.
CloudRecordResult record_in_cloud(ShimTransport& transport, const link::ShimHello& hello,
                                  const ModelSkeleton& skeleton, const DriverShimOptions& opts);

}  // namespace rplayer::cloud
