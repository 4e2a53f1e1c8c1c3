// FrameReader::poll and Stream::trySend / tryReceive: the request path's way to finish an
// exchange without suspending. poll must return a whole frame only when one is there, keep
// partial bytes for the awaited next(), report a clean close and a bad header like next()
// does; trySend must send what the socket takes and say nothing moved when it is full.
#include <gtest/gtest.h>

#include <unistd.h>

#include <array>
#include <cstdint>
#include <vector>

#include "proxy/frame_reader.h"
#include "proxy/stream.h"
#include "wire/builder.h"
#include "wire/message.h"

namespace mongogate::proxy {
namespace {

// A connected pair of loopback TCP sockets: `stream` (the proxy's side) and `peer`.
class FrameReaderPollTest : public testing::Test {
 protected:
  void SetUp() override { connectPair(); }

  void connectPair() {
    peer_ = tcp::socket(ioc_);
    tcp::acceptor acceptor(ioc_, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    peer_.connect(acceptor.local_endpoint());
    tcp::socket accepted(ioc_);
    acceptor.accept(accepted);
    stream_.emplace(std::move(accepted));
  }

  // An OP_MSG frame with a body of `bodySize` filler bytes (not parsed here).
  static std::vector<std::uint8_t> frameOf(std::size_t bodySize, std::int32_t requestId) {
    std::vector<std::uint8_t> frame(wire::kHeaderSize + bodySize, 0x5a);
    wire::writeHeader(frame.data(), wire::MsgHeader{static_cast<std::int32_t>(frame.size()), requestId, 0,
                                                    static_cast<std::int32_t>(wire::OpCode::kMsg)});
    return frame;
  }

  void send(const std::uint8_t* data, std::size_t size) { asio::write(peer_, asio::buffer(data, size)); }

  // poll() until it settles, allowing the kernel a moment to deliver loopback bytes.
  std::optional<ReadStatus> pollSoon(FrameReader& reader) {
    for (int i = 0; i < 200; ++i) {
      if (auto status = reader.poll(*stream_)) return status;
      ::usleep(1000);
    }
    return std::nullopt;
  }

  asio::io_context ioc_;
  tcp::socket peer_{ioc_};
  std::optional<Stream> stream_;
  BufferPool buffers_;
};

TEST_F(FrameReaderPollTest, NothingSentMeansWait) {
  FrameReader reader(buffers_, wire::kDefaultMaxMessageSize);
  EXPECT_EQ(reader.poll(*stream_), std::nullopt);
}

TEST_F(FrameReaderPollTest, PartialFrameIsKeptUntilTheRestArrives) {
  FrameReader reader(buffers_, wire::kDefaultMaxMessageSize);
  const std::vector<std::uint8_t> frame = frameOf(200, 7);
  send(frame.data(), 10);  // not even a header
  ::usleep(20000);
  EXPECT_EQ(reader.poll(*stream_), std::nullopt);
  send(frame.data() + 10, 100);  // header and part of the body
  ::usleep(20000);
  EXPECT_EQ(reader.poll(*stream_), std::nullopt);
  send(frame.data() + 110, frame.size() - 110);
  ASSERT_EQ(pollSoon(reader), ReadStatus::kOk);
  const wire::Bytes got = reader.frame();
  EXPECT_EQ(std::vector<std::uint8_t>(got.begin(), got.end()), frame);
  EXPECT_EQ(reader.header().requestId, 7);
}

TEST_F(FrameReaderPollTest, PipelinedFramesComeOneByOne) {
  FrameReader reader(buffers_, wire::kDefaultMaxMessageSize);
  std::vector<std::uint8_t> both = frameOf(40, 1);
  const std::vector<std::uint8_t> second = frameOf(30, 2);
  both.insert(both.end(), second.begin(), second.end());
  send(both.data(), both.size());
  ASSERT_EQ(pollSoon(reader), ReadStatus::kOk);
  EXPECT_EQ(reader.header().requestId, 1);
  EXPECT_EQ(reader.frame().size(), 56u);
  EXPECT_TRUE(reader.hasBufferedBytes());
  ASSERT_EQ(reader.poll(*stream_), ReadStatus::kOk);  // already buffered: no read needed
  EXPECT_EQ(reader.header().requestId, 2);
  EXPECT_EQ(reader.frame().size(), 46u);
  EXPECT_EQ(reader.poll(*stream_), std::nullopt);
}

TEST_F(FrameReaderPollTest, CleanCloseAndCloseMidFrame) {
  {
    FrameReader reader(buffers_, wire::kDefaultMaxMessageSize);
    peer_.shutdown(tcp::socket::shutdown_send);
    EXPECT_EQ(pollSoon(reader), ReadStatus::kClosed);
  }
  connectPair();  // a fresh pair
  FrameReader reader(buffers_, wire::kDefaultMaxMessageSize);
  const std::vector<std::uint8_t> frame = frameOf(100, 3);
  send(frame.data(), 50);
  peer_.shutdown(tcp::socket::shutdown_send);
  EXPECT_EQ(pollSoon(reader), ReadStatus::kIoError);
}

TEST_F(FrameReaderPollTest, BadAndOversizedHeadersAreReported) {
  FrameReader reader(buffers_, 1024);
  std::vector<std::uint8_t> big = frameOf(10, 4);
  wire::storeInt32LE(big.data(), 4096);
  send(big.data(), big.size());
  EXPECT_EQ(pollSoon(reader), ReadStatus::kTooLarge);
  connectPair();
  FrameReader garbage(buffers_, 1024);
  std::vector<std::uint8_t> bad = frameOf(10, 5);
  wire::storeInt32LE(bad.data(), 3);  // shorter than a header
  send(bad.data(), bad.size());
  EXPECT_EQ(pollSoon(garbage), ReadStatus::kBadHeader);
}

TEST_F(FrameReaderPollTest, TrySendSendsWhatTheSocketTakesAndNothingWhenFull) {
  error_code ec;
  const std::array<std::uint8_t, 5> hello = {1, 2, 3, 4, 5};
  std::optional<std::size_t> n = stream_->trySend(asio::buffer(hello), ec);
  ASSERT_FALSE(ec) << ec.message();
  ASSERT_EQ(n, 5u);
  std::array<std::uint8_t, 5> got{};
  asio::read(peer_, asio::buffer(got));
  EXPECT_EQ(got, hello);

  // Nobody reads the peer: the send buffers fill up, and then nothing moves (no error,
  // no blocking) until the peer reads.
  const std::vector<std::uint8_t> chunk(1 << 20, 0x11);
  std::size_t total = 0;
  for (int i = 0; i < 256; ++i) {
    n = stream_->trySend(asio::buffer(chunk), ec);
    ASSERT_FALSE(ec) << ec.message();
    if (!n) break;
    total += *n;
  }
  EXPECT_EQ(n, std::nullopt) << "the socket never filled up";
  EXPECT_GT(total, 0u);

  // A closed peer is an error, not "try later".
  peer_.close();
  ::usleep(20000);
  for (int i = 0; i < 10 && !ec; ++i) stream_->trySend(asio::buffer(hello), ec);
  EXPECT_TRUE(ec);
}

TEST(GatherListConsume, DropsWholeAndPartialParts) {
  const std::vector<std::uint8_t> a = {1, 2, 3}, b = {4, 5}, c = {6, 7, 8, 9};
  wire::GatherList list;
  for (const auto* v : {&a, &b, &c}) list.push(wire::Bytes(v->data(), v->size()));
  ASSERT_EQ(list.count, 3u);
  list.consume(0);
  EXPECT_EQ(list.totalSize(), 9u);
  list.consume(4);  // all of a, one byte of b
  ASSERT_EQ(list.count, 2u);
  std::vector<std::uint8_t> out;
  wire::flatten(list, out);
  EXPECT_EQ(out, (std::vector<std::uint8_t>{5, 6, 7, 8, 9}));
  list.consume(1);  // exactly the rest of b
  ASSERT_EQ(list.count, 1u);
  EXPECT_EQ(list.parts[0].data(), c.data());
  list.consume(4);
  EXPECT_EQ(list.count, 0u);
  EXPECT_EQ(list.totalSize(), 0u);
}

}  // namespace
}  // namespace mongogate::proxy
