// auth/scram.cpp — SCRAM conversations (see scram.h).
//
// Message grammar from RFC 5802 §7; only what MongoDB uses is accepted: no channel
// binding ("p="), no authorization identity ("a="), no mandatory extensions ("m=").
#include "auth/scram.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <array>
#include <atomic>
#include <charconv>
#include <map>
#include <mutex>
#include <vector>

namespace mongogate::auth {
namespace {

const EVP_MD* digestOf(Mechanism mechanism) {
  return mechanism == Mechanism::kScramSha1 ? EVP_sha1() : EVP_sha256();
}

std::string hmac(Mechanism mechanism, std::string_view key, std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
  unsigned int length = 0;
  HMAC(digestOf(mechanism), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(), &length);
  return {reinterpret_cast<const char*>(out.data()), length};
}

std::string digest(const EVP_MD* md, std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
  unsigned int length = 0;
  EVP_Digest(data.data(), data.size(), out.data(), &length, md, nullptr);
  return {reinterpret_cast<const char*>(out.data()), length};
}

std::string saltedPassword(Mechanism mechanism, std::string_view prepared, std::string_view salt, int iterations) {
  const EVP_MD* md = digestOf(mechanism);
  std::string out(static_cast<std::size_t>(EVP_MD_get_size(md)), '\0');
  PKCS5_PBKDF2_HMAC(prepared.data(), static_cast<int>(prepared.size()),
                    reinterpret_cast<const unsigned char*>(salt.data()), static_cast<int>(salt.size()), iterations, md,
                    static_cast<int>(out.size()), reinterpret_cast<unsigned char*>(out.data()));
  return out;
}

std::string xorBytes(std::string_view a, std::string_view b) {
  std::string out(a);
  for (std::size_t i = 0; i < out.size() && i < b.size(); ++i) out[i] = static_cast<char>(out[i] ^ b[i]);
  return out;
}

bool equalConstantTime(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string randomBytes(std::size_t count) {
  std::string out(count, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(count)) != 1) {
    // Without randomness no nonce or salt is safe: stop rather than continue weakly.
    std::abort();
  }
  return out;
}

// Splits "k=v,k=v" into attributes, in order. False on an attribute without "k=".
struct Attribute {
  char key;
  std::string_view value;
};
bool splitAttributes(std::string_view message, std::vector<Attribute>& out) {
  out.clear();
  while (!message.empty()) {
    const std::size_t comma = message.find(',');
    const std::string_view part = message.substr(0, comma);
    if (part.size() < 2 || part[1] != '=') return false;
    out.push_back({part[0], part.substr(2)});
    if (comma == std::string_view::npos) break;
    message.remove_prefix(comma + 1);
    if (message.empty()) return false;  // trailing comma
  }
  return true;
}

// RFC 5802 saslname: "=2C" is ',' and "=3D" is '='; any other '=' is malformed.
std::optional<std::string> unescapeName(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (name[i] != '=') {
      out.push_back(name[i]);
      continue;
    }
    const std::string_view code = name.substr(i + 1, 2);
    if (code == "2C") {
      out.push_back(',');
    } else if (code == "3D") {
      out.push_back('=');
    } else {
      return std::nullopt;
    }
    i += 2;
  }
  return out;
}

std::string escapeName(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  for (char c : name) {
    if (c == ',') {
      out += "=2C";
    } else if (c == '=') {
      out += "=3D";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

bool validNonce(std::string_view nonce) {
  if (nonce.empty()) return false;
  for (char c : nonce) {
    if (c < 0x21 || c > 0x7e || c == ',') return false;
  }
  return true;
}

// The GS2 header and the bare message of a client-first message.
struct ClientFirst {
  std::string_view gs2Header;  // "n,," or "y,,"
  std::string_view bare;       // "n=user,r=nonce"
  std::string user;
  std::string_view nonce;
  std::string error;
};
ClientFirst parseClientFirst(std::string_view message) {
  ClientFirst out;
  if (!(message.starts_with("n,,") || message.starts_with("y,,"))) {
    out.error = message.starts_with("p=") ? "channel binding is not supported"
                : message.size() > 2 && message[1] == ',' && message[2] != ','
                    ? "an authorization identity is not supported"
                    : "malformed client-first message";
    return out;
  }
  out.gs2Header = message.substr(0, 3);
  out.bare = message.substr(3);
  std::vector<Attribute> attributes;
  if (!splitAttributes(out.bare, attributes) || attributes.size() < 2 || attributes[0].key != 'n' ||
      attributes[1].key != 'r') {
    out.error = attributes.size() > 0 && attributes[0].key == 'm' ? "mandatory extensions are not supported"
                                                                  : "malformed client-first message";
    return out;
  }
  auto user = unescapeName(attributes[0].value);
  if (!user || user->empty()) {
    out.error = "malformed user name in client-first message";
    return out;
  }
  if (!validNonce(attributes[1].value)) {
    out.error = "malformed nonce in client-first message";
    return out;
  }
  out.user = std::move(*user);
  out.nonce = attributes[1].value;
  return out;
}

// The client side derives SaltedPassword (PBKDF2, thousands of HMACs) once per
// (mechanism, password, salt, iterations): pooled upstream connections all authenticate
// as the same user against the same salt. Keyed by a hash, so no password is a map key;
// bounded, cleared when full.
std::atomic<std::uint64_t> derivations{0};

std::string cachedSaltedPassword(Mechanism mechanism, std::string_view prepared, std::string_view salt,
                                 int iterations) {
  static std::mutex mutex;
  static std::map<std::string, std::string> cache;
  constexpr std::size_t kMaxEntries = 64;
  std::string material;
  material.append(mechanismName(mechanism)).push_back('\0');
  material.append(std::to_string(iterations)).push_back('\0');
  material.append(std::to_string(salt.size())).push_back('\0');
  material.append(salt).append(prepared);
  const std::string key = digest(EVP_sha256(), material);
  {
    std::lock_guard lock(mutex);
    if (auto it = cache.find(key); it != cache.end()) return it->second;
  }
  derivations.fetch_add(1, std::memory_order_relaxed);
  std::string salted = saltedPassword(mechanism, prepared, salt, iterations);
  std::lock_guard lock(mutex);
  if (cache.size() >= kMaxEntries) cache.clear();
  cache.emplace(key, salted);
  return salted;
}

// A secret per process: made-up salts for unknown users stay the same across attempts
// (an attacker cannot tell a known user from an unknown one by the salt changing).
const std::string& processSecret() {
  static const std::string secret = randomBytes(32);
  return secret;
}

}  // namespace

std::optional<Mechanism> parseMechanism(std::string_view name) {
  if (name == "SCRAM-SHA-1") return Mechanism::kScramSha1;
  if (name == "SCRAM-SHA-256") return Mechanism::kScramSha256;
  return std::nullopt;
}

std::string_view mechanismName(Mechanism mechanism) {
  return mechanism == Mechanism::kScramSha1 ? "SCRAM-SHA-1" : "SCRAM-SHA-256";
}

PreparedPassword preparePassword(Mechanism mechanism, std::string_view user, std::string_view password) {
  PreparedPassword out;
  if (mechanism == Mechanism::kScramSha1) {
    // MongoDB's SCRAM-SHA-1 hashes the MD5 "user:mongo:password" digest, in lower-case hex.
    std::string input;
    input.reserve(user.size() + password.size() + 7);
    input.append(user).append(":mongo:").append(password);
    const std::string md5 = digest(EVP_md5(), input);
    static constexpr char kHex[] = "0123456789abcdef";
    for (unsigned char c : md5) {
      out.value.push_back(kHex[c >> 4]);
      out.value.push_back(kHex[c & 0xf]);
    }
    return out;
  }
  // SASLprep (RFC 4013) of an ASCII string: it maps nothing, and prohibits controls.
  for (unsigned char c : password) {
    if (c >= 0x80) {
      out.error =
          "SCRAM-SHA-256 passwords with non-ASCII characters need SASLprep normalization, which mongogate does "
          "not implement: use an ASCII password";
      return out;
    }
    if (c < 0x20 || c == 0x7f) {
      out.error = "SCRAM-SHA-256 passwords may not contain control characters (SASLprep, RFC 4013)";
      return out;
    }
  }
  if (password.empty()) {
    out.error = "the password is empty";
    return out;
  }
  out.value = password;
  return out;
}

StoredCredentials deriveCredentials(Mechanism mechanism, std::string_view preparedPassword, std::string_view salt,
                                    int iterations) {
  const std::string salted = saltedPassword(mechanism, preparedPassword, salt, iterations);
  const std::string clientKey = hmac(mechanism, salted, "Client Key");
  StoredCredentials out;
  out.salt = salt;
  out.iterations = iterations;
  out.storedKey = digest(digestOf(mechanism), clientKey);
  out.serverKey = hmac(mechanism, salted, "Server Key");
  return out;
}

std::string randomSalt(Mechanism mechanism) {
  // mongod: 16 bytes for SHA-1, 28 (the hash size less 4) for SHA-256.
  return randomBytes(mechanism == Mechanism::kScramSha1 ? 16 : 28);
}

std::string randomNonce() { return base64Encode(randomBytes(24)); }

std::uint64_t clientKeyDerivations() { return derivations.load(std::memory_order_relaxed); }

std::string base64Encode(std::string_view bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t v = (std::uint32_t(std::uint8_t(bytes[i])) << 16) |
                            (std::uint32_t(std::uint8_t(bytes[i + 1])) << 8) | std::uint8_t(bytes[i + 2]);
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
    out.push_back(kAlphabet[v & 63]);
  }
  if (const std::size_t rest = bytes.size() - i; rest > 0) {
    std::uint32_t v = std::uint32_t(std::uint8_t(bytes[i])) << 16;
    if (rest == 2) v |= std::uint32_t(std::uint8_t(bytes[i + 1])) << 8;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(rest == 2 ? kAlphabet[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

std::optional<std::string> base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    int v[4];
    int padding = 0;
    for (int j = 0; j < 4; ++j) {
      const char c = text[i + j];
      if (c == '=' && last && j >= 2) {
        v[j] = 0;
        ++padding;
        continue;
      }
      if (padding > 0) return std::nullopt;  // data after '='
      v[j] = value(c);
      if (v[j] < 0) return std::nullopt;
    }
    const std::uint32_t bits = (std::uint32_t(v[0]) << 18) | (std::uint32_t(v[1]) << 12) |
                               (std::uint32_t(v[2]) << 6) | std::uint32_t(v[3]);
    out.push_back(static_cast<char>(bits >> 16));
    if (padding < 2) out.push_back(static_cast<char>((bits >> 8) & 0xff));
    if (padding < 1) out.push_back(static_cast<char>(bits & 0xff));
  }
  return out;
}

std::optional<std::string> clientFirstUser(std::string_view clientFirst) {
  ClientFirst parsed = parseClientFirst(clientFirst);
  if (!parsed.error.empty()) return std::nullopt;
  return std::move(parsed.user);
}

// --- server ---------------------------------------------------------------------------

StepResult ScramServer::fail(std::string why) {
  state_ = State::kFailed;
  return {StepStatus::kFailed, {}, std::move(why)};
}

StepResult ScramServer::start(std::string_view clientFirst, const Lookup& lookup) {
  if (state_ != State::kInitial) return fail("the conversation has already started");
  ClientFirst parsed = parseClientFirst(clientFirst);
  if (!parsed.error.empty()) return fail(std::move(parsed.error));
  user_ = std::move(parsed.user);
  std::optional<StoredCredentials> keys = lookup ? lookup(user_) : std::nullopt;
  knownUser_ = keys.has_value();
  if (knownUser_) {
    keys_ = std::move(*keys);
  } else {
    const std::string fake = hmac(Mechanism::kScramSha256, processSecret(), user_);
    keys_.salt = fake.substr(0, mechanism_ == Mechanism::kScramSha1 ? 16 : 28);
    keys_.iterations = mechanism_ == Mechanism::kScramSha1 ? kDefaultIterationsSha1 : kDefaultIterationsSha256;
    keys_.storedKey = randomBytes(static_cast<std::size_t>(EVP_MD_get_size(digestOf(mechanism_))));
    keys_.serverKey = keys_.storedKey;
  }
  gs2Header_ = parsed.gs2Header;
  clientFirstBare_ = parsed.bare;
  nonce_.assign(parsed.nonce);
  nonce_ += fixedNonce_.empty() ? randomNonce() : fixedNonce_;
  serverFirst_ = "r=" + nonce_ + ",s=" + base64Encode(keys_.salt) + ",i=" + std::to_string(keys_.iterations);
  state_ = State::kSentServerFirst;
  return {StepStatus::kContinue, serverFirst_, {}};
}

StepResult ScramServer::finish(std::string_view clientFinal) {
  if (state_ != State::kSentServerFirst) return fail("unexpected client-final message");
  std::vector<Attribute> attributes;
  if (!splitAttributes(clientFinal, attributes) || attributes.size() < 3 || attributes[0].key != 'c' ||
      attributes[1].key != 'r' || attributes.back().key != 'p') {
    return fail("malformed client-final message");
  }
  // The channel-binding attribute repeats the GS2 header the client sent first.
  auto binding = base64Decode(attributes[0].value);
  if (!binding || *binding != gs2Header_) return fail("channel binding mismatch");
  if (attributes[1].value != nonce_) return fail("nonce mismatch");
  auto proof = base64Decode(attributes.back().value);
  if (!proof) return fail("malformed proof");
  const std::size_t proofAt = clientFinal.rfind(",p=");
  const std::string_view withoutProof = clientFinal.substr(0, proofAt);
  std::string authMessage;
  authMessage.reserve(clientFirstBare_.size() + serverFirst_.size() + withoutProof.size() + 2);
  authMessage.append(clientFirstBare_).append(",").append(serverFirst_).append(",").append(withoutProof);
  const std::string clientSignature = hmac(mechanism_, keys_.storedKey, authMessage);
  if (proof->size() != clientSignature.size()) return fail("authentication failed");
  const std::string clientKey = xorBytes(*proof, clientSignature);
  const bool verified = equalConstantTime(digest(digestOf(mechanism_), clientKey), keys_.storedKey);
  if (!verified || !knownUser_) return fail(knownUser_ ? "wrong password" : "unknown user");
  state_ = State::kDone;
  return {StepStatus::kDone, "v=" + base64Encode(hmac(mechanism_, keys_.serverKey, authMessage)), {}};
}

// --- client ---------------------------------------------------------------------------

ScramClient::ScramClient(Mechanism mechanism, std::string user, std::string_view password)
    : mechanism_(mechanism), user_(std::move(user)) {
  PreparedPassword prepared = preparePassword(mechanism, user_, password);
  prepared_ = std::move(prepared.value);
  error_ = std::move(prepared.error);
}

std::string ScramClient::first() {
  if (nonce_.empty()) nonce_ = randomNonce();
  clientFirstBare_ = "n=" + escapeName(user_) + ",r=" + nonce_;
  return "n,," + clientFirstBare_;
}

StepResult ScramClient::final(std::string_view serverFirst) {
  if (!error_.empty()) return {StepStatus::kFailed, {}, error_};
  if (clientFirstBare_.empty() || sentFinal_) return {StepStatus::kFailed, {}, "unexpected server-first message"};
  std::vector<Attribute> attributes;
  if (serverFirst.starts_with("e=")) {
    return {StepStatus::kFailed, {}, "the server refused: " + std::string(serverFirst.substr(2))};
  }
  if (!splitAttributes(serverFirst, attributes) || attributes.size() < 3 || attributes[0].key != 'r' ||
      attributes[1].key != 's' || attributes[2].key != 'i') {
    return {StepStatus::kFailed, {}, "malformed server-first message"};
  }
  const std::string_view nonce = attributes[0].value;
  if (!nonce.starts_with(nonce_) || nonce.size() == nonce_.size() || !validNonce(nonce)) {
    return {StepStatus::kFailed, {}, "the server's nonce does not extend the client's"};
  }
  auto salt = base64Decode(attributes[1].value);
  if (!salt || salt->empty()) return {StepStatus::kFailed, {}, "malformed salt in server-first message"};
  int iterations = 0;
  const std::string_view count = attributes[2].value;
  auto [end, ec] = std::from_chars(count.data(), count.data() + count.size(), iterations);
  if (ec != std::errc() || end != count.data() + count.size()) {
    return {StepStatus::kFailed, {}, "malformed iteration count in server-first message"};
  }
  if (iterations < kMinIterations) {
    return {StepStatus::kFailed, {}, "the server's iteration count " + std::to_string(iterations) +
                                         " is below the minimum of " + std::to_string(kMinIterations)};
  }
  const std::string salted = cachedSaltedPassword(mechanism_, prepared_, *salt, iterations);
  const std::string clientKey = hmac(mechanism_, salted, "Client Key");
  const std::string storedKey = digest(digestOf(mechanism_), clientKey);
  const std::string withoutProof = "c=biws,r=" + std::string(nonce);
  const std::string authMessage = clientFirstBare_ + "," + std::string(serverFirst) + "," + withoutProof;
  const std::string proof = xorBytes(clientKey, hmac(mechanism_, storedKey, authMessage));
  expectedServerSignature_ = hmac(mechanism_, hmac(mechanism_, salted, "Server Key"), authMessage);
  sentFinal_ = true;
  return {StepStatus::kContinue, withoutProof + ",p=" + base64Encode(proof), {}};
}

StepResult ScramClient::verify(std::string_view serverFinal) {
  if (!sentFinal_) return {StepStatus::kFailed, {}, "unexpected server-final message"};
  if (serverFinal.starts_with("e=")) {
    return {StepStatus::kFailed, {}, "the server refused: " + std::string(serverFinal.substr(2))};
  }
  std::vector<Attribute> attributes;
  if (!splitAttributes(serverFinal, attributes) || attributes.empty() || attributes[0].key != 'v') {
    return {StepStatus::kFailed, {}, "malformed server-final message"};
  }
  auto signature = base64Decode(attributes[0].value);
  if (!signature || !equalConstantTime(*signature, expectedServerSignature_)) {
    return {StepStatus::kFailed, {}, "the server's signature does not match: it does not know the user's keys"};
  }
  return {StepStatus::kDone, {}, {}};
}

}  // namespace mongogate::auth
