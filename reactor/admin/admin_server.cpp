#include "reactor/admin/admin_server.hpp"

#include <sys/resource.h>

#include <algorithm>

#include "reactor/log.hpp"

namespace handoff::reactor {
namespace {

size_t connection_limit() {
  rlimit files{};
  if (::getrlimit(RLIMIT_NOFILE, &files) != 0 || files.rlim_cur == RLIM_INFINITY) {
    return AdminServer::kMaxConnections;
  }
  return std::clamp<size_t>(files.rlim_cur / 8, AdminServer::kMinConnections, AdminServer::kMaxConnections);
}

}  // namespace

AdminServer::AdminServer(uv_loop_t* loop, ipc::UniqueFd listening_socket, DescriptorReserve& reserve,
                         const std::string& token, AdminRoute route)
    : loop_(loop),
      route_(std::move(route)),
      token_(token),
      on_finished_([this](uint64_t id) { connections_.erase(id); }),
      max_connections_(connection_limit()),
      listener_(make_loop_owned<Listener>(loop_, std::move(listening_socket), reserve,
                                          Listener::ReserveUse::kSpendWhenShort,
                                          [this](ipc::UniqueFd client) { accept(std::move(client)); })) {}

void AdminServer::accept(ipc::UniqueFd client) {
  if (connections_.size() >= max_connections_) make_room();
  const uint64_t id = next_id_++;
  connections_.emplace(
      id, make_loop_owned<AdminConnection>(loop_, id, std::move(client), route_, token_, on_finished_));
}

void AdminServer::make_room() {
  auto oldest = std::find_if(connections_.begin(), connections_.end(),
                             [](const auto& entry) { return entry.second->waiting_for_request(); });
  if (oldest == connections_.end()) oldest = connections_.begin();
  connections_.erase(oldest);
  ++closed_unreported_;
  const uint64_t now = uv_hrtime();
  if (last_report_ns_ != 0 && now - last_report_ns_ < kReportIntervalNs) return;
  log_at(
      LogLevel::kWarn,
      "admin port: %zu connections open, its most: each new one takes the place of the oldest that has not "
      "sent its request (%llu closed since the last report)",
      max_connections_, static_cast<unsigned long long>(closed_unreported_));
  last_report_ns_ = now;
  closed_unreported_ = 0;
}

}  // namespace handoff::reactor
