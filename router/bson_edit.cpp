#include "router/bson_edit.h"

#include <cmath>
#include <limits>

namespace mongogate::router::bson_edit {

std::optional<std::string_view> utf8Of(const bson_iter_t& it) {
  if (bson_iter_type(&it) != BSON_TYPE_UTF8) return std::nullopt;
  std::uint32_t len = 0;
  const char* s = bson_iter_utf8(&it, &len);
  return std::string_view(s, len);
}

std::optional<std::int64_t> integerOf(const bson_iter_t& it) {
  switch (bson_iter_type(&it)) {
    case BSON_TYPE_INT32:
      return bson_iter_int32(&it);
    case BSON_TYPE_INT64:
      return bson_iter_int64(&it);
    case BSON_TYPE_DOUBLE: {
      const double d = bson_iter_double(&it);
      // Only doubles that are whole numbers inside the int64 range.
      if (!std::isfinite(d) || d != std::floor(d) || std::fabs(d) > 9.0e18) return std::nullopt;
      return static_cast<std::int64_t>(d);
    }
    default:
      return std::nullopt;
  }
}

wire::Bytes subdocumentOf(const bson_iter_t& it) {
  std::uint32_t len = 0;
  const std::uint8_t* data = nullptr;
  if (bson_iter_type(&it) == BSON_TYPE_DOCUMENT) {
    bson_iter_document(&it, &len, &data);
  } else if (bson_iter_type(&it) == BSON_TYPE_ARRAY) {
    bson_iter_array(&it, &len, &data);
  }
  if (data == nullptr) return {};
  return {data, len};
}

bool findKey(wire::Bytes doc, std::string_view key, bson_iter_t& it) {
  if (!initIter(it, doc)) return false;
  return bson_iter_find_w_len(&it, key.data(), static_cast<int>(key.size()));
}

namespace {

// An array whose first key is not "0" (libbson would complain about it on stderr).
bool isOddlyKeyedArray(const bson_iter_t& it) {
  bson_iter_t child;
  return bson_iter_type(&it) == BSON_TYPE_ARRAY && bson_iter_recurse(&it, &child) &&
         bson_iter_next(&child) && keyOf(child) != "0";
}

void copyArrayElements(bson_t* out, std::string_view key, const bson_iter_t& it) {
  bson_t sub;
  bson_iter_t child;
  bson_append_array_begin(out, key.data(), static_cast<int>(key.size()), &sub);
  if (bson_iter_recurse(&it, &child)) {
    while (bson_iter_next(&child)) copyElement(&sub, child);
  }
  bson_append_array_end(out, &sub);
}

}  // namespace

void copyElementAs(bson_t* out, std::string_view key, const bson_iter_t& it) {
  if (isOddlyKeyedArray(it)) {
    copyArrayElements(out, key, it);
    return;
  }
  bson_iter_t at = it;  // bson_iter_value wants a mutable iterator; the value lives in `at`
  bson_append_value(out, key.data(), static_cast<int>(key.size()), bson_iter_value(&at));
}

void copyElement(bson_t* out, const bson_iter_t& it) {
  if (isOddlyKeyedArray(it)) {
    copyArrayElements(out, keyOf(it), it);
    return;
  }
  bson_append_iter(out, nullptr, 0, &it);
}

std::optional<NamespaceParts> splitNamespace(std::string_view ns) {
  const auto dot = ns.find('.');
  if (dot == std::string_view::npos || dot == 0) return std::nullopt;
  return NamespaceParts{ns.substr(0, dot), ns.substr(dot + 1)};
}

std::string joinNamespace(std::string_view database, std::string_view collection) {
  std::string ns;
  ns.reserve(database.size() + 1 + collection.size());
  ns.append(database);
  if (!collection.empty()) {
    ns.push_back('.');
    ns.append(collection);
  }
  return ns;
}

std::string prefixRegex(std::string_view prefix) {
  std::string re = "^";
  for (char c : prefix) {
    if (std::string_view("\\^$.|?*+()[]{}").find(c) != std::string_view::npos) re.push_back('\\');
    re.push_back(c);
  }
  re.push_back('_');
  return re;
}

std::string idText(const bson_iter_t& it) {
  switch (bson_iter_type(&it)) {
    case BSON_TYPE_OID: {
      char hex[25];
      bson_oid_to_string(bson_iter_oid(&it), hex);
      return hex;
    }
    case BSON_TYPE_UTF8:
      return std::string(*utf8Of(it));
    case BSON_TYPE_INT32:
    case BSON_TYPE_INT64:
    case BSON_TYPE_DOUBLE:
      if (auto v = integerOf(it)) return std::to_string(*v);
      return {};
    default:
      return {};
  }
}

}  // namespace mongogate::router::bson_edit
