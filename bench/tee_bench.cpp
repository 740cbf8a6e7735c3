// Trusted classification through the TEE, next to native inference and plain replay:
// SqueezeNet on cat.jpg, per image, with the costs of handing the GPU between the worlds.
//
//   native        the full normal-world stack, warm (preprocess + inference)
//   replay        a replay session in this process (preprocess + Replayer::run)
//   tee inproc    the replay TA behind the TEE Client API in this process (no normal
//                 driver: the GPU is free), round trip per image
//   tee process   rplayer-soc + sandboxed rplayer-tee processes, SMC socket, round trip
//   tee busy      the same while a normal-world driver (a GpuStack on the SoC process in
//                 this process) runs inferences non-stop: its driver suspends and resumes
//                 around every claim; the TA waits for the resume to measure it
//
//   build/bench/tee_bench [--iterations 10] [--json]
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <thread>

#include "bench/bench_util.h"
#include "keyring/keys.h"
#include "nn/file_bytes.h"
#include "nn/model_zoo.h"
#include "nn/preprocess.h"
#include "replay/decoder.h"
#include "tee/core/inproc.h"
#include "tee/core/tee_core.h"
#include "tee/replay_client.h"
#include "tee/replay_ta.h"
#include "tools/gpu_stack.h"
#include "tools/recording_io.h"
#include "tools/tee_launcher.h"

