#include "reactor/admin_server.hpp"

namespace handoff::reactor {

AdminServer::AdminServer(uv_loop_t* loop, ipc::UniqueFd listening_socket, DescriptorReserve& reserve,
                         const std::string& token, AdminRoute route)
    : loop_(loop),
      route_(std::move(route)),
      token_(token),
      on_finished_([this](uint64_t id) { connections_.erase(id); }),
      listener_(make_loop_owned<Listener>(loop_, std::move(listening_socket), reserve,
                                          Listener::ReserveUse::kSpendWhenShort,
                                          [this](ipc::UniqueFd client) { accept(std::move(client)); })) {}

void AdminServer::accept(ipc::UniqueFd client) {
  const uint64_t id = next_id_++;
  connections_.emplace(
      id, make_loop_owned<AdminConnection>(loop_, id, std::move(client), route_, token_, on_finished_));
}

}  // namespace handoff::reactor
