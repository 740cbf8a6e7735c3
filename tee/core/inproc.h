// The in-process transport: a TEEC_Context named "inproc" (or NULL) talks to a TeeCore in
// the same process through direct calls, with the same marshalling and validation as the
// socket path (memfds are mapped a second time by the core, temp memrefs copied). For unit
// tests and single-process tools.
#pragma once

#include <memory>

#include "tee/core/tee_core.h"
#include "tee/teec/transport.h"

namespace rplayer::tee {

// Makes `core` the process's in-process TEE (nullptr: none). The core must outlive every
// context initialized while it was registered.
void register_inproc_core(TeeCore* core);

// A transport that is one client of `core` (disconnects on destruction). Tests use it to
// send what the C API would refuse to.
std::unique_ptr<teec::Transport> make_inproc_transport(TeeCore& core);

}  // namespace rplayer::tee
