// proxy/registry_source.cpp — registry loading (upstream, YAML file, cache) and following.
#include "proxy/registry_source.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mongoc/mongoc.h>
#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "proxy/json_string.h"

namespace mongogate::proxy {

using router::StoreRecord;

namespace {

constexpr std::uint32_t kChangeStreamMaxAwaitMs = 1000;  // how often the stream loop sees stop()
constexpr std::int32_t kSocketTimeoutMs = 10'000;         // unless the URI sets socketTimeoutMS
constexpr auto kEventReloadSpacing = std::chrono::seconds(1);
constexpr std::int32_t kCacheFormat = 1;

void initMongoc() {
  static std::once_flag once;
  std::call_once(once, [] { mongoc_init(); });
}

// Errors that mean "this server will never give you a change stream": a standalone
// (40573), a server or mock without the stage or command (40324, 59, 115), or a user
// without the changeStream privilege (13). Anything else is worth retrying later.
bool changeStreamsRefused(const bson_error_t& error) {
  if (error.domain != MONGOC_ERROR_SERVER) return false;
  switch (error.code) {
    case 13:     // Unauthorized
    case 59:     // CommandNotFound
    case 115:    // CommandNotSupported
    case 40324:  // Unrecognized pipeline stage name
    case 40573:  // The $changeStream stage is only supported on replica sets
      return true;
    default:
      return false;
  }
}

bool sameRecord(const StoreRecord& a, const StoreRecord& b) {
  return a.prefix == b.prefix && a.databaseId == b.databaseId && a.storeId == b.storeId &&
         a.name == b.name;
}

std::string describeStore(const StoreRecord& r) {
  if (r.storeId.empty() && r.name.empty()) return "no storeId or name";
  std::string out;
  if (!r.storeId.empty()) out = "storeId '" + r.storeId + "'";
  if (!r.name.empty()) out += (out.empty() ? "" : ", ") + ("name '" + r.name + "'");
  return out;
}

// Keeps the later of two records with one prefix, warning with both named.
void dropDuplicatePrefixes(std::vector<StoreRecord>& stores, std::string_view origin) {
  std::unordered_map<std::string_view, std::size_t> seen;
  seen.reserve(stores.size());
  std::vector<bool> dropped;
  for (std::size_t i = 0; i < stores.size(); ++i) {
    auto [it, inserted] = seen.try_emplace(stores[i].prefix, i);
    if (inserted) continue;
    if (dropped.empty()) dropped.resize(stores.size(), false);
    spdlog::warn("registry: {} lists prefix '{}' twice ({} and {}); using the later one", origin,
                 stores[i].prefix, describeStore(stores[it->second]), describeStore(stores[i]));
    dropped[it->second] = true;
    it->second = i;
  }
  if (dropped.empty()) return;
  seen.clear();  // its keys point into `stores`, which is about to move
  std::size_t out = 0;
  for (std::size_t i = 0; i < stores.size(); ++i) {
    if (!dropped[i]) {
      if (out != i) stores[out] = std::move(stores[i]);
      ++out;
    }
  }
  stores.resize(out);
}

bool sameContent(const router::RegistrySnapshot& current, const std::vector<StoreRecord>& stores) {
  // `stores` has unique prefixes, so equal sizes + every record found equal = same set.
  if (current.size() != stores.size()) return false;
  for (const StoreRecord& r : stores) {
    const StoreRecord* mine = current.findByPrefix(r.prefix);
    if (!mine || !sameRecord(*mine, r)) return false;
  }
  return true;
}

// ---- BSON documents (upstream and cache) -------------------------------------------------

std::string integralText(double d) {
  if (std::isfinite(d) && d == std::trunc(d) && std::fabs(d) < 9.0e15) {
    return std::to_string(static_cast<std::int64_t>(d));
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", d);
  return buf;
}

// A scalar as text: ObjectId hex, strings as is, numbers in decimal; "" for anything else.
std::string scalarText(const bson_iter_t& it) {
  switch (bson_iter_type(&it)) {
    case BSON_TYPE_OID: {
      char hex[25];
      bson_oid_to_string(bson_iter_oid(&it), hex);
      return hex;
    }
    case BSON_TYPE_UTF8: {
      std::uint32_t len = 0;
      const char* s = bson_iter_utf8(&it, &len);
      return std::string(s, len);
    }
    case BSON_TYPE_INT32:
      return std::to_string(bson_iter_int32(&it));
    case BSON_TYPE_INT64:
      return std::to_string(bson_iter_int64(&it));
    case BSON_TYPE_DOUBLE:
      return integralText(bson_iter_double(&it));
    default:
      return {};
  }
}

enum class DocResult { kOk, kNoPrefix };

// Converts one registry document. `warning` is set when databaseId had to be defaulted.
DocResult recordFromBson(const bson_t* doc, StoreRecord& out, std::string& id, std::string& warning) {
  out = StoreRecord{};
  bool hasPrefix = false;
  bson_iter_t it;
  if (!bson_iter_init(&it, doc)) return DocResult::kNoPrefix;
  while (bson_iter_next(&it)) {
    const std::string_view key = bson_iter_key(&it);
    if (key == "_id") {
      id = scalarText(it);
    } else if (key == "storeId") {
      out.storeId = scalarText(it);
    } else if (key == "name") {
      if (BSON_ITER_HOLDS_UTF8(&it)) out.name = scalarText(it);
    } else if (key == "prefix") {
      if (BSON_ITER_HOLDS_UTF8(&it)) {
        out.prefix = scalarText(it);
        hasPrefix = !out.prefix.empty();
      }
    } else if (key == "databaseId") {
      constexpr auto kMax = std::numeric_limits<std::int32_t>::max();
      std::int64_t value = -1;
      switch (bson_iter_type(&it)) {
        case BSON_TYPE_INT32:
          value = bson_iter_int32(&it);
          break;
        case BSON_TYPE_INT64:
          value = bson_iter_int64(&it);
          break;
        case BSON_TYPE_DOUBLE: {
          const double d = bson_iter_double(&it);
          if (std::isfinite(d) && d >= 0 && d <= kMax) value = static_cast<std::int64_t>(d);
          break;
        }
        case BSON_TYPE_NULL:
        case BSON_TYPE_UNDEFINED:
          value = 0;
          break;
        default:
          break;
      }
      if (value < 0 || value > kMax) {
        warning = "databaseId is not a whole number from 0 to 2147483647; treating it as 0";
        value = 0;
      }
      out.databaseId = static_cast<std::int32_t>(value);
    }
  }
  return hasPrefix ? DocResult::kOk : DocResult::kNoPrefix;
}

// Adds a document to `stores` (or skips it, with the reason logged). `where` names it.
void addDocument(const bson_t* doc, std::vector<StoreRecord>& stores, std::string_view where) {
  StoreRecord record;
  std::string id;
  std::string warning;
  if (recordFromBson(doc, record, id, warning) != DocResult::kOk) {
    spdlog::debug("registry: skipping {} document _id '{}': no non-empty string prefix", where, id);
    return;
  }
  if (!warning.empty()) {
    spdlog::warn("registry: {} document _id '{}' (prefix '{}'): {}", where, id, record.prefix, warning);
  }
  stores.push_back(std::move(record));
}

// ---- Files --------------------------------------------------------------------------------

bool readWholeFile(const std::string& path, std::string& text, std::string& error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = "cannot read registry file " + path + ": " + std::strerror(errno);
    return false;
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) {
    error = "cannot read registry file " + path;
    return false;
  }
  text = std::move(buffer).str();
  return true;
}

bool isPrefixCharacter(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

}  // namespace

// ---- YAML registry files ------------------------------------------------------------------

bool parseRegistryYaml(const std::string& text, const std::string& origin,
                       std::vector<StoreRecord>& stores, std::string& error) {
  stores.clear();
  std::vector<std::string> problems;
  auto problem = [&](const std::string& path, const std::string& what) {
    problems.push_back(origin + ": " + path + ": " + what);
  };
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    error = origin + ": invalid YAML at line " + std::to_string(e.mark.line + 1) + ", column " +
            std::to_string(e.mark.column + 1) + ": " + e.msg;
    return false;
  }
  if (!root.IsMap() || !root["stores"]) {
    error = origin + ": expected a mapping with a 'stores' list at the top level";
    return false;
  }
  const YAML::Node list = root["stores"];
  if (!list.IsSequence()) {
    error = origin + ": stores: expected a list of {storeId, name, prefix, databaseId}";
    return false;
  }
  struct Seen {
    std::size_t entry;  // index in the YAML list
    std::size_t store;  // index in `stores`
  };
  std::unordered_map<std::string, Seen> firstByPrefix;
  for (std::size_t i = 0; i < list.size(); ++i) {
    const std::string at = "stores[" + std::to_string(i) + "]";
    const YAML::Node entry = list[i];
    if (!entry.IsMap()) {
      problem(at, "expected a mapping with storeId, name, prefix, databaseId");
      continue;
    }
    StoreRecord record;
    bool prefixOk = false;
    bool hasPrefix = false;
    for (const auto& field : entry) {
      const std::string key = field.first.IsScalar() ? field.first.Scalar() : std::string("?");
      const YAML::Node& value = field.second;
      const std::string path = at + "." + key;
      if (key == "_id") continue;
      if (key != "storeId" && key != "name" && key != "prefix" && key != "databaseId") {
        problem(at, "unknown key '" + key + "' (expected storeId, name, prefix, databaseId)");
        continue;
      }
      if (value.IsNull()) {
        if (key == "prefix") hasPrefix = false;
        continue;  // absent: defaults apply (prefix is then reported missing)
      }
      if (!value.IsScalar()) {
        problem(path, "expected a single value, not a list or mapping");
        if (key == "prefix") hasPrefix = true;
        continue;
      }
      const std::string& s = value.Scalar();
      if (key == "storeId") {
        record.storeId = s;
      } else if (key == "name") {
        record.name = s;
      } else if (key == "prefix") {
        hasPrefix = true;
        if (s.empty()) {
          problem(path, "must not be empty");
        } else if (!std::all_of(s.begin(), s.end(), isPrefixCharacter)) {
          problem(path, "'" + s + "' may only contain ASCII letters and digits ([A-Za-z0-9]+)");
        } else {
          record.prefix = s;
          prefixOk = true;
        }
      } else {  // databaseId
        std::int64_t v = -1;
        auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
        if (ec != std::errc() || end != s.data() + s.size() || v < 0 ||
            v > std::numeric_limits<std::int32_t>::max()) {
          problem(path, "expected a whole number from 0 to 2147483647, got '" + s + "'");
        } else {
          record.databaseId = static_cast<std::int32_t>(v);
        }
      }
    }
    if (!hasPrefix) problem(at, "prefix is required");
    if (!prefixOk) continue;
    auto [it, inserted] = firstByPrefix.try_emplace(record.prefix, Seen{i, stores.size()});
    if (!inserted) {
      const StoreRecord& first = stores[it->second.store];
      problem(at + ".prefix", "duplicate prefix '" + record.prefix + "' (" + describeStore(record) +
                                  "); stores[" + std::to_string(it->second.entry) + "] (" +
                                  describeStore(first) + ") has it too");
      continue;
    }
    stores.push_back(std::move(record));
  }
  if (!problems.empty()) {
    error.clear();
    for (const std::string& p : problems) error += (error.empty() ? "" : "; ") + p;
    stores.clear();
    return false;
  }
  return true;
}

bool loadRegistryFile(const std::string& path, std::vector<StoreRecord>& stores, std::string& error) {
  std::string text;
  if (!readWholeFile(path, text, error)) return false;
  return parseRegistryYaml(text, path, stores, error);
}

// ---- Cache --------------------------------------------------------------------------------

bool saveRegistryCache(const std::string& path, std::span<const StoreRecord> stores, std::string& error) {
  static std::atomic<unsigned> counter{0};
  const std::string temp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
  std::FILE* out = std::fopen(temp.c_str(), "w");
  if (!out) {
    error = "cannot write registry cache " + temp + ": " + std::strerror(errno);
    return false;
  }
  // JSON lines written by hand (libbson's JSON writer is several times slower at a million
  // stores); read back with libbson's JSON reader.
  std::string buffer = "{\"mongogateRegistryCache\": " + std::to_string(kCacheFormat) +
                       ", \"count\": " + std::to_string(stores.size()) + "}\n";
  bool ok = true;
  auto flush = [&] {
    if (std::fwrite(buffer.data(), 1, buffer.size(), out) != buffer.size()) {
      error = "cannot write registry cache " + temp + ": " + std::strerror(errno);
      ok = false;
    }
    buffer.clear();
  };
  for (std::size_t i = 0; ok && i < stores.size(); ++i) {
    const StoreRecord& r = stores[i];
    // appendJsonString would replace invalid UTF-8 by U+FFFD: refuse rather than cache a changed value.
    for (const std::string* field : {&r.storeId, &r.name, &r.prefix}) {
      if (!bson_utf8_validate(field->data(), field->size(), false)) {
        error = "cannot write registry cache " + path + ": store #" + std::to_string(i) +
                " has a storeId, name or prefix that is not valid UTF-8";
        ok = false;
      }
    }
    if (!ok) break;
    buffer += "{\"storeId\": ";
    appendJsonString(buffer, r.storeId);
    buffer += ", \"name\": ";
    appendJsonString(buffer, r.name);
    buffer += ", \"prefix\": ";
    appendJsonString(buffer, r.prefix);
    buffer += ", \"databaseId\": ";
    buffer += std::to_string(r.databaseId);
    buffer += "}\n";
    if (buffer.size() >= (1u << 20)) flush();
  }
  if (ok) flush();
  if (ok && (std::fflush(out) != 0 || ::fsync(fileno(out)) != 0)) {
    error = "cannot write registry cache " + temp + ": " + std::strerror(errno);
    ok = false;
  }
  if (std::fclose(out) != 0 && ok) {
    error = "cannot write registry cache " + temp + ": " + std::strerror(errno);
    ok = false;
  }
  if (ok && std::rename(temp.c_str(), path.c_str()) != 0) {
    error = "cannot rename registry cache " + temp + " to " + path + ": " + std::strerror(errno);
    ok = false;
  }
  if (!ok) {
    std::remove(temp.c_str());
    return false;
  }
  // Make the rename itself durable.
  const auto slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
  return true;
}

bool loadRegistryCache(const std::string& path, std::vector<StoreRecord>& stores, std::string& error) {
  stores.clear();
  bson_error_t err;
  bson_json_reader_t* reader = bson_json_reader_new_from_file(path.c_str(), &err);
  if (!reader) {
    error = "cannot read registry cache " + path + ": " + err.message;
    return false;
  }
  bson_t doc = BSON_INITIALIZER;
  std::int64_t expected = -1;
  bool ok = true;
  for (std::size_t line = 1;; ++line) {
    bson_reinit(&doc);
    const int r = bson_json_reader_read(reader, &doc, &err);
    if (r == 0) break;
    if (r < 0) {
      error = "registry cache " + path + " is corrupt near document " + std::to_string(line) + ": " + err.message;
      ok = false;
      break;
    }
    if (expected < 0) {
      bson_iter_t it;
      std::int32_t format = 0;
      if (bson_iter_init_find(&it, &doc, "mongogateRegistryCache") && BSON_ITER_HOLDS_INT(&it)) {
        format = static_cast<std::int32_t>(bson_iter_as_int64(&it));
      }
      if (format != kCacheFormat || !bson_iter_init_find(&it, &doc, "count") || !BSON_ITER_HOLDS_INT(&it) ||
          bson_iter_as_int64(&it) < 0) {
        error = "registry cache " + path + " does not start with a mongogate cache header";
        ok = false;
        break;
      }
      expected = bson_iter_as_int64(&it);
      stores.reserve(static_cast<std::size_t>(std::min<std::int64_t>(expected, 10'000'000)));
      continue;
    }
    addDocument(&doc, stores, "cache");
  }
  bson_destroy(&doc);
  bson_json_reader_destroy(reader);
  if (ok && expected < 0) {
    error = "registry cache " + path + " is empty";
    ok = false;
  }
  if (ok && static_cast<std::int64_t>(stores.size()) != expected) {
    error = "registry cache " + path + " holds " + std::to_string(stores.size()) + " usable stores, its header says " +
            std::to_string(expected);
    ok = false;
  }
  if (!ok) stores.clear();
  return ok;
}

// ---- RegistrySource -----------------------------------------------------------------------

struct RegistrySource::Upstream {
  mongoc_uri_t* uri = nullptr;
  mongoc_client_pool_t* pool = nullptr;
  std::string database;
  std::string collection;
  std::string configError;            // set when the URI could not be used
  std::vector<std::string> secrets;   // removed from every message

