#include "proxy/topology.h"

#include <bson/bson.h>

#include <algorithm>
#include <cctype>
#include <limits>

namespace mongogate::proxy {
namespace {

std::string_view utf8(const bson_iter_t* it) {
  std::uint32_t length = 0;
  const char* value = bson_iter_utf8(it, &length);
  return {value, length};
}

void appendHostsOf(const bson_iter_t* array, std::vector<std::string>& out) {
  bson_iter_t child;
  if (!BSON_ITER_HOLDS_ARRAY(array) || !bson_iter_recurse(array, &child)) return;
  while (bson_iter_next(&child)) {
    if (BSON_ITER_HOLDS_UTF8(&child)) out.push_back(normalizeAddress(utf8(&child)));
  }
}

bool contains(const std::vector<std::string>& list, const std::string& value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

bool matchesTags(const ServerDescription& server, const std::vector<std::pair<std::string, std::string>>& tags) {
  for (const auto& [name, value] : tags) {
    const bool found = std::any_of(server.tags.begin(), server.tags.end(),
                                   [&](const auto& tag) { return tag.first == name && tag.second == value; });
    if (!found) return false;
  }
  return true;
}

// Keeps the candidates matching the first tag set that matches any of them.
void filterByTags(const TopologySnapshot& snapshot, std::vector<std::size_t>& candidates,
                  const ReadPreference& preference) {
  if (preference.tagSets.empty()) return;
  for (const auto& tagSet : preference.tagSets) {
    std::vector<std::size_t> matching;
    for (std::size_t i : candidates) {
      if (matchesTags(snapshot.servers[i], tagSet)) matching.push_back(i);
    }
    if (!matching.empty()) {
      candidates.swap(matching);
      return;
    }
  }
  candidates.clear();
}

// Within the latency window of the fastest candidate, then round-robin.
std::optional<std::size_t> pick(const TopologySnapshot& snapshot, std::vector<std::size_t>& candidates,
                                std::uint64_t spin, std::uint32_t localThresholdMs) {
  if (candidates.empty()) return std::nullopt;
  double fastest = std::numeric_limits<double>::max();
  for (std::size_t i : candidates) {
    if (snapshot.servers[i].rttMs >= 0) fastest = std::min(fastest, snapshot.servers[i].rttMs);
  }
  if (fastest != std::numeric_limits<double>::max()) {
    std::erase_if(candidates, [&](std::size_t i) {
      const double rtt = snapshot.servers[i].rttMs;
      return rtt >= 0 && rtt > fastest + localThresholdMs;
    });
  }
  return candidates[spin % candidates.size()];
}

std::vector<std::size_t> ofType(const TopologySnapshot& snapshot, ServerType type) {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < snapshot.servers.size(); ++i) {
    if (snapshot.servers[i].type == type) out.push_back(i);
  }
  return out;
}

}  // namespace

const char* toString(ServerType type) {
  switch (type) {
    case ServerType::kUnknown: return "Unknown";
    case ServerType::kStandalone: return "Standalone";
    case ServerType::kMongos: return "Mongos";
    case ServerType::kRSPrimary: return "RSPrimary";
    case ServerType::kRSSecondary: return "RSSecondary";
    case ServerType::kRSArbiter: return "RSArbiter";
    case ServerType::kRSOther: return "RSOther";
    case ServerType::kRSGhost: return "RSGhost";
  }
  return "Unknown";
}

const char* toString(TopologyType type) {
  switch (type) {
    case TopologyType::kSingle: return "Single";
    case TopologyType::kUnknown: return "Unknown";
    case TopologyType::kReplicaSetNoPrimary: return "ReplicaSetNoPrimary";
    case TopologyType::kReplicaSetWithPrimary: return "ReplicaSetWithPrimary";
    case TopologyType::kSharded: return "Sharded";
  }
  return "Unknown";
}

std::string normalizeAddress(std::string_view address) {
  std::string out(address);
  // The port stays as written; only the host part is case-insensitive.
  const auto colon = out.rfind(':');
  const std::size_t hostEnd = colon == std::string::npos ? out.size() : colon;
  for (std::size_t i = 0; i < hostEnd; ++i) out[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(out[i])));
  if (colon == std::string::npos) out += ":27017";
  return out;
}

