#pragma once

// Internal to the reactor. AdminServer: the operators' HTTP port (--admin), served by the reactor itself on
// its event loop, so it answers in milliseconds however busy the handlers are. It parses requests (with
// libhttp-parser, like the handlers) and asks its route function for each answer; one request per connection.

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "ipc/unique_fd.hpp"
#include "reactor/config.hpp"
#include "reactor/listener.hpp"
#include "reactor/loop_owned.hpp"

namespace handoff::reactor {

struct AdminResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::string extra_headers;  // Each ends in "\r\n".
};

class AdminConnection;

class AdminServer {
 public:
  using Route = std::function<AdminResponse(std::string_view method, std::string_view path, std::string_view query)>;

  AdminServer(uv_loop_t* loop, ipc::UniqueFd listening_socket, Route route);
  ~AdminServer();

  ListenAddress local_address() const { return listener_->local_address(); }

  // Called by a connection that has answered (or failed): it is closed and forgotten.
  void finished(uint64_t connection_id);

 private:
  void accept(ipc::UniqueFd client);

  uv_loop_t* loop_;
  Route route_;
  LoopOwned<Listener> listener_;
  std::unordered_map<uint64_t, LoopOwned<AdminConnection>> connections_;
  uint64_t next_id_ = 1;
};

}  // namespace handoff::reactor