namespace {

using namespace rplayer;
using bench::Clock;
using bench::ms;
namespace fs = std::filesystem;

struct Sample {
  double total_ms = 0;
  tee::RunStats rs;
};

// Median of per-image round trips, with the TA's breakdown of the median run.
nlohmann::json summarize(std::vector<Sample> v) {
  std::sort(v.begin(), v.end(),
            [](const Sample& a, const Sample& b) { return a.total_ms < b.total_ms; });
  const Sample& m = v[v.size() / 2];
  double forced = 0;
  for (const Sample& s : v) forced += s.rs.forced;
  return {{"per_image_ms", m.total_ms},
          {"min_ms", v.front().total_ms},
          {"preprocess_ms", m.rs.preprocess_us / 1e3},
          {"quiesce_ms", m.rs.quiesce_us / 1e3},
          {"switch_in_ms", m.rs.switch_in_us / 1e3},
          {"replay_ms", m.rs.replay_us / 1e3},
          {"switch_out_ms", m.rs.switch_out_us / 1e3},
          {"resume_ms", m.rs.resume_us / 1e3},
          {"deferred_ms", m.rs.deferred_us / 1e3},
          {"tee_total_ms", m.rs.total_us / 1e3},
          {"forced_claims", forced}};
}

std::vector<Sample> classify_n(tee::ReplayClient& c, uint32_t handle,
                               const std::vector<uint8_t>& img, int n) {
  std::vector<Sample> out;
  for (int i = 0; i < n; ++i) {
    std::vector<tee::TopEntry> top;
    Sample s;
    const auto t = Clock::now();
    const tee::TeeStatus st = c.classify(handle, img, 5, &top, &s.rs);
    s.total_ms = ms(Clock::now() - t);
    if (!st.ok() || top.empty() || top[0].cls != 281)
      throw std::runtime_error("trusted classification failed: " + st.message());
    out.push_back(s);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"rplayer trusted classification benchmark"};
  int iterations = 10;
  bool json = false;
  app.add_option("--iterations", iterations)->capture_default_str();
  app.add_flag("--json", json);
  CLI11_PARSE(app, argc, argv);
  const std::string image = std::string(RPLAYER_SHARED_DIR) + "/images/cat.jpg";
  nlohmann::json r;
  try {
    // A key directory and the recording (the normal world's recorder, signed).
    const fs::path keys =
        fs::temp_directory_path() / ("rplayer-tee-bench-" + std::to_string(getpid()));
    fs::create_directories(keys / "trusted");
    const keyring::KeyPair kp = keyring::generate_keypair();
    keyring::save_secret_key(keys / "signing.key", kp);
    keyring::save_public_key(keys / "trusted" / "bench.pub", kp.public_key);
    tools::RecordRequest req;
    req.keys = keys.string();
    const std::vector<uint8_t> rec_bytes = tools::record_model(req, nullptr);
    const std::vector<uint8_t> img = nn::read_whole_file(image);

    // Native, warm.
    const nn::Model model = nn::load_model("squeezenet");
    {
      tools::GpuStack stack("v3d-7.1", model);
      auto once = [&] {
        const nn::Tensor in = nn::preprocess_image(
            image, model.info.preprocess, model.info.input_shape.w, model.info.input_shape.h);
        stack.infer(in);
      };
      once();
      std::vector<double> t;
      for (int i = 0; i < iterations; ++i) {
        const auto t0 = Clock::now();
        once();
        t.push_back(ms(Clock::now() - t0));
      }
      std::sort(t.begin(), t.end());
      r["native_ms"] = t[t.size() / 2];
    }
    // Plain replay session in this process.
    {
      replay::Recording rec;
      const replay::PublicKey trusted[] = {kp.public_key};
      if (!replay::decode_recording(rec_bytes, trusted, &rec).ok())
        throw std::runtime_error("decode");
      tools::ReplayTarget target("v3d-7.1");
      if (!target.load(rec, nullptr).ok()) throw std::runtime_error("load");
      std::vector<float> out(1000);
      std::vector<double> t;
      for (int i = 0; i <= iterations; ++i) {
        const auto t0 = Clock::now();
        const nn::Tensor in = nn::preprocess_image(
            image, model.info.preprocess, model.info.input_shape.w, model.info.input_shape.h);
        if (!target.run_loaded(model.info.input_blob, in, model.info.output_blob, &out, nullptr)
                 .ok())
          throw std::runtime_error("replay");
        if (i > 0) t.push_back(ms(Clock::now() - t0));
      }
      std::sort(t.begin(), t.end());
      r["replay_ms"] = t[t.size() / 2];
    }
    // The TA in this process, GPU free (no normal driver).
    {
      hw::SocConfig cfg;
      cfg.normal_bytes = 256ull << 20;
      hw::ModeledSoc soc(cfg);
      tee::ReplayTaConfig tc;
      tc.port = &soc.port(hw::World::Secure);
      tc.pool_pa = soc.memory().secure_base();
      tc.pool_bytes = soc.memory().secure_size();
      tc.trusted_keys = {kp.public_key};
      auto ta = std::make_shared<tee::ReplayTa>(tc);
      tee::TeeCore core;
      core.register_ta(ta);
      tee::register_inproc_core(&core);
      tee::ReplayClient c;
      uint32_t h = 0;
      const auto t0 = Clock::now();
      if (!c.open("inproc").ok() || !c.load(rec_bytes, &h, nullptr).ok())
        throw std::runtime_error("inproc load");
      r["tee_inproc_load_ms"] = ms(Clock::now() - t0);
      classify_n(c, h, img, 1);
      r["tee_inproc"] = summarize(classify_n(c, h, img, iterations));
      c.close();
      tee::register_inproc_core(nullptr);
    }
    // The worlds as processes: idle normal world, then a busy one with the default fair
    // share, then a busy one with the secure world strictly first.
    struct Case {
      const char* key;
      bool busy;
      double normal_share;
    };
    for (const Case& cs : {Case{"tee_process", false, 0.5}, Case{"tee_process_busy", true, 0.5},
                           Case{"tee_process_busy_strict", true, 0.0}}) {
      const bool busy = cs.busy;
      tools::TeeWorldsOptions wo;
      wo.dir = (keys / (std::string("run-") + cs.key)).string();
      wo.keys = keys.string();
      wo.bin_dir = RPLAYER_BIN_DIR;
      wo.resume_wait_ms = busy ? 2000 : 0;
      wo.normal_share = cs.normal_share;
      std::string err;
      const auto t0 = Clock::now();
      auto worlds = tools::TeeWorlds::start_or_connect(wo, &err);
      if (!worlds) throw std::runtime_error(err);
      const double boot_ms = ms(Clock::now() - t0);
      std::atomic<bool> stop{false};
      std::atomic<int> normal_done{0};
      std::thread normal;
      if (busy) {
        normal = std::thread([&] {
          tools::GpuStack stack("v3d-7.1", model, std::nullopt, worlds->soc_socket());
          const nn::Tensor in = nn::preprocess_image(
              image, model.info.preprocess, model.info.input_shape.w, model.info.input_shape.h);
          while (!stop) {
            const auto top = nn::top_k(nn::as_probabilities(stack.infer(in)), 1);
            if (top[0].first != 281) throw std::runtime_error("normal-world inference wrong");
            ++normal_done;
          }
        });
        while (normal_done == 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      tee::ReplayClient c;
      uint32_t h = 0;
      const auto t1 = Clock::now();
      tee::TeeStatus st = c.open(worlds->tee_socket());
      if (st.ok()) st = c.load(rec_bytes, &h, nullptr);
      if (!st.ok()) throw std::runtime_error(st.message());
      const double load_ms = ms(Clock::now() - t1);
      classify_n(c, h, img, 1);
      const int normal0 = normal_done;
      const auto t2 = Clock::now();
      nlohmann::json s = summarize(classify_n(c, h, img, iterations));
      const double secs = ms(Clock::now() - t2) / 1e3;
      s["boot_ms"] = boot_ms;
      s["load_ms"] = load_ms;
      if (busy) s["normal_inferences_per_s_meanwhile"] = (normal_done - normal0) / secs;
      stop = true;
      if (normal.joinable()) normal.join();
      s["normal_share"] = cs.normal_share;
      r[cs.key] = s;
    }
    fs::remove_all(keys);
  } catch (const std::exception& e) {
    r["error"] = e.what();
  }
  if (json) {
    std::printf("%s\n", r.dump(2).c_str());
  } else {
    std::printf("native %.1f ms | replay %.1f ms | ", r.value("native_ms", 0.0),
                r.value("replay_ms", 0.0));
    for (const char* k :
         {"tee_inproc", "tee_process", "tee_process_busy", "tee_process_busy_strict"})
      if (r.contains(k))
        std::printf(
            "%s %.1f ms (quiesce %.2f, switch in %.2f, replay %.1f, switch out %.2f, resume %.2f) "
            "| ",
            k, r[k]["per_image_ms"].get<double>(), r[k]["quiesce_ms"].get<double>(),
            r[k]["switch_in_ms"].get<double>(), r[k]["replay_ms"].get<double>(),
            r[k]["switch_out_ms"].get<double>(), r[k]["resume_ms"].get<double>());
    if (r.contains("error")) std::printf("error: %s", r["error"].get<std::string>().c_str());
    std::printf("\n");
  }
  return r.contains("error") ? 1 : 0;
}
