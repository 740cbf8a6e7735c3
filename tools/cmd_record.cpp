// `rplayer keygen`, `rplayer record`, `rplayer verify` and `rplayer replay`.
//
// Keys live in a key directory ($RPLAYER_KEYS, default ./keys): `signing.key` (secret,
// mode 0600) signs recordings, `trusted/*.pub` is the trust store verify and replay use.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "hw/soc.h"
#include "keyring/key_paths.h"
#include "nn/file_bytes.h"
#include "nn/model_error.h"
#include "nn/model_zoo.h"
#include "nn/preprocess.h"
#include "record/encoder.h"
#include "record/recorder.h"
#include "replay/decoder.h"
#include "replay/replayer.h"
#include "tee/soc_platform.h"
#include "tools/cloud_client.h"
#include "tools/commands.h"
#include "tools/gpu_stack.h"
#include "tools/recording_io.h"

namespace rplayer::tools {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

int keygen(const std::string& dir_arg, bool force) {
  const fs::path dir = keyring::key_dir(dir_arg);
  const fs::path secret = dir / "signing.key";
  if (fs::exists(secret) && !force) {
    std::printf("%s exists (use --force to replace it)\n", secret.c_str());
  } else {
    fs::create_directories(dir / "trusted");
    const keyring::KeyPair kp = keyring::generate_keypair();
    keyring::save_secret_key(secret, kp);
    const fs::path pub = dir / "trusted" / (keyring::key_id_hex(kp.public_key) + ".pub");
    keyring::save_public_key(pub, kp.public_key);
    std::printf("signing key %s\npublic key  %s (key id %s)\n", secret.c_str(), pub.c_str(),
                keyring::key_id_hex(kp.public_key).c_str());
  }
  // The device's identity towards a recording cloud (provisioned into its TEE), and the
  // cloud's list of devices it records for (devices/: here, this one).
  const fs::path device = dir / "device.key";
  if (!fs::exists(device) || force) {
    const keyring::KeyPair dk = keyring::generate_keypair();
    keyring::save_secret_key(device, dk);
    keyring::save_public_key(dir / "device.pub", dk.public_key);
    fs::create_directories(dir / "devices");
    keyring::save_public_key(dir / "devices" / (keyring::key_id_hex(dk.public_key) + ".pub"),
                             dk.public_key);
    std::printf("device key  %s (key id %s)\n", device.c_str(),
                keyring::key_id_hex(dk.public_key).c_str());
  }
  return 0;
}

struct RecordOpts {
  RecordRequest req;
  std::string output;
  std::string cloud, mode = "full", worlds_dir;
  bool json = false;
};

int record_cloud_cmd(const RecordOpts& o) {
  const auto t0 = Clock::now();
  CloudRecordOptions co;
  co.cloud = o.cloud;
  co.model = o.req.model;
  co.sku = o.req.sku;
  co.keys = o.req.keys;
  co.worlds_dir = o.worlds_dir;
  if (!cloud::parse_record_mode(o.mode, &co.mode))
    throw std::runtime_error("--mode " + o.mode + ": one of naive, deferral, full");
  const CloudRecordOutcome r = record_via_cloud(co);
  write_file(o.output, r.recording);
  if (o.json)
    std::printf("%s\n", r.stats_json.c_str());
  else
    std::printf("recorded %s in the cloud at %s (%s), %zu bytes -> %s (%.0f ms)\n  %s\n",
                o.req.model.c_str(), o.cloud.c_str(), o.mode.c_str(), r.recording.size(),
                o.output.c_str(), ms_since(t0), r.stats_json.c_str());
  return 0;
}

int record_cmd(const RecordOpts& o) {
  if (!o.cloud.empty()) return record_cloud_cmd(o);
  const auto t0 = Clock::now();
  RecordRequest req = o.req;
  req.progress = isatty(2);
  std::string summary;
  const std::vector<uint8_t> bytes = record_model(req, &summary);
  write_file(o.output, bytes);
  std::printf("recorded %s, %zu bytes -> %s (%.0f ms)\n", summary.c_str(), bytes.size(),
              o.output.c_str(), ms_since(t0));
  return 0;
}

int verify_cmd(const std::string& file, const std::vector<std::string>& keys,
               const std::string& trust, const std::string& sku) {
  replay::Recording rec;
  const auto t0 = Clock::now();
  std::string err;
  if (!load_recording(file, keys, trust, &rec, &err)) {
    std::fprintf(stderr, "rplayer verify: %s: %s\n", file.c_str(), err.c_str());
    return 1;
  }
  // Against the GPU present: here the modeled SKU asked for (default: the recording's; an
  // unknown recording GPU is the verifier's to report, in its words).
  const hw::Sku* target = sku.empty() ? replay::recording_sku(rec) : hw::find_sku(sku);
  if (!target && !sku.empty()) {
    std::string known;
    for (const hw::Sku& s : hw::all_skus()) known += " " + std::string(s.name);
    std::fprintf(stderr, "rplayer verify: --sku %s: no such GPU; known:%s\n", sku.c_str(),
                 known.c_str());
    return 1;
  }
  const replay::SkuIdentity present =
      target ? replay::SkuIdentity{target->hub_ident1, target->hub_ident3, target->core_ident0,
                                   target->core_ident1}
             : rec.sku;
  // The replayer's own policy (the default SoC's carve-out), so that what verify accepts
  // is what replay and the TA run.
  const replay::VerifyError v =
      replay::verify_recording(rec, present, replay::limits_for_pool(hw::SocConfig{}.secure_bytes));
  char buf[200];
  if (!v.ok()) {
    std::fprintf(stderr, "rplayer verify: %s: rejected: %s\n", file.c_str(),
                 v.format(buf, sizeof buf));
    return 1;
  }
  std::printf("%s: ok (signature, format and verifier rules; %s; %.1f ms)\n", file.c_str(),
              rec.sku_name.c_str(), ms_since(t0));
  return 0;
}

struct ReplayOpts {
  std::string file, trust, weights;
  std::vector<std::string> keys, images;
  bool json = false;
  int top = 5;
};

int replay_cmd(const ReplayOpts& o) {
  const auto t0 = Clock::now();
  replay::Recording rec;
  std::string err;
  if (!load_recording(o.file, o.keys, o.trust, &rec, &err)) {
    std::fprintf(stderr, "rplayer replay: %s: %s\n", o.file.c_str(), err.c_str());
    return 1;
  }
  const double load_ms = ms_since(t0);
  const std::string model_name = metadata(rec, "model");
  if (!nn::is_model_name(model_name)) {  // signed, but a name, never a path
    std::fprintf(stderr,
                 "rplayer %s: the recording names its model '%s', which is not a model name\n",
                 "replay", model_name.c_str());
    return 1;
  }
  const nn::ModelInfo info = nn::resolve_model(model_name);
  const std::vector<std::string> labels =
      info.labels_path.empty() ? std::vector<std::string>{} : nn::load_labels(info.labels_path);
  const replay::Binding* in_b = nullptr;
  const replay::Binding* out_b = nullptr;
  for (const replay::Binding& b : rec.bindings) (b.is_input ? in_b : out_b) = &b;
  if (!in_b || !out_b) {
    std::fprintf(stderr, "rplayer replay: %s has no input/output binding\n", o.file.c_str());
    return 1;
  }
  // Decode every image before replaying any: a bad file fails before any output.
  std::vector<nn::Tensor> inputs;
  for (const std::string& path : o.images)
    inputs.push_back(nn::preprocess_image(path, info.preprocess, info.input_shape.w,
                                          info.input_shape.h));
  // A weight-less recording takes its weights from the model file: --weights, else the
  // file of the model the recording names.
  std::vector<uint8_t> model_file;
  if (rec.weights_omitted)
    model_file = nn::read_whole_file(o.weights.empty() ? nn::load_model(model_name).weights_file
                                                       : o.weights);
  // One session for all images: verified and loaded once, each image a run.
  ReplayTarget target(rec.sku_name);
  replay::ReplayStats load_st;
  const auto tl = Clock::now();
  const replay::ReplayError le = target.load(rec, &load_st, model_file);
  const double session_ms = ms_since(tl);
  if (!le.ok()) {
    char buf[256];
    std::fprintf(stderr, "rplayer replay: %s: %s\n", o.file.c_str(), le.format(buf, sizeof buf));
    return 1;
  }
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].size() * 4 != in_b->bytes)
      throw std::runtime_error(o.images[i] + ": the input has " + std::to_string(inputs[i].size()) +
                               " values, the recording's '" + in_b->name + "' takes " +
                               std::to_string(in_b->bytes / 4));
    std::vector<float> out(out_b->bytes / 4);
    replay::ReplayStats st;
    const auto t1 = Clock::now();
    const replay::ReplayError e = target.run_loaded(in_b->name, inputs[i], out_b->name, &out, &st);
    const double replay_ms = ms_since(t1);
    char buf[256];
    if (!e.ok()) {
      std::fprintf(stderr, "rplayer replay: %s: %s\n", o.images[i].c_str(),
                   e.format(buf, sizeof buf));
      return 1;
    }
    nn::Tensor scores(nn::Shape::vec(int(out.size())), out);
    print_top(o.images[i], model_name, "replay", rec.sku_name, scores, labels, o.top, o.json,
              {{"load", load_ms},
               {"session_load", session_ms},
               {"replay", replay_ms},
               {"verify", load_st.verify_us / 1e3},
               {"setup", st.setup_us / 1e3},
               {"execute", st.execute_us / 1e3},
               {"teardown", st.teardown_us / 1e3}},
              {{"jobs", st.jobs},
               {"actions", st.actions},
               {"checked_reads", st.checked_reads},
               {"polls", st.polls},
               {"irq_waits", st.irq_waits},
               {"pages", st.pages},
               {"pages_loaded", st.pages_loaded},
               {"pages_skipped", st.pages_skipped},
               {"pages_scrubbed", st.pages_scrubbed}});
  }
  return 0;
}

}  // namespace