std::string addressOf(const config::HostPort& host) { return normalizeAddress(host.toString()); }

ServerDescription describeHello(std::string address, wire::Bytes reply, double rttMs) {
  ServerDescription d;
  d.address = std::move(address);
  d.rttMs = rttMs;
  bson_iter_t it;
  if (!bson_iter_init_from_data(&it, reply.data(), reply.size())) {
    d.error = "malformed hello reply";
    return d;
  }
  bool ok = false;
  bool writablePrimary = false;
  bool secondary = false;
  bool arbiterOnly = false;
  bool hidden = false;
  bool isreplicaset = false;
  bool isdbgrid = false;
  while (bson_iter_next(&it)) {
    const std::string_view key = bson_iter_key(&it);
    if (key == "ok") {
      ok = bson_iter_as_bool(&it);
    } else if (key == "isWritablePrimary" || key == "ismaster") {
      writablePrimary = bson_iter_as_bool(&it);
    } else if (key == "secondary") {
      secondary = bson_iter_as_bool(&it);
    } else if (key == "arbiterOnly") {
      arbiterOnly = bson_iter_as_bool(&it);
    } else if (key == "hidden") {
      hidden = bson_iter_as_bool(&it);
    } else if (key == "isreplicaset") {
      isreplicaset = bson_iter_as_bool(&it);
    } else if (key == "msg" && BSON_ITER_HOLDS_UTF8(&it)) {
      isdbgrid = utf8(&it) == "isdbgrid";
    } else if (key == "setName" && BSON_ITER_HOLDS_UTF8(&it)) {
      d.setName = utf8(&it);
    } else if (key == "me" && BSON_ITER_HOLDS_UTF8(&it)) {
      d.me = normalizeAddress(utf8(&it));
    } else if (key == "primary" && BSON_ITER_HOLDS_UTF8(&it)) {
      d.primary = normalizeAddress(utf8(&it));
    } else if (key == "hosts" || key == "passives" || key == "arbiters") {
      appendHostsOf(&it, d.hosts);
    } else if (key == "setVersion" && BSON_ITER_HOLDS_NUMBER(&it)) {
      d.setVersion = bson_iter_as_int64(&it);
    } else if (key == "electionId" && BSON_ITER_HOLDS_OID(&it)) {
      const bson_oid_t* oid = bson_iter_oid(&it);
      d.electionId.assign(reinterpret_cast<const char*>(oid->bytes), sizeof oid->bytes);
    } else if (key == "tags" && BSON_ITER_HOLDS_DOCUMENT(&it)) {
      bson_iter_t tag;
      if (bson_iter_recurse(&it, &tag)) {
        while (bson_iter_next(&tag)) {
          if (BSON_ITER_HOLDS_UTF8(&tag)) d.tags.emplace_back(bson_iter_key(&tag), utf8(&tag));
        }
      }
    }
  }
  if (!ok) {
    d.error = "hello failed";
    return d;
  }
  if (isreplicaset) {
    d.type = ServerType::kRSGhost;
  } else if (!d.setName.empty()) {
    if (hidden) {
      d.type = ServerType::kRSOther;
    } else if (writablePrimary) {
      d.type = ServerType::kRSPrimary;
    } else if (secondary) {
      d.type = ServerType::kRSSecondary;
    } else if (arbiterOnly) {
      d.type = ServerType::kRSArbiter;
    } else {
      d.type = ServerType::kRSOther;
    }
  } else if (isdbgrid) {
    d.type = ServerType::kMongos;
  } else {
    d.type = ServerType::kStandalone;
  }
  return d;
}

const ServerDescription* TopologySnapshot::find(std::size_t id) const {
  for (const ServerDescription& server : servers) {
    if (server.id == id) return &server;
  }
  return nullptr;
}

const ServerDescription* TopologySnapshot::primary() const {
  for (const ServerDescription& server : servers) {
    if (server.type == ServerType::kRSPrimary) return &server;
  }
  return nullptr;
}

TopologyState::TopologyState(const std::vector<config::HostPort>& seeds, std::string setName, bool single)
    : type_(single ? TopologyType::kSingle
                   : (setName.empty() ? TopologyType::kUnknown : TopologyType::kReplicaSetNoPrimary)),
      setName_(std::move(setName)) {
  for (const config::HostPort& seed : seeds) {
    add(addressOf(seed));
    if (single) break;
  }
}

