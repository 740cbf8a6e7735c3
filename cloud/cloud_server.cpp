#include "cloud/cloud_server.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "cloud/cloud_recorder.h"
#include "cloud/session_wire.h"
#include "link/frame_io.h"
#include "link/secure_channel.h"
#include "record/encoder.h"

namespace rplayer::cloud {

namespace {

constexpr size_t kMaxSealed = 80u << 20;  // the largest sealed frame either way

// The DriverShim's frames through the secure channel and the client's socket.
class ChannelTransport final : public ShimTransport {
 public:
  ChannelTransport(int fd, link::SecureChannel& ch, int timeout_ms)
      : fd_(fd), ch_(ch), timeout_ms_(timeout_ms) {}
  bool exchange(std::span<const uint8_t> request, std::vector<uint8_t>* reply,
                std::string* why) override {
    if (const link::ChannelError e = ch_.seal(request, &sealed_); e != link::ChannelError::Ok)
      return *why = std::string("sealing: ") + link::channel_error_name(e), false;
    if (!link::write_frame(fd_, sealed_, why, timeout_ms_)) return false;
    bytes_up += sealed_.size();
    const link::FrameResult r = link::read_frame(fd_, kMaxSealed, timeout_ms_, &sealed_);
    if (r != link::FrameResult::Ok)
      return *why = std::string("the client: ") + link::frame_result_name(r), false;
    bytes_down += sealed_.size();
    bool final = false;
    if (const link::ChannelError e = ch_.open(sealed_, reply, &final); e != link::ChannelError::Ok)
      return *why = std::string("the device's reply: ") + link::channel_error_name(e), false;
    return true;  // a final reply is the device's refusal: the DriverShim reads why
  }
  uint64_t bytes_up = 0, bytes_down = 0;  // sealed bytes on the wire

 private:
  int fd_;
  link::SecureChannel& ch_;
  int timeout_ms_;
  std::vector<uint8_t> sealed_;
};

void send_result(int fd, const RecordResult& r, int timeout_ms) {
  std::string err;
  link::write_frame(fd, encode_result(r), &err, timeout_ms);
}

std::string fail(int fd, const std::string& why, int timeout_ms) {
  RecordResult r;
  r.error = why;
  send_result(fd, r, timeout_ms);
  return "refused: " + why;
}

}  // namespace

std::string serve_session(int fd, const CloudServerConfig& cfg) {
  const int t = cfg.io_timeout_ms;
  std::vector<uint8_t> msg;
  link::FrameResult fr = link::read_frame(fd, kMaxRequestBytes, t, &msg);
  if (fr != link::FrameResult::Ok) return std::string("no request: ") + link::frame_result_name(fr);
  RecordRequest req;
  std::string why;
  if (!decode_request(msg, &req, &why)) return fail(fd, "request: " + why, t);
  if (std::find(cfg.trusted_devices.begin(), cfg.trusted_devices.end(), req.device_key) ==
      cfg.trusted_devices.end())
    return fail(fd, "device key " + keyring::key_id_hex(req.device_key) + " is not trusted here",
                t);

  link::KxKeyPair own;
  uint8_t device_kx[link::kKeyBytes];
  if (!link::kx_from_signing_key(cfg.signing.secret_key.data(), &own) ||
      !link::kx_public_from_signing_public(req.device_key.data(), device_kx))
    return fail(fd, "unusable keys", t);
  link::SecureChannel ch(link::Role::Initiator, own, device_kx, kMaxSealed);
  CloudHello hello;
  hello.cloud_key = cfg.signing.public_key;
  if (ch.start(&hello.channel_hello) != link::ChannelError::Ok) return fail(fd, "channel", t);
  if (!link::write_frame(fd, encode_hello(hello), &why, t)) return "client gone: " + why;

  // The TA's answer: its channel reply, then its sealed hello.
  fr = link::read_frame(fd, 64 * 1024, t, &msg);
  if (fr != link::FrameResult::Ok) return std::string("no connect: ") + link::frame_result_name(fr);
  if (msg.size() < 4) return fail(fd, "malformed connect", t);
  const uint32_t n =
      uint32_t(msg[0]) | uint32_t(msg[1]) << 8 | uint32_t(msg[2]) << 16 | uint32_t(msg[3]) << 24;
  if (n > msg.size() - 4) return fail(fd, "malformed connect", t);
  const std::span<const uint8_t> all(msg);
  if (const link::ChannelError e = ch.finish(all.subspan(4, n)); e != link::ChannelError::Ok)
    return fail(fd, std::string("the device's channel reply: ") + link::channel_error_name(e), t);
  std::vector<uint8_t> hb;
  link::ShimHello shim_hello;
  if (ch.open(all.subspan(4 + n), &hb) != link::ChannelError::Ok ||
      !link::decode_hello(hb, &shim_hello))
    return fail(fd, "the device's hello does not open", t);

  ChannelTransport transport(fd, ch, t);
  CloudRecordResult rec;
  try {
    rec = record_in_cloud(transport, shim_hello, req.model, options_for(req.mode));
  } catch (const std::exception& e) {
    return fail(fd, e.what(), t);
  }
  // The device lets the GPU go once the channel ends: say so, wait for its acknowledgement.
  std::vector<uint8_t> sealed, ack;
  bool final = false;
  if (ch.seal({}, &sealed, true) != link::ChannelError::Ok ||
      !link::write_frame(fd, sealed, &why, t) ||
      link::read_frame(fd, kMaxSealed, t, &sealed) != link::FrameResult::Ok ||
      ch.open(sealed, &ack, &final) != link::ChannelError::Ok || !final)
    return fail(fd, "the device did not acknowledge the end of the session", t);
  link::DeviceStats device;
  link::decode_device_stats(ack, &device);  // its account; zeros if it gave none

  RecordResult res;
  res.ok = true;
  rec.recording.metadata.push_back({"cloud_key", keyring::key_id_hex(cfg.signing.public_key)});
  res.recording = record::encode_recording(rec.recording, cfg.signing);
  const LinkCounts& l = rec.link;
  nlohmann::json j = {{"mode", record_mode_name(req.mode)},
                      {"jobs", rec.jobs},
                      {"wall_ms", rec.wall_ms},
                      {"cloud_cpu_ms", rec.cloud_cpu_ms},
                      {"round_trips", l.round_trips},
                      {"rt_reads", l.rt_reads},
                      {"rt_timing_reads", l.rt_timing_reads},
                      {"rt_polls", l.rt_polls},
                      {"rt_waits", l.rt_waits},
                      {"rt_posts", l.rt_posts},
                      {"ops", l.ops},
                      // The device's view: down = cloud to device, up = device to cloud.
                      {"frame_bytes_down", l.bytes_up},
                      {"frame_bytes_up", l.bytes_down},
                      {"bytes_down", transport.bytes_up},
                      {"bytes_up", transport.bytes_down},
                      {"pages", l.pages},
                      {"device_wait_us", l.device_wait_us},
                      {"device_ms", device.busy_us / 1000.0},
                      {"device_frames", device.frames}};
  res.stats_json = j.dump();
  send_result(fd, res, t);
  return "recorded " + req.model.info.name + " (" + std::string(record_mode_name(req.mode)) +
         "): " + res.stats_json;
}

}  // namespace rplayer::cloud
