// router/reply_namespaces.h — physical → logical names for the reply direction
// (SPEC §4 "Replies").
//
// Promise: a ReplyNamespaces is built once per reply from the route's NamespaceMappings
// and answers, without I/O or allocation beyond the result, what the app should see in
// place of a physical database, namespace ("db.coll") or free text (errmsg). It never
// guesses a store: a physical name that no mapping explains is left as it is.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "router/routing.h"

namespace mongogate::router {

class ReplyNamespaces {
 public:
  explicit ReplyNamespaces(std::span<const NamespaceMapping> mappings);

  // False when every mapping is the identity (rule 4, or a store still in the main
  // database under rule 2): then no reply needs rewriting.
  bool active() const { return active_; }

  // "pos_db_1.abc_products" → "main_db.abc_products" (rule 2) or "store_abc.products"
  // (rule 3). Handles "<db>.$cmd.listCollections" and "<db>.$cmd.listIndexes.<coll>".
  // nullopt when nothing maps (the caller keeps the original).
  std::optional<std::string> logicalNamespace(std::string_view ns) const;

  // The logical {db, coll} of a physical one (change events carry them apart).
  std::optional<std::pair<std::string, std::string>> logicalPair(std::string_view database,
                                                                 std::string_view collection) const;

  // The logical database of a physical database name alone (first mapping wins).
  std::optional<std::string> logicalDatabase(std::string_view database) const;

  // The mapping that owns a physical database (first non-identity one), or nullptr.
  const NamespaceMapping* mappingOfDatabase(std::string_view database) const;

  // Rewrites every "<physDb>.<physColl>" (then, for rule 3, "<physDb>.<prefix>_", then a
  // bare "<physDb>") in free text. A match must not be glued to a longer name on either
  // side, so "pos_db_10.x" is never touched by a pos_db_1 mapping. Returns nullopt when
  // the text does not change.
  std::optional<std::string> rewriteText(std::string_view text) const;

 private:
  std::span<const NamespaceMapping> mappings_;
  bool active_ = false;
};

}  // namespace mongogate::router
