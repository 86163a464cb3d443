#pragma once

// Internal to the reactor. What the admin port refuses before any route runs: requests a web page the
// operator opens could send it (DNS rebinding, cross-site POSTs), and changes (every POST) from a peer that
// may not make them: without --admin-token-file only peers on this machine, with it only a request that
// carries the token.

#include <optional>
#include <string>
#include <string_view>

#include "http/request_parser.hpp"
#include "http/response.hpp"
#include "reactor/config.hpp"

namespace handoff::reactor {

// Whether address is a loopback one (127.0.0.0/8, ::1, or 127/8 mapped into IPv6).
bool is_loopback(const std::optional<ListenAddress>& address);

// over_loopback: the client connected to a loopback address of ours.
std::optional<http::Response> refusal_for_browsers(const http::RequestHead& head, bool over_loopback);

// peer_on_loopback: the client's own address is a loopback one; token: from --admin-token-file, or empty.
std::optional<http::Response> refusal_for_changes(const http::RequestHead& head, bool peer_on_loopback,
                                                  const std::string& token);

// Compares in a time that depends on the expected secret's length only, not on where the two first differ.
bool same_secret(std::string_view given, std::string_view expected);

}  // namespace handoff::reactor
