// The lookups of handoff::Request (handoff/handler.hpp).

#include <strings.h>

#include "handoff/handler.hpp"
#include "http/percent_decode.hpp"

namespace handoff {

std::optional<std::string_view> Request::header(std::string_view name) const {
  for (const auto& [field, value] : headers) {
    if (field.size() == name.size() && strncasecmp(field.data(), name.data(), name.size()) == 0) return value;
  }
  return std::nullopt;
}

std::optional<std::string> Request::query_parameter(std::string_view name) const {
  for (size_t start = 0; start <= query.size();) {
    const size_t end = std::min(query.find('&', start), query.size());
    const std::string_view pair = query.substr(start, end - start);
    const size_t equals = pair.find('=');
    const std::optional<std::string> key = http::percent_decode(pair.substr(0, equals), true);
    if (key && *key == name) {
      if (equals == std::string_view::npos) return std::string();
      if (auto value = http::percent_decode(pair.substr(equals + 1), true)) return value;
    }
    start = end + 1;
  }
  return std::nullopt;
}

}  // namespace handoff
