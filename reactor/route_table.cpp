#include "reactor/route_table.hpp"

namespace handoff::reactor {

std::shared_ptr<const RouteTable> RouteTable::decode(std::string_view hello_payload) {
  auto table = std::make_shared<RouteTable>();
  if (!ipc::decode_route_table(hello_payload, table->routes_)) return nullptr;
  for (ipc::RouteEntry& route : table->routes_) {
    for (char& c : route.name) {
      if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = '?';
    }
    const bool command = route.name.find(' ') == std::string::npos;
    if (command && (route.flags & ipc::kRouteRetryable) != 0) table->retryable_commands_.insert(route.name);
  }
  return table;
}

const std::string* RouteTable::name(uint16_t route) const {
  if (route == 0 || route > routes_.size()) return nullptr;
  return &routes_[route - 1].name;
}

bool RouteTable::retryable(uint16_t route) const {
  return route != 0 && route <= routes_.size() && (routes_[route - 1].flags & ipc::kRouteRetryable) != 0;
}

bool RouteTable::retryable_command(std::string_view name) const {
  return retryable_commands_.find(name) != retryable_commands_.end();
}

}  // namespace handoff::reactor