ServerDescription* TopologyState::find(const std::string& address) {
  for (ServerDescription& server : servers_) {
    if (server.address == address) return &server;
  }
  return nullptr;
}

void TopologyState::add(const std::string& address) {
  if (find(address)) return;
  auto known = std::find(addresses_.begin(), addresses_.end(), address);
  std::size_t id = static_cast<std::size_t>(known - addresses_.begin());
  if (known == addresses_.end()) {
    if (addresses_.size() >= kMaxServersPerDeployment) return;
    addresses_.push_back(address);
  }
  ServerDescription server;
  server.id = id;
  server.address = address;
  servers_.push_back(std::move(server));
}

void TopologyState::remove(const std::string& address) {
  std::erase_if(servers_, [&](const ServerDescription& s) { return s.address == address; });
}

void TopologyState::addAll(const std::vector<std::string>& hosts) {
  for (const std::string& host : hosts) add(host);
}

void TopologyState::updateReplicaSetType() {
  const bool havePrimary = std::any_of(servers_.begin(), servers_.end(),
                                       [](const ServerDescription& s) { return s.type == ServerType::kRSPrimary; });
  type_ = havePrimary ? TopologyType::kReplicaSetWithPrimary : TopologyType::kReplicaSetNoPrimary;
}

// SDAM updateRSFromPrimary. Returns false when the description was stale (the server
// is left Unknown).
bool TopologyState::applyPrimary(const ServerDescription description) {
  if (description.setVersion && !description.electionId.empty()) {
    const bool older = maxSetVersion_ && (*maxSetVersion_ > *description.setVersion ||
                                          (*maxSetVersion_ == *description.setVersion &&
                                           !maxElectionId_.empty() && maxElectionId_ > description.electionId));
    if (older) {
      ServerDescription* server = find(description.address);
      *server = ServerDescription{};
      server->id = description.id;
      server->address = description.address;
      server->error = "stale primary (an older election)";
      return false;
    }
    maxSetVersion_ = description.setVersion;
    maxElectionId_ = description.electionId;
  } else if (description.setVersion && (!maxSetVersion_ || *description.setVersion > *maxSetVersion_)) {
    maxSetVersion_ = description.setVersion;
  }
  for (ServerDescription& other : servers_) {
    if (other.address != description.address && other.type == ServerType::kRSPrimary) {
      const std::size_t id = other.id;
      const std::string address = other.address;
      other = ServerDescription{};
      other.id = id;
      other.address = address;
      other.error = "another member became primary";
    }
  }
  addAll(description.hosts);
  // The primary's member list is authoritative.
  std::vector<std::string> gone;
  for (const ServerDescription& server : servers_) {
    if (!contains(description.hosts, server.address)) gone.push_back(server.address);
  }
  for (const std::string& address : gone) remove(address);
  return true;
}

bool TopologyState::apply(ServerDescription description) {
  ServerDescription* current = find(description.address);
  if (!current) return false;  // removed while it was being checked
  description.id = current->id;
  if (description.rttMs >= 0 && current->rttMs >= 0) {
    description.rttMs = 0.2 * description.rttMs + 0.8 * current->rttMs;  // SDAM's smoothing
  } else if (description.rttMs < 0) {
    description.rttMs = current->rttMs;
  }
  const bool changed = current->type != description.type || current->primary != description.primary ||
                       current->hosts != description.hosts || current->setName != description.setName;
  if (type_ == TopologyType::kSingle) {
    *current = std::move(description);
    return changed;
  }
  const std::string address = description.address;
  switch (description.type) {
    case ServerType::kUnknown:
    case ServerType::kRSGhost:
      *current = std::move(description);
      if (type_ == TopologyType::kReplicaSetWithPrimary || type_ == TopologyType::kReplicaSetNoPrimary) {
        updateReplicaSetType();
      }
      return changed;
    case ServerType::kStandalone:
      // A standalone among several seeds, or in a set or mongos list, is not one of them.
      remove(address);
      if (type_ == TopologyType::kReplicaSetWithPrimary) updateReplicaSetType();
      return true;
    case ServerType::kMongos:
      if (type_ == TopologyType::kUnknown) type_ = TopologyType::kSharded;
      if (type_ != TopologyType::kSharded) {
        remove(address);
        updateReplicaSetType();
        return true;
      }
      *current = std::move(description);
      return changed;
    default:  // a replica-set member
      break;
  }
  if (type_ == TopologyType::kSharded) {
    remove(address);
    return true;
  }
  if (type_ == TopologyType::kUnknown) type_ = TopologyType::kReplicaSetNoPrimary;
  if (setName_.empty()) setName_ = description.setName;
  if (description.setName != setName_) {
    remove(address);
    updateReplicaSetType();
    return true;
  }
  if (!description.me.empty() && description.me != address) {
    // Reached under another name than the set config's: drivers drop it.
    remove(address);
    updateReplicaSetType();
    return true;
  }
  const ServerType type = description.type;
  const std::vector<std::string> hosts = description.hosts;
  *current = std::move(description);
  if (type == ServerType::kRSPrimary) {
    applyPrimary(*current);  // by value: it grows and shrinks servers_
  } else if (!std::any_of(servers_.begin(), servers_.end(),
                          [](const ServerDescription& s) { return s.type == ServerType::kRSPrimary; })) {
    addAll(hosts);  // without a primary, any member's list extends the topology
  }
  updateReplicaSetType();
  return true;
}

