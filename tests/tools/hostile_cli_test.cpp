// The CLI on validly signed hostile recordings: `rplayer verify` applies the replayer's
// own policy (one policy, one code path), and metadata is never used as a path.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "keyring/keys.h"
#include "record/encoder.h"
#include "tests/common/run_command.h"
#include "tests/replay/workload.h"

namespace rplayer::tools {
namespace {

namespace fs = std::filesystem;

std::string run(const std::string& cmd, int* status) {
  return test::run_command(cmd + " 2>&1", status);
}

class HostileCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("rplayer-hostile-cli-" + std::to_string(getpid()));
    fs::create_directories(dir_);
    int st = -1;
    run("RPLAYER_KEYS=" + (dir_ / "keys").string() + " " RPLAYER_BIN " keygen", &st);
    ASSERT_EQ(st, 0);
    key_ = keyring::load_secret_key(dir_ / "keys" / "signing.key");
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const replay::Recording& r, const std::string& name) {
    const std::vector<uint8_t> bytes = record::encode_recording(r, key_);
    const fs::path p = dir_ / name;
    std::ofstream(p, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    return p.string();
  }
  std::string cli(const std::string& args, int* status) {
    return run("RPLAYER_KEYS=" + (dir_ / "keys").string() + " " RPLAYER_BIN " " + args, status);
  }
  fs::path dir_;
  keyring::KeyPair key_;
};

// A region of 200 MiB: within the old verify's 256 MiB default, beyond what the replayer
// on the default carve-out (128 MiB) may use. verify used to accept what replay refused.
TEST_F(HostileCli, VerifyAppliesTheReplayersMemoryPolicy) {
  replay::Recording r = replay::test::record_workload("v3d-7.1", replay::test::ramp(1.f));
  int st = -1;
  const std::string ok = write(r, "ok.rec");
  EXPECT_NE(cli("verify " + ok, &st).find("ok"), std::string::npos);
  EXPECT_EQ(st, 0);
  r.regions.push_back({0x40000000, 200u << 20, replay::RegionKind::Scratch, true, "big"});
  const std::string out = cli("verify " + write(r, "big.rec"), &st);
  EXPECT_EQ(st, 1) << out;
  EXPECT_NE(out.find("memory quota"), std::string::npos) << out;
}

// The signed model name reached the model search: "bench/../.." walked out of the
// models directory. Names are names.
TEST_F(HostileCli, ModelNameFromARecordingIsNeverAPath) {
  replay::Recording r = replay::test::record_workload("v3d-7.1", replay::test::ramp(1.f));
  for (const char* name : {"bench/../mnist/mnist", "../../etc/passwd", "/tmp/x.param",
                           "bench/x.param", "mnist/../squeezenet"}) {
    r.metadata = {{"model", name}};
    int st = -1;
    const std::string out = cli(
        "replay " + write(r, "named.rec") + " --input " RPLAYER_SHARED_DIR "/images/cat.jpg", &st);
    EXPECT_EQ(st, 1) << name << ": " << out;
    EXPECT_NE(out.find("not a model name"), std::string::npos) << name << ": " << out;
  }
}

// A weight-less recording through the CLI: `record --omit-weights`, then `replay` takes the
// weights from the recorded model's file (by default) and gives the native scores; a
// different file given with --weights is refused with the reason.
TEST_F(HostileCli, WeightlessRecordingReplaysFromTheModelFile) {
  int st = -1;
  const std::string rec = (dir_ / "mnist-nw.rec").string();
  cli("record --model mnist --omit-weights -o " + rec, &st);
  ASSERT_EQ(st, 0);
  const std::string digit = RPLAYER_SHARED_DIR "/images/digits/3.pgm";
  const nlohmann::json native = nlohmann::json::parse(
      run(RPLAYER_BIN " run --model mnist --json " + digit + " 2>/dev/null", &st));
  ASSERT_EQ(st, 0);
  const std::string out = cli("replay " + rec + " --json --input " + digit, &st);
  ASSERT_EQ(st, 0) << out;
  EXPECT_EQ(nlohmann::json::parse(out)["top5"], native["top5"]) << "bit-identical scores";
  // inspect lists the weight bindings: the file, and per bound region its range and digest.
  const nlohmann::json ins = nlohmann::json::parse(cli("inspect --json " + rec, &st));
  ASSERT_EQ(st, 0);
  EXPECT_EQ(ins["weights"]["omitted"], true);
  EXPECT_EQ(ins["weights"]["file"], "mnist.bin");
  ASSERT_FALSE(ins["weights"]["bindings"].empty());
  for (const auto& b : ins["weights"]["bindings"]) {
    EXPECT_EQ(b["digest"].get<std::string>().size(), 64u);
    EXPECT_GT(b["length"].get<uint64_t>(), 0u);
  }
  EXPECT_NE(cli("inspect " + rec, &st).find("weight bindings ("), std::string::npos);
  const std::string wrong = cli("replay " + rec +
                                    " --weights " RPLAYER_SHARED_DIR
                                    "/models/squeezenet_v1.1/squeezenet_v1.1.bin"
                                    " --input " +
                                    digit,
                                &st);
  EXPECT_EQ(st, 1);
  EXPECT_NE(wrong.find("the model file is not the one the recording was made with"),
            std::string::npos)
      << wrong;
}

}  // namespace
}  // namespace rplayer::tools
