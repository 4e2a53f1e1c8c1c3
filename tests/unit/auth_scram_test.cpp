// SCRAM conversations against the published vectors (RFC 5802, RFC 7677, the MongoDB
// auth specification) and against tampering: wrong proof, wrong nonce, replay.
#include <gtest/gtest.h>

#include "auth/scram.h"

namespace mongogate::auth {
namespace {

struct Vector {
  Mechanism mechanism;
  std::string preparedPassword;  // already hashed/prepared as the mechanism needs
  std::string clientNonce;
  std::string serverNonce;  // appended to the client nonce
  std::string salt64;
  int iterations;
  std::string clientFinal;
  std::string serverFinal;
};

// RFC 5802 §5 (plain SCRAM-SHA-1: the password is "pencil" itself).
const Vector kRfc5802{Mechanism::kScramSha1,
                      "pencil",
                      "fyko+d2lbbFgONRv9qkxdawL",
                      "3rfcNHYJY1ZVvWVs7j",
                      "QSXCR+Q6sek8bf92",
                      4096,
                      "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
                      "v=rmF9pqV8S7suAoZWja4dJRkFsKQ="};
// RFC 7677 §3.
const Vector kRfc7677{Mechanism::kScramSha256,
                      "pencil",
                      "rOprNGfwEbeRWgbNEkqO",
                      "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
                      "W22ZaJ0SNY7soEsUEjb6gQ==",
                      4096,
                      "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
                      "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="};

std::string serverFirstOf(const Vector& v) {
  return "r=" + v.clientNonce + v.serverNonce + ",s=" + v.salt64 + ",i=" + std::to_string(v.iterations);
}

StoredCredentials keysOf(const Vector& v) {
  return deriveCredentials(v.mechanism, v.preparedPassword, *base64Decode(v.salt64), v.iterations);
}

void expectServerAccepts(const Vector& v) {
  ScramServer server(v.mechanism);
  server.setNonceForTesting(v.serverNonce);
  const StoredCredentials keys = keysOf(v);
  StepResult first = server.start("n,,n=user,r=" + v.clientNonce, [&](std::string_view user) {
    EXPECT_EQ(user, "user");
    return std::optional<StoredCredentials>(keys);
  });
  ASSERT_EQ(first.status, StepStatus::kContinue) << first.error;
  EXPECT_EQ(first.payload, serverFirstOf(v));
  StepResult final = server.finish(v.clientFinal);
  ASSERT_EQ(final.status, StepStatus::kDone) << final.error;
  EXPECT_EQ(final.payload, v.serverFinal);
  EXPECT_TRUE(server.done());
  EXPECT_EQ(server.user(), "user");
}

TEST(Scram, ServerMatchesRfc5802) { expectServerAccepts(kRfc5802); }
TEST(Scram, ServerMatchesRfc7677) { expectServerAccepts(kRfc7677); }

TEST(Scram, MongoDbSha1UsesTheMd5Digest) {
  // MongoDB auth spec, SCRAM-SHA-1 example: user "user", password "pencil".
  PreparedPassword prepared = preparePassword(Mechanism::kScramSha1, "user", "pencil");
  ASSERT_TRUE(prepared.ok());
  EXPECT_EQ(prepared.value, "1c33006ec1ffd90f9cadcbcc0e118200");
  const Vector mongo{Mechanism::kScramSha1,
                     prepared.value,
                     "fyko+d2lbbFgONRv9qkxdawL",
                     "Ho+Vgk7qvUOKUwuWLIWg4l/9SraGMHEE",
                     "rQ9ZY3MntBeuP3E1TDVC4w==",
                     10000,
                     "c=biws,r=fyko+d2lbbFgONRv9qkxdawLHo+Vgk7qvUOKUwuWLIWg4l/9SraGMHEE,p=MC2T8BvbmWRckDw8oWl5IVghwCY=",
                     "v=UMWeI25JD1yNYZRMpZ4VHvhZ9e0="};
  expectServerAccepts(mongo);

  ScramClient client(Mechanism::kScramSha1, "user", "pencil");
  client.setNonceForTesting(mongo.clientNonce);
  EXPECT_EQ(client.first(), "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL");
  StepResult final = client.final(serverFirstOf(mongo));
  ASSERT_EQ(final.status, StepStatus::kContinue) << final.error;
  EXPECT_EQ(final.payload, mongo.clientFinal);
  EXPECT_EQ(client.verify(mongo.serverFinal).status, StepStatus::kDone);
}

TEST(Scram, ClientMatchesRfc7677) {
  ScramClient client(Mechanism::kScramSha256, "user", "pencil");
  ASSERT_TRUE(client.error().empty());
  client.setNonceForTesting(kRfc7677.clientNonce);
  EXPECT_EQ(client.first(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
  StepResult final = client.final(serverFirstOf(kRfc7677));
  ASSERT_EQ(final.status, StepStatus::kContinue) << final.error;
  EXPECT_EQ(final.payload, kRfc7677.clientFinal);
  EXPECT_EQ(client.verify(kRfc7677.serverFinal).status, StepStatus::kDone);
}

TEST(Scram, ClientDerivesKeysOncePerPasswordSaltAndIterations) {
  const std::string serverFirst = "r=abcdef,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
  const auto finalFor = [&](std::string_view password) {
    ScramClient client(Mechanism::kScramSha256, "cacheuser", password);
    client.setNonceForTesting("abc");
    client.first();
    return client.final(serverFirst).payload;
  };
  const std::uint64_t before = clientKeyDerivations();
  const std::string first = finalFor("cache-pw-1");
  EXPECT_EQ(clientKeyDerivations(), before + 1);
  EXPECT_EQ(finalFor("cache-pw-1"), first);  // same proof, no second PBKDF2
  EXPECT_EQ(clientKeyDerivations(), before + 1);
  EXPECT_NE(finalFor("cache-pw-2"), first);  // another password is another entry
  EXPECT_EQ(clientKeyDerivations(), before + 2);
}

TEST(Scram, ClientRejectsAForgedServerSignature) {
  ScramClient client(Mechanism::kScramSha256, "user", "pencil");
  client.setNonceForTesting(kRfc7677.clientNonce);
  client.first();
  ASSERT_EQ(client.final(serverFirstOf(kRfc7677)).status, StepStatus::kContinue);
  EXPECT_EQ(client.verify("v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").status, StepStatus::kFailed);
  EXPECT_EQ(client.verify("e=other-error").status, StepStatus::kFailed);
}

TEST(Scram, ClientRejectsANonceThatDoesNotExtendItsOwn) {
  ScramClient client(Mechanism::kScramSha256, "user", "pencil");
  client.setNonceForTesting("abc");
  client.first();
  EXPECT_EQ(client.final("r=xyzdef,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096").status, StepStatus::kFailed);
  ScramClient same(Mechanism::kScramSha256, "user", "pencil");
  same.setNonceForTesting("abc");
  same.first();
  EXPECT_EQ(same.final("r=abc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096").status, StepStatus::kFailed);
}

TEST(Scram, ClientRejectsTooFewIterations) {
  ScramClient client(Mechanism::kScramSha256, "user", "pencil");
  client.setNonceForTesting("abc");
  client.first();
  StepResult result = client.final("r=abcdef,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=1000");
  EXPECT_EQ(result.status, StepStatus::kFailed);
  EXPECT_NE(result.error.find("iteration"), std::string::npos);
}

// A full conversation between the two sides with random nonces and salt.
struct RoundTrip {
  StepStatus status;
  std::string error;
};
RoundTrip converse(Mechanism mechanism, std::string_view storedPassword, std::string_view clientPassword,
                   std::string user = "app") {
  const StoredCredentials keys = deriveCredentials(
      mechanism, preparePassword(mechanism, user, storedPassword).value, randomSalt(mechanism), kMinIterations);
  ScramClient client(mechanism, user, clientPassword);
  ScramServer server(mechanism);
  StepResult first = server.start(client.first(), [&](std::string_view name) {
    return name == user ? std::optional<StoredCredentials>(keys) : std::nullopt;
  });
  if (first.status != StepStatus::kContinue) return {first.status, first.error};
  StepResult clientFinal = client.final(first.payload);
  if (clientFinal.status != StepStatus::kContinue) return {clientFinal.status, clientFinal.error};
  StepResult serverFinal = server.finish(clientFinal.payload);
  if (serverFinal.status != StepStatus::kDone) return {serverFinal.status, serverFinal.error};
  StepResult verified = client.verify(serverFinal.payload);
  return {verified.status, verified.error};
}

TEST(Scram, RoundTripBothMechanisms) {
  for (Mechanism m : {Mechanism::kScramSha1, Mechanism::kScramSha256}) {
    EXPECT_EQ(converse(m, "s3cret!", "s3cret!").status, StepStatus::kDone) << mechanismName(m);
    RoundTrip wrong = converse(m, "s3cret!", "s3cret?");
    EXPECT_EQ(wrong.status, StepStatus::kFailed) << mechanismName(m);
    EXPECT_EQ(wrong.error, "wrong password");
  }
}

TEST(Scram, UserNamesWithCommaAndEqualsAreEscaped) {
  EXPECT_EQ(converse(Mechanism::kScramSha256, "pw", "pw", "a,b=c").status, StepStatus::kDone);
  EXPECT_EQ(clientFirstUser("n,,n=a=2Cb=3Dc,r=x"), "a,b=c");
  EXPECT_FALSE(clientFirstUser("n,,n=a=2Xb,r=x"));
}

TEST(Scram, UnknownUserFailsAtTheProofWithAStableSalt) {
  auto serverFirstFor = [](std::string_view clientFirst) {
    ScramServer server(Mechanism::kScramSha256);
    return server.start(clientFirst, [](std::string_view) { return std::nullopt; });
  };
  StepResult a = serverFirstFor("n,,n=ghost,r=abc");
  StepResult b = serverFirstFor("n,,n=ghost,r=abc");
  ASSERT_EQ(a.status, StepStatus::kContinue);
  const auto saltOf = [](const std::string& payload) { return payload.substr(payload.find(",s=")); };
  EXPECT_EQ(saltOf(a.payload), saltOf(b.payload));  // an unknown user cannot be told by the salt

  ScramServer server(Mechanism::kScramSha256);
  ScramClient client(Mechanism::kScramSha256, "ghost", "pw");
  StepResult first = server.start(client.first(), [](std::string_view) { return std::nullopt; });
  StepResult final = server.finish(client.final(first.payload).payload);
  EXPECT_EQ(final.status, StepStatus::kFailed);
  EXPECT_EQ(final.error, "unknown user");
}

TEST(Scram, TamperedProofIsRefused) {
  const Vector& v = kRfc7677;
  const StoredCredentials keys = keysOf(v);
  std::string tampered = v.clientFinal;
  tampered[tampered.size() - 3] = tampered[tampered.size() - 3] == 'A' ? 'B' : 'A';
  ScramServer server(v.mechanism);
  server.setNonceForTesting(v.serverNonce);
  server.start("n,,n=user,r=" + v.clientNonce, [&](std::string_view) { return std::optional(keys); });
  EXPECT_EQ(server.finish(tampered).status, StepStatus::kFailed);
  EXPECT_FALSE(server.done());
  // A failed conversation stays failed: the right proof afterwards is not accepted.
  EXPECT_EQ(server.finish(v.clientFinal).status, StepStatus::kFailed);
}

TEST(Scram, WrongNonceIsRefused) {
  const Vector& v = kRfc7677;
  const StoredCredentials keys = keysOf(v);
  ScramServer server(v.mechanism);
  server.setNonceForTesting("otherServerNonce");
  server.start("n,,n=user,r=" + v.clientNonce, [&](std::string_view) { return std::optional(keys); });
  StepResult result = server.finish(v.clientFinal);  // the proof of another conversation
  EXPECT_EQ(result.status, StepStatus::kFailed);
  EXPECT_EQ(result.error, "nonce mismatch");
}

TEST(Scram, ReplayIntoANewConversationIsRefused) {
  // A recorded client-final replayed against a fresh conversation: the server nonce differs.
  const Vector& v = kRfc7677;
  const StoredCredentials keys = keysOf(v);
  ScramServer server(v.mechanism);  // random server nonce, as in production
  server.start("n,,n=user,r=" + v.clientNonce, [&](std::string_view) { return std::optional(keys); });
  EXPECT_EQ(server.finish(v.clientFinal).status, StepStatus::kFailed);
  // And a finished conversation accepts nothing more.
  ScramServer done(v.mechanism);
  done.setNonceForTesting(v.serverNonce);
  done.start("n,,n=user,r=" + v.clientNonce, [&](std::string_view) { return std::optional(keys); });
  ASSERT_EQ(done.finish(v.clientFinal).status, StepStatus::kDone);
  EXPECT_EQ(done.finish(v.clientFinal).status, StepStatus::kFailed);
}

TEST(Scram, MalformedClientMessagesAreRefused) {
  const auto start = [](std::string_view message) {
    ScramServer server(Mechanism::kScramSha256);
    return server.start(message, [](std::string_view) { return std::nullopt; });
  };
  EXPECT_EQ(start("").status, StepStatus::kFailed);
  EXPECT_EQ(start("n,,").status, StepStatus::kFailed);
  EXPECT_EQ(start("n,,r=abc,n=user").status, StepStatus::kFailed);
  EXPECT_EQ(start("p=tls-unique,,n=user,r=abc").error, "channel binding is not supported");
  EXPECT_EQ(start("n,a=admin,n=user,r=abc").error, "an authorization identity is not supported");
  EXPECT_EQ(start("n,,m=ext,n=user,r=abc").error, "mandatory extensions are not supported");
  EXPECT_EQ(start("n,,n=user,r=a,b").status, StepStatus::kFailed);
  EXPECT_EQ(start("n,,n=,r=abc").status, StepStatus::kFailed);

  ScramServer server(Mechanism::kScramSha256);
  server.start("n,,n=user,r=abc", [](std::string_view) { return std::nullopt; });
  EXPECT_EQ(server.finish("garbage").status, StepStatus::kFailed);
}

TEST(Scram, ChannelBindingMustRepeatTheHeader) {
  const Vector& v = kRfc7677;
  const StoredCredentials keys = keysOf(v);
  ScramServer server(v.mechanism);
  server.setNonceForTesting(v.serverNonce);
  server.start("n,,n=user,r=" + v.clientNonce, [&](std::string_view) { return std::optional(keys); });
  std::string changed = v.clientFinal;
  changed.replace(0, 6, "c=eSws");  // "y,," instead of "n,,"
  EXPECT_EQ(server.finish(changed).error, "channel binding mismatch");
}

TEST(Scram, SaslPrepAsciiAndClearRefusals) {
  EXPECT_EQ(preparePassword(Mechanism::kScramSha256, "u", "pencil").value, "pencil");
  EXPECT_EQ(preparePassword(Mechanism::kScramSha256, "u", "p e n=c,il").value, "p e n=c,il");
  EXPECT_FALSE(preparePassword(Mechanism::kScramSha256, "u", "tab\there").ok());
  PreparedPassword roman = preparePassword(Mechanism::kScramSha256, "u", "\xE2\x85\xA8");  // U+2168
  EXPECT_FALSE(roman.ok());
  EXPECT_NE(roman.error.find("non-ASCII"), std::string::npos);
  // SCRAM-SHA-1 hashes bytes as they are (MD5 digest), so any password works.
  EXPECT_TRUE(preparePassword(Mechanism::kScramSha1, "u", "\xE2\x85\xA8").ok());
  ScramClient client(Mechanism::kScramSha256, "u", "\xE2\x85\xA8");
  EXPECT_FALSE(client.error().empty());
  EXPECT_EQ(client.final("r=x,s=AAAA,i=4096").status, StepStatus::kFailed);
}

TEST(Scram, Base64IsStrict) {
  EXPECT_EQ(base64Encode(""), "");
  EXPECT_EQ(base64Encode("f"), "Zg==");
  EXPECT_EQ(base64Encode("fo"), "Zm8=");
  EXPECT_EQ(base64Encode("foo"), "Zm9v");
  EXPECT_EQ(base64Decode("Zm9vYg=="), "foob");
  EXPECT_EQ(base64Decode("Zm9vYmE="), "fooba");
  EXPECT_FALSE(base64Decode("Zm9"));
  EXPECT_FALSE(base64Decode("Zm=v"));
  EXPECT_FALSE(base64Decode("Zm9*"));
  const std::string salt = randomSalt(Mechanism::kScramSha256);
  EXPECT_EQ(salt.size(), 28u);
  EXPECT_EQ(base64Decode(base64Encode(salt)), salt);
}

TEST(Scram, MechanismNames) {
  EXPECT_EQ(parseMechanism("SCRAM-SHA-1"), Mechanism::kScramSha1);
  EXPECT_EQ(parseMechanism("SCRAM-SHA-256"), Mechanism::kScramSha256);
  EXPECT_FALSE(parseMechanism("PLAIN"));
  EXPECT_FALSE(parseMechanism("scram-sha-256"));
}

}  // namespace
}  // namespace mongogate::auth
