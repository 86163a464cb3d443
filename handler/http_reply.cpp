#include "handler/http_reply.hpp"

#include <strings.h>

#include <cstdio>

namespace handoff::handler {
namespace {

bool same_name(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

// Whether a value for a header field holds CR, LF or NUL. CR and LF end the field: what follows would be read
// as headers of the value's making, or after an empty line as a second response (response splitting). RFC
// 9110 section 5.5 calls the three "invalid and dangerous" in a field value.
bool breaks_a_field(std::string_view value) {
  return value.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos;
}

}  // namespace

// A field name, or a method, is a token (RFC 9110 sections 5.1 and 5.6.2).
bool is_token(std::string_view name) {
  static constexpr std::string_view kSymbols = "!#$%&'*+-.^_`|~";
  if (name.empty()) return false;
  for (const char c : name) {
    const bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!alnum && kSymbols.find(c) == std::string_view::npos) return false;
  }
  return true;
}

namespace {

// The fields the server writes itself: a second one from a reply would contradict it (two Content-Length
// are a smuggling vector, RFC 9112 section 6.3).
bool server_owns(std::string_view name) {
  return same_name(name, "Content-Length") || same_name(name, "Transfer-Encoding") ||
         same_name(name, "Connection") || same_name(name, "Date");
}

}  // namespace

std::optional<std::string> unsendable(const Reply& reply) {
  if (reply.status < 200 || reply.status > 599) {
    // A 1xx would leave the client waiting for a final answer; anything else is no status at all.
    return "status " + std::to_string(reply.status) + ", which is not a final status";
  }
  if (breaks_a_field(reply.content_type)) {
    return "a content type holding CR, LF or NUL (\"" + loggable(reply.content_type) +
           "\"): it would end the Content-Type header and write headers or a response of its own (RFC 9110 "
           "section 5.5)";
  }
  for (const auto& [name, value] : reply.headers) {
    if (!is_token(name)) return "a header name that is not a token (\"" + loggable(name) + "\")";
    if (breaks_a_field(value)) {
      return "a " + name + " header holding CR, LF or NUL (\"" + loggable(value) +
             "\"): it would write headers or a response of its own (RFC 9110 section 5.5)";
    }
    if (server_owns(name)) return "a " + name + " header, which the server sets itself";
  }
  return std::nullopt;
}

http::Response http_response(Reply reply) {
  http::Response response{.status = reply.status, .body = std::move(reply.body)};
  response.content_type = std::move(reply.content_type);
  for (auto& [name, value] : reply.headers) {
    if (same_name(name, "Content-Type")) {
      response.content_type = std::move(value);
    } else if (same_name(name, "Server")) {
      response.server = std::move(value);
    } else {
      response.extra_headers += name;
      response.extra_headers += ": ";
      response.extra_headers += value;
      response.extra_headers += "\r\n";
    }
  }
  return response;
}

std::string loggable(std::string_view value) {
  constexpr size_t kMaxLoggedBytes = 200;
  std::string out;
  for (const char c : value.substr(0, kMaxLoggedBytes)) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n";
    } else if (byte < 0x20 || byte == 0x7f) {
      char escape[8];
      std::snprintf(escape, sizeof(escape), "\\x%02x", byte);
      out += escape;
    } else {
      out += c;
    }
  }
  if (value.size() > kMaxLoggedBytes) out += "...";
  return out;
}

}  // namespace handoff::handler
