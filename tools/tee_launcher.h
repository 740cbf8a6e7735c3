// Starting (or finding) the worlds for trusted inference: rplayer-soc, which boots
// rplayer-tee on the secure bus, in a run directory; client applications then talk to
// DIR/tee.sock. A launcher that started them stops them when it goes away.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <string>

namespace rplayer::tools {

struct TeeWorldsOptions {
  std::string dir;   // run directory; empty: $XDG_RUNTIME_DIR/rplayer, else /tmp/rplayer-UID
  std::string sku = "v3d-7.1";
  std::string keys;  // key directory whose trusted/ keys are provisioned into the TEE
  unsigned top_k_only = 0;
  unsigned claim_timeout_ms = 2000;
  unsigned resume_wait_ms = 0;
  double normal_share = 0.5;  // the TEE's FairShare (tee/gpu_switch.h)
  int startup_timeout_ms = 20000;
  unsigned secure_mib = 384;  // the carve-out when the TEE also serves cloud recording
  std::string bin_dir;  // where rplayer-soc and rplayer-tee are; empty: next to this program
};

class TeeWorlds {
 public:
  // Connects to a TEE already serving DIR/tee.sock, else starts the SoC and the TEE.
  // nullptr and *error if neither works.
  static std::unique_ptr<TeeWorlds> start_or_connect(const TeeWorldsOptions& o, std::string* error);
  ~TeeWorlds();  // stops the processes it started
  TeeWorlds(const TeeWorlds&) = delete;
  TeeWorlds& operator=(const TeeWorlds&) = delete;

  const std::string& dir() const { return dir_; }
  std::string tee_socket() const { return dir_ + "/tee.sock"; }
  std::string soc_socket() const { return dir_ + "/normal.sock"; }
  bool started() const { return soc_pid_ > 0; }
  // Leaves the processes running after this object is gone (`rplayer worlds start`).
  void detach() { soc_pid_ = -1; }
  pid_t soc_pid() const { return soc_pid_; }

 private:
  TeeWorlds() = default;
  std::string dir_;
  pid_t soc_pid_ = -1;
};

// Stops the SoC (and with it the TEE) serving `dir`, from its soc.pid. False if none runs.
bool stop_worlds(const std::string& dir);
std::string default_worlds_dir();

// A program installed next to this one (rplayer-soc, rplayer-tee, rplayer-cloud).
std::filesystem::path sibling(const char* name);

// True if something accepts connections on the SOCK_SEQPACKET Unix socket `path`.
bool socket_accepts(const std::string& path);

}  // namespace rplayer::tools
