// The replay TA behind the TEE Client API (in-process transport, same validation as the
// socket path): trusted classification equals native inference, hostile or malformed
// requests are refused with specific errors while the TA keeps serving, the normal world
// cannot disturb a replay, and every page the TA used is scrubbed.
#include "tee/replay_ta.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>
#include <utility>

#include "hw/soc.h"
#include "hw/v3d_regs.h"
#include "keyring/keys.h"
#include "nn/file_bytes.h"
#include "nn/model_zoo.h"
#include "nn/preprocess.h"
#include "replay/decoder.h"
#include "tee/core/inproc.h"
#include "tee/core/smc_server.h"
#include "tee/core/tee_core.h"
#include "tee/replay_client.h"
#include "tools/gpu_stack.h"
#include "tools/recording_io.h"

namespace rplayer::tee {
namespace {

namespace fs = std::filesystem;
const std::string kCat = std::string(RPLAYER_SHARED_DIR) + "/images/cat.jpg";

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), {}};
}

// One signing key and the recordings every test shares (recording takes ~0.5 s each).
struct Shared {
  fs::path keys;
  replay::PublicKey pub{};
  std::vector<uint8_t> squeezenet, squeezenet_42, mnist, squeezenet_weightless;
};
// The key directory (it holds a secret key) goes when the test process exits.
struct RemoveAtExit {
  fs::path dir;
  ~RemoveAtExit() {
    std::error_code ec;
    if (!dir.empty()) fs::remove_all(dir, ec);
  }
};
RemoveAtExit keys_dir_cleanup;

Shared* shared() {
  static Shared* s = [] {
    auto* s = new Shared;
    s->keys = fs::temp_directory_path() / ("rplayer-ta-test-" + std::to_string(getpid()));
    keys_dir_cleanup.dir = s->keys;
    fs::create_directories(s->keys / "trusted");
    const keyring::KeyPair kp = keyring::generate_keypair();
    keyring::save_secret_key(s->keys / "signing.key", kp);
    keyring::save_public_key(s->keys / "trusted" / "k.pub", kp.public_key);
    s->pub = kp.public_key;
    tools::RecordRequest req;
    req.keys = s->keys.string();
    s->squeezenet = tools::record_model(req, nullptr);
    req.model = "mnist";
    s->mnist = tools::record_model(req, nullptr);
    req.model = "squeezenet";
    req.sku = "v3d-4.2";
    s->squeezenet_42 = tools::record_model(req, nullptr);
    req.sku = "v3d-7.1";
    req.omit_weights = true;
    s->squeezenet_weightless = tools::record_model(req, nullptr);
    return s;
  }();
  return s;
}

hw::SocConfig ta_soc_config() {
  hw::SocConfig c;
  c.normal_bytes = 64ull << 20;
  c.secure_bytes = 64ull << 20;
  return c;
}

class ReplayTaTest : public ::testing::Test {
 protected:
  void SetUp() override { start({}); }
  void TearDown() override {
    client.close();
    register_inproc_core(nullptr);
  }
  void start(ReplayTaConfig cfg) {
    client.close();
    register_inproc_core(nullptr);
    core.reset();
    ta.reset();
    soc = std::make_unique<hw::ModeledSoc>(ta_soc_config());
    cfg.port = &soc->port(hw::World::Secure);
    cfg.pool_pa = soc->memory().secure_base();
    cfg.pool_bytes = soc->memory().secure_size();
    if (cfg.trusted_keys.empty()) cfg.trusted_keys = {shared()->pub};
    cfg.claim_timeout_us = 20000;  // no normal-world driver here: claims are forced quickly
    ta = std::make_shared<ReplayTa>(cfg);
    core = std::make_unique<TeeCore>();
    ASSERT_EQ(core->register_ta(ta), TEE_SUCCESS);
    register_inproc_core(core.get());
    ASSERT_TRUE(client.open("inproc").ok());
  }
  uint32_t load(const std::vector<uint8_t>& rec) {
    uint32_t h = 0;
    const TeeStatus st = client.load(rec, &h, nullptr);
    EXPECT_TRUE(st.ok()) << st.message();
    return h;
  }
  uint64_t violations() { return soc->gpu().stats().tz_violations; }

