// `rplayer classify --tee IMAGE...`: trusted classification. The images go, still
// encoded, to the replay TA in the secure world, which decodes and normalizes them,
// replays the signed recording on the GPU it claims from the normal world, and returns
// only the top-k classes. Same output (and --json shape) as `rplayer run`.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "nn/file_bytes.h"
#include "nn/model_zoo.h"
#include "tee/replay_client.h"
#include "tools/commands.h"
#include "tools/recording_io.h"
#include "tools/tee_launcher.h"

namespace rplayer::tools {

namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

struct ClassifyOpts {
  bool tee = false;
  std::string recording, model = "squeezenet", sku = "v3d-7.1", keys, trust, dir, weights;
  std::vector<std::string> images;
  bool json = false;
  int top = 5;
  unsigned top_k_only = 0;
  double normal_share = tools::TeeWorldsOptions{}.normal_share;
};

int classify(const ClassifyOpts& o) {
  if (!o.tee) {
    std::fprintf(stderr,
                 "rplayer classify: only --tee is supported (use `rplayer run` otherwise)\n");
    return 2;
  }
  const auto t0 = Clock::now();
  // The recording: a file, or recorded now on the full stack (normal world) and signed.
  std::vector<uint8_t> bytes;
  if (!o.recording.empty()) {
    bytes = nn::read_whole_file(o.recording);
  } else {
    RecordRequest req;
    req.model = o.model, req.sku = o.sku, req.keys = o.keys, req.progress = isatty(2);
    std::string summary;
    bytes = record_model(req, &summary);
    if (!o.json) std::printf("recorded %s\n", summary.c_str());
  }
  // The client reads the metadata (model, SKU) for labels and to boot the right SoC; the
  // TEE checks the signature and verifies on its own.
  replay::Recording rec;
  std::string err;
  if (!decode_recording_bytes(bytes, {}, o.trust, &rec, &err, o.keys)) {
    std::fprintf(stderr, "rplayer classify: recording: %s\n", err.c_str());
    return 1;
  }
  const std::string model_name = metadata(rec, "model");
  if (!nn::is_model_name(model_name)) {  // signed, but a name, never a path
    std::fprintf(stderr,
                 "rplayer %s: the recording names its model '%s', which is not a model name\n",
                 "classify", model_name.c_str());
    return 1;
  }
  const nn::ModelInfo info = nn::resolve_model(model_name);
  const std::vector<std::string> labels =
      info.labels_path.empty() ? std::vector<std::string>{} : nn::load_labels(info.labels_path);
  // Every image must be readable before anything is classified: no partial output.
  std::vector<std::vector<uint8_t>> images;
  for (const std::string& path : o.images) images.push_back(nn::read_whole_file(path));
  // A weight-less recording: the TA gets the model file and checks it against the digests.
  std::vector<uint8_t> model_file;
  if (rec.weights_omitted)
    model_file = nn::read_whole_file(o.weights.empty() ? nn::load_model(model_name).weights_file
                                                       : o.weights);

  TeeWorldsOptions wo;
  wo.dir = o.dir, wo.sku = rec.sku_name, wo.keys = o.keys, wo.top_k_only = o.top_k_only;
  wo.normal_share = o.normal_share;
  std::unique_ptr<TeeWorlds> worlds = TeeWorlds::start_or_connect(wo, &err);
  if (!worlds) {
    std::fprintf(stderr, "rplayer classify: %s\n", err.c_str());
    return 1;
  }
  tee::ReplayClient client;
  tee::TeeStatus st = client.open(worlds->tee_socket());
  uint32_t handle = 0, classes = 0;
  if (st.ok()) st = client.load(bytes, &handle, &classes, model_file);
  if (!st.ok()) {
    std::fprintf(stderr, "rplayer classify: loading the recording into the TEE: %s\n",
                 st.message().c_str());
    return 1;
  }
  const double load_ms = ms_since(t0);
  for (size_t i = 0; i < images.size(); ++i) {
    std::vector<tee::TopEntry> top;
    tee::RunStats rs;
    const auto t1 = Clock::now();
    st = client.classify(handle, images[i], uint32_t(o.top), &top, &rs);
    const double ms = ms_since(t1);
    if (!st.ok()) {
      std::fprintf(stderr, "rplayer classify: %s: %s\n", o.images[i].c_str(), st.message().c_str());
      return 1;
    }
    std::vector<std::pair<int, float>> entries;
    for (const tee::TopEntry& e : top) entries.emplace_back(int(e.cls), e.prob);
    print_top_entries(o.images[i], model_name, "tee", rec.sku_name, entries, labels, o.json,
                      {{"load", load_ms},
                       {"inference", ms},
                       {"preprocess", rs.preprocess_us / 1e3},
                       {"quiesce", rs.quiesce_us / 1e3},
                       {"switch_in", rs.switch_in_us / 1e3},
                       {"replay", rs.replay_us / 1e3},
                       {"switch_out", rs.switch_out_us / 1e3},
                       {"tee_total", rs.total_us / 1e3}},
                      {{"jobs", rs.jobs},
                       {"forced_claim", rs.forced != 0},
                       {"pages_loaded", rs.pages_loaded},
                       {"pages_skipped", rs.pages_skipped},
                       {"pages_scrubbed", rs.pages_scrubbed}});
    if (!o.json) std::printf("  (%.1f ms in the TEE, %.1f ms round trip)\n", rs.total_us / 1e3, ms);
  }
  client.unload(handle);
  return 0;
}

}  // namespace

