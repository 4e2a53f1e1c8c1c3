// proxy/buffer_pool.h — per-thread recycling of I/O buffers.
//
// Idle client connections hold no buffer: a session takes one when bytes arrive and
// gives it back when it has nothing buffered. The pool keeps standard-size buffers so
// that steady-state traffic allocates nothing. Single-threaded: one pool per worker.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace mongogate::proxy {

class BufferPool {
 public:
  static constexpr std::size_t kStandardSize = 16 * 1024;

  explicit BufferPool(std::size_t maxKept = 1024) : maxKept_(maxKept) {}

  // A buffer of at least `size` bytes (contents unspecified).
  std::unique_ptr<std::uint8_t[]> take(std::size_t size, std::size_t& capacity) {
    if (size <= kStandardSize) {
      capacity = kStandardSize;
      if (!free_.empty()) {
        auto b = std::move(free_.back());
        free_.pop_back();
        return b;
      }
      return std::make_unique_for_overwrite<std::uint8_t[]>(kStandardSize);
    }
    capacity = size;
    return std::make_unique_for_overwrite<std::uint8_t[]>(size);
  }

  void give(std::unique_ptr<std::uint8_t[]> buffer, std::size_t capacity) {
    if (buffer && capacity == kStandardSize && free_.size() < maxKept_) {
      free_.push_back(std::move(buffer));
    }
  }

 private:
  std::size_t maxKept_;
  std::vector<std::unique_ptr<std::uint8_t[]>> free_;
};

}  // namespace mongogate::proxy