  std::unique_ptr<hw::ModeledSoc> soc;
  std::shared_ptr<ReplayTa> ta;
  std::unique_ptr<TeeCore> core;
  ReplayClient client;
};

// The native stack's top-5 for an image, as `rplayer run` prints it.
std::vector<std::pair<int, float>> native_top5(const std::string& model_name,
                                               const std::string& image) {
  const nn::Model model = nn::load_model(model_name);
  tools::GpuStack stack("v3d-7.1", model);
  const nn::Tensor in = nn::preprocess_image(image, model.info.preprocess, model.info.input_shape.w,
                                             model.info.input_shape.h);
  return nn::top_k(nn::as_probabilities(stack.infer(in)), 5);
}

// A weight-less recording: the client sends the model file with LOAD_RECORDING; the TA
// checks it against the recording's digests before it writes any carve-out page, keeps the
// weights in the session, and classifies bit-identically to the native stack.
TEST_F(ReplayTaTest, WeightlessRecordingTakesTheModelFile) {
  const std::vector<uint8_t>& rec = shared()->squeezenet_weightless;
  ASSERT_LT(rec.size(), 200u * 1024) << "weight-less: no weight images";
  const std::vector<uint8_t> model = nn::read_whole_file(nn::load_model("squeezenet").weights_file);
  uint32_t h = 0;
  TeeStatus st = client.load(rec, &h, nullptr);
  EXPECT_EQ(st.result, TEEC_ERROR_BAD_PARAMETERS) << st.message();
  EXPECT_NE(st.detail.find("model file"), std::string::npos) << st.detail;
  std::vector<uint8_t> modified = model, truncated = model;
  modified[model.size() / 2] ^= 0x40;
  truncated.pop_back();
  const std::vector<uint8_t> other = nn::read_whole_file(nn::load_model("mnist").weights_file);
  for (const std::vector<uint8_t>* wrong :
       {&std::as_const(modified), &std::as_const(truncated), &other}) {
    st = client.load(rec, &h, nullptr, *wrong);
    EXPECT_EQ(st.result, TEEC_ERROR_SECURITY) << st.message();
    EXPECT_NE(st.detail.find("model file"), std::string::npos) << st.detail;
    EXPECT_TRUE(ta->pool_is_clean()) << "nothing written to the carve-out";
  }
  st = client.load(rec, &h, nullptr, model);
  ASSERT_TRUE(st.ok()) << st.message();
  const auto want = native_top5("squeezenet", kCat);
  for (int run = 0; run < 2; ++run) {  // the weights stay in the session
    std::vector<TopEntry> top;
    ASSERT_TRUE(client.classify(h, read_bytes(kCat), 5, &top, nullptr).ok());
    ASSERT_EQ(top.size(), 5u);
    for (size_t i = 0; i < 5; ++i) {
      EXPECT_EQ(int(top[i].cls), want[i].first) << i;
      EXPECT_EQ(top[i].prob, want[i].second) << i;  // bit-identical
    }
  }
  EXPECT_TRUE(client.unload(h).ok());
  EXPECT_TRUE(ta->pool_is_clean());
}

// A refused run says why (finding 7: TEEC_ERROR_GENERIC alone helps nobody).
TEST_F(ReplayTaTest, RefusedRunsSayWhy) {
  const uint32_t h = load(shared()->mnist);
  std::vector<TopEntry> top;
  TeeStatus st =
      client.classify(h, std::vector<uint8_t>(100, 0), 3, &top, nullptr, kReplayInputTensor);
  EXPECT_EQ(st.result, TEEC_ERROR_BAD_PARAMETERS);
  EXPECT_NE(st.message().find("the input tensor has 100 bytes, the recording's 'data' takes 3136"),
            std::string::npos)
      << st.message();
  st = client.classify(h, std::vector<uint8_t>(64, 7), 3, &top, nullptr);
  EXPECT_EQ(st.result, TEEC_ERROR_BAD_FORMAT);
  EXPECT_FALSE(st.detail.empty()) << "the decoder's reason";
  EXPECT_TRUE(client.unload(h).ok());
}

