#pragma once

// Percent-decoding of URI components (RFC 3986 section 2.1), for path segments and query parameters.

#include <optional>
#include <string>
#include <string_view>

namespace handoff::http {

// "%20" -> " "; with plus_is_space (a query string, as HTML forms send it) also "+" -> " ". nullopt when a
// '%' is not followed by two hex digits.
std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space = false);

}  // namespace handoff::http
