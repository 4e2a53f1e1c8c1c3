// auth/user_store.cpp — users and scopes (see user_store.h).
#include "auth/user_store.h"

#include <algorithm>

namespace mongogate::auth {

std::string_view toString(Access access) {
  switch (access) {
    case Access::kNone: return "none";
    case Access::kRead: return "read";
    case Access::kReadWrite: break;
  }
  return "readWrite";
}

std::optional<Access> parseAccess(std::string_view text) {
  if (text == "none") return Access::kNone;
  if (text == "read") return Access::kRead;
  if (text == "readWrite") return Access::kReadWrite;
  return std::nullopt;
}

bool UserScope::allowsStore(std::string_view prefix) const {
  return allStores || std::find(storePrefixes.begin(), storePrefixes.end(), prefix) != storePrefixes.end();
}

const UserRecord* findUser(const std::vector<UserRecord>& users, std::string_view database, std::string_view user) {
  for (const UserRecord& record : users) {
    if (record.user == user && record.database == database) return &record;
  }
  return nullptr;
}

}  // namespace mongogate::auth
