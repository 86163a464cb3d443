#pragma once

// Internal to the handler library. A Reply as an HTTP response: what in it cannot be sent (a header that
// would split the response, a header the server owns, no final status), and the response it makes.

#include <optional>
#include <string>

#include "handoff/handler.hpp"
#include "http/response.hpp"

namespace handoff::handler {

// Why reply cannot be sent over HTTP, fit for a log line; nullopt when it can.
std::optional<std::string> unsendable(const Reply& reply);

// The response of a sendable reply: its status, content type, headers (a Content-Type or Server among them
// replaces the library's) and body.
http::Response http_response(Reply reply);

// Whether text is a token (RFC 9110 section 5.6.2): a field name, a method.
bool is_token(std::string_view text);

// A value fit for one log line: control bytes escaped, and at most 200 bytes of it.
std::string loggable(std::string_view value);

}  // namespace handoff::handler
