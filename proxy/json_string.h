// proxy/json_string.h — writing a string as a JSON string literal, for the hand-written
// JSON of the log lines and the registry cache.
//
// Promise: the output is always a valid JSON string (RFC 8259 section 7), whatever the
// input bytes: '"' and '\' are escaped, \n \r \t by their short forms, the other control
// characters and DEL as \u00XX; valid UTF-8 is copied as it is; each byte that does not
// start a valid UTF-8 sequence (overlong forms, surrogates and code points past U+10FFFF
// included) becomes \ufffd. Callers that must not lose data check UTF-8 first.
#pragma once

#include <string>
#include <string_view>

namespace mongogate::proxy {

// Appends `text` as a JSON string literal (quotes included).
void appendJsonString(std::string& out, std::string_view text);

}  // namespace mongogate::proxy
