// Cloud recording as users run it: rplayer-cloud (`rplayer cloud serve`), a delaying relay
// (`rplayer netem`) in front of it, and `rplayer record --cloud` on a device whose SoC and
// TEE run as their own processes. What comes back equals a local recording and replays the
// same; a cloud or relay killed mid-recording leaves no file and a device that still works.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "tests/common/run_command.h"
#include "tests/common/sanitized.h"

namespace rplayer {
namespace {

namespace fs = std::filesystem;

std::string run(const std::string& cmd, int* status) {
  return rplayer::test::run_command(cmd + " 2>&1", status);
}

// A child process whose stderr announces "listening on HOST:PORT".
class Server {
 public:
  explicit Server(std::vector<std::string> args) {
    int err[2];
    if (pipe(err) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(err[1], STDERR_FILENO);
      close(err[0]);
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(err[1]);
    log_ = fdopen(err[0], "r");
    std::array<char, 512> line;
    const std::regex re("listening on [0-9.]+:([0-9]+)");
    while (log_ && fgets(line.data(), int(line.size()), log_)) {
      std::cmatch m;
      if (std::regex_search(line.data(), m, re)) {
        port_ = std::stoi(m[1]);
        break;
      }
    }
  }
  ~Server() {
    kill_now(SIGTERM);
    if (log_) fclose(log_);
  }
  void kill_now(int sig = SIGKILL) {
    if (pid_ <= 0) return;
    kill(pid_, sig);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  int port() const { return port_; }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  FILE* log_ = nullptr;
};

class CloudProcess : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("rplayer-cloud-" + std::to_string(getpid()));
    fs::create_directories(dir_);
    int st = -1;
    const std::string out = run(cli("keygen"), &st);
    ASSERT_EQ(st, 0) << out;
  }
  static void TearDownTestSuite() {
    for (const char* w : {"w71", "w42"}) {
      int st;
      run(cli("worlds stop --tee-dir " + (dir_ / w).string()), &st);
    }
    fs::remove_all(dir_);
  }
  static std::string cli(const std::string& args) {
    return "RPLAYER_KEYS=" + (dir_ / "keys").string() + " " RPLAYER_BIN " " + args;
  }
  static std::string path(const std::string& name) { return (dir_ / name).string(); }
  static std::string worlds(const std::string& sku) {
    return path(sku == "v3d-7.1" ? "w71" : "w42");
  }
  // The cloud, and a relay at `rtt_ms` in front of it.
  struct Link {
    std::unique_ptr<Server> cloud, relay;
    std::string address() const { return "127.0.0.1:" + std::to_string(relay->port()); }
  };
  static Link start_link(int rtt_ms) {
    Link l;
    l.cloud = std::make_unique<Server>(std::vector<std::string>{
        RPLAYER_CLOUD_BIN, "--listen", "127.0.0.1:0", "--keys", path("keys")});
    l.relay = std::make_unique<Server>(std::vector<std::string>{
        RPLAYER_BIN, "netem", "--listen", "127.0.0.1:0", "--connect",
        "127.0.0.1:" + std::to_string(l.cloud->port()), "--rtt", std::to_string(rtt_ms)});
    return l;
  }
  static std::string images(const std::string& model) {
    const fs::path shared = fs::path(RPLAYER_SHARED_DIR) / "images";
    if (model == "squeezenet") return " " + (shared / "cat.jpg").string();
    std::string all;
    for (int d = 0; d < 10; ++d)
      all += " " + (shared / "digits" / (std::to_string(d) + ".pgm")).string();
    return all;
  }
  static fs::path dir_;
};
fs::path CloudProcess::dir_;

struct Case {
  std::string model, sku;
};
class CloudEndToEnd : public CloudProcess, public testing::WithParamInterface<Case> {};

TEST_P(CloudEndToEnd, RecordedThroughTheRelayEqualsALocalRecordingAndReplaysTheSame) {
  const Case& c = GetParam();
  if (test::kSanitized && c.model == "squeezenet") {
    GTEST_SKIP() << test::kPlainBuildOnly;
  }
  const Link link = start_link(2);
  ASSERT_GT(link.relay->port(), 0);
  const std::string tag = c.model + "_" + c.sku;
  int st = -1;
  std::string out =
      run(cli("record --cloud " + link.address() + " --model " + c.model + " --sku " + c.sku +
              " --worlds-dir " + worlds(c.sku) + " -o " + path(tag + "_cloud.rec")),
          &st);
  ASSERT_EQ(st, 0) << out;
  EXPECT_NE(out.find("\"round_trips\""), std::string::npos) << out;
  out = run(cli("record --model " + c.model + " --sku " + c.sku + " --omit-weights -o " +
                path(tag + "_local.rec")),
            &st);
  ASSERT_EQ(st, 0) << out;
  out = run(cli("diff --ignore-wait-bounds --ignore-metadata " + path(tag + "_local.rec") + " " +
                path(tag + "_cloud.rec")),
            &st);
  EXPECT_EQ(st, 0) << out;
  EXPECT_NE(out.find("identical"), std::string::npos) << out;

  // Replayed with the device's model file, on real inputs: the same scores, to the bit.
  const std::string cloud_out = run(
      cli("replay --json --top 5 " + path(tag + "_cloud.rec") + " --input" + images(c.model)), &st);
  ASSERT_EQ(st, 0) << cloud_out;
  const std::string local_out = run(
      cli("replay --json --top 5 " + path(tag + "_local.rec") + " --input" + images(c.model)), &st);
  ASSERT_EQ(st, 0) << local_out;
  const std::regex timings("\"timings_ms\":\\{[^}]*\\}");
  EXPECT_EQ(std::regex_replace(cloud_out, timings, ""), std::regex_replace(local_out, timings, ""));

  // And in the device's TEE, the recording weight-less: the TA gets the model file.
  out = run(cli("classify --tee --tee-dir " + worlds(c.sku) + " --recording " +
                path(tag + "_cloud.rec") + " --top 1" + images(c.model)),
            &st);
  EXPECT_EQ(st, 0) << out;
  if (c.model == "squeezenet") {
    EXPECT_NE(out.find("tabby"), std::string::npos) << out;
  }
}

INSTANTIATE_TEST_SUITE_P(Models, CloudEndToEnd,
                         testing::Values(Case{"mnist", "v3d-7.1"}, Case{"mnist", "v3d-4.2"},
                                         Case{"squeezenet", "v3d-7.1"},
                                         Case{"squeezenet", "v3d-4.2"}),
                         [](const auto& i) {
                           return i.param.model + (i.param.sku == "v3d-7.1" ? "_v71" : "_v42");
                         });

// The cloud or the relay dies mid-recording: the client fails with a reason, stores
// nothing, and the device (its TEE, its GPU, its normal world) goes on working.
class CloudKilled : public CloudProcess, public testing::WithParamInterface<bool> {};

TEST_P(CloudKilled, MidRecordingLeavesNoFileAndAWorkingDevice) {
  const bool kill_relay = GetParam();
  int st = -1;
  // The worlds outlive the command: their output goes to a file, not to our pipe.
  const std::string log = path("worlds.log");
  run(cli("worlds start --tee-dir " + worlds("v3d-7.1")) + " >" + log, &st);
  ASSERT_EQ(st, 0);
  std::string out;
  Link link = start_link(20);
  const std::string file = path(kill_relay ? "killed_relay.rec" : "killed_cloud.rec");
  std::thread killer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    (kill_relay ? link.relay : link.cloud)->kill_now(SIGKILL);
  });
  out = run(cli("record --cloud " + link.address() + " --model squeezenet --worlds-dir " +
                worlds("v3d-7.1") + " -o " + file),
            &st);
  killer.join();
  EXPECT_NE(st, 0) << out;
  EXPECT_NE(out.find("the cloud"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(file));

  // The GPU came back to the normal world and the TEE still serves: a local recording
  // classifies in the TEE, and a new cloud recording works.
  out = run(cli("classify --tee --tee-dir " + worlds("v3d-7.1") + " --model mnist --top 1" +
                images("mnist")),
            &st);
  EXPECT_EQ(st, 0) << out;
  Link again = start_link(2);
  out = run(cli("record --cloud " + again.address() + " --model mnist --worlds-dir " +
                worlds("v3d-7.1") + " -o " + path("after.rec")),
            &st);
  EXPECT_EQ(st, 0) << out;
}

INSTANTIATE_TEST_SUITE_P(Links, CloudKilled, testing::Values(false, true),
                         [](const auto& i) { return i.param ? "relay" : "cloud"; });

TEST_F(CloudProcess, TheCloudBinaryHasNoGpuModel) {
  int st = -1;
  const std::string syms = run("nm -C " RPLAYER_CLOUD_BIN, &st);
  ASSERT_EQ(st, 0);
  EXPECT_NE(syms.find("rplayer::cloud::DriverShim"), std::string::npos);
  EXPECT_NE(syms.find("rplayer::driver::V3dDriver"), std::string::npos);
  for (const char* model :
       {"rplayer::hw::V3dGpu", "rplayer::hw::ModeledSoc", "rplayer::hw::Mmu::", "rplayer::hw::Csd"})
    EXPECT_EQ(syms.find(model), std::string::npos) << model;
}

TEST_F(CloudProcess, AnUntrustedDeviceIsRefused) {
  // A cloud that records for another device only.
  int st = -1;
  run("RPLAYER_KEYS=" + path("other") + " " RPLAYER_BIN " keygen", &st);
  ASSERT_EQ(st, 0);
  Server cloud({RPLAYER_CLOUD_BIN, "--listen", "127.0.0.1:0", "--keys", path("keys"), "--devices",
                path("other/devices")});
  const std::string out =
      run(cli("record --cloud 127.0.0.1:" + std::to_string(cloud.port()) +
              " --model mnist --worlds-dir " + worlds("v3d-7.1") + " -o " + path("untrusted.rec")),
          &st);
  EXPECT_NE(st, 0);
  EXPECT_NE(out.find("is not trusted here"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(path("untrusted.rec")));
}

}  // namespace
}  // namespace rplayer