bool TopologyState::markUnknown(std::size_t id, std::string error) {
  for (ServerDescription& server : servers_) {
    if (server.id != id) continue;
    const bool changed = server.type != ServerType::kUnknown;
    const std::string address = server.address;
    const double rtt = server.rttMs;
    server = ServerDescription{};
    server.id = id;
    server.address = address;
    server.rttMs = rtt;
    server.error = std::move(error);
    if (type_ == TopologyType::kReplicaSetWithPrimary) updateReplicaSetType();
    return changed;
  }
  return false;
}

std::shared_ptr<const TopologySnapshot> TopologyState::snapshot(std::uint64_t version) const {
  auto out = std::make_shared<TopologySnapshot>();
  out->type = type_;
  out->setName = setName_;
  out->servers = servers_;
  out->version = version;
  return out;
}

std::optional<ReadMode> readModeOf(std::string_view name) {
  if (name == "primary") return ReadMode::kPrimary;
  if (name == "primaryPreferred") return ReadMode::kPrimaryPreferred;
  if (name == "secondary") return ReadMode::kSecondary;
  if (name == "secondaryPreferred") return ReadMode::kSecondaryPreferred;
  if (name == "nearest") return ReadMode::kNearest;
  return std::nullopt;
}

ReadPreference readPreferenceOf(const config::UpstreamConfig& upstream) {
  ReadPreference preference;
  if (auto mode = readModeOf(upstream.readPreference)) preference.mode = *mode;
  preference.tagSets = upstream.readPreferenceTags;
  return preference;
}

std::optional<std::size_t> selectServer(const TopologySnapshot& snapshot, const Selection& selection,
                                        std::uint64_t spin, std::uint32_t localThresholdMs) {
  switch (snapshot.type) {
    case TopologyType::kSingle:
      if (snapshot.servers.empty()) return std::nullopt;
      return 0;
    case TopologyType::kUnknown:
      return std::nullopt;
    case TopologyType::kSharded: {
      std::vector<std::size_t> candidates = ofType(snapshot, ServerType::kMongos);
      return pick(snapshot, candidates, spin, localThresholdMs);
    }
    case TopologyType::kReplicaSetNoPrimary:
    case TopologyType::kReplicaSetWithPrimary:
      break;
  }
  std::vector<std::size_t> primaries = ofType(snapshot, ServerType::kRSPrimary);
  if (selection.write) return primaries.empty() ? std::nullopt : std::optional<std::size_t>(primaries.front());
  const ReadPreference& preference = selection.readPreference;
  auto secondaries = [&] {
    std::vector<std::size_t> candidates = ofType(snapshot, ServerType::kRSSecondary);
    filterByTags(snapshot, candidates, preference);
    return candidates;
  };
  switch (preference.mode) {
    case ReadMode::kPrimary:
      return primaries.empty() ? std::nullopt : std::optional<std::size_t>(primaries.front());
    case ReadMode::kPrimaryPreferred: {
      if (!primaries.empty()) return primaries.front();
      std::vector<std::size_t> candidates = secondaries();
      return pick(snapshot, candidates, spin, localThresholdMs);
    }
    case ReadMode::kSecondary: {
      std::vector<std::size_t> candidates = secondaries();
      return pick(snapshot, candidates, spin, localThresholdMs);
    }
    case ReadMode::kSecondaryPreferred: {
      std::vector<std::size_t> candidates = secondaries();
      if (auto chosen = pick(snapshot, candidates, spin, localThresholdMs)) return chosen;
      return primaries.empty() ? std::nullopt : std::optional<std::size_t>(primaries.front());
    }
    case ReadMode::kNearest: {
      std::vector<std::size_t> candidates = primaries;
      const std::vector<std::size_t> more = ofType(snapshot, ServerType::kRSSecondary);
      candidates.insert(candidates.end(), more.begin(), more.end());
      filterByTags(snapshot, candidates, preference);
      return pick(snapshot, candidates, spin, localThresholdMs);
    }
  }
  return std::nullopt;
}

