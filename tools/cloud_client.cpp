#include "tools/cloud_client.h"

#include <unistd.h>

#include <filesystem>
#include <stdexcept>

#include "hw/sku.h"
#include "hw/soc.h"
#include "keyring/key_paths.h"
#include "keyring/keys.h"
#include "link/frame_io.h"
#include "link/tcp.h"
#include "nn/model_zoo.h"
#include "replay/verifier.h"
#include "tee/gpu_shim_client.h"
#include "tools/recording_io.h"
#include "tools/tee_launcher.h"

namespace rplayer::tools {

namespace fs = std::filesystem;

namespace {
constexpr size_t kMaxSealed = 80u << 20;

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

std::vector<uint8_t> read_or_throw(int fd, size_t max, int timeout_ms, const char* what) {
  std::vector<uint8_t> m;
  const link::FrameResult r = link::read_frame(fd, max, timeout_ms, &m);
  if (r != link::FrameResult::Ok)
    throw std::runtime_error(std::string("the cloud, waiting for ") + what + ": " +
                             link::frame_result_name(r));
  return m;
}

void write_or_throw(int fd, const std::vector<uint8_t>& m, int timeout_ms) {
  std::string err;
  if (!link::write_frame(fd, m, &err, timeout_ms)) throw std::runtime_error("the cloud: " + err);
}
}  // namespace

CloudRecordOutcome record_via_cloud(const CloudRecordOptions& o) {
  // What the cloud may know of the model: the graph and where the weights are, not what.
  if (!hw::find_sku(o.sku)) throw std::runtime_error("no such GPU: " + o.sku);
  const nn::Model model = nn::load_model(o.model);
  cloud::RecordRequest req;
  req.mode = o.mode;
  req.model = cloud::make_skeleton(model);
  const fs::path device_pub = keyring::key_dir(o.keys) / "device.pub";
  if (!fs::exists(device_pub))
    throw std::runtime_error("no device key (" + device_pub.string() + "): run `rplayer keygen`");
  req.device_key = keyring::load_public_key(device_pub);

  TeeWorldsOptions wo;
  wo.dir = o.worlds_dir;
  wo.sku = o.sku;
  wo.keys = o.keys;
  std::string err;
  std::unique_ptr<TeeWorlds> worlds = TeeWorlds::start_or_connect(wo, &err);
  if (!worlds) throw std::runtime_error("the TEE: " + err);
  tee::GpuShimClient ta;
  tee::TeeStatus st = ta.open(worlds->tee_socket());
  if (!st.ok())
    throw std::runtime_error("the GPU shim TA: " + st.message() +
                             " (a TEE started without a device key offers none: rplayer worlds "
                             "stop, then rplayer keygen)");

  Fd c;
  c.fd = link::connect_tcp(o.cloud, 10'000, &err);
  if (c.fd < 0) throw std::runtime_error("cannot reach the cloud at " + err);
  write_or_throw(c.fd, cloud::encode_request(req), o.timeout_ms);
  const std::vector<uint8_t> hm = read_or_throw(c.fd, 64 * 1024, o.timeout_ms, "its hello");
  cloud::CloudHello hello;
  if (!cloud::decode_hello(hm, &hello)) {
    cloud::RecordResult refused;
    if (cloud::decode_result(hm, &refused) && !refused.ok)
      throw std::runtime_error("the cloud refused: " + refused.error);
    throw std::runtime_error("the cloud's hello is malformed");
  }
  std::vector<uint8_t> connected;
  st = ta.connect(hello.channel_hello,
                  std::vector<uint8_t>(hello.cloud_key.begin(), hello.cloud_key.end()), &connected);
  if (!st.ok()) throw std::runtime_error("the GPU shim TA refused the cloud: " + st.message());
  write_or_throw(c.fd, connected, o.timeout_ms);

  // Relay until the TA says the session is over (the cloud's final message acknowledged,
  // or a frame refused); then the cloud's result follows.
  CloudRecordOutcome out;
  std::vector<uint8_t> reply;
  for (bool ended = false; !ended;) {
    const std::vector<uint8_t> sealed = read_or_throw(c.fd, kMaxSealed, o.timeout_ms, "a frame");
    // A cloud that gives up mid-session sends its result instead of a sealed frame.
    cloud::RecordResult early;
    if (cloud::decode_result(sealed, &early))
      throw std::runtime_error("the cloud could not record: " + early.error);
    out.sealed_down += sealed.size();
    st = ta.exchange(sealed, &reply, &ended);
    if (!st.ok()) throw std::runtime_error("the GPU shim TA ended the session: " + st.message());
    write_or_throw(c.fd, reply, o.timeout_ms);
    out.sealed_up += reply.size();
    ++out.frames;
  }
  ta.close();
  cloud::RecordResult res;
  if (!cloud::decode_result(read_or_throw(c.fd, 1u << 30, o.timeout_ms, "the recording"), &res))
    throw std::runtime_error("the cloud's result is malformed");
  if (!res.ok) throw std::runtime_error("the cloud could not record: " + res.error);
  replay::Recording rec;
  if (!decode_recording_bytes(res.recording, {}, {}, &rec, &err, o.keys))
    throw std::runtime_error("the cloud's recording does not verify here: " + err);
  // The verifier's rules for this GPU, as the replayer will apply them.
  const hw::Sku* sku = hw::find_sku(o.sku);
  const replay::SkuIdentity present{sku->hub_ident1, sku->hub_ident3, sku->core_ident0,
                                    sku->core_ident1};
  const replay::VerifyError v =
      replay::verify_recording(rec, present, replay::limits_for_pool(hw::SocConfig{}.secure_bytes));
  char buf[200];
  if (!v.ok())
    throw std::runtime_error(std::string("the cloud's recording fails the verifier: ") +
                             v.format(buf, sizeof buf));
  out.recording = std::move(res.recording);
  out.stats_json = std::move(res.stats_json);
  return out;
}

}  // namespace rplayer::tools
