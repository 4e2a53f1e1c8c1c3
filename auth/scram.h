// auth/scram.h — SCRAM-SHA-1 and SCRAM-SHA-256 conversations, both sides.
//
// References: RFC 5802 (SCRAM), RFC 7677 (SCRAM-SHA-256), RFC 4013 (SASLprep) and the
// MongoDB specifications' auth/auth.md. MongoDB's SCRAM-SHA-1 uses the hex MD5 of
// "user:mongo:password" as the password; SCRAM-SHA-256 uses the SASLprep'd password.
//
// The server side (ScramServer) verifies a client against stored keys (salt, iteration
// count, StoredKey, ServerKey): no password is ever held. The client side (ScramClient)
// authenticates mongogate's own connections to an upstream. Neither does I/O: each step
// takes the peer's payload and returns the next one. Errors carry no secret: they are
// safe to log and never contain a password, proof or key.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace mongogate::auth {

enum class Mechanism { kScramSha1, kScramSha256 };

// "SCRAM-SHA-1" / "SCRAM-SHA-256" (exact spelling, as MongoDB).
std::optional<Mechanism> parseMechanism(std::string_view name);
std::string_view mechanismName(Mechanism mechanism);

// MongoDB's defaults (the iteration counts mongod uses for new users).
inline constexpr int kDefaultIterationsSha1 = 10000;
inline constexpr int kDefaultIterationsSha256 = 15000;
inline constexpr int kMinIterations = 4096;  // RFC 5802 §5.1 and MongoDB's minimum

// What a server stores for one user and mechanism (raw bytes, not base64).
struct StoredCredentials {
  std::string salt;
  int iterations = 0;
  std::string storedKey;
  std::string serverKey;
};

// The password as the mechanism hashes it (MD5 digest for SHA-1, SASLprep for SHA-256),
// or an error naming what is not supported. SASLprep is implemented for ASCII
// (control characters are prohibited); a non-ASCII password is refused clearly.
struct PreparedPassword {
  std::string value;
  std::string error;  // empty on success
  bool ok() const { return error.empty(); }
};
PreparedPassword preparePassword(Mechanism mechanism, std::string_view user, std::string_view password);

// Stored credentials from a prepared password (hash-password, tests).
StoredCredentials deriveCredentials(Mechanism mechanism, std::string_view preparedPassword, std::string_view salt,
                                    int iterations);
// A fresh random salt of MongoDB's length for the mechanism.
std::string randomSalt(Mechanism mechanism);
// A fresh random nonce (printable, no ',').
std::string randomNonce();
// How many times ScramClient ran PBKDF2 (it caches the result per password, salt and
// iteration count, since every pooled connection authenticates the same way). For tests.
std::uint64_t clientKeyDerivations();

std::string base64Encode(std::string_view bytes);
std::optional<std::string> base64Decode(std::string_view text);  // strict: padding required

// The user name of a SCRAM client-first message ("n,,n=user,r=..."), unescaped.
// Used by hello's speculativeAuthenticate and by relay logs; nullopt if malformed.
std::optional<std::string> clientFirstUser(std::string_view clientFirst);

enum class StepStatus { kContinue, kDone, kFailed };

struct StepResult {
  StepStatus status = StepStatus::kFailed;
  std::string payload;  // the message to send to the peer (kContinue / kDone)
  std::string error;    // why it failed: for logs, never for clients, holds no secret
};

// One server conversation. start() takes the client-first message and a lookup from
// user name to stored keys (nullptr: unknown user — the conversation continues with
// made-up keys so an unknown user and a wrong password look the same, and fails at the
// proof). finish() takes the client-final message and returns server-final on success.
class ScramServer {
 public:
  using Lookup = std::function<std::optional<StoredCredentials>(std::string_view user)>;

  explicit ScramServer(Mechanism mechanism) : mechanism_(mechanism) {}

  StepResult start(std::string_view clientFirst, const Lookup& lookup);
  StepResult finish(std::string_view clientFinal);

  Mechanism mechanism() const { return mechanism_; }
  const std::string& user() const { return user_; }
  bool done() const { return state_ == State::kDone; }
  // Tests only: a fixed server nonce.
  void setNonceForTesting(std::string nonce) { fixedNonce_ = std::move(nonce); }

 private:
  enum class State { kInitial, kSentServerFirst, kDone, kFailed };
  StepResult fail(std::string why);

  Mechanism mechanism_;
  State state_ = State::kInitial;
  std::string user_;
  bool knownUser_ = false;
  StoredCredentials keys_;
  std::string nonce_;  // client nonce + server nonce
  std::string gs2Header_;
  std::string clientFirstBare_;
  std::string serverFirst_;
  std::string fixedNonce_;
};

// One client conversation: first() → server-first → final() → server-final → verify().
// The server's signature is verified, so a server that does not know the keys cannot
// pretend the client is authenticated.
class ScramClient {
 public:
  // The password is prepared here; check error() before first().
  ScramClient(Mechanism mechanism, std::string user, std::string_view password);

  const std::string& error() const { return error_; }
  std::string first();
  StepResult final(std::string_view serverFirst);
  // True when the server-final message carries the expected signature.
  StepResult verify(std::string_view serverFinal);

  Mechanism mechanism() const { return mechanism_; }
  // Tests only: a fixed client nonce.
  void setNonceForTesting(std::string nonce) { nonce_ = std::move(nonce); }

 private:
  Mechanism mechanism_;
  std::string user_;
  std::string prepared_;
  std::string error_;
  std::string nonce_;
  std::string clientFirstBare_;
  std::string expectedServerSignature_;
  bool sentFinal_ = false;
};

}  // namespace mongogate::auth
