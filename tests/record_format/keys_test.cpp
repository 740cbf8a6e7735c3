// Key generation, key files and trust stores.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "keyring/key_paths.h"
#include "tests/record_format/format_util.h"

namespace rplayer::test {
namespace {

namespace fs = std::filesystem;
using namespace record;
using namespace keyring;
using replay::DecodeCode;

class KeysTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("rplayer_keys_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  void write(const fs::path& p, const std::string& text) { std::ofstream(p) << text; }
  fs::path dir_;
};

TEST_F(KeysTest, GeneratedKeysDifferAndSign) {
  KeyPair a = generate_keypair(), b = generate_keypair();
  EXPECT_NE(a.public_key, b.public_key);
  Bytes bytes = encode_recording(small_recording(), a);
  replay::Recording out;
  std::vector<replay::PublicKey> keys = {b.public_key, a.public_key};
  EXPECT_TRUE(replay::decode_recording(bytes, keys, &out).ok());
}

TEST_F(KeysTest, KeyIdIsBlake2bPrefix) {
  EXPECT_EQ(key_id_hex(trusted_key().public_key).size(), 16u);
  EXPECT_EQ(key_id_hex(trusted_key().public_key), key_id_hex(trusted_key().public_key));
  EXPECT_NE(key_id_hex(trusted_key().public_key), key_id_hex(other_key().public_key));
}

TEST_F(KeysTest, SecretKeyFileRoundTripAndMode) {
  KeyPair k = generate_keypair();
  fs::path p = dir_ / "signer.key";
  write(p, "old");
  fs::permissions(p, fs::perms::all);
  save_secret_key(p, k);
  struct stat st {};
  ASSERT_EQ(::stat(p.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  KeyPair l = load_secret_key(p);
  EXPECT_EQ(l.public_key, k.public_key);
  EXPECT_EQ(l.secret_key, k.secret_key);

  fs::permissions(p, fs::perms::group_read, fs::perm_options::add);
  EXPECT_THROW(load_secret_key(p), KeyError);
}

TEST_F(KeysTest, CorruptSecretKeyRejected) {
  KeyPair k = generate_keypair();
  fs::path p = dir_ / "signer.key";
  save_secret_key(p, k);
  std::string text;
  {
    std::ifstream in(p);
    std::getline(in, text);  // comment
    std::getline(in, text);  // key
  }
  text.back() = text.back() == '0' ? '1' : '0';  // flip a digit of the public half
  write(p, text + "\n");
  fs::permissions(p, fs::perms::owner_read | fs::perms::owner_write);
  EXPECT_THROW(load_secret_key(p), KeyError);
  write(p, "zz\n");
  EXPECT_THROW(load_secret_key(p), KeyError);
  EXPECT_THROW(load_secret_key(dir_ / "missing.key"), KeyError);
}

TEST_F(KeysTest, PublicKeyHexAndRaw) {
  const replay::PublicKey& pk = trusted_key().public_key;
  save_public_key(dir_ / "a.pub", pk);
  EXPECT_EQ(load_public_key(dir_ / "a.pub"), pk);
  std::ofstream(dir_ / "raw.pub", std::ios::binary)
      .write(reinterpret_cast<const char*>(pk.data()), pk.size());
  EXPECT_EQ(load_public_key(dir_ / "raw.pub"), pk);
  write(dir_ / "bad.pub", "1234\n");
  EXPECT_THROW(load_public_key(dir_ / "bad.pub"), KeyError);
  write(dir_ / "two.pub", to_hex(pk) + "\n" + to_hex(other_key().public_key) + "\n");
  EXPECT_THROW(load_public_key(dir_ / "two.pub"), KeyError);
}

TEST_F(KeysTest, TrustStoreDirectoryAndFile) {
  save_public_key(dir_ / "b.pub", other_key().public_key);
  save_public_key(dir_ / "a.pub", trusted_key().public_key);
  write(dir_ / "notes.txt", "not a key");
  TrustStore store = TrustStore::load(dir_);
  ASSERT_EQ(store.entries().size(), 2u);
  EXPECT_EQ(store.entries()[0].key, trusted_key().public_key);  // name order
  EXPECT_EQ(store.entries()[0].id, replay::key_id(trusted_key().public_key));
  ASSERT_NE(store.find(replay::key_id(other_key().public_key)), nullptr);
  EXPECT_EQ(store.find(replay::KeyId{}), nullptr);

  store.add(trusted_key().public_key);  // already present
  EXPECT_EQ(store.entries().size(), 2u);
  fs::path file = dir_ / "trust.txt";
  store.save(file);
  TrustStore again = TrustStore::load(file);
  EXPECT_EQ(again.keys(), store.keys());

  Bytes bytes = encode_recording(small_recording(), other_key());
  replay::Recording out;
  auto keys = again.keys();
  EXPECT_TRUE(replay::decode_recording(bytes, keys, &out).ok());
  TrustStore only_trusted;
  only_trusted.add(trusted_key().public_key);
  keys = only_trusted.keys();
  EXPECT_EQ(replay::decode_recording(bytes, keys, &out).code, DecodeCode::UnknownKey);
  EXPECT_EQ(replay::decode_recording(bytes, {}, &out).code, DecodeCode::UnknownKey);

  write(dir_ / "broken.txt", to_hex(trusted_key().public_key) + "\nnot hex\n");
  EXPECT_THROW(TrustStore::load(dir_ / "broken.txt"), KeyError);
}

// One rule for every command: --keys / $RPLAYER_KEYS / ./keys for the key directory,
// --trust / $RPLAYER_TRUST / <key directory>/trusted for the trust store.
TEST(KeyPaths, OneResolutionRule) {
  unsetenv("RPLAYER_KEYS");
  unsetenv("RPLAYER_TRUST");
  EXPECT_EQ(key_dir(), fs::path("keys"));
  EXPECT_EQ(signing_key_path(), fs::path("keys/signing.key"));
  EXPECT_EQ(trust_store_path(), fs::path("keys/trusted"));
  EXPECT_EQ(key_dir("/k"), fs::path("/k"));
  EXPECT_EQ(trust_store_path({}, "/k"), fs::path("/k/trusted"));
  setenv("RPLAYER_KEYS", "/env-keys", 1);
  EXPECT_EQ(key_dir(), fs::path("/env-keys"));
  EXPECT_EQ(trust_store_path(), fs::path("/env-keys/trusted"));
  EXPECT_EQ(key_dir("/k"), fs::path("/k")) << "the argument first";
  setenv("RPLAYER_TRUST", "/env-trust", 1);
  EXPECT_EQ(trust_store_path(), fs::path("/env-trust"));
  EXPECT_EQ(trust_store_path("/t"), fs::path("/t"));
  EXPECT_NE(trust_store_origin().find("$RPLAYER_TRUST=/env-trust"), std::string::npos);
  unsetenv("RPLAYER_KEYS");
  unsetenv("RPLAYER_TRUST");
}

TEST(KeyPaths, MissingSigningKeySaysRunKeygen) {
  const fs::path dir = fs::temp_directory_path() / ("rplayer-nokey-" + std::to_string(getpid()));
  try {
    load_signing_key(dir.string());
    FAIL() << "expected KeyError";
  } catch (const KeyError& e) {
    EXPECT_EQ(std::string(e.what()),
              "no signing key (" + (dir / "signing.key").string() + "): run `rplayer keygen`");
  }
  EXPECT_THROW(load_trust_store({}, dir.string()), KeyError);
}

}  // namespace
}  // namespace rplayer::test
