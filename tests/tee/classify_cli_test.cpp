// End to end through real processes: `rplayer classify --tee` boots rplayer-soc, which
// boots the sandboxed rplayer-tee on the secure bus; the client loads the signed
// recording once and classifies every image through the TA. Its --json output must name
// the same classes with the same probabilities as `rplayer run`.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <unistd.h>

namespace {

namespace fs = std::filesystem;
const std::string kShared = RPLAYER_SHARED_DIR;

struct Result {
  int status = -1;
  std::string out;
};

Result sh(const std::string& cmd) {
  Result r;
  FILE* p = popen((cmd.find(" 2>") == std::string::npos ? cmd + " 2>/dev/null" : cmd).c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

std::vector<nlohmann::json> json_lines(const std::string& out) {
  std::vector<nlohmann::json> v;
  size_t start = 0;
  while (start < out.size()) {
    const size_t end = out.find('\n', start);
    const std::string line = out.substr(start, end - start);
    if (!line.empty() && line[0] == '{') v.push_back(nlohmann::json::parse(line));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return v;
}

class ClassifyCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = fs::temp_directory_path() / ("rplayer-cli-" + std::to_string(getpid()));
    fs::create_directories(dir);
    env = "RPLAYER_KEYS=" + (dir / "keys").string() + " ";
    ASSERT_EQ(sh(env + RPLAYER_BIN " keygen").status, 0);
    ASSERT_EQ(
        sh(env + RPLAYER_BIN " record --model squeezenet -o " + (dir / "sq.rec").string()).status,
        0);
  }
  void TearDown() override { fs::remove_all(dir); }
  fs::path dir;
  std::string env;
};

TEST_F(ClassifyCliTest, TrustedClassificationMatchesNativeRun) {
  const std::string imgs = kShared + "/images/cat.jpg " + kShared + "/images/cat.ppm";
  const Result native = sh(RPLAYER_BIN " run --model squeezenet --json " + imgs);
  ASSERT_EQ(native.status, 0);
  const Result tee =
      sh(env + RPLAYER_BIN " classify --tee --json --recording " + (dir / "sq.rec").string() +
         " --tee-dir " + (dir / "run").string() + " " + imgs);
  ASSERT_EQ(tee.status, 0) << tee.out;
  const auto a = json_lines(native.out), b = json_lines(tee.out);
  ASSERT_EQ(a.size(), 2u);
  ASSERT_EQ(b.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(b[i]["image"], a[i]["image"]);
    EXPECT_EQ(b[i]["model"], a[i]["model"]);
    EXPECT_EQ(b[i]["backend"], "tee");
    EXPECT_EQ(b[i]["top5"], a[i]["top5"]) << "same classes, labels and probabilities";
  }
  EXPECT_EQ(a[0]["top5"][0]["class"], 281);
  // The launcher stopped the worlds it started.
  EXPECT_FALSE(fs::exists(dir / "run" / "soc.pid"));
  EXPECT_FALSE(fs::exists(dir / "run" / "normal.sock"));
}

// A weight-less recording: classify sends the recorded model's file to the TA, which checks
// it against the recording's digests; the classes equal a native run's.
TEST_F(ClassifyCliTest, WeightlessRecordingClassifiesWithTheModelFile) {
  const std::string rec = (dir / "sq-nw.rec").string();
  ASSERT_EQ(sh(env + RPLAYER_BIN " record --model squeezenet --omit-weights -o " + rec).status, 0);
  ASSERT_LT(fs::file_size(rec), 200u * 1024);
  const std::string img = kShared + "/images/cat.jpg";
  const Result native = sh(RPLAYER_BIN " run --model squeezenet --json " + img);
  const Result tee = sh(env + RPLAYER_BIN " classify --tee --json --recording " + rec +
                        " --tee-dir " + (dir / "run").string() + " " + img);
  ASSERT_EQ(tee.status, 0) << tee.out;
  const auto a = json_lines(native.out), b = json_lines(tee.out);
  ASSERT_EQ(a.size(), 1u);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0]["top5"], a[0]["top5"]) << "bit-identical probabilities";
}

TEST_F(ClassifyCliTest, TamperedRecordingIsRefusedWithAClearError) {
  std::fstream f(dir / "sq.rec", std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(-5, std::ios::end);
  f.put('\x55');
  f.close();
  FILE* p = popen((env + RPLAYER_BIN " classify --tee --recording " + (dir / "sq.rec").string() +
                   " --tee-dir " + (dir / "run").string() + " " + kShared + "/images/cat.jpg 2>&1")
                      .c_str(),
                  "r");
  ASSERT_TRUE(p);
  std::string out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  const int st = pclose(p);
  EXPECT_NE(WEXITSTATUS(st), 0);
  EXPECT_NE(out.find("signature"), std::string::npos) << out;
  EXPECT_EQ(out.find("tabby"), std::string::npos) << "no partial output";
}

// The normal world keeps using the GPU (its own driver in another process, on the same
// SoC process) while the TA claims the GPU for every image: the driver suspends and
// resumes around each replay and every inference on both sides is right.
TEST_F(ClassifyCliTest, NormalWorldInferenceAndTrustedClassificationShareTheGpu) {
  const std::string run_dir = (dir / "shared").string();
  ASSERT_EQ(sh(env + RPLAYER_BIN " worlds start --tee-dir " + run_dir).status, 0);
  const std::string cat = kShared + "/images/cat.jpg";
  const Result alone = sh(RPLAYER_BIN " run --json " + cat);
  ASSERT_EQ(alone.status, 0);
  const nlohmann::json want = json_lines(alone.out).at(0)["top5"];
  const std::string many = cat + " " + cat + " " + cat + " " + cat + " " + cat + " " + cat;
  FILE* normal = popen((RPLAYER_BIN " run --json --soc " + run_dir + "/normal.sock " + many +
                        " 2>" + (dir / "normal.err").string()).c_str(), "r");
  ASSERT_TRUE(normal);
  const Result tee = sh(env + RPLAYER_BIN " classify --tee --json --recording " +
                        (dir / "sq.rec").string() + " --tee-dir " + run_dir + " " + many +
                        " 2>" + (dir / "tee.err").string());
  std::string normal_out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), normal)) > 0) normal_out.append(buf.data(), n);
  EXPECT_EQ(WEXITSTATUS(pclose(normal)), 0) << std::ifstream(dir / "normal.err").rdbuf();
  EXPECT_EQ(sh(RPLAYER_BIN " worlds stop --tee-dir " + run_dir).status, 0);

  ASSERT_EQ(tee.status, 0) << tee.out << std::ifstream(dir / "tee.err").rdbuf();
  const auto native = json_lines(normal_out), trusted = json_lines(tee.out);
  ASSERT_EQ(native.size(), 6u);
  ASSERT_EQ(trusted.size(), 6u);
  for (const auto& j : native) EXPECT_EQ(j["top5"], want) << "normal-world inference undisturbed";
  if (HasFailure()) std::printf("normal:\n%s\ntrusted:\n%s\n", normal_out.c_str(), tee.out.c_str());
  for (const auto& j : trusted) {
    EXPECT_EQ(j["top5"], want);
    EXPECT_EQ(j["stats"]["forced_claim"], false) << "the normal driver answered every claim";
  }
}

}  // namespace