TEST_F(ReplayTaTest, ClassifiesLikeTheNativeStack) {
  const uint32_t h = load(shared()->squeezenet);
  const auto want = native_top5("squeezenet", kCat);
  // From the recording: its jobs (the prepare phase's and the inference's), and the page
  // loads of its first memory load into read-only regions other than the input, which the
  // session keeps loaded.
  replay::Recording rec;
  ASSERT_TRUE(replay::decode_recording(shared()->squeezenet, {&shared()->pub, 1}, &rec).ok());
  uint32_t jobs = 0, kept = 0;
  bool first_load = true;
  for (const replay::Action& a : rec.actions) {
    jobs += a.op == replay::ActionOp::JobBoundary;
    if (a.op != replay::ActionOp::LoadMemory || !first_load) continue;
    first_load = false;
    for (uint32_t k = a.first; k < a.first + a.count; ++k) {
      const replay::Region& g = rec.regions[rec.loads[k].region];
      kept += !g.gpu_writable && g.kind != replay::RegionKind::Input;  // inputs: rewritten
    }
  }
  ASSERT_GT(kept, 100u);
  for (int run = 0; run < 2; ++run) {  // the second run reuses the loaded session
    std::vector<TopEntry> top;
    RunStats rs;
    const TeeStatus st = client.classify(h, read_bytes(kCat), 5, &top, &rs);
    ASSERT_TRUE(st.ok()) << st.message();
    ASSERT_EQ(top.size(), 5u);
    for (size_t i = 0; i < 5; ++i) {
      EXPECT_EQ(int(top[i].cls), want[i].first) << i;
      EXPECT_EQ(top[i].prob, want[i].second) << i;  // bit-identical
    }
    EXPECT_EQ(top[0].cls, 281u);  // tabby
    EXPECT_EQ(rs.jobs, jobs);
    EXPECT_GT(rs.pages_scrubbed, 0u);
    EXPECT_GE(rs.pages_skipped, kept) << "read-only pages stay loaded";
  }
  EXPECT_FALSE(soc->gpu().secure()) << "the GPU goes back to the normal world after each run";
  EXPECT_TRUE(client.unload(h).ok());
  EXPECT_EQ(ta->loaded(), 0u);
  EXPECT_TRUE(ta->pool_is_clean()) << "every carve-out page scrubbed and freed";
}

TEST_F(ReplayTaTest, AllTenMnistDigitsMatchTheNativeStack) {
  const uint32_t h = load(shared()->mnist);
  for (int d = 0; d < 10; ++d) {
    const std::string img =
        std::string(RPLAYER_SHARED_DIR) + "/images/digits/" + std::to_string(d) + ".pgm";
    if (!fs::exists(img)) GTEST_SKIP() << img;
    std::vector<TopEntry> top;
    ASSERT_TRUE(client.classify(h, read_bytes(img), 1, &top, nullptr).ok());
    EXPECT_EQ(int(top[0].cls), d);
    EXPECT_EQ(top[0].prob, native_top5("mnist", img)[0].second);
  }
}

TEST_F(ReplayTaTest, TamperedRecordingFailsTheSignature) {
  // A flipped bit in the content: the section checksum (checked first, unkeyed) fails.
  std::vector<uint8_t> bad = shared()->squeezenet;
  bad[bad.size() / 2] ^= 0x01;
  uint32_t h = 0;
  TeeStatus st = client.load(bad, &h, nullptr);
  EXPECT_EQ(st.result, TEE_ERROR_MAC_INVALID) << st.message();
  EXPECT_EQ(st.origin, uint32_t(TEEC_ORIGIN_TRUSTED_APP));
  // A changed signature (the last 64 bytes): Ed25519 verification fails.
  bad = shared()->squeezenet;
  bad[bad.size() - 10] ^= 0x01;
  st = client.load(bad, &h, nullptr);
  EXPECT_EQ(st.result, TEE_ERROR_SIGNATURE_INVALID) << st.message();
  EXPECT_NE(st.detail.find("signature"), std::string::npos) << st.detail;
  EXPECT_EQ(ta->loaded(), 0u);
  EXPECT_NE(load(shared()->squeezenet), 0u) << "the TA keeps serving";
  // A TEE provisioned with another key refuses the (intact) recording.
  ReplayTaConfig cfg;
  cfg.trusted_keys = {keyring::generate_keypair().public_key};
  start(cfg);
  st = client.load(shared()->squeezenet, &h, nullptr);
  EXPECT_EQ(st.result, TEE_ERROR_SIGNATURE_INVALID) << st.message();
  EXPECT_EQ(ta->loaded(), 0u);
}

