#pragma once

// Internal to the reactor. AdminServer: the operators' HTTP port (--admin), served by the reactor itself on
// its event loop, so it answers in milliseconds however busy the handlers are. It accepts connections and
// keeps each AdminConnection until it has answered; the route (reactor/admin/admin_routes.hpp) says what to
// answer.
//
// It holds a bounded number of connections, so that the admin port can never take the descriptors the service
// port needs (Config::max_connections leaves room for them). At the bound a newcomer takes the place of the
// oldest connection still waiting for its request, or of the oldest of all when every one is being answered:
// however many idle connections are held open, a scraper or a health checker that sends its request at once
// is answered, where a listener that stopped accepting would keep it waiting until they time out (10 s).

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <map>

#include "ipc/unique_fd.hpp"
#include "reactor/admin/admin_connection.hpp"
#include "reactor/config.hpp"
#include "reactor/listener.hpp"
#include "reactor/loop_owned.hpp"

namespace handoff::reactor {

class AdminServer {
 public:
  // reserve (borrowed) lets it accept an operator's connection when the reactor is out of descriptors.
  // token: see AdminConnection; borrowed, it outlives the server.
  AdminServer(uv_loop_t* loop, ipc::UniqueFd listening_socket, DescriptorReserve& reserve,
              const std::string& token, AdminRoute route);

  // The most connections it holds: kMaxConnections, or an eighth of the descriptor limit when that is less
  // (at least kMinConnections).
  static constexpr size_t kMaxConnections = 32;
  static constexpr size_t kMinConnections = 4;

  ListenAddress local_address() const { return listener_->local_address(); }
  int listening_socket() const { return listener_->socket(); }  // Borrowed: a takeover passes it on.

 private:
  void accept(ipc::UniqueFd client);
  // Closes the oldest connection waiting for its request (else the oldest), and says so now and then.
  void make_room();

  uv_loop_t* loop_;
  const AdminRoute route_;
  const std::string& token_;
  const AdminConnection::FinishedCallback on_finished_;
  const size_t max_connections_;
  LoopOwned<Listener> listener_;
  std::map<uint64_t, LoopOwned<AdminConnection>> connections_;  // By id: the oldest first.
  uint64_t next_id_ = 1;
  // Logged when it begins and then at most once every kReportIntervalNs, with how many were closed meanwhile.
  static constexpr uint64_t kReportIntervalNs = 10'000'000'000;
  uint64_t last_report_ns_ = 0;
  uint64_t closed_unreported_ = 0;
};

}  // namespace handoff::reactor