void add_worlds_command(Cli& cli) {
  CLI::App& app = cli.app;
  auto* o = &cli.hold<TeeWorldsOptions>();
  auto* cmd = app.add_subcommand("worlds", "Start or stop the SoC and TEE processes");
  cmd->require_subcommand(1);
  auto* start =
      cmd->add_subcommand("start", "Boot rplayer-soc + rplayer-tee and leave them running");
  start->add_option("--tee-dir", o->dir, "Run directory (default $XDG_RUNTIME_DIR/rplayer)");
  start->add_option("--sku", o->sku, "Modeled GPU")->capture_default_str();
  start->add_option("--keys", o->keys, "Key directory whose trusted/ keys the TEE gets");
  start->add_option("--top-k-only", o->top_k_only, "The TA returns at most K classes");
  start->add_option("--normal-share", o->normal_share,
                    "The normal world's share of the GPU when both worlds want it")
      ->check(CLI::Range(0.0, 0.9))
      ->capture_default_str();
  start->add_option("--resume-wait-ms", o->resume_wait_ms,
                    "The TA waits for the normal driver to resume after each run (to measure it)");
  start->callback(cli.run("worlds start", [o] {
    std::string err;
    std::unique_ptr<TeeWorlds> w = TeeWorlds::start_or_connect(*o, &err);
    if (!w) {
      std::fprintf(stderr, "rplayer worlds start: %s\n", err.c_str());
      return 1;
    }
    std::printf("%s %s: SoC %s, TEE %s\n", w->started() ? "started" : "already running",
                w->dir().c_str(), w->soc_socket().c_str(), w->tee_socket().c_str());
    w->detach();
    return 0;
  }));
  auto* dir = &cli.hold<std::string>();
  auto* stop = cmd->add_subcommand("stop", "Stop the SoC and TEE processes");
  stop->add_option("--tee-dir", *dir, "Run directory (default $XDG_RUNTIME_DIR/rplayer)");
  stop->callback(cli.run("worlds stop", [dir] {
    const std::string d = dir->empty() ? default_worlds_dir() : *dir;
    if (!stop_worlds(d)) {
      std::fprintf(stderr, "rplayer worlds stop: nothing runs in %s\n", d.c_str());
      return 1;
    }
    std::printf("stopped %s\n", d.c_str());
    return 0;
  }));
}

void add_classify_command(Cli& cli) {
  CLI::App& app = cli.app;
  auto* o = &cli.hold<ClassifyOpts>();
  auto* cmd = app.add_subcommand("classify", "Classify images inside the TEE (trusted inference)");
  cmd->add_flag("--tee", o->tee, "Through the replay TA in the secure world (the only mode)");
  cmd->add_option("--recording", o->recording,
                  "Signed recording to load (default: record --model now)");
  cmd->add_option("--weights", o->weights,
                  "Model file for a weight-less recording (default: the recorded model's)");
  cmd->add_option("--model", o->model, "Model to record when no --recording is given")
      ->capture_default_str();
  cmd->add_option("--sku", o->sku, "GPU to record on when no --recording is given")
      ->capture_default_str();
  cmd->add_option("--keys", o->keys, "Key directory (default $RPLAYER_KEYS or ./keys)");
  cmd->add_option("--trust", o->trust, "Trust store for reading the recording's metadata");
  cmd->add_option("--tee-dir", o->dir, "Run directory of the SoC and TEE processes");
  cmd->add_option("--top", o->top, "How many classes to print")->capture_default_str();
  cmd->add_option("--top-k-only", o->top_k_only,
                  "When starting the TEE: it returns at most K classes, never the scores");
  cmd->add_option("--normal-share", o->normal_share,
                  "When starting the TEE: the normal world's share of the GPU when both want it")
      ->check(CLI::Range(0.0, 0.9))
      ->capture_default_str();
  cmd->add_flag("--json", o->json, "One JSON object per image, one per line");
  cmd->add_option("images", o->images, "Image files")->required();
  cmd->callback(cli.run("classify", [o] { return classify(*o); }));
}

}  // namespace rplayer::tools