  Upstream() = default;
  Upstream(const Upstream&) = delete;
  Upstream& operator=(const Upstream&) = delete;
  ~Upstream() {
    if (pool) mongoc_client_pool_destroy(pool);
    if (uri) mongoc_uri_destroy(uri);
  }
  std::string ns() const { return database + "." + collection; }
};

namespace {

// A pooled client, returned on scope exit.
class PooledClient {
 public:
  explicit PooledClient(mongoc_client_pool_t* pool) : pool_(pool), client_(mongoc_client_pool_pop(pool)) {}
  ~PooledClient() { mongoc_client_pool_push(pool_, client_); }
  PooledClient(const PooledClient&) = delete;
  PooledClient& operator=(const PooledClient&) = delete;
  mongoc_client_t* get() const { return client_; }

 private:
  mongoc_client_pool_t* pool_;
  mongoc_client_t* client_;
};

struct CollectionHandle {
  explicit CollectionHandle(mongoc_collection_t* c) : c(c) {}
  ~CollectionHandle() { mongoc_collection_destroy(c); }
  CollectionHandle(const CollectionHandle&) = delete;
  CollectionHandle& operator=(const CollectionHandle&) = delete;
  mongoc_collection_t* c;
};

std::string userInfoOf(const std::string& uri) {
  const auto scheme = uri.find("://");
  if (scheme == std::string::npos) return {};
  const auto hostStart = scheme + 3;
  auto end = uri.find_first_of("/?", hostStart);
  if (end == std::string::npos) end = uri.size();
  const auto at = uri.rfind('@', end);
  if (at == std::string::npos || at < hostStart) return {};
  return uri.substr(hostStart, at - hostStart);
}

}  // namespace

RegistrySource::RegistrySource(RegistrySourceSettings settings, router::StoreRegistry& registry)
    : settings_(std::move(settings)), registry_(registry), upstream_(std::make_unique<Upstream>()) {
  if (settings_.kind != RegistrySourceSettings::Kind::kUpstream) return;
  initMongoc();
  Upstream& up = *upstream_;
  up.collection = settings_.collection;
  const std::string userInfo = userInfoOf(settings_.upstreamUri);
  if (!userInfo.empty()) {
    up.secrets.push_back(userInfo);
    const auto colon = userInfo.find(':');
    if (colon != std::string::npos && userInfo.size() - colon > 4) up.secrets.push_back(userInfo.substr(colon + 1));
  }
  bson_error_t err;
  up.uri = mongoc_uri_new_with_error(settings_.upstreamUri.c_str(), &err);
  if (!up.uri) {
    std::string message = scrub(err.message);
    if (message.find('@') != std::string::npos) message = "the connection string is malformed";
    up.configError = "invalid main upstream connection string: " + message;
    return;
  }
  if (const char* password = mongoc_uri_get_password(up.uri); password && std::strlen(password) >= 4) {
    up.secrets.emplace_back(password);
  }
  // Bounded waits: a registry load must fail over to the cache, not hang. Values the URI
  // sets itself are kept.
  const auto timeout = static_cast<std::int32_t>(std::max<std::uint32_t>(settings_.serverSelectionTimeoutMs, 1));
  if (!mongoc_uri_has_option(up.uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS)) {
    mongoc_uri_set_option_as_int32(up.uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, timeout);
  }
  if (!mongoc_uri_has_option(up.uri, MONGOC_URI_CONNECTTIMEOUTMS)) {
    mongoc_uri_set_option_as_int32(up.uri, MONGOC_URI_CONNECTTIMEOUTMS, std::min<std::int32_t>(timeout, 10'000));
  }
  if (!mongoc_uri_has_option(up.uri, MONGOC_URI_SOCKETTIMEOUTMS)) {
    // Also bounds how long stop() can wait for a blocked call to an unresponsive upstream.
    mongoc_uri_set_option_as_int32(up.uri, MONGOC_URI_SOCKETTIMEOUTMS, kSocketTimeoutMs);
  }
  if (!mongoc_uri_get_appname(up.uri)) mongoc_uri_set_appname(up.uri, "mongogate-registry");
  const char* uriDb = mongoc_uri_get_database(up.uri);
  up.database = !settings_.mainDatabase.empty() ? settings_.mainDatabase : (uriDb && *uriDb ? uriDb : "test");
  up.pool = mongoc_client_pool_new_with_error(up.uri, &err);
  if (!up.pool) {
    up.configError = "cannot use the main upstream connection string: " + scrub(err.message);
    return;
  }
  mongoc_client_pool_set_error_api(up.pool, MONGOC_ERROR_API_VERSION_2);
}

RegistrySource::~RegistrySource() { stop(); }

std::string RegistrySource::scrub(std::string message) const {
  for (const std::string& secret : upstream_->secrets) {
    for (auto pos = message.find(secret); pos != std::string::npos; pos = message.find(secret, pos + 4)) {
      message.replace(pos, secret.size(), "****");
    }
  }
  return message;
}

bool RegistrySource::fetchFromUpstream(std::vector<StoreRecord>& stores, std::string& error) {
  const Upstream& up = *upstream_;
  if (!up.configError.empty()) {
    error = up.configError;
    return false;
  }
  PooledClient client(up.pool);
  CollectionHandle collection(mongoc_client_get_collection(client.get(), up.database.c_str(), up.collection.c_str()));
  bson_t filter = BSON_INITIALIZER;
  bson_t opts = BSON_INITIALIZER;
  bson_t projection;
  BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &projection);
  BSON_APPEND_INT32(&projection, "storeId", 1);
  BSON_APPEND_INT32(&projection, "name", 1);
  BSON_APPEND_INT32(&projection, "prefix", 1);
  BSON_APPEND_INT32(&projection, "databaseId", 1);
  bson_append_document_end(&opts, &projection);
  mongoc_cursor_t* cursor = mongoc_collection_find_with_opts(collection.c, &filter, &opts, nullptr);
  bson_destroy(&opts);
  bson_destroy(&filter);
  stores.clear();
  const bson_t* doc = nullptr;
  const std::string where = "main upstream " + up.ns();
  while (mongoc_cursor_next(cursor, &doc)) addDocument(doc, stores, where);
  bson_error_t err;
  const bool failed = mongoc_cursor_error(cursor, &err);
  mongoc_cursor_destroy(cursor);
  if (failed) {
    stores.clear();
    error = "cannot read the registry from " + where + ": " + scrub(err.message);
    return false;
  }
  return true;
}

bool RegistrySource::insertStore(StoreRecord& store, bool& exists, std::string& error) {
  exists = false;
  const Upstream& up = *upstream_;
  if (settings_.kind != RegistrySourceSettings::Kind::kUpstream) {
    error = "the registry is read from a file";
    return false;
  }
  if (!up.configError.empty()) {
    error = up.configError;
    return false;
  }
  PooledClient client(up.pool);
  CollectionHandle collection(mongoc_client_get_collection(client.get(), up.database.c_str(), up.collection.c_str()));
  bson_error_t err;
  bson_t filter = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&filter, "prefix", store.prefix.c_str());
  const std::int64_t found = mongoc_collection_count_documents(collection.c, &filter, nullptr, nullptr, nullptr, &err);
  bson_destroy(&filter);
  if (found < 0) {
    error = "cannot read the registry from main upstream " + up.ns() + ": " + scrub(err.message);
    return false;
  }
  if (found > 0) {
    exists = true;
    error = "a store with prefix '" + store.prefix + "' is already in " + up.ns();
    return false;
  }
  bson_oid_t id;
  bson_oid_init(&id, nullptr);
  bson_t doc = BSON_INITIALIZER;
  BSON_APPEND_OID(&doc, "_id", &id);
  if (store.storeId.empty()) {
    BSON_APPEND_OID(&doc, "storeId", &id);
    char hex[25];
    bson_oid_to_string(&id, hex);
    store.storeId = hex;
  } else {
    BSON_APPEND_UTF8(&doc, "storeId", store.storeId.c_str());
  }
  if (!store.name.empty()) BSON_APPEND_UTF8(&doc, "name", store.name.c_str());
  BSON_APPEND_UTF8(&doc, "prefix", store.prefix.c_str());
  BSON_APPEND_INT32(&doc, "databaseId", store.databaseId);
  const bool inserted = mongoc_collection_insert_one(collection.c, &doc, nullptr, nullptr, &err);
  bson_destroy(&doc);
  if (!inserted) {
    error = "cannot insert into main upstream " + up.ns() + ": " + scrub(err.message);
    return false;
  }
  spdlog::info("registry: store '{}' inserted into {} (databaseId {})", store.prefix, up.ns(), store.databaseId);
  return true;
}

RegistrySource::FileStamp RegistrySource::stampOf(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return {};
  return {true, static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino),
          static_cast<std::int64_t>(st.st_size),
          static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
}

bool RegistrySource::fetch(std::vector<StoreRecord>& stores, std::string& error) {
  if (settings_.kind == RegistrySourceSettings::Kind::kFile) {
    // Stamp before reading: a write racing with the read moves the stamp again, so the
    // follower reads the file once more.
    fileStamp_ = stampOf(settings_.filePath);
    return loadRegistryFile(settings_.filePath, stores, error);
  }
  return fetchFromUpstream(stores, error);
}

bool RegistrySource::publishIfChanged(std::vector<StoreRecord> stores) {
  const bool fromUpstream = settings_.kind == RegistrySourceSettings::Kind::kUpstream;
  dropDuplicatePrefixes(stores, fromUpstream ? "the main upstream" : settings_.filePath);
  if (registry_.loaded() && sameContent(*registry_.current(), stores)) return false;
  std::string cacheError;
  const bool saveCache = fromUpstream && !settings_.cacheFile.empty();
  // Saved before publishing: `stores` moves into the snapshot.
  if (saveCache && !saveRegistryCache(settings_.cacheFile, stores, cacheError)) {
    spdlog::warn("registry: {}", cacheError);
  }
  const std::size_t count = stores.size();
  registry_.publish(std::move(stores));
  publications_.fetch_add(1, std::memory_order_acq_rel);
  spdlog::info("registry: published version {} ({} stores from {})", registry_.version(), count,
               fromUpstream ? "the main upstream " + upstream_->ns() : settings_.filePath);
  return true;
}

RegistrySource::Reload RegistrySource::reload(std::string& error) {
  std::lock_guard lock(reloadMutex_);
  std::vector<StoreRecord> stores;
  if (!fetch(stores, error)) return Reload::kFailed;
  return publishIfChanged(std::move(stores)) ? Reload::kPublished : Reload::kUnchanged;
}

bool RegistrySource::reloadNow(std::string& error) { return reload(error) != Reload::kFailed; }

bool RegistrySource::loadInitial(std::string& error) {
  std::lock_guard lock(reloadMutex_);
  std::vector<StoreRecord> stores;
  std::string fetchError;
  if (fetch(stores, fetchError)) {
    loadedFromCache_.store(false, std::memory_order_release);
    publishIfChanged(std::move(stores));
    return true;
  }
  if (settings_.kind == RegistrySourceSettings::Kind::kFile) {
    error = fetchError;
    return false;
  }
  if (settings_.cacheFile.empty()) {
    error = fetchError + " (and no registry cache file is configured)";
    return false;
  }
  std::string cacheError;
  if (!loadRegistryCache(settings_.cacheFile, stores, cacheError)) {
    error = fetchError + "; the cache cannot be used either: " + cacheError;
    return false;
  }
  spdlog::warn("registry: {}; starting from the cached registry {} ({} stores) until the main upstream answers",
               fetchError, settings_.cacheFile, stores.size());
  const std::size_t count = stores.size();
  dropDuplicatePrefixes(stores, settings_.cacheFile);
  registry_.publish(std::move(stores));
  publications_.fetch_add(1, std::memory_order_acq_rel);
  loadedFromCache_.store(true, std::memory_order_release);
  spdlog::info("registry: published version {} ({} stores from the cache {})", registry_.version(), count,
               settings_.cacheFile);
  return true;
}

void RegistrySource::start() {
  if (thread_.joinable()) return;
  stop_.store(false, std::memory_order_release);
  thread_ = std::thread([this] { run(); });
}

void RegistrySource::stop() {
  {
    std::lock_guard lock(stopMutex_);
    stop_.store(true, std::memory_order_release);
  }
  stopSignal_.notify_all();
  if (thread_.joinable()) thread_.join();
  mode_.store(RegistryFollowMode::kStopped, std::memory_order_release);
}

bool RegistrySource::waitForStop(std::uint32_t ms) {
  ms = std::max<std::uint32_t>(ms, 10);  // an interval of 0 must not turn into a busy loop
  std::unique_lock lock(stopMutex_);
  return stopSignal_.wait_for(lock, std::chrono::milliseconds(ms), [this] { return stopping(); });
}

bool RegistrySource::reloadLogged() {
  std::string error;
  const Reload result = reload(error);
  if (result == Reload::kFailed) {
    if (!failing_) {
      spdlog::warn("registry: reload failed, keeping the last good registry (version {}): {}",
                   registry_.version(), error);
    } else {
      spdlog::debug("registry: reload failed again: {}", error);
    }
    failing_ = true;
    return false;
  }
  if (failing_) spdlog::info("registry: the source answers again");
  failing_ = false;
  loadedFromCache_.store(false, std::memory_order_release);  // the source itself confirmed it
  return true;
}

void RegistrySource::run() {
  if (settings_.kind == RegistrySourceSettings::Kind::kFile) {
    runFileWatch();
    return;
  }
  bool streams = settings_.useChangeStreams;
  while (!stopping()) {
    if (streams) {
      if (!followChangeStream()) {
        streams = false;
      } else {
        // The stream ended for a reason worth retrying (upstream down, invalidated):
        // back off; the next attempt starts with a full reload anyway.
        if (waitForStop(settings_.pollIntervalMs)) break;
        continue;
      }
    }
    if (mode_.exchange(RegistryFollowMode::kPolling, std::memory_order_acq_rel) != RegistryFollowMode::kPolling) {
      spdlog::info("registry: polling {} every {} ms", upstream_->ns(), settings_.pollIntervalMs);
    }
    reloadLogged();
    if (waitForStop(settings_.pollIntervalMs)) break;
  }
  mode_.store(RegistryFollowMode::kStopped, std::memory_order_release);
}

void RegistrySource::runFileWatch() {
  mode_.store(RegistryFollowMode::kFileWatch, std::memory_order_release);
  while (!waitForStop(settings_.pollIntervalMs)) {
    const FileStamp now = stampOf(settings_.filePath);
    bool changed = false;
    {
      std::lock_guard lock(reloadMutex_);
      changed = !(now == fileStamp_);
    }
    if (changed) reloadLogged();
  }
}

bool RegistrySource::followChangeStream() {
  const Upstream& up = *upstream_;
  if (!up.configError.empty()) return false;
  PooledClient client(up.pool);
  CollectionHandle collection(mongoc_client_get_collection(client.get(), up.database.c_str(), up.collection.c_str()));
  bson_t pipeline = BSON_INITIALIZER;
  bson_t opts = BSON_INITIALIZER;
  // getMore waits at most this long for an event, so the loop sees stop() within ~1 s.
  BSON_APPEND_INT64(&opts, "maxAwaitTimeMS", kChangeStreamMaxAwaitMs);
  mongoc_change_stream_t* stream = mongoc_collection_watch(collection.c, &pipeline, &opts);
  bson_destroy(&opts);
  bson_destroy(&pipeline);
  struct StreamGuard {
    mongoc_change_stream_t* s;
    ~StreamGuard() { mongoc_change_stream_destroy(s); }
  } guard{stream};

  bson_error_t err;
  const bson_t* reply = nullptr;
  if (mongoc_change_stream_error_document(stream, &err, &reply)) {
    if (changeStreamsRefused(err)) {
      spdlog::info("registry: the main upstream offers no change stream on {} ({}, code {})", up.ns(),
                   scrub(err.message), err.code);
      return false;
    }
    if (!streamFailing_) {
      spdlog::warn("registry: cannot watch {} ({}); retrying every {} ms", up.ns(), scrub(err.message),
                   settings_.pollIntervalMs);
    }
    streamFailing_ = true;
    return true;
  }
  streamFailing_ = false;
  mode_.store(RegistryFollowMode::kChangeStream, std::memory_order_release);
  spdlog::info("registry: following {} through a change stream", up.ns());
  // Whatever changed before the stream opened. A failed reload stays due (dirty) and is
  // retried at the next turn of the loop, so a blip cannot leave the registry stale.
  bool dirty = !reloadLogged();
  auto lastReload = std::chrono::steady_clock::now();
  while (!stopping()) {
    const bson_t* event = nullptr;
    const bool got = mongoc_change_stream_next(stream, &event);
    if (got) {
      bson_iter_t it;
      std::string_view type;
      if (bson_iter_init_find(&it, event, "operationType") && BSON_ITER_HOLDS_UTF8(&it)) {
        type = bson_iter_utf8(&it, nullptr);
      }
      spdlog::debug("registry: change event '{}' on {}", type, up.ns());
      if (type == "invalidate" || type == "drop" || type == "rename" || type == "dropDatabase") {
        reloadLogged();
        return true;  // the stream is over; open a new one
      }
      dirty = true;
    } else if (mongoc_change_stream_error_document(stream, &err, &reply)) {
      spdlog::warn("registry: the change stream on {} failed ({}); reopening", up.ns(), scrub(err.message));
      return true;
    }
    // Every event reloads the collection (inserts, updates, replaces and deletes alike);
    // a burst costs at most one reload a second plus one when it is over.
    const auto now = std::chrono::steady_clock::now();
    if (dirty && (!got || now - lastReload >= kEventReloadSpacing)) {
      dirty = !reloadLogged();
      lastReload = std::chrono::steady_clock::now();
    }
  }
  return true;
}

}  // namespace mongogate::proxy
