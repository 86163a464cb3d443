#pragma once

// Internal to the reactor. The PROXY protocol header a load balancer puts before a connection's own bytes to
// name the client it relays (HAProxy's `send-proxy` and `send-proxy-v2`; the format is HAProxy's
// doc/proxy-protocol.txt): version 1, one text line, and version 2, a binary block. Decoding is pure: the
// reactor gives the bytes received so far and learns whether they hold a whole header, how long it is and
// whom it names. Which peers may send one is reactor/address_range.hpp's.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "reactor/config.hpp"

namespace handoff::reactor {

// The longest v1 header, CRLF included ("PROXY UNKNOWN" with two full IPv6 addresses and ports:
// proxy-protocol.txt, section 2.1).
inline constexpr size_t kMaxProxyHeaderV1Bytes = 107;
// The longest header the reactor waits for: a v2 header longer than this (16 bytes and its length field) is
// refused as invalid as soon as its length field arrives, though the format allows 16 + 65535. What lies
// past the addresses is TLVs (ALPN, SNI, TLS details, a unique id), which the reactor skips: HAProxy's come
// to a few hundred bytes, and no connection should hold 64 KiB of the reactor's memory before anyone knows
// it is valid.
inline constexpr size_t kMaxProxyHeaderBytes = 4096;

struct ProxyHeader {
  enum class Status {
    // The bytes may still become a valid header: wait for more. Every proper prefix of a valid header gets
    // this; the fixed parts (signatures, keywords, spaces, the v2 version, command and family) are checked
    // byte by byte, a v1 address or port as soon as its field ends.
    kIncomplete,
    kInvalid,   // No valid header begins with these bytes, whatever follows: close the connection.
    kComplete,  // A whole, valid header.
  };
  Status status = Status::kIncomplete;
  // kComplete: how many bytes the header took; the connection's own bytes begin right after them.
  size_t length = 0;
  // kComplete: the client's address and port (host as inet_ntop prints it, an IPv4-mapped IPv6 address
  // kept as such). nullopt when the header names no TCP client (v1 UNKNOWN; v2 LOCAL, a family or
  // transport left unspecified, AF_UNIX, or a datagram one): the connection's own peer stands, as the
  // specification says.
  std::optional<ListenAddress> source;
  // kInvalid: why, in a short sentence for the log. Bytes quoted from the input are printable ASCII, others
  // escaped as \xNN, so that a client cannot write into the log's lines.
  std::string error;
};

// Decodes the PROXY protocol header (v1 or v2) that bytes begin with. bytes may hold only the first part of
// it, or more than it: nothing past the header is read. A first byte that begins neither signature is
// kInvalid at once (the receiver "must not try to guess whether the protocol header is present": section
// 2). Strict as HAProxy is: v1 is exactly its grammar (single spaces, addresses of the declared family as
// inet_pton reads them, decimal ports 0-65535 without leading zeros, CRLF within 107 bytes, no bare CR or
// LF; UNKNOWN followed by the CRLF, or by a space and anything up to it); v2 has version 2, command LOCAL or
// PROXY, a family and a transport the specification defines, and room in its length for the addresses of
// its family (the addresses of a LOCAL header or an unspecified transport are not looked at).
ProxyHeader parse_proxy_header(std::string_view bytes);

}  // namespace handoff::reactor
