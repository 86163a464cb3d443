#pragma once

// Internal to the reactor. The peers trusted to send a PROXY protocol header (reactor/proxy_header.hpp):
// --proxy-protocol-from takes a list of address ranges, and a connection from a peer outside them is taken
// as it is. Anyone allowed here can claim to be any client, so the list is read strictly: a mistake in it
// is an error at start, never a wider range than was written.

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace handoff::reactor {

// One item of the list: an IPv4 or IPv6 network in CIDR notation ("10.0.0.0/8", "fd00::/8"), a bare address
// (one host: /32 or /128), or the keyword "unix" (every peer on a Unix socket, whose connections carry no
// address to check).
class AddressRange {
 public:
  // Reads one item (no spaces around it); nullopt, with error set to a sentence that quotes the item, when
  // it is not one. The address must be an IP literal as inet_pton reads it and the prefix a decimal number
  // up to 32 or 128. The address must be the network's first one, with no bit set past the prefix
  // ("10.0.0.1/8" is refused): such an item is most often a host whose "/32" was mistyped, and taking it as
  // 10.0.0.0/8 would trust sixteen million more peers than meant.
  static std::optional<AddressRange> parse(std::string_view text, std::string& error);

  // Whether the peer address is in the range. address points at a whole sockaddr_in, sockaddr_in6 or
  // sockaddr_un as its sa_family says (a sockaddr_storage filled by accept or getpeername). An IPv4 peer
  // seen on an IPv6 socket (::ffff:10.1.2.3) is the IPv4 peer it stands for, and is in 10.0.0.0/8; it is in
  // an IPv6 range only when that range covers ::ffff:0:0/96 where it lies (::/0 does). A family other than
  // AF_INET, AF_INET6 and AF_UNIX is in no range.
  bool contains(const sockaddr* address) const;

  // As parse reads it back: "10.0.0.0/8", "::1/128" (the address as inet_ntop prints it), "unix".
  std::string to_string() const;

  bool operator==(const AddressRange&) const = default;

 private:
  enum class Kind { kIpv4, kIpv6, kUnix };

  AddressRange(Kind kind, const std::array<uint8_t, 16>& network, unsigned prefix_bits)
      : kind_(kind), network_(network), prefix_bits_(prefix_bits) {}

  Kind kind_;
  // An IPv4 range is kept as the IPv4-mapped IPv6 range it is (10.0.0.0/8 as ::ffff:10.0.0.0/104), so that
  // every peer is compared as 16 bytes. Zero for kUnix.
  std::array<uint8_t, 16> network_;
  unsigned prefix_bits_;  // Of network_, so 96 more than written for an IPv4 range.
};

// Reads a comma-separated list of items ("10.0.0.0/8, 192.168.1.7,::1,unix"), spaces and tabs around each
// allowed. nullopt, with error naming the item, when an item is empty or not one (AddressRange::parse).
std::optional<std::vector<AddressRange>> parse_address_ranges(std::string_view list, std::string& error);

// Whether any of the ranges contains the peer address (AddressRange::contains).
bool any_contains(const std::vector<AddressRange>& ranges, const sockaddr* address);

}  // namespace handoff::reactor
