// Fuzz target: the PROXY protocol header decoder (reactor/proxy_header.hpp), which reads the first bytes of a
// connection from a trusted load balancer before anything else does. The input is those bytes. Checked:
// - the verdict is one of the three, with the fields its status gives: a complete header of 1 to
//   kMaxProxyHeaderBytes bytes within the input, no error; a refusal with an error of printable ASCII (it
//   goes into the log) and nothing else; no decision past kMaxProxyHeaderBytes bytes;
// - as the input arrives byte by byte, the verdict of every prefix runs incomplete, then either complete or
//   invalid for good: a complete header is complete from its last byte on, with the same length and source
//   whatever follows it, and a refused prefix is not saved by more bytes;
// - a v1 line agrees with a plain reading of section 2.1 of proxy-protocol.txt (split at single spaces,
//   inet_pton, a port's digits), whatever the decoder's own way of reading it byte by byte;
// - a v2 header's source is the bytes at the place section 2.2 gives them;
// - a source, written again as a v1 line and as a v2 header, decodes to the same source.

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>
#include <string>
#include <vector>

#include "fuzz/fuzz_support.hpp"
#include "reactor/proxy_header.hpp"

namespace handoff::fuzz {
namespace {

using reactor::ProxyHeader;
using Status = ProxyHeader::Status;

const std::string kV2Signature("\r\n\r\n\0\r\nQUIT\n", 12);

bool same_source(const ProxyHeader& a, const ProxyHeader& b) {
  if (a.source.has_value() != b.source.has_value()) return false;
  return !a.source || (a.source->host == b.source->host && a.source->port == b.source->port);
}

void check_fields(const ProxyHeader& header, size_t input_size) {
  switch (header.status) {
    case Status::kIncomplete:
      FUZZ_CHECK(header.length == 0 && !header.source && header.error.empty());
      FUZZ_CHECK(input_size < reactor::kMaxProxyHeaderBytes);  // No one waits for more than that.
      break;
    case Status::kInvalid:
      FUZZ_CHECK(header.length == 0 && !header.source && !header.error.empty());
      for (const char c : header.error) FUZZ_CHECK(c >= 0x20 && c < 0x7f);
      break;
    case Status::kComplete:
      FUZZ_CHECK(header.length > 0 && header.length <= input_size);
      FUZZ_CHECK(header.length <= reactor::kMaxProxyHeaderBytes && header.error.empty());
      if (header.source) FUZZ_CHECK(!header.source->host.empty());
      break;
    default: FUZZ_CHECK(false);
  }
}

// Each prefix of input, from empty to whole: incomplete, then complete from the header's last byte on with
// the whole input's verdict, or invalid from some byte on.
void check_prefixes(std::string_view input, const ProxyHeader& whole) {
  Status previous = Status::kIncomplete;
  for (size_t size = 0; size <= input.size(); ++size) {
    const ProxyHeader prefix = reactor::parse_proxy_header(input.substr(0, size));
    check_fields(prefix, size);
    if (previous != Status::kIncomplete) FUZZ_CHECK(prefix.status == previous);
    if (prefix.status == Status::kComplete) {
      FUZZ_CHECK(whole.status == Status::kComplete && prefix.length == whole.length &&
                 same_source(prefix, whole));
      FUZZ_CHECK(size >= whole.length);
    }
    if (whole.status == Status::kComplete && size == whole.length)
      FUZZ_CHECK(prefix.status == Status::kComplete);
    if (prefix.status == Status::kInvalid) FUZZ_CHECK(whole.status == Status::kInvalid);
    previous = prefix.status;
  }
}

bool is_decimal_port(std::string_view text) {
  if (text.empty() || text.size() > 5 || (text.size() > 1 && text[0] == '0')) return false;
  unsigned value = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  return value <= 65535;
}

// An address of the family, as section 2.1 writes it: IPv4 as exactly its dotted quad without leading
// zeros (inet_ntop's own text), IPv6 as inet_pton reads it.
bool is_address(int family, std::string_view text) {
  const std::string terminated(text);
  unsigned char address[sizeof(in6_addr)];
  if (terminated.size() != std::strlen(terminated.c_str())) return false;
  if (inet_pton(family, terminated.c_str(), address) != 1) return false;
  char printed[INET6_ADDRSTRLEN];
  return family == AF_INET6 || terminated == inet_ntop(family, address, printed, sizeof(printed));
}

std::vector<std::string_view> split_at_spaces(std::string_view text) {
  std::vector<std::string_view> parts;
  for (size_t start = 0;;) {
    const size_t space = text.find(' ', start);
    parts.push_back(text.substr(start, space - start));
    if (space == std::string_view::npos) return parts;
    start = space + 1;
  }
}

// A v1 input whose line has ended: the decoder's verdict is the plain reading's.
void check_v1_line(std::string_view input, const ProxyHeader& header) {
  const size_t end = input.find_first_of("\r\n");
  if (end == std::string_view::npos || end + 1 >= input.size()) return;  // The line has not ended yet.
  const bool crlf = input[end] == '\r' && input[end + 1] == '\n';
  const std::vector<std::string_view> parts = split_at_spaces(input.substr(0, end));
  bool valid = crlf && end + 2 <= reactor::kMaxProxyHeaderV1Bytes && parts.size() >= 2 && parts[0] == "PROXY";
  const bool unknown = valid && parts[1] == "UNKNOWN";
  if (valid && !unknown) {
    const int family = parts[1] == "TCP4" ? AF_INET : parts[1] == "TCP6" ? AF_INET6 : AF_UNSPEC;
    valid = family != AF_UNSPEC && parts.size() == 6 && is_address(family, parts[2]) &&
            is_address(family, parts[3]) && is_decimal_port(parts[4]) && is_decimal_port(parts[5]);
  }
  FUZZ_CHECK(header.status == (valid ? Status::kComplete : Status::kInvalid));
  if (!valid) return;
  FUZZ_CHECK(header.length == end + 2);
  FUZZ_CHECK(header.source.has_value() == !unknown);
  if (unknown) return;
  const int family = parts[1] == "TCP4" ? AF_INET : AF_INET6;
  unsigned char given[sizeof(in6_addr)], decoded[sizeof(in6_addr)];
  FUZZ_CHECK(inet_pton(family, std::string(parts[2]).c_str(), given) == 1);
  FUZZ_CHECK(inet_pton(family, header.source->host.c_str(), decoded) == 1);
  FUZZ_CHECK(std::memcmp(given, decoded, family == AF_INET ? 4 : 16) == 0);
  FUZZ_CHECK(std::to_string(header.source->port) == parts[4]);
}

// A complete v2 header's source is its address block's first address and first port.
void check_v2_source(std::string_view input, const ProxyHeader& header) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(input[i]); };
  const bool tcp = byte(12) == 0x21 && (byte(13) == 0x11 || byte(13) == 0x21);
  FUZZ_CHECK(header.source.has_value() == tcp);
  if (!tcp) return;
  const int family = byte(13) == 0x11 ? AF_INET : AF_INET6;
  const size_t address_size = family == AF_INET ? 4 : 16;
  unsigned char decoded[sizeof(in6_addr)];
  FUZZ_CHECK(inet_pton(family, header.source->host.c_str(), decoded) == 1);
  FUZZ_CHECK(std::memcmp(decoded, input.data() + 16, address_size) == 0);
  FUZZ_CHECK(header.source->port == (byte(16 + 2 * address_size) << 8 | byte(17 + 2 * address_size)));
}

