#include "ipc/request_record.hpp"

#include <cstring>

namespace handoff::ipc {

std::pair<std::string_view, std::string_view> split_target(std::string_view target) {
  if (!target.starts_with('/')) {
    const size_t scheme = target.find("://");
    if (scheme == std::string_view::npos) return {target, {}};  // "*", or the authority form.
    // The authority ends at the first '/', '?' or '#' (RFC 3986 section 3.2).
    const size_t authority_end = target.find_first_of("/?#", scheme + 3);
    if (authority_end == std::string_view::npos) return {"/", {}};
    target = target.substr(authority_end);
    if (!target.starts_with('/')) return {"/", target.substr(1)};
  }
  const size_t question = target.find('?');
  if (question == std::string_view::npos) return {target, {}};
  return {target.substr(0, question), target.substr(question + 1)};
}

namespace detail {

void append_record_head(std::string& out, const RequestFields& request, uint32_t field_count,
                        uint32_t fields_bytes) {
  const auto [path, query] =
      request.method.empty() ? std::pair<std::string_view, std::string_view>() : split_target(request.target);
  const RequestRecordHeader head{
      .request_id = request.request_id,
      .client_port = request.client_port,
      .http_minor = static_cast<uint8_t>(request.http_minor),
      .flags = request.keep_alive ? kRecordKeepAlive : uint8_t{0},
      .field_count = field_count,
      .address_bytes = static_cast<uint32_t>(request.client_address.size()),
      .method_bytes = static_cast<uint32_t>(request.method.size()),
      .target_bytes = static_cast<uint32_t>(request.target.size()),
      .path_bytes = static_cast<uint32_t>(path.size()),
      .query_bytes = static_cast<uint32_t>(query.size()),
      .fields_bytes = fields_bytes,
      .body_bytes = static_cast<uint32_t>(request.body.size()),
      .rest_bytes = static_cast<uint32_t>(request.rest.size()),
  };
  out.reserve(out.size() + sizeof(head) + head.address_bytes + head.method_bytes + head.target_bytes +
              head.path_bytes + head.query_bytes + fields_bytes + head.body_bytes + head.rest_bytes);
  out.append(reinterpret_cast<const char*>(&head), sizeof(head));
  out += request.client_address;
  out += request.method;
  out += request.target;
  out += path;
  out += query;
}

}  // namespace detail

namespace {

// Takes the next size bytes of payload; false when fewer are left.
bool take(std::string_view& payload, uint64_t size, std::string_view& out) {
  if (size > payload.size()) return false;
  out = payload.substr(0, size);
  payload.remove_prefix(size);
  return true;
}

}  // namespace

bool decode_request_record(std::string_view payload, RequestView& out) {
  RequestRecordHeader head;
  if (payload.size() < sizeof(head)) return false;
  std::memcpy(&head, payload.data(), sizeof(head));
  payload.remove_prefix(sizeof(head));
  out.request_id = head.request_id;
  out.client_port = head.client_port;
  out.http_minor = head.http_minor;
  out.keep_alive = (head.flags & kRecordKeepAlive) != 0;
  std::string_view fields;
  if (!take(payload, head.address_bytes, out.client_address) ||
      !take(payload, head.method_bytes, out.method) || !take(payload, head.target_bytes, out.target) ||
      !take(payload, head.path_bytes, out.path) || !take(payload, head.query_bytes, out.query) ||
      !take(payload, head.fields_bytes, fields) || !take(payload, head.body_bytes, out.body) ||
      !take(payload, head.rest_bytes, out.rest) || !payload.empty()) {
    return false;
  }
  out.headers.clear();
  // Each field's two sizes cost 8 bytes: a count that cannot fit is refused before anything is reserved.
  if (head.field_count > fields.size() / 8) return false;
  out.headers.reserve(head.field_count);
  for (uint32_t i = 0; i < head.field_count; ++i) {
    uint32_t sizes[2];
    if (fields.size() < sizeof(sizes)) return false;
    std::memcpy(sizes, fields.data(), sizeof(sizes));
    fields.remove_prefix(sizeof(sizes));
    std::string_view name, value;
    if (!take(fields, sizes[0], name) || !take(fields, sizes[1], value)) return false;
    out.headers.emplace_back(name, value);
  }
  return fields.empty();
}

}  // namespace handoff::ipc