std::int64_t maxTimeMsOf(wire::Bytes body) {
  // Most commands carry no maxTimeMS anywhere: a byte search (tens of ns) skips the
  // iteration (hundreds) for them.
  constexpr std::string_view kKey{"maxTimeMS\0", 10};
  if (std::string_view(reinterpret_cast<const char*>(body.data()), body.size()).find(kKey) == std::string_view::npos) {
    return 0;
  }
  bson_iter_t it;
  if (!bson_iter_init_from_data(&it, body.data(), body.size()) || !bson_iter_find(&it, "maxTimeMS") ||
      !BSON_ITER_HOLDS_NUMBER(&it)) {
    return 0;
  }
  return std::max<std::int64_t>(0, bson_iter_as_int64(&it));
}

RequestFacts readRequestFacts(std::string_view commandName, wire::Bytes body) {
  RequestFacts facts;
  bson_iter_t it;
  if (!bson_iter_init_from_data(&it, body.data(), body.size())) return facts;
  bool first = true;
  while (bson_iter_next(&it)) {
    const std::string_view key = bson_iter_key(&it);
    if (first) {
      first = false;
      if (commandName == "getMore" && BSON_ITER_HOLDS_INT(&it)) facts.cursorId = bson_iter_as_int64(&it);
      continue;
    }
    if (key == "$readPreference" && BSON_ITER_HOLDS_DOCUMENT(&it)) {
      bson_iter_t field;
      if (!bson_iter_recurse(&it, &field)) continue;
      facts.hasReadPreference = true;
      while (bson_iter_next(&field)) {
        const std::string_view name = bson_iter_key(&field);
        if (name == "mode" && BSON_ITER_HOLDS_UTF8(&field)) {
          facts.readPreference.mode = readModeOf(utf8(&field)).value_or(ReadMode::kPrimary);
        } else if (name == "tags" && BSON_ITER_HOLDS_ARRAY(&field)) {
          bson_iter_t set;
          if (!bson_iter_recurse(&field, &set)) continue;
          while (bson_iter_next(&set)) {
            bson_iter_t tag;
            if (!BSON_ITER_HOLDS_DOCUMENT(&set) || !bson_iter_recurse(&set, &tag)) continue;
            auto& tags = facts.readPreference.tagSets.emplace_back();
            while (bson_iter_next(&tag)) {
              if (BSON_ITER_HOLDS_UTF8(&tag)) tags.emplace_back(bson_iter_key(&tag), utf8(&tag));
            }
          }
        }
      }
    } else if (key == "lsid" && BSON_ITER_HOLDS_DOCUMENT(&it)) {
      bson_iter_t id;
      if (bson_iter_recurse(&it, &id) && bson_iter_find(&id, "id") && BSON_ITER_HOLDS_BINARY(&id)) {
        bson_subtype_t subtype;
        std::uint32_t length = 0;
        const std::uint8_t* data = nullptr;
        bson_iter_binary(&id, &subtype, &length, &data);
        facts.lsid = {data, length};
      }
    } else if (key == "txnNumber" && BSON_ITER_HOLDS_INT(&it)) {
      facts.txnNumber = bson_iter_as_int64(&it);
    } else if (key == "autocommit") {
      facts.autocommitFalse = !bson_iter_as_bool(&it);
    } else if (key == "startTransaction") {
      facts.startTransaction = bson_iter_as_bool(&it);
    } else if (key == "maxTimeMS" && BSON_ITER_HOLDS_NUMBER(&it)) {
      facts.maxTimeMs = std::max<std::int64_t>(0, bson_iter_as_int64(&it));
    } else if (key == "cursors" && commandName == "killCursors" && BSON_ITER_HOLDS_ARRAY(&it)) {
      bson_iter_t ids;
      if (bson_iter_recurse(&it, &ids) && bson_iter_next(&ids) && BSON_ITER_HOLDS_INT(&ids)) {
        facts.cursorId = bson_iter_as_int64(&ids);
      }
    } else if (key == "pipeline" && commandName == "aggregate" && BSON_ITER_HOLDS_ARRAY(&it)) {
      bson_iter_t stages;
      bson_iter_t last;
      bool any = false;
      if (!bson_iter_recurse(&it, &stages)) continue;
      while (bson_iter_next(&stages)) {
        last = stages;
        any = true;
      }
      bson_iter_t stage;
      if (any && BSON_ITER_HOLDS_DOCUMENT(&last) && bson_iter_recurse(&last, &stage) && bson_iter_next(&stage)) {
        const std::string_view name = bson_iter_key(&stage);
        facts.writesOut = name == "$out" || name == "$merge";
      }
    }
  }
  return facts;
}

