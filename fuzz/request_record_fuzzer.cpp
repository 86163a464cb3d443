// Fuzz target: ipc::decode_request_record (ipc/request_record.hpp), the handler reading the payload of a
// kConnection frame: the request the reactor parsed. The reactor is another process, so its bytes are peer
// bytes. The input is a payload. Checked:
// - either it is refused, or every part of the record decoded is a view into the payload, the parts lie
//   end to end in the record's order (header fields each behind their two sizes) and cover all of it;
// - a record decoded, written again with append_request_record from the same fields, decodes to the same
//   fields; path and query, which the writer computes from method and target (split_target), are those of
//   the target, and where the input's were too (and its flags had no unknown bit), the bytes written are the
//   input's, byte for byte.

#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fuzz/fuzz_support.hpp"
#include "ipc/request_record.hpp"

namespace handoff::fuzz {
namespace {

struct Field {
  std::string_view name;
  std::string_view value;
};

// part begins at cursor: the next bytes of the record.
void take(const char*& cursor, std::string_view part) {
  FUZZ_CHECK(part.data() == cursor);
  cursor += part.size();
}

bool within(std::string_view part, std::string_view whole) {
  return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

// The path and query the writer records for a request.
std::pair<std::string_view, std::string_view> recorded_path_query(const ipc::RequestView& request) {
  if (request.method.empty()) return {};
  return ipc::split_target(request.target);
}

void check_layout(std::string_view payload, const ipc::RequestView& request) {
  const char* cursor = payload.data() + sizeof(ipc::RequestRecordHeader);
  for (const std::string_view part :
       {request.client_address, request.method, request.target, request.path, request.query}) {
    FUZZ_CHECK(within(part, payload));
    take(cursor, part);
  }
  for (const auto& [name, value] : request.headers) {
    cursor += 2 * sizeof(uint32_t);
    FUZZ_CHECK(within(name, payload) && within(value, payload));
    take(cursor, name);
    take(cursor, value);
  }
  for (const std::string_view part : {request.body, request.rest}) {
    FUZZ_CHECK(within(part, payload));
    take(cursor, part);
  }
  FUZZ_CHECK(cursor == payload.data() + payload.size());
}

void check_rewritten(std::string_view payload, const ipc::RequestView& request) {
  const ipc::RequestFields fields{.request_id = request.request_id,
                                  .client_address = request.client_address,
                                  .client_port = request.client_port,
                                  .http_minor = request.http_minor,
                                  .keep_alive = request.keep_alive,
                                  .method = request.method,
                                  .target = request.target,
                                  .body = request.body,
                                  .rest = request.rest};
  std::vector<Field> headers;
  for (const auto& [name, value] : request.headers) headers.push_back({name, value});
  // Appended behind what the frame holds already, as the reactor builds one.
  constexpr std::string_view kBefore = "frame header";
  std::string written(kBefore);
  ipc::append_request_record(written, fields, headers);
  FUZZ_CHECK(written.starts_with(kBefore));
  const std::string_view record = std::string_view(written).substr(kBefore.size());
  ipc::RequestView again;
  FUZZ_CHECK(ipc::decode_request_record(record, again));
  check_layout(record, again);
  FUZZ_CHECK(again.request_id == request.request_id && again.client_address == request.client_address &&
             again.client_port == request.client_port && again.http_minor == request.http_minor &&
             again.keep_alive == request.keep_alive && again.method == request.method &&
             again.target == request.target && again.headers == request.headers &&
             again.body == request.body && again.rest == request.rest);
  const auto [path, query] = recorded_path_query(request);
  FUZZ_CHECK(again.path == path && again.query == query);
  // Of an origin-form target, both are parts of it.
  if (!request.method.empty() && request.target.starts_with('/')) {
    FUZZ_CHECK(within(path, request.target) && (query.empty() || within(query, request.target)));
  }
  ipc::RequestRecordHeader head;
  std::memcpy(&head, payload.data(), sizeof(head));
  if (request.path == path && request.query == query && (head.flags & ~ipc::kRecordKeepAlive) == 0) {
    FUZZ_CHECK(record == payload);
  }
}

}  // namespace
}  // namespace handoff::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace handoff::fuzz;
  const std::string_view payload = as_text(data, size);
  handoff::ipc::RequestView request;
  if (!handoff::ipc::decode_request_record(payload, request)) return 0;
  FUZZ_CHECK(size >= sizeof(handoff::ipc::RequestRecordHeader));
  check_layout(payload, request);
  check_rewritten(payload, request);
  return 0;
}
