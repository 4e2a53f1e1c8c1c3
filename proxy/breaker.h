// proxy/breaker.h — a circuit breaker per upstream server, shared by every worker.
//
// Promise: after `threshold` consecutive connect failures or timeouts the breaker is
// open: admit() refuses at once (no connect attempt, the request fails fast with a
// retryable error). After the cool-down it is half-open: exactly one caller is admitted
// as the probe; its success closes the breaker, its failure re-opens it for another
// cool-down. Lock-free (a few atomics); threshold 0 disables it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>

namespace mongogate::proxy {

class CircuitBreaker {
 public:
  enum class State : std::uint8_t { kClosed, kOpen, kHalfOpen };
  enum class Admission : std::uint8_t { kAllow, kProbe, kReject };
  using Clock = std::chrono::steady_clock;

  CircuitBreaker(std::uint32_t threshold, std::uint32_t coolDownMs)
      : threshold_(threshold), coolDown_(std::chrono::milliseconds(coolDownMs)) {}

  // Before opening a connection. A kProbe caller must report its outcome.
  Admission admit(Clock::time_point now = Clock::now()) {
    const std::int64_t opened = openedAt_.load(std::memory_order_acquire);
    if (opened == kClosed) return Admission::kAllow;
    if (now.time_since_epoch().count() - opened < coolDown_.count()) return Admission::kReject;
    bool expected = false;
    return probing_.compare_exchange_strong(expected, true) ? Admission::kProbe : Admission::kReject;
  }

  // A connection (or a monitoring check) succeeded. Returns true if this closed it.
  bool onSuccess() {
    failures_.store(0, std::memory_order_relaxed);
    probing_.store(false, std::memory_order_relaxed);
    return openedAt_.exchange(kClosed, std::memory_order_acq_rel) != kClosed;
  }

  // A connect failed or timed out. Returns true if this opened (or re-opened) it.
  bool onFailure(Clock::time_point now = Clock::now()) {
    if (threshold_ == 0) return false;
    const std::int64_t stamp = now.time_since_epoch().count();
    if (probing_.exchange(false)) {  // the half-open probe failed
      openedAt_.store(stamp, std::memory_order_release);
      return true;
    }
    const std::uint32_t failures = failures_.fetch_add(1, std::memory_order_relaxed) + 1;
    if (failures >= threshold_) {
      std::int64_t expected = kClosed;
      return openedAt_.compare_exchange_strong(expected, stamp);
    }
    return false;
  }

  State state(Clock::time_point now = Clock::now()) const {
    const std::int64_t opened = openedAt_.load(std::memory_order_acquire);
    if (opened == kClosed) return State::kClosed;
    return now.time_since_epoch().count() - opened < coolDown_.count() ? State::kOpen : State::kHalfOpen;
  }
  std::uint32_t consecutiveFailures() const { return failures_.load(std::memory_order_relaxed); }

 private:
  static constexpr std::int64_t kClosed = std::numeric_limits<std::int64_t>::min();
  const std::uint32_t threshold_;
  const Clock::duration coolDown_;
  std::atomic<std::uint32_t> failures_{0};
  std::atomic<std::int64_t> openedAt_{kClosed};  // steady-clock ticks; kClosed = closed
  std::atomic<bool> probing_{false};
};

inline const char* toString(CircuitBreaker::State state) {
  switch (state) {
    case CircuitBreaker::State::kClosed: return "closed";
    case CircuitBreaker::State::kOpen: return "open";
    case CircuitBreaker::State::kHalfOpen: return "half_open";
  }
  return "closed";
}

}  // namespace mongogate::proxy
