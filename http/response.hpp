#pragma once

// The one place that writes an HTTP/1.1 response: the status line with its standard reason phrase, the
// headers every answer of handoff carries, and the body. The reactor's refusals, the admin port and the
// handler library all answer through it, so they cannot disagree about what a response looks like.

#include <string>
#include <string_view>

namespace handoff::http {

// The reason phrase RFC 9110 section 15 gives status ("Not Found"); "Unknown" for a code it does not define.
std::string_view reason_phrase(int status);

// What the Connection header says: nothing (HTTP/1.1 keeps the connection open by default), that the
// connection closes after this response, or that it stays open (needed by HTTP/1.0 clients).
enum class ConnectionHeader { kNone, kClose, kKeepAlive };

struct Response {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::string extra_headers;       // Each ends in "\r\n".
  std::string server = "handoff";  // The Server header's value; empty: none.
  ConnectionHeader connection = ConnectionHeader::kNone;
};

// The current time as the Date header gives it (RFC 9110 section 5.6.7): "Tue, 01 Dec 2026 18:30:00 GMT".
std::string_view date_now();

// The response as it goes on the wire, with Server and Date (RFC 9110 section 6.6.1). Content-Length always
// gives the body's size; with head_request the body itself is left out (RFC 9110 section 9.3.2).
std::string serialize(const Response& response, bool head_request = false);

}  // namespace handoff::http
