// config/srv.h — mongodb+srv:// connection strings: the seed list and options from DNS.
//
// Promise: a +srv upstream leaves start-up with `hosts` filled from the SRV records of
// _mongodb._tcp.<host>, every one of them inside <host>'s parent domain, and with the
// TXT record's authSource / replicaSet / loadBalanced applied where the URI itself does
// not set them — or with a problem that says which rule the DNS answer broke. (The
// "Initial DNS Seedlist Discovery" specification; libmongoc parses the URI but leaves
// the lookup to its own client, which mongogate's pools do not use.)
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "config/proxy_config.h"

namespace mongogate::config {

struct SrvRecord {
  std::uint16_t priority = 0;
  std::uint16_t weight = 0;
  std::uint16_t port = 0;
  std::string target;  // a host name, with or without the trailing dot
};

// The seed list from the SRV answer for `srvHost`. Returns "" or why the answer is
// unusable (no records, a target outside the parent domain).
std::string seedsFromSrv(const std::string& srvHost, const std::vector<SrvRecord>& records,
                         std::vector<HostPort>& out);

// Applies the TXT answer (each element one TXT record, its strings joined) to `upstream`:
// only authSource, replicaSet and loadBalanced are allowed, and the URI's own options
// win. Returns "" or why the answer is unusable (several records, another option).
std::string applySrvTxt(const std::vector<std::string>& records, UpstreamConfig& upstream);

// Looks up SRV and TXT for every +srv upstream and fills it in. Problems name the
// upstream's setting path. Test hook: MONGOGATE_TEST_DNS_SERVER=HOST:PORT in
// `environment` sends the queries to that (IPv4) server instead of resolv.conf's.
void resolveSrvUpstreams(ProxyConfig& config, const std::map<std::string, std::string>& environment,
                         std::vector<ConfigProblem>& problems);

}  // namespace mongogate::config
