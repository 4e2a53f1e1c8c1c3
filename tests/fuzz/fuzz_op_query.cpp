// libFuzzer target: parseOpQuery.
//
// Each input is tried as given and re-framed (messageLength = size, opCode = OP_QUERY).
// Whatever parses must account for every byte of the frame with valid documents.
#include <vector>

#include "wire/legacy.h"
#include "wire/op_msg.h"
#include "fuzz_support.h"

using namespace mongogate::wire;
using namespace mongogate::wire::fuzz;

namespace {

void checkParsed(Bytes frame) {
  const auto r = parseOpQuery(frame);
  if (!r.ok()) {
    requireCleanError(r.error, frame);
    return;
  }
  const OpQueryView& q = r.value;
  require(q.fullCollectionName.find('\0') == std::string_view::npos);
  require(reinterpret_cast<const std::uint8_t*>(q.fullCollectionName.data()) == frame.data() + 20);
  require(validateBsonDocument(q.query) == -1);
  require(q.returnFieldsSelector.empty() || validateBsonDocument(q.returnFieldsSelector) == -1);
  require(20 + q.fullCollectionName.size() + 1 + 8 + q.query.size() + q.returnFieldsSelector.size() ==
          frame.size());
  require(q.database().size() <= q.fullCollectionName.size());
  (void)q.isCommand();
  (void)firstKey(q.query);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  checkParsed(Bytes(data, size));
  if (size < kHeaderSize) return 0;
  std::vector<std::uint8_t> frame = reframed(data, size, OpCode::kQuery);
  checkParsed(Bytes(frame));
  return 0;
}