RetryLabel retryLabelFor(std::string_view commandName, wire::Bytes body) {
  if (body.empty()) return RetryLabel::kNone;
  const RequestFacts facts = readRequestFacts(commandName, body);
  if (commandName == "commitTransaction" || commandName == "abortTransaction") return RetryLabel::kRetryableWrite;
  if (facts.autocommitFalse) return RetryLabel::kTransientTransaction;
  if (facts.txnNumber) return RetryLabel::kRetryableWrite;
  return RetryLabel::kNone;
}

bool isReadCommand(std::string_view name) {
  static constexpr std::string_view kReads[] = {"find",    "aggregate", "count",         "distinct",
                                                "listCollections", "listIndexes", "listDatabases", "dbStats",
                                                "collStats", "geoSearch"};
  return std::find(std::begin(kReads), std::end(kReads), name) != std::end(kReads);
}

Selection selectionFor(std::string_view commandName, const RequestFacts& facts, const ReadPreference& uriDefault) {
  Selection selection;
  if (facts.writesOut || facts.autocommitFalse) return selection;  // transactions run on the primary
  if (facts.hasReadPreference) {
    selection.write = false;
    selection.readPreference = facts.readPreference;
  } else if (isReadCommand(commandName)) {
    selection.write = false;
    selection.readPreference = uriDefault;
  }
  if (!selection.write && selection.readPreference.mode == ReadMode::kPrimary &&
      selection.readPreference.tagSets.empty()) {
    selection.write = true;  // the same servers; skips the read-preference logic
  }
  return selection;
}

bool isStateChangeError(std::int32_t code) {
  switch (code) {
    case 10107:  // NotWritablePrimary
    case 13435:  // NotPrimaryNoSecondaryOk
    case 10058:  // LegacyNotPrimary
    case 13436:  // NotPrimaryOrSecondary
    case 11600:  // InterruptedAtShutdown
    case 11602:  // InterruptedDueToReplStateChange
    case 189:    // PrimarySteppedDown
    case 91:     // ShutdownInProgress
      return true;
    default:
      return false;
  }
}

std::int32_t errorCodeOf(wire::Bytes body) {
  bson_iter_t it;
  if (!bson_iter_init_from_data(&it, body.data(), body.size())) return 0;
  bool failed = false;
  std::int32_t code = 0;
  while (bson_iter_next(&it)) {
    const std::string_view key = bson_iter_key(&it);
    if (key == "ok") {
      failed = !bson_iter_as_bool(&it);
      if (!failed) return 0;
    } else if (key == "code" && BSON_ITER_HOLDS_NUMBER(&it)) {
      code = static_cast<std::int32_t>(bson_iter_as_int64(&it));
    }
  }
  return failed ? code : 0;
}

}  // namespace mongogate::proxy
