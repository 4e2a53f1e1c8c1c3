// proxy/json_string.h: every input becomes a valid JSON string literal; valid UTF-8 and
// printable ASCII come back unchanged, the rest is escaped or replaced as promised.
#include "proxy/json_string.h"

#include <bson/bson.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <iterator>
#include <optional>
#include <random>
#include <string>
#include <string_view>

namespace mongogate::proxy {
namespace {

std::string json(std::string_view text) {
  std::string out;
  appendJsonString(out, text);
  return out;
}

// What a JSON reader (libbson's) makes of the literal; nullopt when it is not valid JSON.
std::optional<std::string> parsed(const std::string& literal) {
  const std::string document = "{\"s\": " + literal + "}";
  bson_error_t error;
  bson_t* doc = bson_new_from_json(reinterpret_cast<const std::uint8_t*>(document.data()),
                                   static_cast<ssize_t>(document.size()), &error);
  if (!doc) return std::nullopt;
  std::optional<std::string> value;
  bson_iter_t it;
  if (bson_iter_init_find(&it, doc, "s") && BSON_ITER_HOLDS_UTF8(&it)) {
    std::uint32_t length = 0;
    const char* text = bson_iter_utf8(&it, &length);
    value.emplace(text, length);
  }
  bson_destroy(doc);
  return value;
}

TEST(JsonStringTest, AppendsAQuotedLiteral) {
  std::string out = "x=";
  appendJsonString(out, "plain text");
  EXPECT_EQ(out, "x=\"plain text\"");
  EXPECT_EQ(json(""), "\"\"");
}

TEST(JsonStringTest, EscapesQuotesBackslashesAndControlCharacters) {
  EXPECT_EQ(json("say \"hi\""), R"("say \"hi\"")");
  EXPECT_EQ(json("a\\b"), R"("a\\b")");
  EXPECT_EQ(json("/ {}:,"), R"("/ {}:,")");  // nothing else of ASCII needs escaping
  EXPECT_EQ(json("\n\r\t"), R"("\n\r\t")");
  EXPECT_EQ(json(std::string_view("a\0b", 3)), R"("a\u0000b")");
  EXPECT_EQ(json("\x01\x08\x0b\x0c\x1f"), R"("\u0001\u0008\u000b\u000c\u001f")");
  EXPECT_EQ(json("\x7f"), R"("\u007f")");
  EXPECT_EQ(json(" ~"), R"(" ~")");
}

TEST(JsonStringTest, ValidUtf8IsCopiedAsItIs) {
  EXPECT_EQ(json("Z\xC3\xBCrich"), "\"Z\xC3\xBCrich\"");                // U+00FC, 2 bytes
  EXPECT_EQ(json("\xC2\x80"), "\"\xC2\x80\"");                          // U+0080, lowest 2-byte
  EXPECT_EQ(json("\xE2\x82\xAC"), "\"\xE2\x82\xAC\"");                  // U+20AC, 3 bytes
  EXPECT_EQ(json("\xEF\xBF\xBF"), "\"\xEF\xBF\xBF\"");                  // U+FFFF
  EXPECT_EQ(json("\xF0\x9F\x8F\xAA"), "\"\xF0\x9F\x8F\xAA\"");          // U+1F3EA, 4 bytes
  EXPECT_EQ(json("\xF4\x8F\xBF\xBF"), "\"\xF4\x8F\xBF\xBF\"");          // U+10FFFF, the last
}

TEST(JsonStringTest, EachByteOfInvalidUtf8BecomesAReplacementCharacter) {
  EXPECT_EQ(json("\x80"), R"("\ufffd")");                               // lone continuation byte
  EXPECT_EQ(json("a\xFF" "b"), R"("a\ufffdb")");                        // never valid in UTF-8
  EXPECT_EQ(json("\xF5\x80\x80\x80"), R"("\ufffd\ufffd\ufffd\ufffd")");  // lead byte past F4
  EXPECT_EQ(json("bad \xC3"), R"("bad \ufffd")");                       // cut off at the end
  EXPECT_EQ(json("\xE2\x82"), R"("\ufffd\ufffd")");
  EXPECT_EQ(json("\xC3("), R"("\ufffd(")");                             // continuation missing
  EXPECT_EQ(json("\xC0\xAF"), R"("\ufffd\ufffd")");                     // overlong '/'
  EXPECT_EQ(json("\xE0\x80\xAF"), R"("\ufffd\ufffd\ufffd")");           // overlong, 3 bytes
  EXPECT_EQ(json("\xF0\x80\x80\xAF"), R"("\ufffd\ufffd\ufffd\ufffd")");  // overlong, 4 bytes
  EXPECT_EQ(json("\xED\xA0\x80"), R"("\ufffd\ufffd\ufffd")");           // surrogate U+D800
  EXPECT_EQ(json("\xF4\x90\x80\x80"), R"("\ufffd\ufffd\ufffd\ufffd")");  // past U+10FFFF
  // A bad byte does not swallow the valid character after it.
  EXPECT_EQ(json("\xC3\xC3\xBC"), "\"\\ufffd\xC3\xBC\"");
}

TEST(JsonStringTest, AnyBytesGiveValidJsonThatReadsBackWhenTheInputWasValidUtf8) {
  // Inputs strung together from pieces, so that both valid and invalid UTF-8 are common.
  const std::string_view pieces[] = {"a", " ", "\"", "\\", "\n", "\t", "\x01", "\x1f", "\x7f",
                                     "\xC3\xBC", "\xE2\x82\xAC", "\xF0\x9F\x8F\xAA", "\xED\xA0\x80"};
  std::mt19937 random(20240611);
  std::uniform_int_distribution<std::size_t> count(0, 8);
  std::uniform_int_distribution<std::size_t> pick(0, std::size(pieces));  // the last: a random byte
  std::uniform_int_distribution<int> byte(1, 255);
  int validInputs = 0;
  int invalidInputs = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string input;
    for (std::size_t n = count(random); n > 0; --n) {
      const std::size_t k = pick(random);
      if (k < std::size(pieces)) {
        input += pieces[k];
      } else {
        input += static_cast<char>(byte(random));
      }
    }
    const std::string literal = json(input);
    const std::optional<std::string> value = parsed(literal);
    ASSERT_TRUE(value.has_value()) << "not valid JSON: " << literal;
    if (bson_utf8_validate(input.data(), input.size(), false)) {
      ++validInputs;
      EXPECT_EQ(*value, input) << literal;
    } else {
      ++invalidInputs;
    }
  }
  // Both kinds were really exercised.
  EXPECT_GT(validInputs, 2000);
  EXPECT_GT(invalidInputs, 2000);
}

}  // namespace
}  // namespace mongogate::proxy
