// Soak of the replay TA in rplayer-tee: N trusted classifications (MNIST digits, cycled),
// interleaved with hostile recordings (tampered, foreign key, validly signed but refused
// by the verifier), malformed TEE calls and clients killed in the middle of a call, while
// a normal-world stack on the SoC process runs inferences non-stop. Every good request
// must give the native stack's exact scores; RSS and open descriptors of rplayer-tee and
// rplayer-soc are sampled along the way (the curve goes to docs/PERFORMANCE.md).
//
//   build/bench/tee_soak [--classifications 10000] [--sample-every 500] [--json]
#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "bench/bench_util.h"
#include "keyring/keys.h"
#include "nn/file_bytes.h"
#include "nn/model_zoo.h"
#include "nn/preprocess.h"
#include "nn/scores.h"
#include "record/encoder.h"
#include "replay/decoder.h"
#include "tee/replay_client.h"
#include "tools/gpu_stack.h"
#include "tools/recording_io.h"
#include "tools/tee_launcher.h"

namespace {

using namespace rplayer;
using bench::Clock;
using bench::ms;
namespace fs = std::filesystem;

// The first process whose program (argv[0]) ends in `exe` and whose command line names `dir`.
pid_t find_process(const std::string& exe, const std::string& dir) {
  DIR* d = opendir("/proc");
  if (!d) return -1;
  pid_t found = -1;
  while (dirent* e = readdir(d)) {
    const pid_t pid = pid_t(std::atol(e->d_name));
    if (pid <= 0) continue;
    std::ifstream f("/proc/" + std::string(e->d_name) + "/cmdline", std::ios::binary);
    const std::string cmd((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    const std::string argv0 = cmd.substr(0, cmd.find('\0'));
    const bool is_exe = argv0.size() >= exe.size() &&
                        argv0.compare(argv0.size() - exe.size(), exe.size(), exe) == 0;
    if (is_exe && cmd.find(dir) != std::string::npos) {
      found = pid;
      break;
    }
  }
  closedir(d);
  return found;
}

long rss_kb(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(f, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  return -1;
}

long open_fds(pid_t pid) {
  long n = 0;
  std::error_code ec;
  for (auto it = fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != fs::directory_iterator(); ++it)
    ++n;
  return ec ? -1 : n;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tee_soak: the replay TA under a long mixed load"};
  int classifications = 10000, sample_every = 500;
  bool json = false;
  app.add_option("--classifications", classifications)->capture_default_str();
  app.add_option("--sample-every", sample_every)->capture_default_str();
  app.add_flag("--json", json);
  CLI11_PARSE(app, argc, argv);
  const std::string shared = RPLAYER_SHARED_DIR;
  nlohmann::json r;
  try {
    const fs::path keys =
        fs::temp_directory_path() / ("rplayer-tee-soak-" + std::to_string(getpid()));
    fs::create_directories(keys / "trusted");
    const keyring::KeyPair kp = keyring::generate_keypair(), stranger = keyring::generate_keypair();
    keyring::save_secret_key(keys / "signing.key", kp);
    keyring::save_public_key(keys / "trusted" / "soak.pub", kp.public_key);
    tools::RecordRequest req;
    req.keys = keys.string();
    req.model = "mnist";
    const std::vector<uint8_t> good = tools::record_model(req, nullptr);

    // Hostile recordings: a flipped byte, a foreign key, and a validly signed recording
    // that clears a fault bit (the verifier refuses it).
    std::vector<std::vector<uint8_t>> hostile;
    hostile.push_back(good);
    hostile.back()[hostile.back().size() / 2] ^= 1;
    replay::Recording rec;
    const replay::PublicKey trusted[] = {kp.public_key};
    if (!replay::decode_recording(good, trusted, &rec).ok()) throw std::runtime_error("decode");
    hostile.push_back(record::encode_recording(rec, stranger));
    replay::Recording bad = rec;
    replay::Action clr;
    clr.op = replay::ActionOp::Write, clr.block = replay::Block::Hub, clr.offset = 0x58;
    clr.value = ~0u;
    bad.actions.insert(bad.actions.begin() + 1, clr);
    hostile.push_back(record::encode_recording(bad, kp));

    // The expected scores of each digit: the native stack's.
    const nn::Model model = nn::load_model("mnist");
    std::vector<std::vector<uint8_t>> digits;
    std::vector<std::vector<float>> want;
    {
      tools::GpuStack native("v3d-7.1", model);
      for (int d = 0; d < 10; ++d) {
        const std::string path = shared + "/images/digits/" + std::to_string(d) + ".pgm";
        digits.push_back(nn::read_whole_file(path));
        const nn::Tensor in = nn::preprocess_image(
            path, model.info.preprocess, model.info.input_shape.w, model.info.input_shape.h);
        want.push_back(native.infer(in).values());
      }
    }

    tools::TeeWorldsOptions wo;
    wo.dir = (keys / "run").string();
    wo.keys = keys.string();
    wo.bin_dir = RPLAYER_BIN_DIR;
    std::string err;
    auto worlds = tools::TeeWorlds::start_or_connect(wo, &err);
    if (!worlds) throw std::runtime_error(err);
    const pid_t tee_pid = find_process("rplayer-tee", wo.dir);
    const pid_t soc_pid = worlds->soc_pid();
    if (tee_pid <= 0 || soc_pid <= 0)
      throw std::runtime_error("cannot find the TEE and SoC processes");

    // The busy normal world: MNIST inferences on the SoC process, checked.
    std::atomic<bool> stop{false};
    std::atomic<long> normal_done{0}, normal_wrong{0};
    std::thread normal([&] {
      tools::GpuStack stack("v3d-7.1", model, std::nullopt, worlds->soc_socket());
      const std::string path = shared + "/images/digits/7.pgm";
      const nn::Tensor in = nn::preprocess_image(
          path, model.info.preprocess, model.info.input_shape.w, model.info.input_shape.h);
      while (!stop) {
        if (stack.infer(in).values() != want[7]) ++normal_wrong;
        ++normal_done;
      }
    });

    tee::ReplayClient c;
    uint32_t h = 0;
    tee::TeeStatus st = c.open(worlds->tee_socket());
    if (st.ok()) st = c.load(good, &h, nullptr);
    if (!st.ok()) throw std::runtime_error(st.message());

    long good_ok = 0, good_wrong = 0, hostile_refused = 0, hostile_accepted = 0, malformed = 0,
         killed = 0;
    nlohmann::json curve = nlohmann::json::array();
    const auto t0 = Clock::now();
    for (int i = 0; i < classifications; ++i) {
      std::vector<float> scores;
      st = c.scores(h, digits[i % 10], tee::kReplayInputImage, &scores, nullptr);
      (st.ok() && scores == want[i % 10] ? good_ok : good_wrong)++;
      if (i % 50 == 25) {  // a hostile recording, on its own session
        uint32_t hh = 0;
        (c.load(hostile[(i / 50) % hostile.size()], &hh, nullptr).ok() ? hostile_accepted
                                                                       : hostile_refused)++;
      }
      if (i % 100 == 60) {  // malformed calls: wrong types, unknown command, unknown handle
        TEEC_Operation op{};
        uint32_t origin = 0;
        op.paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_OUTPUT, TEEC_NONE, TEEC_NONE, TEEC_NONE);
        malformed +=
            TEEC_InvokeCommand(c.session(), tee::kReplayTaRun, &op, &origin) != TEEC_SUCCESS;
        op.paramTypes = 0;
        malformed += TEEC_InvokeCommand(c.session(), 77, &op, &origin) != TEEC_SUCCESS;
        std::vector<tee::TopEntry> top;
        malformed += !c.classify(h + 1000, digits[0], 3, &top, nullptr).ok();
        malformed += !c.classify(h, {1, 2, 3}, 3, &top, nullptr).ok();
      }
      if (i % 250 == 125) {  // a client killed while its classification runs
        const pid_t child = fork();
        if (child == 0) {
          tee::ReplayClient k;
          uint32_t kh = 0;
          if (k.open(worlds->tee_socket()).ok() && k.load(good, &kh, nullptr).ok())
            for (;;) {
              std::vector<tee::TopEntry> top;
              k.classify(kh, digits[3], 3, &top, nullptr);
            }
          _exit(0);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(30 + i % 40));
        kill(child, SIGKILL);
        waitpid(child, nullptr, 0);
        ++killed;
      }
      if (i % sample_every == 0 || i + 1 == classifications)
        curve.push_back({{"classifications", i + 1},
                         {"seconds", ms(Clock::now() - t0) / 1e3},
                         {"tee_rss_kb", rss_kb(tee_pid)},
                         {"tee_fds", open_fds(tee_pid)},
                         {"soc_rss_kb", rss_kb(soc_pid)},
                         {"soc_fds", open_fds(soc_pid)}});
    }
    const double secs = ms(Clock::now() - t0) / 1e3;
    stop = true;
    normal.join();
    c.unload(h);
    r = {{"classifications", classifications},
         {"seconds", secs},
         {"good_correct", good_ok},
         {"good_wrong", good_wrong},
         {"hostile_refused", hostile_refused},
         {"hostile_accepted", hostile_accepted},
         {"malformed_refused", malformed},
         {"clients_killed", killed},
         {"normal_inferences", long(normal_done)},
         {"normal_wrong", long(normal_wrong)},
         {"curve", curve}};
    std::error_code ec;
    worlds.reset();
    fs::remove_all(keys, ec);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tee_soak: %s\n", e.what());
    return 1;
  }
  if (json) {
    std::printf("%s\n", r.dump().c_str());
  } else {
    std::printf("%s\n", r.dump(2).c_str());
  }
  const bool clean = r["good_wrong"] == 0 && r["hostile_accepted"] == 0 && r["normal_wrong"] == 0;
  return clean ? 0 : 1;
}