void add_record_commands(Cli& cli) {
  CLI::App& app = cli.app;
  auto* kg_dir = &cli.hold<std::string>();
  auto* kg_force = &cli.hold<bool>();
  auto* kg = app.add_subcommand("keygen", "Create the signing key and trust it");
  kg->add_option("--keys", *kg_dir, "Key directory (default $RPLAYER_KEYS or ./keys)");
  kg->add_flag("--force", *kg_force, "Replace an existing signing key");
  kg->callback(cli.run("keygen", [=] { return keygen(*kg_dir, *kg_force); }));

  auto* ro = &cli.hold<RecordOpts>();
  auto* rc = app.add_subcommand("record", "Record a model's inference on the full GPU stack");
  rc->add_option("--model", ro->req.model, "Model name or .param/.onnx path")
      ->capture_default_str();
  rc->add_option("--sku", ro->req.sku, "Modeled GPU: v3d-7.1 or v3d-4.2")->capture_default_str();
  rc->add_option("-o,--output", ro->output, "Recording file")->required();
  rc->add_option("--keys", ro->req.keys, "Key directory (default $RPLAYER_KEYS or ./keys)");
  rc->add_option("--image", ro->req.image, "Image to record with (default: a fixed pattern)");
  rc->add_flag("--omit-weights", ro->req.omit_weights,
               "Leave the weights out: replay and the TA take them from the model file, "
               "checked against the recording's digests");
  rc->add_option("--cloud", ro->cloud,
                 "Record in a GPU-less cloud at HOST:PORT (rplayer cloud serve) through this "
                 "device's TEE; the recording omits the weights")
      ->excludes("--image")
      ->excludes("--omit-weights");
  rc->add_option("--mode", ro->mode, "With --cloud: naive, deferral or full")
      ->capture_default_str();
  rc->add_option("--worlds-dir", ro->worlds_dir, "With --cloud: the SoC and TEE run directory");
  rc->add_flag("--json", ro->json, "With --cloud: print the session's counts as JSON");
  rc->callback(cli.run("record", [=] { return record_cmd(*ro); }));

  auto* vf_file = &cli.hold<std::string>();
  auto* vf_keys = &cli.hold<std::vector<std::string>>();
  auto* vf_trust = &cli.hold<std::string>();
  auto* vf_sku = &cli.hold<std::string>();
  auto* vf = app.add_subcommand("verify", "Check a recording: signature, format, verifier rules");
  vf->add_option("file", *vf_file, "Recording file")->required();
  vf->add_option("--key", *vf_keys, "Trusted public key file (repeatable)");
  vf->add_option("--trust", *vf_trust,
                 "Trust store (default $RPLAYER_KEYS/trusted or ./keys/trusted)");
  vf->add_option("--sku", *vf_sku, "GPU to verify for (default: the recording's)");
  vf->callback(
      cli.run("verify", [=] { return verify_cmd(*vf_file, *vf_keys, *vf_trust, *vf_sku); }));

  auto* rp = &cli.hold<ReplayOpts>();
  auto* rpc = app.add_subcommand("replay", "Replay a recording with new inputs");
  rpc->add_option("file", rp->file, "Recording file")->required();
  rpc->add_option("--input", rp->images, "Input image(s)")->required();
  rpc->add_option("--key", rp->keys, "Trusted public key file (repeatable)");
  rpc->add_option("--trust", rp->trust, "Trust store directory or file");
  rpc->add_option("--weights", rp->weights,
                  "Model file for a weight-less recording (default: the recorded model's)");
  rpc->add_option("--top", rp->top, "How many classes to print")->capture_default_str();
  rpc->add_flag("--json", rp->json, "One JSON object per image, one per line");
  rpc->callback(cli.run("replay", [=] { return replay_cmd(*rp); }));
}

}  // namespace rplayer::tools