// The source written again, as HAProxy's send-proxy and send-proxy-v2 would, decodes to itself.
void check_written_again(const ProxyHeader& header) {
  const reactor::ListenAddress& source = *header.source;
  const bool ipv6 = source.host.find(':') != std::string::npos;
  const std::string port = std::to_string(source.port);
  const std::string line = std::string("PROXY ") + (ipv6 ? "TCP6 " : "TCP4 ") + source.host + " " +
                           (ipv6 ? "::1" : "127.0.0.1") + " " + port + " 80\r\n";
  const ProxyHeader v1 = reactor::parse_proxy_header(line);
  FUZZ_CHECK(v1.status == Status::kComplete && v1.length == line.size() && same_source(v1, header));

  unsigned char address[sizeof(in6_addr)];
  FUZZ_CHECK(inet_pton(ipv6 ? AF_INET6 : AF_INET, source.host.c_str(), address) == 1);
  const size_t address_size = ipv6 ? 16 : 4;
  std::string block(reinterpret_cast<const char*>(address), address_size);
  block += std::string(address_size, '\0');  // The destination.
  block += {static_cast<char>(source.port >> 8), static_cast<char>(source.port & 0xff), 0, 80};
  const std::string binary =
      kV2Signature + "\x21" + (ipv6 ? "\x21" : "\x11") + '\0' + static_cast<char>(block.size()) + block;
  const ProxyHeader v2 = reactor::parse_proxy_header(binary);
  FUZZ_CHECK(v2.status == Status::kComplete && v2.length == binary.size() && same_source(v2, header));
}

}  // namespace
}  // namespace handoff::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace handoff::fuzz;
  const std::string_view input = as_text(data, size);
  const ProxyHeader header = handoff::reactor::parse_proxy_header(input);
  check_fields(header, input.size());
  check_prefixes(input, header);
  if (!input.empty() && input[0] == 'P') check_v1_line(input, header);
  if (header.status != Status::kComplete) return 0;
  if (input[0] == '\r') check_v2_source(input, header);
  if (header.source) check_written_again(header);
  return 0;
}
