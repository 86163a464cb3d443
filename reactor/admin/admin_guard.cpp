#include "reactor/admin/admin_guard.hpp"

#include <algorithm>
#include <cctype>

namespace handoff::reactor {
namespace {

// "127.0.0.1:8889", "[::1]:8889", "localhost" (the port optional): an IP literal or localhost, as --listen
// takes them.
bool names_an_address(std::string_view host) {
  return parse_listen_address(host) || parse_listen_address(std::string(host) + ":0");
}

}  // namespace

// The admin port refuses what a web page the operator happens to open could send it: a request that came in
// over loopback for a host name (DNS rebinding: evil.example resolving to 127.0.0.1 makes the browser send
// "Host: evil.example:8889"), and a POST from another origin (a cross-site form or fetch, CSRF). curl and
// scripts send neither; over other addresses, operators and Prometheus may well use names.
std::optional<http::Response> refusal_for_browsers(const http::RequestHead& head, bool over_loopback) {
  const std::string_view host = head.header("host");
  if (over_loopback && !host.empty() && !names_an_address(host)) {
    return http::Response{.status = 403,
                          .body = "the admin port answers requests for an IP address or localhost only\n"};
  }
  const std::string_view origin = head.header("origin");
  if (head.method == "POST" && !origin.empty() && origin != "http://" + std::string(host)) {
    return http::Response{.status = 403, .body = "cross-origin requests to the admin port are refused\n"};
  }
  return std::nullopt;
}

bool is_loopback(const std::optional<ListenAddress>& address) {
  return address && (address->host.starts_with("127.") || address->host == "::1" ||
                     address->host.starts_with("::ffff:127."));
}

// Compares in time that depends on the expected token's length only, not on where the two first differ.
bool same_secret(std::string_view given, std::string_view expected) {
  unsigned char difference = given.size() == expected.size() ? 0 : 1;
  for (size_t i = 0; i < expected.size(); ++i) {
    difference |= static_cast<unsigned char>((i < given.size() ? given[i] : 0) ^ expected[i]);
  }
  return difference == 0;
}

// Every POST route changes the server (POST /pool). With a token configured, such a request must carry it,
// from wherever it comes; without one, only a peer on this machine may send it: a port opened to another
// address for Prometheus and the status page must not let the network resize the pool.
std::optional<http::Response> refusal_for_changes(const http::RequestHead& head, bool peer_on_loopback,
                                                  const std::string& token) {
  if (head.method != "POST") return std::nullopt;
  if (!token.empty()) {
    const std::string_view authorization = head.header("authorization");
    // The scheme's name is case-insensitive (RFC 9110 section 11.1).
    constexpr std::string_view kBearer = "bearer ";
    const bool bearer = authorization.size() > kBearer.size() &&
                        std::equal(kBearer.begin(), kBearer.end(), authorization.begin(), [](char a, char b) {
                          return a == std::tolower(static_cast<unsigned char>(b));
                        });
    if (bearer && same_secret(authorization.substr(kBearer.size()), token)) {
      return std::nullopt;
    }
    return http::Response{
        .status = 401,
        .body = "this admin request needs 'Authorization: Bearer TOKEN' (--admin-token-file)\n",
        .extra_headers = "WWW-Authenticate: Bearer realm=\"handoff admin\"\r\n"};
  }
  if (peer_on_loopback) return std::nullopt;
  return http::Response{.status = 403,
                        .body =
                            "changes through the admin port come from this machine only, unless the reactor "
                            "has --admin-token-file\n"};
}

}  // namespace handoff::reactor
