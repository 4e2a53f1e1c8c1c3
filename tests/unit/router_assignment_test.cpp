// assignDatabase (SPEC §5): which pos_db_N a new store gets under each policy — fill
// (the seed formula min(floor(count / storesPerDatabase) + 1, databaseCount)),
// least_loaded (fewest stores, ties to the lowest id) and round_robin.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "router/routing.h"
#include "router_test_support.h"

namespace mongogate::router::routing_test {
namespace {

// `perDatabase[i]` stores in pos_db_{i+1}, plus `inMain` stores not moved yet.
std::vector<StoreRecord> storesWithLoads(const std::vector<int>& perDatabase, int inMain = 0) {
  std::vector<StoreRecord> stores;
  int n = 0;
  auto add = [&](std::int32_t id) {
    const std::string p = "s" + std::to_string(n++);
    stores.push_back({p, p, p, id});
  };
  for (std::size_t i = 0; i < perDatabase.size(); ++i) {
    for (int k = 0; k < perDatabase[i]; ++k) add(static_cast<std::int32_t>(i) + 1);
  }
  for (int k = 0; k < inMain; ++k) add(0);
  return stores;
}

struct AssignmentCase {
  std::string name;
  AssignmentPolicy policy;
  std::vector<int> loads;  // stores per pos_db_N
  int inMain = 0;
  std::int32_t storesPerDatabase = 20;
  std::int32_t databaseCount = 5;
  std::size_t alreadyAdded = 0;
  std::uint64_t roundRobinNext = 0;
  std::int32_t expected = 0;
};

std::ostream& operator<<(std::ostream& os, const AssignmentCase& c) { return os << c.name; }

class RouterAssignment : public ::testing::TestWithParam<AssignmentCase> {};

TEST_P(RouterAssignment, ChoosesTheDatabase) {
  const AssignmentCase& c = GetParam();
  RoutingConfig config = fixtureConfig();
  config.storesPerDatabase = c.storesPerDatabase;
  config.databaseCount = c.databaseCount;
  const RegistrySnapshot registry(storesWithLoads(c.loads, c.inMain), 1);
  AssignmentState state{c.policy, c.roundRobinNext};
  EXPECT_EQ(assignDatabase(config, registry, state, c.alreadyAdded), c.expected);
  if (c.policy == AssignmentPolicy::kRoundRobin && c.databaseCount > 0) {
    EXPECT_EQ(state.roundRobinNext, c.roundRobinNext + 1);
  } else {
    EXPECT_EQ(state.roundRobinNext, c.roundRobinNext);
  }
}

using P = AssignmentPolicy;
const AssignmentCase kAssignments[] = {
    {.name = "FillEmptyRegistry", .policy = P::kFill, .loads = {}, .expected = 1},
    {.name = "FillFirstDatabaseNotFull", .policy = P::kFill, .loads = {19}, .expected = 1},
    {.name = "FillFirstDatabaseFull", .policy = P::kFill, .loads = {20}, .expected = 2},
    {.name = "FillCountsStoresNotMovedYet", .policy = P::kFill, .loads = {10}, .inMain = 10, .expected = 2},
    {.name = "FillCountsEarlierDocumentsOfTheInsert", .policy = P::kFill, .loads = {19},
     .alreadyAdded = 1, .expected = 2},
    {.name = "FillCappedAtDatabaseCount", .policy = P::kFill, .loads = {20, 20, 20, 20, 20, 20},
     .expected = 5},
    {.name = "FillSmallDatabases", .policy = P::kFill, .loads = {2, 2, 1}, .storesPerDatabase = 2,
     .expected = 3},
    {.name = "FillStoresPerDatabaseZeroActsAsOne", .policy = P::kFill, .loads = {1, 1},
     .storesPerDatabase = 0, .expected = 3},
    {.name = "LeastLoadedPicksFewest", .policy = P::kLeastLoaded, .loads = {3, 1, 2, 4, 5}, .expected = 2},
    {.name = "LeastLoadedTiesGoToLowestId", .policy = P::kLeastLoaded, .loads = {2, 1, 1, 1, 2}, .expected = 2},
    {.name = "LeastLoadedEmptyDatabase", .policy = P::kLeastLoaded, .loads = {1, 1, 1, 1}, .expected = 5},
    {.name = "LeastLoadedIgnoresStoresInMain", .policy = P::kLeastLoaded, .loads = {1, 1, 1, 1, 1},
     .inMain = 30, .expected = 1},
    {.name = "LeastLoadedReplaysEarlierDocuments", .policy = P::kLeastLoaded, .loads = {2, 1, 1, 2, 2},
     .alreadyAdded = 1, .expected = 3},
    {.name = "LeastLoadedReplaysAFullRound", .policy = P::kLeastLoaded, .loads = {2, 1, 1, 2, 2},
     .alreadyAdded = 2, .expected = 1},
    {.name = "RoundRobinFirst", .policy = P::kRoundRobin, .loads = {5, 5}, .expected = 1},
    {.name = "RoundRobinNext", .policy = P::kRoundRobin, .loads = {}, .roundRobinNext = 3, .expected = 4},
    {.name = "RoundRobinWraps", .policy = P::kRoundRobin, .loads = {}, .roundRobinNext = 5, .expected = 1},
    {.name = "RoundRobinIgnoresLoads", .policy = P::kRoundRobin, .loads = {9, 0}, .roundRobinNext = 7,
     .expected = 3},
    {.name = "NoStoreDatabasesKeepsTheStoreInMain", .policy = P::kFill, .loads = {}, .databaseCount = 0,
     .expected = 0},
    {.name = "NoStoreDatabasesRoundRobin", .policy = P::kRoundRobin, .loads = {}, .databaseCount = 0,
     .expected = 0},
};

INSTANTIATE_TEST_SUITE_P(RouterAssignmentPolicies, RouterAssignment, ::testing::ValuesIn(kAssignments),
                         [](const auto& info) { return info.param.name; });

TEST(RouterAssignmentSequence, RoundRobinCyclesThroughEveryDatabase) {
  const RoutingConfig config = fixtureConfig();
  const RegistrySnapshot registry(fixtureStores(), 1);
  AssignmentState state{AssignmentPolicy::kRoundRobin, 0};
  std::vector<std::int32_t> ids;
  for (int i = 0; i < 7; ++i) ids.push_back(assignDatabase(config, registry, state));
  EXPECT_EQ(ids, (std::vector<std::int32_t>{1, 2, 3, 4, 5, 1, 2}));
}

}  // namespace
}  // namespace mongogate::router::routing_test