TEST_F(ReplayTaTest, OtherSkuRecordingIsRejected) {
  uint32_t h = 0;
  const TeeStatus st = client.load(shared()->squeezenet_42, &h, nullptr);
  EXPECT_EQ(st.result, TEEC_ERROR_NOT_SUPPORTED) << st.message();
  EXPECT_NE(st.detail.find("GPU"), std::string::npos) << st.detail;
  EXPECT_EQ(ta->loaded(), 0u);
  EXPECT_TRUE(ta->pool_is_clean());
}

TEST_F(ReplayTaTest, MalformedParametersGetClearErrorsAndTheTaKeepsServing) {
  const uint32_t h = load(shared()->squeezenet);
  const std::vector<uint8_t> cat = read_bytes(kCat);
  std::vector<TopEntry> top;
  // Unknown handle, garbage image, a raw tensor of the wrong size, k out of range.
  EXPECT_EQ(client.classify(h + 100, cat, 5, &top, nullptr).result, TEEC_ERROR_ITEM_NOT_FOUND);
  EXPECT_EQ(client.classify(h, {1, 2, 3, 4}, 5, &top, nullptr).result, TEEC_ERROR_BAD_FORMAT);
  EXPECT_EQ(client.classify(h, {1, 2, 3, 4}, 5, &top, nullptr, kReplayInputTensor).result,
            TEEC_ERROR_BAD_PARAMETERS);
  EXPECT_EQ(client.classify(h, cat, 5000, &top, nullptr).result, TEEC_ERROR_BAD_PARAMETERS);
  // A 33-byte PNG claiming 9000 x 9000 pixels: refused without decoding.
  const std::vector<uint8_t> bomb = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13,
                                     'I', 'H', 'D', 'R', 0, 0, 0x23, 0x28, 0, 0, 0x23, 0x28,
                                     8, 2, 0, 0, 0, 0, 0, 0, 0};
  EXPECT_EQ(client.classify(h, bomb, 5, &top, nullptr).result, TEEC_ERROR_BAD_FORMAT);
  // Wrong parameter types for RUN, and an unknown command, through the raw API.
  TEEC_Operation op{};
  op.paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_OUTPUT, TEEC_NONE, TEEC_NONE, TEEC_NONE);
  uint32_t origin = 0;
  EXPECT_EQ(TEEC_InvokeCommand(client.session(), kReplayTaRun, &op, &origin),
            TEEC_ERROR_BAD_PARAMETERS);
  EXPECT_EQ(origin, uint32_t(TEEC_ORIGIN_TRUSTED_APP));
  op.paramTypes = 0;
  EXPECT_EQ(TEEC_InvokeCommand(client.session(), 99, &op, &origin), TEEC_ERROR_NOT_SUPPORTED);
  // Output buffer too small: the TA says how much it needs.
  std::vector<TopEntry> small(2);
  TEEC_Operation run{};
  run.paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_INPUT, TEEC_MEMREF_TEMP_INPUT,
                                    TEEC_MEMREF_TEMP_OUTPUT, TEEC_NONE);
  run.params[0].value = {h, 5};
  run.params[1].tmpref = {const_cast<uint8_t*>(cat.data()), cat.size()};
  run.params[2].tmpref = {small.data(), small.size() * sizeof(TopEntry)};
  EXPECT_EQ(TEEC_InvokeCommand(client.session(), kReplayTaRun, &run, &origin),
            TEEC_ERROR_SHORT_BUFFER);
  EXPECT_EQ(run.params[2].tmpref.size, 5 * sizeof(TopEntry));
  // Still serving.
  ASSERT_TRUE(client.classify(h, cat, 5, &top, nullptr).ok());
  EXPECT_EQ(top[0].cls, 281u);
}

TEST_F(ReplayTaTest, TopKRestrictionKeepsTheScoresInside) {
  ReplayTaConfig cfg;
  cfg.max_top_k = 5;
  start(cfg);
  const uint32_t h = load(shared()->squeezenet);
  std::vector<float> scores;
  EXPECT_EQ(client.scores(h, read_bytes(kCat), kReplayInputImage, &scores, nullptr).result,
            TEEC_ERROR_ACCESS_DENIED);
  std::vector<TopEntry> top;
  EXPECT_EQ(client.classify(h, read_bytes(kCat), 6, &top, nullptr).result,
            TEEC_ERROR_ACCESS_DENIED);
  EXPECT_TRUE(client.classify(h, read_bytes(kCat), 5, &top, nullptr).ok());
}

