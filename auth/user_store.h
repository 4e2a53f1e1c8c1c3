// auth/user_store.h — the users mongogate authenticates, and what each may touch.
//
// Promise: an immutable set of users, looked up by (authentication database, name).
// The proxy holds it as std::shared_ptr<const UserStore> so a reload can swap it while
// sessions keep the snapshot they authenticated against. Only stored keys are held
// (SCRAM salt, iteration count, StoredKey, ServerKey), never a password.
#pragma once

#include <memory>
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

class UserStore {
 public:
  UserStore() = default;
  explicit UserStore(std::vector<UserRecord> users) : users_(std::move(users)) {}

  const UserRecord* find(std::string_view database, std::string_view user) const;
  bool empty() const { return users_.empty(); }
  std::size_t size() const { return users_.size(); }

 private:
  std::vector<UserRecord> users_;
};

}  // namespace mongogate::auth
