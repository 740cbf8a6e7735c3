#include "keyring/keys.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>

namespace rplayer::keyring {
namespace {

void require_sodium() {
  if (!replay::crypto_ready()) throw KeyError("libsodium initialisation failed");
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw KeyError("cannot open " + path.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Writes `text` to `path` created (or truncated) with `mode`; fchmod also narrows the mode of
// a file that existed before.
void write_file(const std::filesystem::path& path, const std::string& text, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) throw KeyError("cannot create " + path.string());
  bool ok = ::fchmod(fd, mode) == 0 &&
            ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ok = (::close(fd) == 0) && ok;
  if (!ok) throw KeyError("cannot write " + path.string());
}

// Hex key lines of a text file, comments and blank lines dropped.
std::vector<std::vector<uint8_t>> parse_hex_lines(const std::string& text,
                                                  const std::string& where) {
  std::vector<std::vector<uint8_t>> out;
  std::istringstream in(text);
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    line = line.substr(0, line.find('#'));
    std::erase_if(line, [](char c) { return c == ' ' || c == '\t' || c == '\r'; });
    if (line.empty()) continue;
    std::vector<uint8_t> bytes(line.size() / 2);
    size_t len = 0;
    if (line.size() % 2 != 0 ||
        sodium_hex2bin(bytes.data(), bytes.size(), line.data(), line.size(), nullptr, &len,
                       nullptr) != 0 ||
        len != bytes.size()) {
      throw KeyError(where + ":" + std::to_string(n) + ": not a hex key");
    }
    out.push_back(std::move(bytes));
  }
  return out;
}

replay::PublicKey to_public_key(const std::vector<uint8_t>& bytes, const std::string& where) {
  if (bytes.size() != replay::kPublicKeyBytes) throw KeyError(where + ": not a 32-byte key");
  replay::PublicKey key;
  std::copy(bytes.begin(), bytes.end(), key.begin());
  return key;
}

std::vector<replay::PublicKey> read_public_keys(const std::filesystem::path& path) {
  std::string text = read_file(path);
  // 32 bytes cannot be a hex key (64 digits): it is a raw one.
  if (text.size() == replay::kPublicKeyBytes) {
    return {to_public_key(std::vector<uint8_t>(text.begin(), text.end()), path.string())};
  }
  std::vector<replay::PublicKey> keys;
  for (const auto& bytes : parse_hex_lines(text, path.string())) {
    keys.push_back(to_public_key(bytes, path.string()));
  }
  return keys;
}

}  // namespace

KeyPair generate_keypair() {
  require_sodium();
  KeyPair k;
  crypto_sign_keypair(k.public_key.data(), k.secret_key.data());
  return k;
}

KeyPair keypair_from_seed(const std::array<uint8_t, 32>& seed) {
  require_sodium();
  KeyPair k;
  crypto_sign_seed_keypair(k.public_key.data(), k.secret_key.data(), seed.data());
  return k;
}

std::string to_hex(std::span<const uint8_t> bytes) {
  std::string hex(bytes.size() * 2 + 1, '\0');
  sodium_bin2hex(hex.data(), hex.size(), bytes.data(), bytes.size());
  hex.pop_back();
  return hex;
}

std::string key_id_hex(const replay::PublicKey& key) { return to_hex(replay::key_id(key)); }

void save_secret_key(const std::filesystem::path& path, const KeyPair& key) {
  write_file(path,
             "# rplayer Ed25519 secret key, key id " + key_id_hex(key.public_key) + "\n" +
                 to_hex(key.secret_key) + "\n",
             0600);
}

KeyPair load_secret_key(const std::filesystem::path& path) {
  require_sodium();
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw KeyError("cannot open " + path.string());
  if (st.st_mode & 077) {
    throw KeyError(path.string() + ": secret key readable by group or others (chmod 600)");
  }
  auto lines = parse_hex_lines(read_file(path), path.string());
  if (lines.size() != 1 || lines[0].size() != kSecretKeyBytes) {
    throw KeyError(path.string() + ": not a secret key file");
  }
  std::array<uint8_t, 32> seed;
  std::copy_n(lines[0].begin(), seed.size(), seed.begin());
  KeyPair k = keypair_from_seed(seed);
  // The stored public half must be the one the seed derives.
  bool match = std::equal(k.secret_key.begin(), k.secret_key.end(), lines[0].begin());
  sodium_memzero(seed.data(), seed.size());
  sodium_memzero(lines[0].data(), lines[0].size());
  if (!match) throw KeyError(path.string() + ": public half does not match the seed");
  return k;
}

void save_public_key(const std::filesystem::path& path, const replay::PublicKey& key) {
  write_file(path,
             "# rplayer Ed25519 public key, key id " + key_id_hex(key) + "\n" + to_hex(key) + "\n",
             0644);
}

replay::PublicKey load_public_key(const std::filesystem::path& path) {
  auto keys = read_public_keys(path);
  if (keys.size() != 1) throw KeyError(path.string() + ": expected exactly one public key");
  return keys[0];
}

TrustStore TrustStore::load(const std::filesystem::path& path) {
  TrustStore store;
  if (std::filesystem::is_directory(path)) {
    std::vector<std::filesystem::path> files;
    for (const auto& entry : std::filesystem::directory_iterator(path)) {
      if (entry.is_regular_file() && entry.path().extension() == ".pub") {
        files.push_back(entry.path());
      }
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) store.add(load_public_key(f), f.string());
  } else {
    for (const auto& key : read_public_keys(path)) store.add(key, path.string());
  }
  return store;
}

void TrustStore::add(const replay::PublicKey& key, std::string source) {
  for (const TrustedKey& e : entries_) {
    if (e.key == key) return;
  }
  entries_.push_back({key, replay::key_id(key), std::move(source)});
}

void TrustStore::save(const std::filesystem::path& path) const {
  std::string text = "# rplayer trust store: Ed25519 public keys allowed to sign recordings\n";
  for (const TrustedKey& e : entries_) {
    text += "# key id " + to_hex(e.id) + (e.source.empty() ? "" : " from " + e.source) + "\n";
    text += to_hex(e.key) + "\n";
  }
  write_file(path, text, 0644);
}

std::vector<replay::PublicKey> TrustStore::keys() const {
  std::vector<replay::PublicKey> keys;
  for (const TrustedKey& e : entries_) keys.push_back(e.key);
  return keys;
}

const TrustedKey* TrustStore::find(const replay::KeyId& id) const {
  for (const TrustedKey& e : entries_) {
    if (e.id == id) return &e;
  }
  return nullptr;
}

}  // namespace rplayer::keyring
