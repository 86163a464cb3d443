#include "reactor/proxy_header.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>

namespace handoff::reactor {
namespace {

using Status = ProxyHeader::Status;

// proxy-protocol.txt, sections 2.1 and 2.2.
constexpr std::string_view kV1Signature = "PROXY ";
constexpr std::string_view kV2Signature{"\r\n\r\n\0\r\nQUIT\n", 12};
constexpr size_t kV2FixedBytes = 16;     // The signature, ver_cmd, fam and the 16-bit length.
constexpr size_t kLongestIpv4Text = 15;  // "255.255.255.255"
constexpr size_t kLongestIpv6Text = INET6_ADDRSTRLEN - 1;  // "ffff:...:ffff:255.255.255.255"
constexpr size_t kLongestPortText = 5;

ProxyHeader incomplete() {
  return {};
}

ProxyHeader invalid(std::string error) {
  return {.status = Status::kInvalid, .length = 0, .source = std::nullopt, .error = std::move(error)};
}

ProxyHeader complete(size_t length, std::optional<ListenAddress> source) {
  return {.status = Status::kComplete, .length = length, .source = std::move(source), .error = {}};
}

// A TCP client; host as inet_ntop prints the address, of family AF_INET or AF_INET6.
ListenAddress tcp_client(int family, const void* address, uint16_t port) {
  char host[INET6_ADDRSTRLEN];
  inet_ntop(family, address, host, sizeof(host));
  ListenAddress client;
  client.host = host;
  client.port = port;
  return client;
}

// bytes between single quotes for the log: printable ASCII as it is, anything else as \xNN.
std::string quoted(std::string_view bytes) {
  std::string text = "'";
  for (const char c : bytes) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x20 && byte < 0x7f && byte != '\\') {
      text += c;
    } else {
      char escape[5];
      std::snprintf(escape, sizeof(escape), "\\x%02x", byte);
      text += escape;
    }
  }
  return text + "'";
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// ---- Version 1: one line of text.

enum class FieldKind { kIpv4, kIpv6, kPort };

const char* field_name(FieldKind kind) {
  switch (kind) {
    case FieldKind::kIpv4: return "IPv4 address";
    case FieldKind::kIpv6: return "IPv6 address";
    case FieldKind::kPort: return "port";
  }
  return "field";
}

// Whether text can begin a port: decimal digits, no leading zero (a port of "0" is one), at most 65535.
bool could_begin_port(std::string_view text) {
  if (text.size() > kLongestPortText || !std::all_of(text.begin(), text.end(), is_digit)) return false;
  if (text.size() > 1 && text[0] == '0') return false;
  unsigned value = 0;
  for (const char c : text) value = value * 10 + static_cast<unsigned>(c - '0');
  return value <= 65535;
}

// Whether text can begin a dotted quad as the specification writes it: up to four numbers 0-255 without
// leading zeros, one dot between each.
bool could_begin_ipv4(std::string_view text) {
  if (text.size() > kLongestIpv4Text) return false;
  int numbers = 1;
  size_t start = 0;
  for (size_t i = 0; i <= text.size(); ++i) {
    if (i < text.size() && text[i] != '.') {
      if (!is_digit(text[i])) return false;
      continue;
    }
    const std::string_view number = text.substr(start, i - start);
    const bool last = i == text.size();
    if (number.empty() && !last) return false;  // ".1", "1..2"
    if (number.size() > 3 || (number.size() > 1 && number[0] == '0')) return false;
    unsigned value = 0;
    for (const char c : number) value = value * 10 + static_cast<unsigned>(c - '0');
    if (value > 255) return false;
    if (!last && ++numbers > 4) return false;
    start = i + 1;
  }
  return true;
}

bool could_begin_ipv6(std::string_view text) {
  return text.size() <= kLongestIpv6Text &&
         text.find_first_not_of("0123456789abcdefABCDEF:.") == std::string_view::npos;
}

bool could_begin(FieldKind kind, std::string_view text) {
  switch (kind) {
    case FieldKind::kIpv4: return could_begin_ipv4(text);
    case FieldKind::kIpv6: return could_begin_ipv6(text);
    case FieldKind::kPort: return could_begin_port(text);
  }
  return false;
}

// An address or port as it must be once its field has ended; address (of the field's family, 4 or 16
// bytes) receives an address's value.
bool is_whole(FieldKind kind, std::string_view text, unsigned char* address) {
  if (text.empty() || !could_begin(kind, text)) return false;
  if (kind == FieldKind::kPort) return true;
  char terminated[INET6_ADDRSTRLEN];
  text.copy(terminated, text.size());
  terminated[text.size()] = '\0';
  unsigned char unused[sizeof(in6_addr)];
  const int family = kind == FieldKind::kIpv4 ? AF_INET : AF_INET6;
  return inet_pton(family, terminated, address ? address : unused) == 1;
}

// What the text of a v1 line (from "PROXY ", without its CRLF) is.
struct LineVerdict {
  Status status;  // kIncomplete: the text may still grow into a valid line; kComplete: it is one.
  std::optional<ListenAddress> source;
  std::string error;
};

// Reads the line's text, which may still grow when open (no CR has come yet).
LineVerdict read_v1_line(std::string_view text, bool open) {
  const auto prefix = [](std::string_view part, std::string_view whole) { return whole.starts_with(part); };
  const auto ends_early = [&](const char* what) -> LineVerdict {
    if (open) return {Status::kIncomplete, std::nullopt, {}};
    return {Status::kInvalid, std::nullopt, std::string("v1 header ends before its ") + what};
  };
  if (text.size() < kV1Signature.size()) return ends_early("protocol");
  text.remove_prefix(kV1Signature.size());

  // TCP4, TCP6 or UNKNOWN. After UNKNOWN and a space, anything up to the CRLF (section 2.1).
  const size_t keyword_end = std::min(text.find(' '), text.size());
  const std::string_view keyword = text.substr(0, keyword_end);
  if (keyword == "UNKNOWN") return {Status::kComplete, std::nullopt, {}};
  if (keyword_end == text.size() && open &&
      (prefix(keyword, "TCP4") || prefix(keyword, "TCP6") || prefix(keyword, "UNKNOWN"))) {
    return {Status::kIncomplete, std::nullopt, {}};
  }
  if (keyword != "TCP4" && keyword != "TCP6") {
    return {Status::kInvalid, std::nullopt, "unknown v1 protocol " + quoted(keyword)};
  }
  if (keyword_end == text.size()) return ends_early("source address");
  text.remove_prefix(keyword_end + 1);

  const FieldKind address_kind = keyword == "TCP4" ? FieldKind::kIpv4 : FieldKind::kIpv6;
  const FieldKind kinds[] = {address_kind, address_kind, FieldKind::kPort, FieldKind::kPort};
  const char* const names[] = {"source address", "destination address", "source port", "destination port"};
  std::string_view fields[4];
  for (size_t i = 0; i < 4; ++i) {
    const size_t space = text.find(' ');
    const std::string_view field = text.substr(0, space);
    const bool last = i == 3;
    const bool may_grow = space == std::string_view::npos && open;
    if (space == std::string_view::npos && !open && field.empty()) return ends_early(names[i]);
    if (may_grow ? !could_begin(kinds[i], field) : !is_whole(kinds[i], field, nullptr)) {
      if (field.empty()) {
        return {Status::kInvalid, std::nullopt,
                "v1 header has two spaces where its " + std::string(names[i]) + " should be"};
      }
      return {Status::kInvalid, std::nullopt,
              std::string("bad ") + field_name(kinds[i]) + " " + quoted(field)};
    }
    if (may_grow) return {Status::kIncomplete, std::nullopt, {}};
    fields[i] = field;
    if (last && space != std::string_view::npos) {
      return {Status::kInvalid, std::nullopt, "v1 header goes on after its destination port"};
    }
    if (!last && space == std::string_view::npos) return ends_early(names[i + 1]);
    if (!last) text.remove_prefix(space + 1);
  }

  unsigned char address[sizeof(in6_addr)];
  is_whole(address_kind, fields[0], address);
  const int family = address_kind == FieldKind::kIpv4 ? AF_INET : AF_INET6;
  unsigned port = 0;
  for (const char c : fields[2]) port = port * 10 + static_cast<unsigned>(c - '0');
  return {Status::kComplete, tcp_client(family, address, static_cast<uint16_t>(port)), {}};
}

ProxyHeader parse_v1(std::string_view bytes) {
  const size_t signature_bytes = std::min(bytes.size(), kV1Signature.size());
  if (bytes.substr(0, signature_bytes) != kV1Signature.substr(0, signature_bytes)) {
    return invalid("not a PROXY protocol header");
  }
  // The line's text is at most 105 bytes, then CRLF: no CR or LF where the text would be is no line.
  const std::string_view window = bytes.substr(0, kMaxProxyHeaderV1Bytes - 1);
  const size_t end = window.find_first_of("\r\n");
  if (end == std::string_view::npos && bytes.size() >= kMaxProxyHeaderV1Bytes - 1) {
    return invalid("v1 header longer than 107 bytes");
  }
  if (end != std::string_view::npos && bytes[end] == '\n') return invalid("v1 header ends in LF without CR");
  if (end != std::string_view::npos && end + 1 < bytes.size() && bytes[end + 1] != '\n') {
    return invalid("v1 header has a CR without LF");
  }
  const bool open = end == std::string_view::npos;
  LineVerdict verdict = read_v1_line(bytes.substr(0, open ? bytes.size() : end), open);
  if (verdict.status == Status::kInvalid) return invalid(std::move(verdict.error));
  if (verdict.status == Status::kIncomplete || open || end + 1 == bytes.size()) return incomplete();
  return complete(end + 2, std::move(verdict.source));
}

// ---- Version 2: a binary block.

// proxy-protocol.txt, section 2.2: the high nibble of ver_cmd (the version) and its low nibble (the
// command); the high nibble of fam (the address family) and its low nibble (the transport).
constexpr unsigned kV2Version = 2;
constexpr unsigned kLocal = 0, kProxy = 1;
constexpr unsigned kInet = 1, kInet6 = 2, kUnix = 3;
constexpr unsigned kUnspecifiedTransport = 0, kStream = 1, kDatagram = 2;

// The addresses' bytes of each family: two addresses, and two ports for the IP families.
size_t v2_address_bytes(unsigned family) {
  switch (family) {
    case kInet: return 2 * 4 + 2 * 2;
    case kInet6: return 2 * 16 + 2 * 2;
    case kUnix: return 2 * 108;
  }
  return 0;
}

const char* v2_family_name(unsigned family) {
  switch (family) {
    case kInet: return "IPv4";
    case kInet6: return "IPv6";
    case kUnix: return "Unix";
  }
  return "unspecified";
}

ProxyHeader parse_v2(std::string_view bytes) {
  const size_t signature_bytes = std::min(bytes.size(), kV2Signature.size());
  if (bytes.substr(0, signature_bytes) != kV2Signature.substr(0, signature_bytes)) {
    return invalid("not a PROXY protocol header");
  }
  const auto byte = [&](size_t i) { return static_cast<unsigned>(static_cast<unsigned char>(bytes[i])); };
  if (bytes.size() <= 12) return incomplete();
  const unsigned version = byte(12) >> 4, command = byte(12) & 0xf;
  if (version != kV2Version) return invalid("PROXY protocol version " + std::to_string(version) + " unknown");
  if (command != kLocal && command != kProxy) return invalid("unknown v2 command " + std::to_string(command));
  if (bytes.size() <= 13) return incomplete();
  const unsigned family = byte(13) >> 4, transport = byte(13) & 0xf;
  if (family > kUnix) return invalid("unknown v2 address family " + std::to_string(family));
  if (transport > kDatagram) return invalid("unknown v2 transport " + std::to_string(transport));
  if (bytes.size() < kV2FixedBytes) return incomplete();

  const size_t length = kV2FixedBytes + (byte(14) << 8 | byte(15));
  if (length > kMaxProxyHeaderBytes) {
    return invalid("v2 header of " + std::to_string(length) + " bytes, longer than the " +
                   std::to_string(kMaxProxyHeaderBytes) + " taken");
  }
  // A LOCAL header's family is ignored (section 2.2), and so are the addresses of an unspecified transport.
  const bool addressed = command == kProxy && transport != kUnspecifiedTransport;
  if (addressed && length - kV2FixedBytes < v2_address_bytes(family)) {
    return invalid("v2 header has " + std::to_string(length - kV2FixedBytes) + " bytes for " +
                   v2_family_name(family) + " addresses, which take " +
                   std::to_string(v2_address_bytes(family)));
  }
  if (bytes.size() < length) return incomplete();

  // Only a TCP client is a client of the reactor's (HAProxy reads the same two, 0x11 and 0x21); TLVs after
  // the addresses are skipped.
  if (!addressed || transport != kStream || (family != kInet && family != kInet6)) {
    return complete(length, std::nullopt);
  }
  const size_t address_size = family == kInet ? 4 : 16;
  const size_t port_at = kV2FixedBytes + 2 * address_size;
  return complete(length, tcp_client(family == kInet ? AF_INET : AF_INET6, bytes.data() + kV2FixedBytes,
                                     static_cast<uint16_t>(byte(port_at) << 8 | byte(port_at + 1))));
}

}  // namespace

ProxyHeader parse_proxy_header(std::string_view bytes) {
  if (bytes.empty()) return incomplete();
  if (bytes[0] == kV1Signature[0]) return parse_v1(bytes);
  if (bytes[0] == kV2Signature[0]) return parse_v2(bytes);
  return invalid("not a PROXY protocol header");
}

}  // namespace handoff::reactor
