// Where rplayer finds its keys: one rule for every command and process.
//
//   key directory  the --keys argument, else $RPLAYER_KEYS, else ./keys
//   signing key    <key directory>/signing.key
//   trust store    the --trust argument, else $RPLAYER_TRUST, else <key directory>/trusted
//                  (a directory of *.pub files, or one key file)
#pragma once

#include <filesystem>
#include <string>

#include "keyring/keys.h"

namespace rplayer::keyring {

std::filesystem::path key_dir(const std::string& keys_arg = {});
std::filesystem::path signing_key_path(const std::string& keys_arg = {});
std::filesystem::path trust_store_path(const std::string& trust_arg = {},
                                       const std::string& keys_arg = {});
// How trust_store_path() chose, for messages: "--trust X", "$RPLAYER_TRUST=X", ...
std::string trust_store_origin(const std::string& trust_arg = {}, const std::string& keys_arg = {});

// The signing key; KeyError "no signing key (DIR/signing.key): run `rplayer keygen`" when
// there is none, the loader's error when it is unreadable.
KeyPair load_signing_key(const std::string& keys_arg = {});
// The trust store; KeyError naming where it looked when it does not exist.
TrustStore load_trust_store(const std::string& trust_arg = {}, const std::string& keys_arg = {});

}  // namespace rplayer::keyring
