// Record/replay against native execution, per model: replay latency vs native warm
// latency vs pure device time, cold start (load + verify + first replay) vs native cold
// start (SoC + driver probe + weight upload + JIT + first inference), recording size,
// verification time, actions per replay.
//
//   build/bench/replay_bench [--models squeezenet,mnist] [--iterations 5] [--sku v3d-7.1] [--json]
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "bench/bench_util.h"
#include "keyring/keys.h"
#include "nn/model_zoo.h"
#include "nn/preprocess.h"
#include "record/encoder.h"
#include "replay/decoder.h"
#include "replay/verifier.h"
#include "tools/gpu_stack.h"
#include "tools/recording_io.h"

namespace {

using rplayer::bench::Clock;
using rplayer::bench::ms;
using rplayer::bench::split;

rplayer::nn::Tensor make_input(const rplayer::nn::Model& m, uint32_t seed) {
  rplayer::nn::Tensor t(m.info.input_shape);
  for (size_t i = 0; i < t.size(); ++i)
    t.data()[i] = float(((i + seed) * 2654435761u) % 1000) / 10.f - 50.f;
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace rplayer;
  CLI::App app{"rplayer record/replay benchmark"};
  std::string models = "squeezenet,mnist", sku = "v3d-7.1";
  int iterations = 5;
  bool json = false;
  app.add_option("--models", models)->capture_default_str();
  app.add_option("--sku", sku)->capture_default_str();
  app.add_option("--iterations", iterations)->capture_default_str();
  app.add_flag("--json", json);
  CLI11_PARSE(app, argc, argv);
  const keyring::KeyPair key = keyring::generate_keypair();
  const replay::PublicKey trusted[] = {key.public_key};

  nlohmann::json results = nlohmann::json::array();
  for (const std::string& name : split(models)) {
    try {
      // Native: cold start, then warm inferences (the recorder is idle in the path).
      const auto t0 = Clock::now();
      nn::Model model = nn::load_model(name);
      tools::GpuStack stack(sku, model, record::RecorderOptions{});
      stack.infer(make_input(model, 0));
      const double native_cold = ms(Clock::now() - t0);
      const auto t1 = Clock::now();
      for (int i = 0; i < iterations; ++i) stack.infer(make_input(model, i + 1));
      const double native_warm = ms(Clock::now() - t1) / iterations;

      // Record one inference.
      const auto t2 = Clock::now();
      stack.start_recording();
      stack.infer(make_input(model, 99));
      replay::Recording rec = tools::finish_recording(stack, model);
      rec.metadata.insert(rec.metadata.begin(), {"model", name});
      const std::vector<uint8_t> bytes = record::encode_recording(rec, key);
      const double record_ms = ms(Clock::now() - t2);

      // Replay cold: decode + verify + target + load + first replay. Then warm replays in
      // the session, and self-contained replays (verify, load, run, scrub all) for comparison.
      const auto t3 = Clock::now();
      replay::Recording decoded;
      const replay::DecodeError de = replay::decode_recording(bytes, trusted, &decoded);
      if (!de.ok()) throw std::runtime_error(de.message());
      const double decode_ms = ms(Clock::now() - t3);
      const auto tv = Clock::now();
      const replay::VerifyError ve = replay::verify_recording(decoded, decoded.sku);
      const double verify_ms = ms(Clock::now() - tv);
      if (!ve.ok()) throw std::runtime_error(ve.message());
      tools::ReplayTarget target(sku);
      const nn::Shape out_shape = model.graph.blob_shape(model.info.output_blob);
      std::vector<float> out(out_shape.total());
      replay::ReplayStats st;
      auto check = [](const replay::ReplayError& e) {
        char buf[256];
        if (!e.ok()) throw std::runtime_error(e.format(buf, sizeof buf));
      };
      auto once = [&](uint32_t seed) {
        check(target.run_loaded(model.info.input_blob, make_input(model, seed),
                                model.info.output_blob, &out, &st));
      };
      check(target.load(decoded, nullptr));
      once(1);
      const double replay_cold = ms(Clock::now() - t3);
      const auto g0 = target.soc().gpu().stats();
      const auto t4 = Clock::now();
      for (int i = 0; i < iterations; ++i) once(i + 2);
      const double replay_warm = ms(Clock::now() - t4) / iterations;
      const auto g1 = target.soc().gpu().stats();
      // Device time = the GPU busy: the CSD executing jobs, plus cache and MMU maintenance
      // in flight (L2T clean/flush, TMU write-combiner flush, MMU cache flush, TLB clear).
      const double csd_ms = double(g1.device_busy_ns - g0.device_busy_ns) / 1e6 / iterations;
      const double maintenance_ms =
          double(g1.maintenance_busy_ns - g0.maintenance_busy_ns) / 1e6 / iterations;
      const double device_ms = csd_ms + maintenance_ms;
      target.unload();  // the one-shot replays need the carve-out to themselves
      replay::ReplayStats one_st;
      const auto t5 = Clock::now();
      for (int i = 0; i < iterations; ++i)
        check(target.run(decoded, model.info.input_blob, make_input(model, i + 2),
                         model.info.output_blob, &out, &one_st));
      const double oneshot_warm = ms(Clock::now() - t5) / iterations;

      nlohmann::json r = {
          {"model", name},
          {"sku", sku},
          {"native_cold_ms", native_cold},
          {"native_warm_ms", native_warm},
          {"record_ms", record_ms},
          {"recording_bytes", bytes.size()},
          {"decode_ms", decode_ms},
          {"verify_ms", verify_ms},
          {"replay_cold_ms", replay_cold},
          {"replay_warm_ms", replay_warm},
          {"oneshot_replay_ms", oneshot_warm},
          {"pages_loaded_per_replay", st.pages_loaded},
          {"pages_scrubbed_per_replay", st.pages_scrubbed},
          {"device_busy_ms_per_replay", device_ms},
          {"csd_busy_ms_per_replay", csd_ms},
          {"maintenance_busy_ms_per_replay", maintenance_ms},
          {"replay_over_native_warm", replay_warm / native_warm},
          {"replay_over_device_time", replay_warm / device_ms},
          {"native_cold_over_replay_cold", native_cold / replay_cold},
          {"jobs", st.jobs},
          {"actions_per_replay", st.actions},
          {"checked_reads", st.checked_reads},
          {"polls", st.polls},
          {"irq_waits", st.irq_waits},
          {"setup_ms", st.setup_us / 1e3},
          {"execute_ms", st.execute_us / 1e3},
          {"teardown_ms", st.teardown_us / 1e3},
      };
      results.push_back(r);
      if (!json)
        std::printf("%-20s native cold %7.1f warm %7.1f | replay cold %7.1f warm %7.1f "
                    "one-shot %7.1f (device %7.1f) ms | %.2fx native warm, %.2fx device, "
                    "cold %.1fx faster | %zu bytes, verify %.2f ms, %u actions\n",
                    name.c_str(), native_cold, native_warm, replay_cold, replay_warm,
                    oneshot_warm, device_ms,
                    replay_warm / native_warm, replay_warm / device_ms, native_cold / replay_cold,
                    bytes.size(), verify_ms, st.actions);
    } catch (const std::exception& e) {
      results.push_back({{"model", name}, {"sku", sku}, {"error", e.what()}});
      if (!json) std::printf("%-20s error: %s\n", name.c_str(), e.what());
    }
  }
  if (json) std::printf("%s\n", results.dump(2).c_str());
  return 0;
}
