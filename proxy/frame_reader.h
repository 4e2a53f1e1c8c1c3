// proxy/frame_reader.h — reads whole wire-protocol frames from a stream.
//
// Promise: next() yields one complete frame (header included) that stays valid until
// the following call; bytes of a pipelined next frame are kept. The header is checked
// (probeFrame) before the body is read, so an oversized or garbage length never makes
// it allocate. Buffers come from, and go back to, the worker's BufferPool.
#pragma once

#include <cstring>
#include <optional>

#include "proxy/asio.h"
#include "proxy/buffer_pool.h"
#include "wire/message.h"

namespace mongogate::proxy {

enum class ReadStatus {
  kOk,
  kClosed,     // the peer closed cleanly between frames
  kIoError,    // a socket error, or EOF in the middle of a frame
  kBadHeader,  // the header is invalid (length < 16, unknown opcode)
  kTooLarge,   // messageLength exceeds the maximum
};

class FrameReader {
 public:
  FrameReader(BufferPool& pool, std::int32_t maxMessageSize)
      : pool_(&pool), maxMessageSize_(maxMessageSize) {}
  FrameReader(const FrameReader&) = delete;
  FrameReader& operator=(const FrameReader&) = delete;
  ~FrameReader() { releaseBuffer(); }

  template <class Stream>
  awaitable<ReadStatus> next(Stream& stream) {
    consumeFrame();
    for (;;) {
      std::size_t need = 0;
      if (auto status = buffered(need)) co_return *status;
      makeRoom(need);
      auto [ec, n] = co_await stream.async_read_some(
          asio::buffer(buffer_.get() + end_, capacity_ - end_), nothrow);
      if (ec) co_return failed(ec);
      end_ += n;
    }
  }

  // next() without suspending: the next frame when it is buffered or can be read right
  // now (Stream::tryReceive); nullopt when reading would wait, and then next() must be
  // awaited (it keeps what was read here).
  template <class Stream>
  std::optional<ReadStatus> poll(Stream& stream) {
    consumeFrame();
    for (;;) {
      std::size_t need = 0;
      if (auto status = buffered(need)) return status;
      makeRoom(need);
      error_code ec;
      const std::optional<std::size_t> n =
          stream.tryReceive(asio::buffer(buffer_.get() + end_, capacity_ - end_), ec);
      if (ec) return failed(ec);
      if (!n) return std::nullopt;
      end_ += *n;
    }
  }

  wire::Bytes frame() const { return {buffer_.get() + begin_, frameLength_}; }
  std::span<std::uint8_t> mutableFrame() { return {buffer_.get() + begin_, frameLength_}; }
  const wire::MsgHeader& header() const { return probe_.header; }
  const wire::FrameProbe& probe() const { return probe_; }

  // Bytes received beyond the current frame (a pipelined request).
  bool hasBufferedBytes() const { return end_ - begin_ > frameLength_; }

  // Consumes the current frame; when nothing else is buffered, gives the buffer back
  // to the pool (an idle connection holds none) and returns true.
  bool releaseIfIdle() {
    consumeFrame();
    if (begin_ != end_) return false;
    releaseBuffer();
    return true;
  }

 private:
  // A status when the buffer settles it (a whole frame, or a bad header); otherwise
  // nullopt and `need` = the bytes the frame needs in all (at least a header).
  std::optional<ReadStatus> buffered(std::size_t& need) {
    const std::size_t available = end_ - begin_;
    need = wire::kHeaderSize;
    if (available < wire::kHeaderSize) return std::nullopt;
    probe_ = wire::probeFrame({buffer_.get() + begin_, available}, maxMessageSize_);
    if (probe_.status == wire::WireStatus::kLengthTooLarge) return ReadStatus::kTooLarge;
    if (probe_.status != wire::WireStatus::kOk) return ReadStatus::kBadHeader;
    need = static_cast<std::size_t>(probe_.header.messageLength);
    if (available < need) return std::nullopt;
    frameLength_ = need;
    return ReadStatus::kOk;
  }

  ReadStatus failed(const error_code& ec) const {
    return (ec == asio::error::eof && end_ == begin_) ? ReadStatus::kClosed : ReadStatus::kIoError;
  }

  void consumeFrame() {
    begin_ += frameLength_;
    frameLength_ = 0;
    if (begin_ == end_) begin_ = end_ = 0;
  }

  void makeRoom(std::size_t frameSize) {
    if (begin_ + frameSize <= capacity_) return;
    const std::size_t available = end_ - begin_;
    if (frameSize <= capacity_) {
      std::memmove(buffer_.get(), buffer_.get() + begin_, available);
    } else {
      std::size_t capacity = 0;
      auto bigger = pool_->take(frameSize, capacity);
      if (available) std::memcpy(bigger.get(), buffer_.get() + begin_, available);
      releaseBuffer();
      buffer_ = std::move(bigger);
      capacity_ = capacity;
    }
    begin_ = 0;
    end_ = available;
  }

  void releaseBuffer() {
    if (buffer_) pool_->give(std::move(buffer_), capacity_);
    buffer_.reset();
    capacity_ = begin_ = end_ = frameLength_ = 0;
  }

  BufferPool* pool_;
  std::int32_t maxMessageSize_;
  std::unique_ptr<std::uint8_t[]> buffer_;
  std::size_t capacity_ = 0;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
  std::size_t frameLength_ = 0;
  wire::FrameProbe probe_{};
};

}  // namespace mongogate::proxy
