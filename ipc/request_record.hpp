#pragma once

// The request record: the payload of a kConnection frame (protocol version 2). The reactor has read the
// request whole and judged it with handoff's one HTTP parser (http/request_parser.hpp), so the record hands
// the handler the request already parsed — a handler in any language needs no HTTP parser. docs/protocol.md
// shows the layout as a table.
//
//   RequestRecordHeader (48 bytes, host byte order)
//   client address  address_bytes   text: "203.0.113.7", "2001:db8::1"; empty when not known
//   method          method_bytes    "GET"; empty on the line protocol
//   target          target_bytes    HTTP: the request-target as sent; line protocol: the line, without its
//   end path            path_bytes      the target's path, not decoded ("/a%2Fb/"); "*" for OPTIONS * query
//   query_bytes     after the '?', not decoded; empty when none header fields   fields_bytes    field_count
//   times: u32 name size, u32 value size, name (as sent), value body            body_bytes      with any
//   chunked framing removed rest            rest_bytes      bytes the reactor read past this request
//   (pipelined), not judged yet: the
//                                   handler may hand them back unused in its kDone, and the reactor reads
//                                   them as the connection's next request

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace handoff::ipc {

struct RequestRecordHeader {
  uint64_t request_id;  // Counted by the reactor from 1: unique within one reactor's run.
  uint16_t client_port;
  uint8_t http_minor;  // HTTP/1.0 or HTTP/1.1; 0 on the line protocol.
  uint8_t flags;       // kRecordKeepAlive.
  uint32_t field_count;
  uint32_t address_bytes;
  uint32_t method_bytes;
  uint32_t target_bytes;
  uint32_t path_bytes;
  uint32_t query_bytes;
  uint32_t fields_bytes;
  uint32_t body_bytes;
  uint32_t rest_bytes;
};
static_assert(sizeof(RequestRecordHeader) == 48, "part of the wire format");
static_assert(std::is_trivially_copyable_v<RequestRecordHeader>);

// The connection may stay open after this request (HTTP/1.1 without "Connection: close", HTTP/1.0 with
// "Connection: keep-alive"; always on the line protocol).
inline constexpr uint8_t kRecordKeepAlive = 1u << 0;

// What the reactor knows of a request, to be written as its record (the views need last only until then).
struct RequestFields {
  uint64_t request_id = 0;
  std::string_view client_address;
  uint16_t client_port = 0;
  int http_minor = 0;
  bool keep_alive = true;
  std::string_view method;
  std::string_view target;
  std::string_view body;
  std::string_view rest;
};

// A request record read back: views into the payload it was decoded from, with the target's path and query
// and the header fields.
struct RequestView : RequestFields {
  std::string_view path;
  std::string_view query;
  std::vector<std::pair<std::string_view, std::string_view>> headers;
};

// The path and query of a request-target (RFC 9112 section 3.2): the origin form "/a/b?x" gives "/a/b" and
// "x"; the absolute form "http://host:8/a?x" the same from its first '/' (or "/" when it has none); "*" and
// the authority form are their own path.
std::pair<std::string_view, std::string_view> split_target(std::string_view target);

// Appends the record of a request to out (a frame being built); fields: its header fields in order, each
// with .name and .value (http::HeaderField).
template <typename Fields>
void append_request_record(std::string& out, const RequestFields& request, const Fields& fields);

// Reads a record; false when the payload is not one (sizes that do not add up to it).
bool decode_request_record(std::string_view payload, RequestView& out);

namespace detail {
void append_record_head(std::string& out, const RequestFields& request, uint32_t field_count,
                        uint32_t fields_bytes);
}  // namespace detail

template <typename Fields>
void append_request_record(std::string& out, const RequestFields& request, const Fields& fields) {
  uint32_t fields_bytes = 0;
  for (const auto& field : fields) fields_bytes += 8 + field.name.size() + field.value.size();
  detail::append_record_head(out, request, static_cast<uint32_t>(fields.size()), fields_bytes);
  for (const auto& field : fields) {
    const uint32_t sizes[2] = {static_cast<uint32_t>(field.name.size()),
                               static_cast<uint32_t>(field.value.size())};
    out.append(reinterpret_cast<const char*>(sizes), sizeof(sizes));
    out += field.name;
    out += field.value;
  }
  out += request.body;
  out += request.rest;
}

}  // namespace handoff::ipc
