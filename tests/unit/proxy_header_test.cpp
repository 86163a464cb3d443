// The PROXY protocol header decoder (reactor/proxy_header.hpp) and the address ranges of the peers trusted
// to send one (reactor/address_range.hpp). Both are pure: no sockets, only bytes and sockaddrs.

#include "reactor/proxy_header.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cstring>
#include <string>
#include <vector>

#include "reactor/address_range.hpp"

namespace handoff::reactor {
namespace {

using Status = ProxyHeader::Status;
using namespace std::string_literals;

const std::string kRequest = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
const std::string kV2Signature("\r\n\r\n\0\r\nQUIT\n", 12);

std::string big_endian16(unsigned value) {
  return {static_cast<char>(value >> 8 & 0xff), static_cast<char>(value & 0xff)};
}

// A v2 header: the signature, ver_cmd, fam, the length of what follows, then it.
std::string v2(unsigned ver_cmd, unsigned fam, const std::string& after) {
  return kV2Signature + static_cast<char>(ver_cmd) + static_cast<char>(fam) + big_endian16(after.size()) +
         after;
}

std::string ipv4_bytes(const char* text) {
  in_addr address;
  EXPECT_EQ(inet_pton(AF_INET, text, &address), 1) << text;
  return std::string(reinterpret_cast<const char*>(&address), sizeof(address));
}

std::string ipv6_bytes(const char* text) {
  in6_addr address;
  EXPECT_EQ(inet_pton(AF_INET6, text, &address), 1) << text;
  return std::string(reinterpret_cast<const char*>(&address), sizeof(address));
}

// The address block of TCP over IPv4 or IPv6: source, destination, source port, destination port.
std::string v2_ipv4_addresses(const char* source, const char* destination, unsigned source_port,
                              unsigned destination_port) {
  return ipv4_bytes(source) + ipv4_bytes(destination) + big_endian16(source_port) +
         big_endian16(destination_port);
}

std::string v2_ipv6_addresses(const char* source, const char* destination, unsigned source_port,
                              unsigned destination_port) {
  return ipv6_bytes(source) + ipv6_bytes(destination) + big_endian16(source_port) +
         big_endian16(destination_port);
}

// A TLV (proxy-protocol.txt, section 2.2): type, 16-bit length, value.
std::string tlv(unsigned type, const std::string& value) {
  return static_cast<char>(type) + big_endian16(value.size()) + value;
}

// Every proper prefix of header is kIncomplete; header whole is kComplete with its length, and stays so with
// a request after it, which is not taken. Returns the result for header whole.
ProxyHeader expect_complete_byte_by_byte(const std::string& header) {
  for (size_t size = 0; size < header.size(); ++size) {
    const ProxyHeader prefix = parse_proxy_header(std::string_view(header).substr(0, size));
    EXPECT_EQ(prefix.status, Status::kIncomplete) << "after " << size << " bytes: " << prefix.error;
  }
  const ProxyHeader whole = parse_proxy_header(header);
  EXPECT_EQ(whole.status, Status::kComplete) << whole.error;
  EXPECT_EQ(whole.length, header.size());
  const ProxyHeader followed = parse_proxy_header(header + kRequest);
  EXPECT_EQ(followed.status, Status::kComplete);
  EXPECT_EQ(followed.length, header.size());
  EXPECT_EQ(followed.source.has_value(), whole.source.has_value());
  if (followed.source && whole.source) {
    EXPECT_EQ(followed.source->host, whole.source->host);
    EXPECT_EQ(followed.source->port, whole.source->port);
  }
  return whole;
}

void expect_source(const ProxyHeader& header, const std::string& host, uint16_t port) {
  ASSERT_TRUE(header.source.has_value());
  EXPECT_EQ(header.source->host, host);
  EXPECT_EQ(header.source->port, port);
}

void expect_invalid(const std::string& bytes, const std::string& error_part = "") {
  const ProxyHeader header = parse_proxy_header(bytes);
  EXPECT_EQ(header.status, Status::kInvalid) << testing::PrintToString(bytes);
  EXPECT_FALSE(header.error.empty());
  EXPECT_NE(header.error.find(error_part), std::string::npos)
      << testing::PrintToString(bytes) << " gives '" << header.error << "'";
  EXPECT_EQ(header.length, 0u);
  EXPECT_FALSE(header.source);
}

// ---- Version 1.

TEST(ProxyHeaderV1, Tcp4NamesTheSourceAddressAndPort) {
  const ProxyHeader header =
      expect_complete_byte_by_byte("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n");
  expect_source(header, "192.168.0.1", 56324);
}

TEST(ProxyHeaderV1, Tcp6NamesTheSourceAsInetNtopPrintsIt) {
  expect_source(expect_complete_byte_by_byte("PROXY TCP6 2001:DB8:0:0::1 ::1 0 65535\r\n"), "2001:db8::1", 0);
  expect_source(expect_complete_byte_by_byte("PROXY TCP6 ::ffff:10.1.2.3 ::1 65535 80\r\n"),
                "::ffff:10.1.2.3", 65535);
}

TEST(ProxyHeaderV1, UnknownNamesNoSourceWhateverFollowsIt) {
  EXPECT_FALSE(expect_complete_byte_by_byte("PROXY UNKNOWN\r\n").source);
  EXPECT_FALSE(expect_complete_byte_by_byte("PROXY UNKNOWN 1.2.3.4 5.6.7.8 1 2\r\n").source);
  EXPECT_FALSE(expect_complete_byte_by_byte("PROXY UNKNOWN anything, even\ttabs  and \x01\r\n").source);
}

// The longest lines of section 2.1: TCP6 with two full addresses (104 bytes), and the worst case, UNKNOWN
// with them (107).
TEST(ProxyHeaderV1, TakesTheLongestLinesOfTheSpecification) {
  const std::string full = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
  const std::string tcp6 = "PROXY TCP6 " + full + " " + full + " 65535 65535\r\n";
  ASSERT_EQ(tcp6.size(), 104u);
  expect_source(expect_complete_byte_by_byte(tcp6), full, 65535);
  const std::string unknown = "PROXY UNKNOWN " + full + " " + full + " 65535 65535\r\n";
  ASSERT_EQ(unknown.size(), kMaxProxyHeaderV1Bytes);
  expect_complete_byte_by_byte(unknown);
}

TEST(ProxyHeaderV1, RefusesALineLongerThan107Bytes) {
  const std::string line = "PROXY UNKNOWN " + std::string(91, 'x') + "\r\n";  // 107 bytes: taken.
  ASSERT_EQ(line.size(), kMaxProxyHeaderV1Bytes);
  EXPECT_EQ(parse_proxy_header(line).status, Status::kComplete);
  const std::string longer = "PROXY UNKNOWN " + std::string(92, 'x') + "\r\n";
  expect_invalid(longer, "longer than 107 bytes");
  // Decided once 106 bytes came without a CR: the CRLF can no longer end the line in time.
  EXPECT_EQ(parse_proxy_header(longer.substr(0, 105)).status, Status::kIncomplete);
  expect_invalid(longer.substr(0, 106), "longer than 107 bytes");
  // A TCP6 line with long forms of addresses that inet_pton takes is still held to 107 bytes.
  const std::string mapped = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255";
  expect_invalid("PROXY TCP6 " + mapped + " " + mapped + " 1 2\r\n", "longer than 107 bytes");
}

TEST(ProxyHeaderV1, LeavesTheBytesAfterTheHeaderToTheRequest) {
  const std::string header = "PROXY TCP4 10.0.0.1 10.0.0.2 1234 80\r\n";
  const std::string bytes = header + "PROXY TCP4 10.0.0.9 10.0.0.2 1 80\r\n" + kRequest;
  const ProxyHeader parsed = parse_proxy_header(bytes);
  ASSERT_EQ(parsed.status, Status::kComplete);
  EXPECT_EQ(parsed.length, header.size());
  expect_source(parsed, "10.0.0.1", 1234);
  EXPECT_EQ(bytes.substr(parsed.length, 5), "PROXY");
}

// Each rule of section 2.1, broken once.
TEST(ProxyHeaderV1, IsExactlyTheGrammar) {
  const struct {
    std::string line;
    std::string error_part;
  } cases[] = {
      {"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", "two spaces"},
      {"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", "two spaces"},
      {"PROXY TCP4 1.2.3.4 5.6.7.8 1  2\r\n", "two spaces"},
      {"PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "unknown v1 protocol ''"},
      {"PROXY\tTCP4 1.2.3.4 5.6.7.8 1 2\r\n", "not a PROXY protocol header"},
      {"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", "goes on after its destination port"},
      {"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", "goes on after its destination port"},
      {"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", "ends before its destination port"},
      {"PROXY TCP4 1.2.3.4 5.6.7.8 1 \r\n", "ends before its destination port"},
      {"PROXY TCP4 1.2.3.4 5.6.7.8\r\n", "ends before its source port"},
      {"PROXY TCP4 1.2.3.4\r\n", "ends before its destination address"},
      {"PROXY TCP4\r\n", "ends before its source address"},
      {"PROXY TCP4 \r\n", "ends before its source address"},
      {"PROXY\r\n", "not a PROXY protocol header"},
      {"PROXY \r\n", "unknown v1 protocol ''"},
      {"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", "unknown v1 protocol 'TCP5'"},
      {"PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n", "unknown v1 protocol 'tcp4'"},
      {"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", "unknown v1 protocol 'UDP4'"},
      {"PROXY UNKNOWNX\r\n", "unknown v1 protocol 'UNKNOWNX'"},
      {"PROXY TCP\x01 1.2.3.4 5.6.7.8 1 2\r\n", "'TCP\\x01'"},  // The log gets no control byte.
      {"proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "not a PROXY protocol header"},
      // Addresses: of the declared family, in decimal without leading zeros, nothing else.
      {"PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", "bad IPv4 address '01"},
      {"PROXY TCP4 1.2.3.4 5.6.7.08 1 2\r\n", "bad IPv4 address '5.6.7.08'"},
      {"PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n", "bad IPv4 address '1.2.3.256'"},
      {"PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", "bad IPv4 address '1.2.3'"},
      {"PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n", "bad IPv4 address '1.2.3.4."},
      {"PROXY TCP4 1.2..4 5.6.7.8 1 2\r\n", "bad IPv4 address '1.2."},
      {"PROXY TCP4 0x1.2.3.4 5.6.7.8 1 2\r\n", "bad IPv4 address '0x"},
      {"PROXY TCP4 ::1 ::1 1 2\r\n", "bad IPv4 address '::1'"},
      {"PROXY TCP4 localhost 5.6.7.8 1 2\r\n", "bad IPv4 address 'localhost'"},
      {"PROXY TCP6 1.2.3.4 ::1 1 2\r\n", "bad IPv6 address '1.2.3.4'"},
      {"PROXY TCP6 ::1 ::g 1 2\r\n", "bad IPv6 address '::g'"},
      {"PROXY TCP6 1::2::3 ::1 1 2\r\n", "bad IPv6 address '1::2::3'"},
      {"PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", "bad IPv6 address 'fe80::1%"},
      {"PROXY TCP6 [::1] ::1 1 2\r\n", "bad IPv6 address '[::1]'"},
      // Ports: 0-65535 in decimal, no leading zeros, no sign.
      {"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", "bad port '65536'"},
      {"PROXY TCP4 1.2.3.4 5.6.7.8 1 080\r\n", "bad port '08"},
      {"PROXY TCP4 1.2.3.4 5.6.7.8 00 2\r\n", "bad port '00'"},
      {"PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n", "bad port '+1'"},
      {"PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n", "bad port '-1'"},
      {"PROXY TCP4 1.2.3.4 5.6.7.8 1a 2\r\n", "bad port '1a'"},
      {"PROXY TCP4 1.2.3.4 5.6.7.8 100000 2\r\n", "bad port '10000"},
      // The line ends in CRLF, and in nothing else.
      {"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "LF without CR"},
      {"PROXY UNKNOWN\n", "LF without CR"},
      {"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n", "CR without LF"},
      {"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX", "CR without LF"},
      {"PROXY UNKNOWN a\rb\r\n", "CR without LF"},
      {"PROXY TCP4 1.2.3.4\n5.6.7.8 1 2\r\n", "LF without CR"},
      {"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\0\r\n"s, "bad port '2\\x00'"},
  };
  for (const auto& [line, error_part] : cases) expect_invalid(line, error_part);
}

// The receiver should "abort the connection as soon as possible" (section 2.1): a byte that no valid header
// could have there decides, without waiting for the line's end.
TEST(ProxyHeaderV1, RefusesAsSoonAsNoHeaderCanFollow) {
  for (const char* prefix :
       {"PX", "PROXY_", "PROXY X", "PROXY TCP5", "PROXY UNKNOWNx", "PROXY TCP4 01", "PROXY TCP4 1.2.3.256",
        "PROXY TCP4 1.2.3.4.", "PROXY TCP4 1:", "PROXY TCP6 ::1%", "PROXY TCP4 1.2.3.4 5.6.7.8 08",
        "PROXY TCP4 1.2.3.4 5.6.7.8 65536", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 "}) {
    expect_invalid(prefix);
  }
  // What could still become a header waits, even where it could also turn out wrong.
  for (const char* prefix :
       {"P", "PROXY", "PROXY ", "PROXY T", "PROXY TCP", "PROXY UNK", "PROXY UNKNOWN", "PROXY UNKNOWN ",
        "PROXY TCP4 1.2.3.25", "PROXY TCP6 1::2::3", "PROXY TCP4 1.2.3.4 5.6.7.8 6553",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r"}) {
    EXPECT_EQ(parse_proxy_header(prefix).status, Status::kIncomplete) << prefix;
  }
}

// ---- Version 2.

TEST(ProxyHeaderV2, ProxyOverTcp4NamesTheSource) {
  const std::string header = v2(0x21, 0x11, v2_ipv4_addresses("192.0.2.1", "198.51.100.2", 40000, 443));
  ASSERT_EQ(header.size(), 28u);
  expect_source(expect_complete_byte_by_byte(header), "192.0.2.1", 40000);
  expect_source(expect_complete_byte_by_byte(v2(0x21, 0x11, v2_ipv4_addresses("0.0.0.0", "1.1.1.1", 0, 1))),
                "0.0.0.0", 0);
  expect_source(
      expect_complete_byte_by_byte(v2(0x21, 0x11, v2_ipv4_addresses("255.255.255.255", "1.1.1.1", 65535, 1))),
      "255.255.255.255", 65535);
}

TEST(ProxyHeaderV2, ProxyOverTcp6NamesTheSource) {
  const std::string header = v2(0x21, 0x21, v2_ipv6_addresses("2001:db8::7", "2001:db8::1", 51234, 8080));
  ASSERT_EQ(header.size(), 52u);
  expect_source(expect_complete_byte_by_byte(header), "2001:db8::7", 51234);
  // An IPv4 client seen by an IPv6 proxy stays as inet_ntop prints it.
  expect_source(
      expect_complete_byte_by_byte(v2(0x21, 0x21, v2_ipv6_addresses("::ffff:10.1.2.3", "::1", 1, 2))),
      "::ffff:10.1.2.3", 1);
}

// HAProxy's send-proxy-v2 health checks: LOCAL, with the family unspecified and no address.
TEST(ProxyHeaderV2, LocalNamesNoSourceWhateverItsFamily) {
  EXPECT_FALSE(expect_complete_byte_by_byte(v2(0x20, 0x00, "")).source);
  // The family of a LOCAL header is ignored (section 2.2), and so is an address block too short for it.
  EXPECT_FALSE(
      expect_complete_byte_by_byte(v2(0x20, 0x11, v2_ipv4_addresses("192.0.2.1", "192.0.2.2", 1, 2))).source);
  EXPECT_FALSE(expect_complete_byte_by_byte(v2(0x20, 0x21, "")).source);
}

TEST(ProxyHeaderV2, NamesNoSourceForUnixDatagramOrUnspecified) {
  const std::string unix_addresses =
      "/run/client.sock" + std::string(92, '\0') + "/run/server.sock" + std::string(92, '\0');
  ASSERT_EQ(unix_addresses.size(), 216u);
  EXPECT_FALSE(expect_complete_byte_by_byte(v2(0x21, 0x31, unix_addresses)).source);
  EXPECT_FALSE(expect_complete_byte_by_byte(v2(0x21, 0x32, unix_addresses)).source);
  EXPECT_FALSE(
      expect_complete_byte_by_byte(v2(0x21, 0x12, v2_ipv4_addresses("1.2.3.4", "5.6.7.8", 1, 2))).source);
  EXPECT_FALSE(expect_complete_byte_by_byte(v2(0x21, 0x22, v2_ipv6_addresses("::1", "::2", 1, 2))).source);
  EXPECT_FALSE(expect_complete_byte_by_byte(v2(0x21, 0x00, "")).source);
  EXPECT_FALSE(expect_complete_byte_by_byte(v2(0x21, 0x01, "")).source);
  // An unspecified transport's addresses are ignored, and need not be there.
  EXPECT_FALSE(expect_complete_byte_by_byte(v2(0x21, 0x10, "")).source);
}

// HAProxy sends ALPN, authority (SNI), unique id and SSL TLVs after the addresses: skipped, all of them.
TEST(ProxyHeaderV2, SkipsTheTlvsAfterTheAddresses) {
  const std::string tlvs = tlv(0x01, "h2") + tlv(0x02, "example.com") + tlv(0x05, std::string(128, 'u')) +
                           tlv(0x20, "\x07\0\0\0\0"s + tlv(0x21, "TLSv1.3")) + tlv(0x04, "");
  const std::string header = v2(0x21, 0x11, v2_ipv4_addresses("203.0.113.9", "10.0.0.1", 1111, 443) + tlvs);
  expect_source(expect_complete_byte_by_byte(header), "203.0.113.9", 1111);
  // What is past the addresses is not looked into: it need not even be TLVs.
  expect_source(expect_complete_byte_by_byte(
                    v2(0x21, 0x11, v2_ipv4_addresses("203.0.113.9", "10.0.0.1", 1, 2) + "\xff")),
                "203.0.113.9", 1);
  EXPECT_FALSE(expect_complete_byte_by_byte(v2(0x20, 0x00, tlvs)).source);
}

TEST(ProxyHeaderV2, RefusesAnotherVersionOrCommandAtOnce) {
  const std::string addresses = v2_ipv4_addresses("192.0.2.1", "192.0.2.2", 1, 2);
  for (const unsigned ver_cmd : {0x01u, 0x11u, 0x31u, 0xf1u}) {
    const std::string header = v2(ver_cmd, 0x11, addresses);
    expect_invalid(header.substr(0, 13), "PROXY protocol version");
    expect_invalid(header, "PROXY protocol version");
  }
  for (const unsigned ver_cmd : {0x22u, 0x2fu}) {
    expect_invalid(v2(ver_cmd, 0x11, addresses).substr(0, 13), "unknown v2 command");
  }
}

TEST(ProxyHeaderV2, RefusesAnUnknownFamilyOrTransportAtOnce) {
  expect_invalid(v2(0x21, 0x41, "").substr(0, 14), "unknown v2 address family 4");
  expect_invalid(v2(0x21, 0xf1, ""), "unknown v2 address family 15");
  expect_invalid(v2(0x21, 0x13, "").substr(0, 14), "unknown v2 transport 3");
  expect_invalid(v2(0x20, 0x03, ""), "unknown v2 transport 3");
}

TEST(ProxyHeaderV2, RefusesALengthTooShortForTheFamilyOnceTheLengthArrives) {
  expect_invalid(v2(0x21, 0x11, std::string(11, '\0')).substr(0, 16), "11 bytes for IPv4 addresses");
  expect_invalid(v2(0x21, 0x11, ""), "0 bytes for IPv4 addresses");
  expect_invalid(v2(0x21, 0x21, v2_ipv4_addresses("1.2.3.4", "5.6.7.8", 1, 2)),
                 "12 bytes for IPv6 addresses");
  expect_invalid(v2(0x21, 0x31, std::string(215, '\0')), "215 bytes for Unix addresses");
  expect_invalid(v2(0x21, 0x12, std::string(4, '\0')), "IPv4 addresses");
}

TEST(ProxyHeaderV2, RefusesAHeaderLongerThanTheReactorTakesOnceTheLengthArrives) {
  const std::string addresses = v2_ipv4_addresses("192.0.2.1", "192.0.2.2", 1, 2);
  const std::string longest =
      v2(0x21, 0x11, addresses + tlv(0x04, std::string(kMaxProxyHeaderBytes - 31, 'n')));
  ASSERT_EQ(longest.size(), kMaxProxyHeaderBytes);
  expect_source(expect_complete_byte_by_byte(longest), "192.0.2.1", 1);
  const std::string longer =
      v2(0x21, 0x11, addresses + tlv(0x04, std::string(kMaxProxyHeaderBytes - 30, 'n')));
  expect_invalid(longer.substr(0, 16), "4097 bytes, longer than the 4096 taken");
  expect_invalid(kV2Signature + "\x21\x11\xff\xff", "65551 bytes");
}

TEST(ProxyHeaderV2, RefusesABrokenSignatureAtTheFirstWrongByte) {
  expect_invalid("\r\n\r\n\0\r\nQUIX"s, "not a PROXY protocol header");
  expect_invalid("\r\n\r\n\r\n", "not a PROXY protocol header");
  expect_invalid("\r\nGET", "not a PROXY protocol header");
  expect_invalid("\r\r", "not a PROXY protocol header");
  EXPECT_EQ(parse_proxy_header("\r\n\r\n\0\r\nQUI"s).status, Status::kIncomplete);
  EXPECT_EQ(parse_proxy_header(kV2Signature).status, Status::kIncomplete);
}

// ---- Neither.

TEST(ProxyHeader, WaitsForAFirstByte) {
  EXPECT_EQ(parse_proxy_header("").status, Status::kIncomplete);
}

// A client that speaks straight to a port that expects a PROXY header (section 2: the receiver "must not try
// to guess whether the protocol header is present") is refused at its first byte.
TEST(ProxyHeader, RefusesAnythingElseAtItsFirstByte) {
  expect_invalid("G", "not a PROXY protocol header");
  expect_invalid("GET / HTTP/1.1\r\n", "not a PROXY protocol header");
  expect_invalid(kRequest, "not a PROXY protocol header");
  expect_invalid("ping\n", "not a PROXY protocol header");
  expect_invalid("\x16\x03\x01\x02\x00"s, "not a PROXY protocol header");  // A TLS ClientHello.
  expect_invalid("\0"s, "not a PROXY protocol header");
  expect_invalid("\n", "not a PROXY protocol header");
  expect_invalid(" PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "not a PROXY protocol header");
  // HTTP/2's preface begins with a P, and is refused at its third byte.
  EXPECT_EQ(parse_proxy_header("PR").status, Status::kIncomplete);
  expect_invalid("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "not a PROXY protocol header");
}

// Once a prefix is refused, no byte after it helps; once a header is complete, no byte after it changes it.
TEST(ProxyHeader, VerdictsHoldAsMoreBytesArrive) {
  for (const std::string& refused : {"PROXY TCP5"s, "PROXY TCP4 1.2.3.256"s, "\r\n\r\n\0\r\nQUIT\n\x11"s}) {
    for (const std::string& more : {""s, " 1.2.3.4 5.6.7.8 1 2\r\n"s, "\r\n"s, kRequest}) {
      EXPECT_EQ(parse_proxy_header(refused + more).status, Status::kInvalid) << refused + more;
    }
  }
  const std::string header = "PROXY UNKNOWN\r\n";
  for (const std::string& more : {"\r\n"s, "\n"s, "garbage\x01"s, header}) {
    const ProxyHeader parsed = parse_proxy_header(header + more);
    EXPECT_EQ(parsed.status, Status::kComplete);
    EXPECT_EQ(parsed.length, header.size());
  }
}

// ---- Address ranges.

sockaddr_storage ipv4_peer(const char* text, uint16_t port = 5000) {
  sockaddr_storage storage{};
  auto* address = reinterpret_cast<sockaddr_in*>(&storage);
  address->sin_family = AF_INET;
  address->sin_port = htons(port);
  EXPECT_EQ(inet_pton(AF_INET, text, &address->sin_addr), 1) << text;
  return storage;
}

sockaddr_storage ipv6_peer(const char* text, uint16_t port = 5000) {
  sockaddr_storage storage{};
  auto* address = reinterpret_cast<sockaddr_in6*>(&storage);
  address->sin6_family = AF_INET6;
  address->sin6_port = htons(port);
  EXPECT_EQ(inet_pton(AF_INET6, text, &address->sin6_addr), 1) << text;
  return storage;
}

sockaddr_storage unix_peer() {
  sockaddr_storage storage{};
  auto* address = reinterpret_cast<sockaddr_un*>(&storage);
  address->sun_family = AF_UNIX;
  std::strcpy(address->sun_path, "/run/handoff.sock");
  return storage;
}

const sockaddr* as_sockaddr(const sockaddr_storage& storage) {
  return reinterpret_cast<const sockaddr*>(&storage);
}

AddressRange range(const char* text) {
  std::string error;
  std::optional<AddressRange> parsed = AddressRange::parse(text, error);
  EXPECT_TRUE(parsed) << text << ": " << error;
  return parsed.value_or(*AddressRange::parse("unix", error));
}

bool contains(const char* range_text, const sockaddr_storage& peer) {
  return range(range_text).contains(as_sockaddr(peer));
}

TEST(AddressRanges, ParsesAListWithSpacesAroundItsCommas) {
  std::string error;
  const auto ranges = parse_address_ranges("10.0.0.0/8,192.168.1.7, ::1 ,\tfd00::/8 , unix", error);
  ASSERT_TRUE(ranges) << error;
  std::vector<std::string> texts;
  for (const AddressRange& range : *ranges) texts.push_back(range.to_string());
  EXPECT_EQ(texts, (std::vector<std::string>{"10.0.0.0/8", "192.168.1.7/32", "::1/128", "fd00::/8", "unix"}));
  ASSERT_TRUE(parse_address_ranges("  10.0.0.1  ", error));
}

// Read back, to_string gives the same range.
TEST(AddressRanges, ToStringReadsBackAsTheSameRange) {
  for (const char* text : {"0.0.0.0/0", "10.0.0.0/8", "128.0.0.0/1", "192.168.1.7", "::/0", "8000::/1",
                           "2001:DB8::/32", "::ffff:10.0.0.0/104", "::1", "unix", "10.0.0.0/0008"}) {
    const AddressRange parsed = range(text);
    EXPECT_EQ(range(parsed.to_string().c_str()), parsed) << text;
  }
  EXPECT_EQ(range("2001:DB8:0::/32").to_string(), "2001:db8::/32");
  EXPECT_EQ(range("10.0.0.0/0008").to_string(), "10.0.0.0/8");
}

TEST(AddressRanges, RefusesAMistakeNamingTheItem) {
  const struct {
    const char* list;
    const char* error;
  } cases[] = {
      {"", "item 1 of '' is empty"},
      {" ", "item 1 of ' ' is empty"},
      {"10.0.0.0/8,,::1", "item 2 of '10.0.0.0/8,,::1' is empty"},
      {"10.0.0.0/8,", "item 2 of '10.0.0.0/8,' is empty"},
      {",::1", "item 1 of ',::1' is empty"},
      {"10.0.0.0/8,example.com",
       "'example.com' is not an IPv4 or IPv6 address, a network in CIDR notation or unix"},
      {"10.0.0.1/8", "'10.0.0.1/8' has bits set past its prefix /8"},
      {"10.128.0.0/8", "'10.128.0.0/8' has bits set past its prefix /8"},
      {"10.0.0.1/31", "'10.0.0.1/31' has bits set past its prefix /31"},
      {"1.0.0.0/0", "'1.0.0.0/0' has bits set past its prefix /0"},
      {"fd00::1/8", "'fd00::1/8' has bits set past its prefix /8"},
      {"::1/127", "'::1/127' has bits set past its prefix /127"},
      {"10.0.0.0/33", "'10.0.0.0/33' has a prefix longer than 32 bits"},
      {"::/129", "'::/129' has a prefix longer than 128 bits"},
      {"10.0.0.0/", "'10.0.0.0/' has a prefix length that is not a number"},
      {"10.0.0.0/-1", "'10.0.0.0/-1' has a prefix length that is not a number"},
      {"10.0.0.0/+8", "'10.0.0.0/+8' has a prefix length that is not a number"},
      {"10.0.0.0/8/8", "'10.0.0.0/8/8' has a prefix length that is not a number"},
      {"10.0.0.0/99999999999999999999", "'10.0.0.0/99999999999999999999' has a prefix longer than 32 bits"},
      {"10.0.0.0 /8", "'10.0.0.0 /8' is not"},
      {"10.0.0.0/ 8", "'10.0.0.0/ 8' has a prefix length that is not a number"},
      {"10.0.0.0/8 ::1", "'10.0.0.0/8 ::1' has a prefix length"},
      {"10.1/16", "'10.1/16' is not"},
      {"010.0.0.0/8", "'010.0.0.0/8' is not"},
      {"[::1]", "'[::1]' is not"},
      {"fe80::1%eth0", "'fe80::1%eth0' is not"},
      {"/8", "'/8' is not"},
      {"Unix", "'Unix' is not"},
      {"unix/8", "'unix/8' is not"},
  };
  for (const auto& [list, expected] : cases) {
    std::string error;
    EXPECT_FALSE(parse_address_ranges(list, error)) << list;
    EXPECT_NE(error.find(expected), std::string::npos) << list << " gives '" << error << "'";
  }
  std::string error;
  EXPECT_FALSE(AddressRange::parse("10.0.0.1\0/8"s, error));
}

TEST(AddressRanges, ContainsIpv4PeersWithinThePrefix) {
  EXPECT_TRUE(contains("10.0.0.0/8", ipv4_peer("10.0.0.0")));
  EXPECT_TRUE(contains("10.0.0.0/8", ipv4_peer("10.255.255.255")));
  EXPECT_FALSE(contains("10.0.0.0/8", ipv4_peer("11.0.0.0")));
  EXPECT_FALSE(contains("10.0.0.0/8", ipv4_peer("9.255.255.255")));
  EXPECT_TRUE(contains("10.128.0.0/9", ipv4_peer("10.200.0.1")));
  EXPECT_FALSE(contains("10.128.0.0/9", ipv4_peer("10.127.255.255")));
  EXPECT_TRUE(contains("192.168.1.7", ipv4_peer("192.168.1.7")));
  EXPECT_FALSE(contains("192.168.1.7", ipv4_peer("192.168.1.6")));
  EXPECT_FALSE(contains("192.168.1.7/32", ipv4_peer("192.168.1.8")));
  EXPECT_TRUE(contains("192.168.1.6/31", ipv4_peer("192.168.1.7")));
  EXPECT_FALSE(contains("192.168.1.6/31", ipv4_peer("192.168.1.8")));
  // The edges: /0 is every IPv4 peer, /1 half of them.
  EXPECT_TRUE(contains("0.0.0.0/0", ipv4_peer("0.0.0.0")));
  EXPECT_TRUE(contains("0.0.0.0/0", ipv4_peer("255.255.255.255")));
  EXPECT_TRUE(contains("128.0.0.0/1", ipv4_peer("128.0.0.0")));
  EXPECT_TRUE(contains("128.0.0.0/1", ipv4_peer("255.255.255.255")));
  EXPECT_FALSE(contains("128.0.0.0/1", ipv4_peer("127.255.255.255")));
  EXPECT_TRUE(contains("0.0.0.0/1", ipv4_peer("127.255.255.255")));
  EXPECT_FALSE(contains("0.0.0.0/1", ipv4_peer("128.0.0.0")));
}

TEST(AddressRanges, ContainsIpv6PeersWithinThePrefix) {
  EXPECT_TRUE(contains("fd00::/8", ipv6_peer("fd00::")));
  EXPECT_TRUE(contains("fd00::/8", ipv6_peer("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
  EXPECT_FALSE(contains("fd00::/8", ipv6_peer("fe00::")));
  EXPECT_FALSE(contains("fd00::/8", ipv6_peer("fc00::1")));
  EXPECT_TRUE(contains("::1", ipv6_peer("::1")));
  EXPECT_FALSE(contains("::1", ipv6_peer("::")));
  EXPECT_FALSE(contains("::1/128", ipv6_peer("::2")));
  EXPECT_TRUE(contains("2001:db8::/127", ipv6_peer("2001:db8::1")));
  EXPECT_FALSE(contains("2001:db8::/127", ipv6_peer("2001:db8::2")));
  EXPECT_TRUE(contains("::/0", ipv6_peer("::")));
  EXPECT_TRUE(contains("::/0", ipv6_peer("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
  EXPECT_TRUE(contains("8000::/1", ipv6_peer("8000::")));
  EXPECT_FALSE(contains("8000::/1", ipv6_peer("7fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
  EXPECT_TRUE(contains("::/1", ipv6_peer("7fff::")));
  // An IPv6 range holds no IPv4 peer unless it covers ::ffff:0:0/96, where they lie.
  EXPECT_FALSE(contains("::1", ipv4_peer("127.0.0.1")));
  EXPECT_FALSE(contains("fd00::/8", ipv4_peer("10.0.0.1")));
  EXPECT_TRUE(contains("::/0", ipv4_peer("10.0.0.1")));
}

// An IPv4 client of a dual-stack socket arrives as ::ffff:10.1.2.3: it is the IPv4 client all the same.
TEST(AddressRanges, ContainsAnIpv4MappedPeerAsTheIpv4PeerItIs) {
  EXPECT_TRUE(contains("10.0.0.0/8", ipv6_peer("::ffff:10.1.2.3")));
  EXPECT_FALSE(contains("10.0.0.0/8", ipv6_peer("::ffff:11.1.2.3")));
  EXPECT_TRUE(contains("10.1.2.3", ipv6_peer("::ffff:10.1.2.3")));
  EXPECT_TRUE(contains("0.0.0.0/0", ipv6_peer("::ffff:1.2.3.4")));
  // Other IPv6 peers are in no IPv4 range, /0 included, however their low 32 bits read.
  EXPECT_FALSE(contains("0.0.0.0/0", ipv6_peer("::1")));
  EXPECT_FALSE(contains("10.1.2.3", ipv6_peer("::10.1.2.3")));
  EXPECT_FALSE(contains("10.1.2.3", ipv6_peer("64:ff9b::10.1.2.3")));
  // Written as IPv6, a range of mapped addresses holds the IPv4 peers too.
  EXPECT_TRUE(contains("::ffff:10.0.0.0/104", ipv4_peer("10.1.2.3")));
  EXPECT_TRUE(contains("::ffff:0:0/96", ipv4_peer("192.0.2.1")));
  EXPECT_FALSE(contains("::ffff:10.0.0.0/104", ipv4_peer("11.1.2.3")));
}

// The reactor's Unix listening sockets: their peers carry no address, and only "unix" holds them.
TEST(AddressRanges, UnixHoldsThePeersOfUnixSocketsAndOnlyThem) {
  EXPECT_TRUE(contains("unix", unix_peer()));
  EXPECT_FALSE(contains("unix", ipv4_peer("127.0.0.1")));
  EXPECT_FALSE(contains("unix", ipv6_peer("::1")));
  EXPECT_FALSE(contains("0.0.0.0/0", unix_peer()));
  EXPECT_FALSE(contains("::/0", unix_peer()));
  sockaddr_storage unnamed{};
  unnamed.ss_family = AF_UNIX;  // A peer bound to no path (socketpair, or a client that did not bind).
  EXPECT_TRUE(contains("unix", unnamed));
}

TEST(AddressRanges, HoldNoPeerOfAnotherFamily) {
  sockaddr_storage other{};
  other.ss_family = AF_UNSPEC;
  for (const char* text : {"0.0.0.0/0", "::/0", "unix"}) EXPECT_FALSE(contains(text, other)) << text;
}

TEST(AddressRanges, AnyContainsLooksAtEveryRange) {
  std::string error;
  const auto ranges = parse_address_ranges("10.0.0.0/8, 2001:db8::/32, unix", error);
  ASSERT_TRUE(ranges) << error;
  EXPECT_TRUE(any_contains(*ranges, as_sockaddr(ipv4_peer("10.9.8.7"))));
  EXPECT_TRUE(any_contains(*ranges, as_sockaddr(ipv6_peer("::ffff:10.9.8.7"))));
  EXPECT_TRUE(any_contains(*ranges, as_sockaddr(ipv6_peer("2001:db8:1::1"))));
  EXPECT_TRUE(any_contains(*ranges, as_sockaddr(unix_peer())));
  EXPECT_FALSE(any_contains(*ranges, as_sockaddr(ipv4_peer("192.0.2.1"))));
  EXPECT_FALSE(any_contains(*ranges, as_sockaddr(ipv6_peer("2001:db9::1"))));
  EXPECT_FALSE(any_contains({}, as_sockaddr(ipv4_peer("10.9.8.7"))));
}

}  // namespace
}  // namespace handoff::reactor
