// The lookups of handoff::Request (handoff/handler.hpp), and whether its client left.

#include <strings.h>

#include "handoff/handler.hpp"
#include "http/percent_decode.hpp"
#include "ipc/answer_record.hpp"

namespace handoff {
namespace {

bool same_name(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

// Calls found(value) for each parameter of query named name, percent-decoded, in order, until it returns
// false. A parameter without '=' has the value ""; one whose name or value is not well encoded is passed
// over.
template <typename Found>
void each_query_parameter(std::string_view query, std::string_view name, Found found) {
  if (query.empty()) return;
  for (size_t start = 0; start <= query.size();) {
    const size_t end = std::min(query.find('&', start), query.size());
    const std::string_view pair = query.substr(start, end - start);
    start = end + 1;
    const size_t equals = pair.find('=');
    const std::optional<std::string> key = http::percent_decode(pair.substr(0, equals), true);
    if (!key || *key != name) continue;
    if (equals == std::string_view::npos) {
      if (!found(std::string())) return;
    } else if (std::optional<std::string> value = http::percent_decode(pair.substr(equals + 1), true)) {
      if (!found(std::move(*value))) return;
    }
  }
}

}  // namespace

std::optional<std::string_view> Request::header(std::string_view name) const {
  for (const auto& [field, value] : headers) {
    if (same_name(field, name)) return value;
  }
  return std::nullopt;
}

std::vector<std::string_view> Request::header_values(std::string_view name) const {
  std::vector<std::string_view> values;
  for (const auto& [field, value] : headers) {
    if (same_name(field, name)) values.push_back(value);
  }
  return values;
}

std::optional<std::string> Request::query_parameter(std::string_view name) const {
  std::optional<std::string> first;
  each_query_parameter(query, name, [&](std::string value) {
    first = std::move(value);
    return false;
  });
  return first;
}

std::vector<std::string> Request::query_parameters(std::string_view name) const {
  std::vector<std::string> values;
  each_query_parameter(query, name, [&](std::string value) {
    values.push_back(std::move(value));
    return true;
  });
  return values;
}

std::optional<std::string_view> Request::path_parameter(std::string_view name) const {
  for (const auto& [parameter, value] : path_parameters) {
    if (parameter == name) return std::string_view(value);
  }
  return std::nullopt;
}

bool Request::cancelled() const {
  return cancel_source.answer_record != nullptr &&
         cancel_source.answer_record->client_left(cancel_source.connection_id);
}

}  // namespace handoff
