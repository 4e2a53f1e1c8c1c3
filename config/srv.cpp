#include "config/srv.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <mongoc/mongoc.h>
#include <netinet/in.h>
#include <resolv.h>

#include <algorithm>
#include <cstring>
#include <memory>

namespace mongogate::config {
namespace {

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
  return text;
}

std::string withoutTrailingDot(std::string name) {
  if (!name.empty() && name.back() == '.') name.pop_back();
  return name;
}

// One DNS query through libresolv: the records of `type` for `name`, as raw rdata with
// the message they came from (names inside rdata are compressed against it).
struct Answer {
  std::vector<unsigned char> message;
  std::vector<std::pair<const unsigned char*, std::size_t>> rdata;
  std::string error;  // "" on success; "no records" counts as success with rdata empty
};

Answer query(res_state state, const std::string& name, int type) {
  Answer answer;
  answer.message.resize(65'536);
  const int length = res_nquery(state, name.c_str(), ns_c_in, type, answer.message.data(),
                                static_cast<int>(answer.message.size()));
  if (length < 0) {
    // h_errno-style reason from the resolver state.
    switch (state->res_h_errno) {
      case HOST_NOT_FOUND:
      case NO_DATA: return answer;  // no such records
      case TRY_AGAIN: answer.error = "the DNS server did not answer"; return answer;
      default: answer.error = "the DNS lookup failed"; return answer;
    }
  }
  answer.message.resize(static_cast<std::size_t>(length));
  ns_msg parsed;
  if (ns_initparse(answer.message.data(), length, &parsed) != 0) {
    answer.error = "the DNS answer is malformed";
    return answer;
  }
  for (int i = 0; i < ns_msg_count(parsed, ns_s_an); ++i) {
    ns_rr record;
    if (ns_parserr(&parsed, ns_s_an, i, &record) != 0) {
      answer.error = "the DNS answer is malformed";
      return answer;
    }
    if (ns_rr_type(record) != type) continue;  // CNAMEs on the way
    answer.rdata.emplace_back(ns_rr_rdata(record), ns_rr_rdlen(record));
  }
  return answer;
}

bool decodeSrv(const Answer& answer, std::vector<SrvRecord>& out) {
  const unsigned char* begin = answer.message.data();
  const unsigned char* end = begin + answer.message.size();
  for (const auto& [data, size] : answer.rdata) {
    if (size < 7) return false;
    SrvRecord record;
    record.priority = static_cast<std::uint16_t>(data[0] << 8 | data[1]);
    record.weight = static_cast<std::uint16_t>(data[2] << 8 | data[3]);
    record.port = static_cast<std::uint16_t>(data[4] << 8 | data[5]);
    char target[NS_MAXDNAME];
    if (dn_expand(begin, end, data + 6, target, sizeof target) < 0) return false;
    record.target = target;
    out.push_back(std::move(record));
  }
  return true;
}

bool decodeTxt(const Answer& answer, std::vector<std::string>& out) {
  for (const auto& [data, size] : answer.rdata) {
    std::string joined;  // a TXT record is one or more <length><bytes> strings
    for (std::size_t at = 0; at < size;) {
      const std::size_t length = data[at];
      if (at + 1 + length > size) return false;
      joined.append(reinterpret_cast<const char*>(data) + at + 1, length);
      at += 1 + length;
    }
    out.push_back(std::move(joined));
  }
  return true;
}

}  // namespace

std::string seedsFromSrv(const std::string& srvHost, const std::vector<SrvRecord>& records,
                         std::vector<HostPort>& out) {
  const std::string host = lower(withoutTrailingDot(srvHost));
  const auto firstDot = host.find('.');
  if (firstDot == std::string::npos || host.find('.', firstDot + 1) == std::string::npos) {
    return "a mongodb+srv:// host needs at least three parts (name.domain.tld)";
  }
  const std::string parentSuffix = host.substr(firstDot);  // ".domain.tld"
  if (records.empty()) return "DNS has no SRV records for _mongodb._tcp." + host;
  std::vector<HostPort> seeds;
  for (const SrvRecord& record : records) {
    const std::string target = lower(withoutTrailingDot(record.target));
    if (target.size() <= parentSuffix.size() ||
        target.compare(target.size() - parentSuffix.size(), parentSuffix.size(), parentSuffix) != 0) {
      return "the SRV record " + target + " is not in the domain " + parentSuffix.substr(1) +
             " (the hosts of a mongodb+srv:// URI must share its parent domain)";
    }
    if (record.port == 0) return "the SRV record " + target + " has port 0";
    seeds.push_back({target, record.port});
  }
  out = std::move(seeds);
  return {};
}

std::string applySrvTxt(const std::vector<std::string>& records, UpstreamConfig& upstream) {
  if (records.empty()) return {};
  if (records.size() > 1) return "DNS has several TXT records for the mongodb+srv:// host (one is allowed)";
  bson_error_t error;
  std::unique_ptr<mongoc_uri_t, void (*)(mongoc_uri_t*)> uri(mongoc_uri_new_with_error(upstream.uri.c_str(), &error),
                                                             mongoc_uri_destroy);
  const std::string& text = records.front();
  std::size_t at = 0;
  while (at <= text.size()) {
    std::size_t end = text.find('&', at);
    if (end == std::string::npos) end = text.size();
    const std::string pair = text.substr(at, end - at);
    at = end + 1;
    if (pair.empty()) continue;
    const auto eq = pair.find('=');
    if (eq == std::string::npos) return "the TXT record option '" + pair + "' has no value";
    const std::string key = lower(pair.substr(0, eq));
    const std::string value = pair.substr(eq + 1);
    // libmongoc keeps authSource with the credentials, the others with the options.
    bson_iter_t it;
    const bool uriHasIt = uri && (mongoc_uri_has_option(uri.get(), key.c_str()) ||
                                  bson_iter_init_find_case(&it, mongoc_uri_get_credentials(uri.get()), key.c_str()));
    if (key == "authsource") {
      if (!uriHasIt) upstream.auth.source = value;
    } else if (key == "replicaset") {
      if (!uriHasIt) upstream.replicaSet = value;
    } else if (key == "loadbalanced") {
      if (value != "true" && value != "false") return "the TXT record's loadBalanced must be true or false";
      if (!uriHasIt) upstream.loadBalanced = value == "true";
    } else {
      return "the TXT record sets " + pair.substr(0, eq) +
             "; only authSource, replicaSet and loadBalanced are allowed there";
    }
  }
  return {};
}

void resolveSrvUpstreams(ProxyConfig& config, const std::map<std::string, std::string>& environment,
                         std::vector<ConfigProblem>& problems) {
  bool any = false;
  for (const UpstreamConfig& upstream : config.upstreams) any = any || !upstream.srvHost.empty();
  if (!any) return;
  struct __res_state state;
  std::memset(&state, 0, sizeof state);
  if (res_ninit(&state) != 0) {
    problems.push_back({"upstreams", "cannot initialise the DNS resolver for mongodb+srv://"});
    return;
  }
  std::unique_ptr<struct __res_state, void (*)(res_state)> closer(&state, res_nclose);
  if (auto it = environment.find("MONGOGATE_TEST_DNS_SERVER"); it != environment.end() && !it->second.empty()) {
    HostPort server;
    in_addr address{};
    if (!parseHostPort(it->second, server) || inet_pton(AF_INET, server.host.c_str(), &address) != 1) {
      problems.push_back({"MONGOGATE_TEST_DNS_SERVER", "expected IPV4:PORT"});
      return;
    }
    state.nscount = 1;
    state.nsaddr_list[0].sin_family = AF_INET;
    state.nsaddr_list[0].sin_addr = address;
    state.nsaddr_list[0].sin_port = htons(server.port);
    state.retry = 1;
    state.retrans = 2;
  }
  for (UpstreamConfig& upstream : config.upstreams) {
    if (upstream.srvHost.empty()) continue;
    const std::string path = "upstreams." + upstream.name + ".uri";
    const std::string srvName = "_mongodb._tcp." + upstream.srvHost;
    Answer srv = query(&state, srvName, ns_t_srv);
    std::vector<SrvRecord> records;
    if (!srv.error.empty()) {
      problems.push_back({path, "mongodb+srv:// lookup of " + srvName + ": " + srv.error});
      continue;
    }
    if (!decodeSrv(srv, records)) {
      problems.push_back({path, "mongodb+srv:// lookup of " + srvName + ": malformed SRV record"});
      continue;
    }
    if (std::string why = seedsFromSrv(upstream.srvHost, records, upstream.hosts); !why.empty()) {
      problems.push_back({path, why});
      continue;
    }
    Answer txt = query(&state, upstream.srvHost, ns_t_txt);
    std::vector<std::string> options;
    if (!txt.error.empty() || !decodeTxt(txt, options)) {
      problems.push_back({path, "mongodb+srv:// TXT lookup of " + upstream.srvHost + ": " +
                                    (txt.error.empty() ? "malformed TXT record" : txt.error)});
      continue;
    }
    if (std::string why = applySrvTxt(options, upstream); !why.empty()) problems.push_back({path, why});
  }
  config.main = config.upstreams.front();
}

}  // namespace mongogate::config
