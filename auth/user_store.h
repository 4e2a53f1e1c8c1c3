// auth/user_store.h — the users mongogate authenticates, and what each may touch.
//
// Promise: users looked up by (authentication database, name). They live in the
// configuration (config::AuthConfig), which a reload replaces as a whole; a session keeps
// the configuration snapshot it authenticated against. Only stored keys are held (SCRAM
// salt, iteration count, StoredKey, ServerKey), never a password.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/scram.h"

namespace mongogate::auth {

enum class Access { kNone, kRead, kReadWrite };

std::string_view toString(Access access);                  // "none", "read", "readWrite"
std::optional<Access> parseAccess(std::string_view text);  // the same spellings

// SPEC §6 store scopes. Unrestricted (the default) means every store, read-write access
// to the main database and to every other database.
struct UserScope {
  bool allStores = true;
  std::vector<std::string> storePrefixes;  // when !allStores
  Access mainDatabase = Access::kReadWrite;  // the main database's shared collections

  bool unrestricted() const { return allStores && mainDatabase == Access::kReadWrite; }
  bool allowsStore(std::string_view prefix) const;
};

struct UserRecord {
  std::string database = "admin";  // the authentication database (authSource)
  std::string user;
  std::optional<StoredCredentials> scramSha1;
  std::optional<StoredCredentials> scramSha256;
  UserScope scope;

  const std::optional<StoredCredentials>& credentials(Mechanism mechanism) const {
    return mechanism == Mechanism::kScramSha1 ? scramSha1 : scramSha256;
  }
};

// nullptr when no such user is configured.
const UserRecord* findUser(const std::vector<UserRecord>& users, std::string_view database, std::string_view user);

}  // namespace mongogate::auth
