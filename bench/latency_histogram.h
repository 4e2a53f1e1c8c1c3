// bench/latency_histogram.h — the latency histogram shared by the load generators.
//
// Promise: a fixed log-linear histogram over nanoseconds (HDR-like: 128 linear sub-buckets
// per power of two, so under 1% error), recording without allocation; one per thread,
// merged at the end. Quantiles are reported as the middle of the bucket that holds them.
#pragma once

#include <array>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>

namespace mongogate::bench {

// Values below 2^(kSubBits+1) have one bucket each; above, each power of two is split into
// 2^kSubBits equal buckets (relative width <= 1/128).
class LatencyHistogram {
 public:
  static constexpr unsigned kSubBits = 7;
  static constexpr unsigned kMaxMsb = 42;  // ~73 minutes; larger values are clamped
  static constexpr std::size_t kBuckets = (kMaxMsb - kSubBits + 2) << kSubBits;

  void record(std::uint64_t ns) {
    ++counts_[indexOf(ns)];
    ++total_;
  }
  void merge(const LatencyHistogram& other) {
    for (std::size_t i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
    total_ += other.total_;
  }
  std::uint64_t total() const { return total_; }

  // The middle of the bucket holding the q-quantile (0 < q <= 1), in nanoseconds.
  double quantileNs(double q) const {
    if (total_ == 0) return 0;
    const auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(total_)));
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= rank && counts_[i] != 0) {
        return static_cast<double>(lowerBound(i) + lowerBound(i + 1) - 1) / 2.0;
      }
    }
    return static_cast<double>(lowerBound(kBuckets - 1));
  }

  static std::size_t indexOf(std::uint64_t v) {
    if (v < (std::uint64_t{2} << kSubBits)) return static_cast<std::size_t>(v);
    unsigned msb = 63u - static_cast<unsigned>(std::countl_zero(v));
    if (msb > kMaxMsb) return kBuckets - 1;
    const std::uint64_t mantissa = v >> (msb - kSubBits);  // in [2^kSubBits, 2^(kSubBits+1))
    return static_cast<std::size_t>(((msb - kSubBits + 1) << kSubBits) + mantissa -
                                    (std::uint64_t{1} << kSubBits));
  }
  static std::uint64_t lowerBound(std::size_t index) {
    const std::uint64_t group = index >> kSubBits;
    if (group <= 1) return index;
    const std::uint64_t sub = index & ((std::uint64_t{1} << kSubBits) - 1);
    return (sub + (std::uint64_t{1} << kSubBits)) << (group - 1);
  }

 private:
  std::array<std::uint64_t, kBuckets> counts_{};
  std::uint64_t total_ = 0;
};

}  // namespace mongogate::bench
