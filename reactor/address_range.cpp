#include "reactor/address_range.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cassert>
#include <cstring>

namespace handoff::reactor {
namespace {

constexpr std::string_view kUnixKeyword = "unix";
// RFC 4291, section 2.5.5.2: ::ffff:0:0/96 holds the IPv4 addresses.
constexpr std::array<uint8_t, 12> kIpv4MappedPrefix = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
constexpr unsigned kIpv4MappedBits = 96;

std::array<uint8_t, 16> ipv4_mapped(const in_addr& address) {
  std::array<uint8_t, 16> mapped{};
  std::copy(kIpv4MappedPrefix.begin(), kIpv4MappedPrefix.end(), mapped.begin());
  std::memcpy(mapped.data() + kIpv4MappedPrefix.size(), &address, sizeof(address));
  return mapped;
}

// Whether a and b agree on their first bits bits.
bool same_prefix(const std::array<uint8_t, 16>& a, const std::array<uint8_t, 16>& b, unsigned bits) {
  const unsigned whole_bytes = bits / 8;
  if (!std::equal(a.begin(), a.begin() + whole_bytes, b.begin())) return false;
  if (bits % 8 == 0) return true;
  const auto mask = static_cast<uint8_t>(0xff << (8 - bits % 8));
  return (a[whole_bytes] & mask) == (b[whole_bytes] & mask);
}

std::string_view trimmed(std::string_view text) {
  const size_t first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(" \t") - first + 1);
}

}  // namespace

std::optional<AddressRange> AddressRange::parse(std::string_view text, std::string& error) {
  const std::string item = "'" + std::string(text) + "'";
  if (text == kUnixKeyword) return AddressRange(Kind::kUnix, {}, 0);
  if (text.find('\0') != std::string_view::npos) {
    error = "an item of the list has a NUL byte";  // inet_pton would read only the text before it.
    return std::nullopt;
  }

  const size_t slash = text.find('/');
  const std::string address_text(text.substr(0, slash));
  std::array<uint8_t, 16> network{};
  Kind kind = Kind::kIpv6;
  in_addr ipv4;
  if (inet_pton(AF_INET6, address_text.c_str(), network.data()) != 1) {
    if (inet_pton(AF_INET, address_text.c_str(), &ipv4) != 1) {
      error = item + " is not an IPv4 or IPv6 address, a network in CIDR notation or unix";
      return std::nullopt;
    }
    kind = Kind::kIpv4;
    network = ipv4_mapped(ipv4);
  }
  const unsigned written_bits = kind == Kind::kIpv4 ? 32 : 128;
  unsigned prefix_bits = written_bits;
  if (slash != std::string_view::npos) {
    const std::string_view prefix_text = text.substr(slash + 1);
    if (prefix_text.empty() || prefix_text.find_first_not_of("0123456789") != std::string_view::npos) {
      error = item + " has a prefix length that is not a number";
      return std::nullopt;
    }
    prefix_bits = 0;
    for (const char c : prefix_text) {
      prefix_bits = std::min(prefix_bits * 10 + static_cast<unsigned>(c - '0'), written_bits + 1);
    }
    if (prefix_bits > written_bits) {
      error = item + " has a prefix longer than " + std::to_string(written_bits) + " bits";
      return std::nullopt;
    }
  }
  const unsigned bits = prefix_bits + (kind == Kind::kIpv4 ? kIpv4MappedBits : 0);
  std::array<uint8_t, 16> first{};
  std::copy(network.begin(), network.begin() + bits / 8, first.begin());
  if (bits % 8 != 0) first[bits / 8] = network[bits / 8] & static_cast<uint8_t>(0xff << (8 - bits % 8));
  if (first != network) {
    error = item + " has bits set past its prefix /" + std::to_string(prefix_bits);
    return std::nullopt;
  }
  return AddressRange(kind, network, bits);
}

bool AddressRange::contains(const sockaddr* address) const {
  assert(address != nullptr);
  if (address->sa_family == AF_UNIX) return kind_ == Kind::kUnix;
  if (kind_ == Kind::kUnix) return false;
  std::array<uint8_t, 16> peer;
  if (address->sa_family == AF_INET) {
    sockaddr_in ipv4;
    std::memcpy(&ipv4, address, sizeof(ipv4));
    peer = ipv4_mapped(ipv4.sin_addr);
  } else if (address->sa_family == AF_INET6) {
    sockaddr_in6 ipv6;
    std::memcpy(&ipv6, address, sizeof(ipv6));
    std::memcpy(peer.data(), &ipv6.sin6_addr, peer.size());
  } else {
    return false;
  }
  return same_prefix(peer, network_, prefix_bits_);
}

std::string AddressRange::to_string() const {
  if (kind_ == Kind::kUnix) return std::string(kUnixKeyword);
  char text[INET6_ADDRSTRLEN];
  if (kind_ == Kind::kIpv4) {
    inet_ntop(AF_INET, network_.data() + kIpv4MappedPrefix.size(), text, sizeof(text));
    return std::string(text) + "/" + std::to_string(prefix_bits_ - kIpv4MappedBits);
  }
  inet_ntop(AF_INET6, network_.data(), text, sizeof(text));
  return std::string(text) + "/" + std::to_string(prefix_bits_);
}

std::optional<std::vector<AddressRange>> parse_address_ranges(std::string_view list, std::string& error) {
  std::vector<AddressRange> ranges;
  for (size_t start = 0, number = 1;; ++number) {
    const size_t comma = std::min(list.find(',', start), list.size());
    const std::string_view item = trimmed(list.substr(start, comma - start));
    if (item.empty()) {
      error = "item " + std::to_string(number) + " of '" + std::string(list) + "' is empty";
      return std::nullopt;
    }
    std::optional<AddressRange> range = AddressRange::parse(item, error);
    if (!range) return std::nullopt;
    ranges.push_back(*range);
    if (comma == list.size()) return ranges;
    start = comma + 1;
  }
}

bool any_contains(const std::vector<AddressRange>& ranges, const sockaddr* address) {
  return std::any_of(ranges.begin(), ranges.end(),
                     [address](const AddressRange& range) { return range.contains(address); });
}

}  // namespace handoff::reactor
