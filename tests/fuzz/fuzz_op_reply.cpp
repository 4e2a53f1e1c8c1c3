// libFuzzer target: parseOpReply.
//
// Each input is tried as given and re-framed (messageLength = size, opCode = OP_REPLY).
// Whatever parses must hold exactly numberReturned valid documents, and appendOpReply
// given the same fields must rebuild the identical frame.
#include <cstring>
#include <vector>

#include "wire/builder.h"
#include "wire/legacy.h"
#include "wire/op_msg.h"
#include "fuzz_support.h"

using namespace mongogate::wire;
using namespace mongogate::wire::fuzz;

namespace {

void checkParsed(Bytes frame) {
  const auto r = parseOpReply(frame);
  if (!r.ok()) {
    requireCleanError(r.error, frame);
    return;
  }
  const OpReplyView& v = r.value;
  std::vector<Bytes> docs;
  Bytes rest = v.documents;
  while (!rest.empty()) {
    require(rest.size() >= 5);
    const auto len = static_cast<std::size_t>(loadInt32LE(rest.data()));
    require(len >= 5 && len <= rest.size());
    require(validateBsonDocument(rest.first(len)) == -1);
    docs.push_back(rest.first(len));
    rest = rest.subspan(len);
  }
  require(docs.size() == static_cast<std::size_t>(v.numberReturned));

  std::vector<std::uint8_t> rebuilt;
  appendOpReply(rebuilt, v.header.requestId, v.header.responseTo, v.responseFlags, v.cursorId, v.startingFrom,
                docs);
  require(rebuilt.size() == frame.size() && std::memcmp(rebuilt.data(), frame.data(), frame.size()) == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  checkParsed(Bytes(data, size));
  if (size < kHeaderSize) return 0;
  std::vector<std::uint8_t> frame = reframed(data, size, OpCode::kReply);
  checkParsed(Bytes(frame));
  return 0;
}
