#pragma once

// Internal to the reactor. AdminServer: the operators' HTTP port (--admin), served by the reactor itself on
// its event loop, so it answers in milliseconds however busy the handlers are. It accepts connections and
// keeps each AdminConnection until it has answered; the route (reactor/admin_routes.hpp) says what to answer.

#include <uv.h>

#include <cstdint>
#include <unordered_map>

#include "ipc/unique_fd.hpp"
#include "reactor/admin_connection.hpp"
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

  ListenAddress local_address() const { return listener_->local_address(); }
  int listening_socket() const { return listener_->socket(); }  // Borrowed: a takeover passes it on.

 private:
  void accept(ipc::UniqueFd client);

  uv_loop_t* loop_;
  const AdminRoute route_;
  const std::string& token_;
  const AdminConnection::FinishedCallback on_finished_;
  LoopOwned<Listener> listener_;
  std::unordered_map<uint64_t, LoopOwned<AdminConnection>> connections_;
  uint64_t next_id_ = 1;
};

}  // namespace handoff::reactor