TEST_F(ReplayTaTest, NormalWorldRegisterWritesDuringAReplayAreDroppedAndCounted) {
  const uint32_t h = load(shared()->squeezenet);
  std::vector<TopEntry> clean, attacked;
  ASSERT_TRUE(client.classify(h, read_bytes(kCat), 5, &clean, nullptr).ok());
  const uint64_t v0 = violations();
  std::atomic<bool> stop{false};
  // A privileged normal world hammering the GPU: page-table base, CSD queue, interrupts.
  std::thread attacker([&] {
    hw::SocPort& n = soc->port(hw::World::Normal);
    while (!stop) {
      n.write32(hw::RegBlock::Hub, v3d::MMU_PT_PA_BASE, 0);
      n.write32(hw::RegBlock::Core0, soc->sku().csd_queued_cfg0, 0);
      n.write32(hw::RegBlock::Hub, v3d::INT_MSK_SET, ~0u);
      std::this_thread::yield();
    }
  });
  const TeeStatus st = client.classify(h, read_bytes(kCat), 5, &attacked, nullptr);
  stop = true;
  attacker.join();
  ASSERT_TRUE(st.ok()) << st.message();
  ASSERT_EQ(attacked.size(), clean.size());
  for (size_t i = 0; i < clean.size(); ++i) {
    EXPECT_EQ(attacked[i].cls, clean[i].cls);
    EXPECT_EQ(attacked[i].prob, clean[i].prob);
  }
  EXPECT_GT(violations(), v0) << "writes while the GPU was secure were refused and counted";
}

TEST_F(ReplayTaTest, ClosingTheSessionUnloadsAndScrubs) {
  load(shared()->squeezenet);
  std::vector<TopEntry> top;
  ASSERT_TRUE(client.classify(1, read_bytes(kCat), 5, &top, nullptr).ok());
  EXPECT_EQ(ta->loaded(), 1u);
  client.close();
  EXPECT_EQ(ta->loaded(), 0u);
  EXPECT_TRUE(ta->pool_is_clean());
}

// A client process killed in the middle of a run: the TA finishes or aborts the run, the
// session is closed, the pages are scrubbed and the GPU is back with the normal world.
TEST_F(ReplayTaTest, KilledClientMidReplayIsCleanedUp) {
  const std::string path =
      (fs::temp_directory_path() / ("rplayer-ta-" + std::to_string(getpid()) + ".sock")).string();
  SmcServer server(*core);
  std::string err;
  ASSERT_TRUE(server.listen(path, &err)) << err;
  std::thread serving([&] { server.run(); });
  const std::vector<uint8_t> cat = read_bytes(kCat);
  const pid_t child = fork();
  if (child == 0) {
    ReplayClient c;
    uint32_t h = 0;
    if (!c.open(path).ok() || !c.load(shared()->squeezenet, &h, nullptr).ok()) _exit(2);
    std::vector<TopEntry> top;
    for (;;) c.classify(h, cat, 5, &top, nullptr);  // killed in here
  }
  // Wait until the child's recording is loaded and a run is under way, then kill it.
  // Generous bounds: under the sanitizers one SqueezeNet run takes seconds.
  for (int i = 0; i < 6000 && (ta->loaded() == 0 || ta->runs() == 0); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  for (int i = 0; i < 6000 && ta->loaded() != 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(ta->loaded(), 0u);
  EXPECT_TRUE(ta->pool_is_clean());
  EXPECT_FALSE(soc->gpu().secure());
  // The TEE keeps serving others.
  ReplayClient other;
  ASSERT_TRUE(other.open(path).ok());
  uint32_t h = 0;
  ASSERT_TRUE(other.load(shared()->squeezenet, &h, nullptr).ok());
  std::vector<TopEntry> top;
  EXPECT_TRUE(other.classify(h, cat, 5, &top, nullptr).ok());
  other.close();
  server.stop();
  serving.join();
  fs::remove(path);
}

}  // namespace
}  // namespace rplayer::tee
