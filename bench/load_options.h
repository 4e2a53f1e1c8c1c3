// bench/load_options.h — what the two load generators (loadgen.cpp, driver_load.cpp) share:
// the operation kinds of the mix, the command-line options of a load, and the draw of the next
// operation, so both tools run the same mix from the same options.
#pragma once

#include <array>
#include <cstddef>
#include <cstdio>
#include <stdexcept>
#include <string>

namespace mongogate::bench {

enum OpKind : std::size_t { kFindId = 0, kInsert = 1, kFind100 = 2, kOpKinds = 3 };

struct LoadOptions {
  int connections = 1;
  double durationS = 5;
  double warmupS = 1;
  double connectTimeoutS = 20;
  std::array<unsigned, kOpKinds> mix{1, 1, 1};  // find_id : insert : find100
  std::string database = "main_db";
  std::string collection = "s042_products";
  bool json = false;
};

inline constexpr const char* kLoadOptionsUsage =
    "[--connections C] [--duration-s D] [--warmup-s W] [--mix find_id:insert:find100 (1:1:1)]\n"
    "       [--db main_db] [--collection s042_products] [--connect-timeout-s 20] [--json]";

// Reads `arg` when it is one of the shared options, taking its value with value(); false for
// any other option. A malformed value throws (std::invalid_argument or std::out_of_range).
template <class ValueFn>
bool parseLoadOption(const std::string& arg, ValueFn&& value, LoadOptions& o) {
  if (arg == "--connections") {
    o.connections = std::stoi(value());
  } else if (arg == "--duration-s") {
    o.durationS = std::stod(value());
  } else if (arg == "--warmup-s") {
    o.warmupS = std::stod(value());
  } else if (arg == "--connect-timeout-s") {
    o.connectTimeoutS = std::stod(value());
  } else if (arg == "--mix") {
    const std::string m = value();
    unsigned a = 0, b = 0, c = 0;
    if (std::sscanf(m.c_str(), "%u:%u:%u", &a, &b, &c) != 3 || a + b + c == 0) {
      throw std::invalid_argument("--mix wants three weights such as 1:1:1");
    }
    o.mix = {a, b, c};
  } else if (arg == "--db") {
    o.database = value();
  } else if (arg == "--collection") {
    o.collection = value();
  } else if (arg == "--json") {
    o.json = true;
  } else {
    return false;
  }
  return true;
}

// Reads the command line: the shared options into `o`, any other through own(arg, value),
// which returns false for an option it does not know either. usage(problem) must not return;
// it gets "" for --help, else what is wrong: an unknown option, a missing value, or a value
// that does not parse (parseLoadOption or own() threw).
template <class OwnFn, class UsageFn>
void parseLoadCommandLine(int argc, char** argv, LoadOptions& o, OwnFn&& own, UsageFn&& usage) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(arg + " needs a value");
      return argv[++i];
    };
    try {
      if (parseLoadOption(arg, value, o) || own(arg, value)) continue;
      if (arg == "--help" || arg == "-h") usage(std::string());
      usage("unknown option " + arg);
    } catch (const std::exception&) {
      usage("bad value for " + arg);
    }
  }
}

// Why the shared options are out of range, or empty when they are fine.
inline std::string checkLoadOptions(const LoadOptions& o) {
  if (o.connections < 1) return "--connections must be >= 1";
  if (o.durationS <= 0 || o.warmupS < 0 || o.connectTimeoutS <= 0) return "durations must be positive";
  return {};
}

// The next operation, drawn from the weighted mix.
template <class Rng>
std::size_t pickOp(Rng& rng, const std::array<unsigned, kOpKinds>& mix) {
  unsigned pick = static_cast<unsigned>(rng() % (mix[0] + mix[1] + mix[2]));
  std::size_t kind = 0;
  while (pick >= mix[kind]) pick -= mix[kind++];
  return kind;
}

}  // namespace mongogate::bench
