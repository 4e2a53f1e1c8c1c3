// The auth section of the configuration (SPEC §6, §9): modes, users with stored keys and
// scopes, and every problem reported by its path without echoing a key.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <unistd.h>
#include <string>
#include <vector>

#include "auth/scram.h"
#include "config/proxy_config.h"

namespace mongogate::config {
namespace {

namespace fs = std::filesystem;

const std::map<std::string, std::string> kEnv{{"MONGODB_URI", "mongodb://127.0.0.1:27017/main_db"},
                                              {"STORED_KEY", "wMZGKF2gOumPskXoBqmhdsTBx/VI+irJ2g5xTSxY9j0="}};

// Valid SCRAM-SHA-256 keys (made by `mongogate hash-password --user app`).
const std::string kSha256 =
    R"({salt: "v0F06aJ/Ux0yio/eelXd26R0lRhexNjOtwL4UQ==", iterations: 15000, )"
    R"(stored_key: "wMZGKF2gOumPskXoBqmhdsTBx/VI+irJ2g5xTSxY9j0=", server_key: "rQm3yWHHmtGO2Yp7L+g/JkM3GSSWVhpN1ixs9Xj4Byg="})";

ConfigResult loadText(const std::string& yaml, std::vector<std::string> extra = {}) {
  const fs::path path = fs::temp_directory_path() / ("mongogate-auth-" + std::to_string(::getpid()) + ".yaml");
  std::ofstream(path) << yaml;
  std::vector<std::string> args{"mongogate", "--config", path.string()};
  args.insert(args.end(), extra.begin(), extra.end());
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  ConfigResult r = loadConfig(static_cast<int>(argv.size()), argv.data(), kEnv);
  fs::remove(path);
  return r;
}

std::string problems(const ConfigResult& r) {
  std::string out;
  for (const auto& p : r.problems) out += formatProblem(p) + "\n";
  return out;
}

TEST(ConfigAuth, DefaultIsNone) {
  ConfigResult r = loadText("pool: {max_size: 10}\n");
  ASSERT_TRUE(r.problems.empty()) << problems(r);
  EXPECT_EQ(r.config.auth.mode, AuthConfig::Mode::kNone);
  EXPECT_TRUE(r.config.auth.users.empty());
}

TEST(ConfigAuth, UsersWithKeysAndScopes) {
  ConfigResult r = loadText("auth:\n  mode: users\n  users:\n"
                            "    - user: app\n      scram_sha_256: " + kSha256 + "\n"
                            "    - user: clerk\n      db: main_db\n      stores: [ab, cd]\n      main_database: read\n"
                            "      scram_sha_256: {salt: \"AAAAAAAAAAAAAAAAAAAAAA==\", iterations: 4096,"
                            " stored_key: \"${STORED_KEY}\", server_key: \"${STORED_KEY}\"}\n");
  ASSERT_TRUE(r.problems.empty()) << problems(r);
  ASSERT_EQ(r.config.auth.users.size(), 2u);
  const auth::UserRecord& app = r.config.auth.users[0];
  EXPECT_EQ(app.database, "admin");
  EXPECT_TRUE(app.scope.unrestricted());
  ASSERT_TRUE(app.scramSha256);
  EXPECT_FALSE(app.scramSha1);
  EXPECT_EQ(app.scramSha256->iterations, 15000);
  EXPECT_EQ(app.scramSha256->storedKey.size(), 32u);
  const auth::UserRecord& clerk = r.config.auth.users[1];
  EXPECT_EQ(clerk.database, "main_db");
  EXPECT_FALSE(clerk.scope.allStores);
  EXPECT_EQ(clerk.scope.storePrefixes, (std::vector<std::string>{"ab", "cd"}));
  EXPECT_EQ(clerk.scope.mainDatabase, auth::Access::kRead);
  EXPECT_EQ(clerk.scramSha256->storedKey, app.scramSha256->storedKey);  // from ${STORED_KEY}
}

TEST(ConfigAuth, ModeFromTheCommandLineAndItsProblems) {
  ConfigResult r = loadText("auth:\n  users:\n    - user: app\n      scram_sha_256: " + kSha256 + "\n",
                            {"--auth-mode", "relay"});
  ASSERT_TRUE(r.problems.empty()) << problems(r);
  EXPECT_EQ(r.config.auth.mode, AuthConfig::Mode::kRelay);
  r = loadText("auth: {mode: ldap}\n");
  EXPECT_NE(problems(r).find("auth.mode: expected none, users or relay, got 'ldap'"), std::string::npos) << problems(r);
  r = loadText("auth: {mode: users}\n");
  EXPECT_NE(problems(r).find("auth.mode: users mode needs at least one user"), std::string::npos) << problems(r);
  r = loadText("auth:\n  mode: users\n  users:\n    - user: nokeys\n");
  EXPECT_NE(problems(r).find("auth.users[0]: user 'nokeys' has no stored keys"), std::string::npos) << problems(r);
  // Relay mode: an entry without keys only scopes that user.
  r = loadText("auth:\n  mode: relay\n  users:\n    - {user: scoped, stores: [ab]}\n");
  EXPECT_TRUE(r.problems.empty()) << problems(r);
}

TEST(ConfigAuth, EveryUserProblemHasItsPathAndNoKeyIsEchoed) {
  ConfigResult r = loadText(
      "auth:\n  mode: users\n  users:\n"
      "    - user: a\n      stores: ab\n      main_database: write\n"
      "      scram_sha_1: {salt: \"!!!!\", iterations: 99, stored_key: \"c2VjcmV0LWtleQ==\", colour: red}\n"
      "    - {db: \"bad.db\", stores: [\"*\", ab]}\n"
      "    - user: a\n      scram_sha_256: " + kSha256 + "\n"
      "    - user: a\n      scram_sha_256: " + kSha256 + "\n"
      "    - just-a-name\n");
  const std::string text = problems(r);
  for (const char* expected : {
           "auth.users[0].stores: expected a list of store prefixes",
           "auth.users[0].main_database: expected none, read or readWrite, got 'write'",
           "auth.users[0].scram_sha_1.salt: expected base64 text",
           "auth.users[0].scram_sha_1.iterations: expected a whole number from 4096",
           "auth.users[0].scram_sha_1.stored_key: expected 20 bytes for SCRAM-SHA-1, got 10",
           "auth.users[0].scram_sha_1.colour: unknown key",
           "auth.users[0].scram_sha_1.server_key: missing",
           "auth.users[1].db: a database name cannot contain '.'",
           "auth.users[1].stores: \"*\" already means every store",
           "auth.users[1]: missing: every user needs a `user` name",
           "auth.users[3]: user 'a' of database 'admin' is listed twice",
           "auth.users[4]: expected a map",
       }) {
    EXPECT_NE(text.find(expected), std::string::npos) << expected << "\n" << text;
  }
  EXPECT_EQ(text.find("c2VjcmV0LWtleQ"), std::string::npos) << "a stored key was echoed";
}

TEST(ConfigAuth, SettingPathsIncludeAuth) {
  const auto paths = settingPaths();
  EXPECT_NE(std::find(paths.begin(), paths.end(), "auth.mode"), paths.end());
  EXPECT_NE(std::find(paths.begin(), paths.end(), "auth.users"), paths.end());
}

}  // namespace
}  // namespace mongogate::config
