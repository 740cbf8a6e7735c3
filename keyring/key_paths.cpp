#include "keyring/key_paths.h"

#include <cstdlib>

namespace rplayer::keyring {

namespace fs = std::filesystem;

namespace {
const char* env(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : nullptr;
}
}  // namespace

fs::path key_dir(const std::string& keys_arg) {
  if (!keys_arg.empty()) return keys_arg;
  if (const char* e = env("RPLAYER_KEYS")) return e;
  return "keys";
}

fs::path signing_key_path(const std::string& keys_arg) { return key_dir(keys_arg) / "signing.key"; }

fs::path trust_store_path(const std::string& trust_arg, const std::string& keys_arg) {
  if (!trust_arg.empty()) return trust_arg;
  if (const char* e = env("RPLAYER_TRUST")) return e;
  return key_dir(keys_arg) / "trusted";
}

std::string trust_store_origin(const std::string& trust_arg, const std::string& keys_arg) {
  if (!trust_arg.empty()) return "--trust " + trust_arg;
  if (const char* e = env("RPLAYER_TRUST")) return std::string("$RPLAYER_TRUST=") + e;
  const fs::path p = key_dir(keys_arg) / "trusted";
  if (!keys_arg.empty()) return "--keys: " + p.string();
  if (env("RPLAYER_KEYS")) return "$RPLAYER_TRUST unset; $RPLAYER_KEYS/trusted=" + p.string();
  return "$RPLAYER_TRUST and $RPLAYER_KEYS unset; " + p.string();
}

KeyPair load_signing_key(const std::string& keys_arg) {
  const fs::path p = signing_key_path(keys_arg);
  if (!fs::exists(p)) throw KeyError("no signing key (" + p.string() + "): run `rplayer keygen`");
  return load_secret_key(p);
}

TrustStore load_trust_store(const std::string& trust_arg, const std::string& keys_arg) {
  const fs::path p = trust_store_path(trust_arg, keys_arg);
  if (!fs::exists(p))
    throw KeyError("no trusted keys: " + p.string() + " does not exist (" +
                   trust_store_origin(trust_arg, keys_arg) + "; rplayer keygen, or --key PUB)");
  return TrustStore::load(p);
}

}  // namespace rplayer::keyring
