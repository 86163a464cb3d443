#pragma once

// Internal to the reactor. RouteTable: the routes and commands a handler named in its hello, in the order it
// registered them (ipc::route_table_payload; docs/protocol.md, "The route table"). Its reports name the route
// that answered each request by its number in this table: the reactor counts requests by that route's name
// (reactor/metrics.hpp), never by the path, so that the figures stay as few as the routes. The table also
// says which requests the handler allows to run again on another handler (ipc::kRouteRetryable).

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "ipc/wire.hpp"

namespace handoff::reactor {

class RouteTable {
 public:
  // The table of a kHello payload (an empty payload is an empty table); null when the payload is not one
  // (ipc::decode_route_table). Each byte of a name outside printable ASCII (0x20 to 0x7e) becomes '?': the
  // names go into Prometheus label values and JSON as they are, and a pattern that matches a request is
  // ASCII anyway (the reactor refuses other bytes in a path).
  static std::shared_ptr<const RouteTable> decode(std::string_view hello_payload);

  // The name of route number route ("GET /notes/{id}", "fib"); null for 0 and for a number past the table.
  const std::string* name(uint16_t route) const;
  // Whether route number route is marked retryable (false for 0 and a number past the table).
  bool retryable(uint16_t route) const;
  // Whether name is a line command the handler marked retryable: "fib" for the line "fib 30". A route's name
  // ("GET /a") holds a space, which a command's never does, so it is never taken for a command.
  bool retryable_command(std::string_view name) const;
  size_t size() const { return routes_.size(); }

 private:
  struct NameHash {
    using is_transparent = void;
    size_t operator()(std::string_view name) const { return std::hash<std::string_view>{}(name); }
  };

  std::vector<ipc::RouteEntry> routes_;
  std::unordered_set<std::string, NameHash, std::equal_to<>> retryable_commands_;
};

}  // namespace handoff::reactor
