#pragma once

// Internal to the reactor. AdminConnection: one client of the admin port. It reads one request (with the
// strict parser, http/request_parser.hpp), asks the route for the answer, writes it and is finished; any
// failure or a client slower than the timeout also finishes it. Freed in its close callbacks
// (reactor/loop_owned.hpp).

#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "http/request_parser.hpp"
#include "http/response.hpp"
#include "ipc/unique_fd.hpp"
#include "reactor/loop_owned.hpp"

namespace handoff::reactor {

// Answers one admin request: method ("GET"), path ("/stats") and query string ("size=4", without the '?').
using AdminRoute =
    std::function<http::Response(std::string_view method, std::string_view path, std::string_view query)>;

class AdminConnection {
 public:
  // Called once the connection has answered or failed: the owner then closes it.
  using FinishedCallback = std::function<void(uint64_t id)>;

  // Create with make_loop_owned; route, token and on_finished must outlive the connection. token: what a POST
  // must carry as "Authorization: Bearer TOKEN" (--admin-token-file); empty: only loopback peers may POST.
  AdminConnection(uv_loop_t* loop, uint64_t id, ipc::UniqueFd socket, const AdminRoute& route,
                  const std::string& token, const FinishedCallback& on_finished);

  // It has not received its whole request yet (idle, or sending it): closing it now loses no answer.
  bool waiting_for_request() const { return step_ == Step::kReading; }

  void close();

 private:
  friend struct CloseOnLoop;
  ~AdminConnection() = default;

  // What the connection waits for: the request (then 408 at the timeout), or room to write the answer.
  enum class Step { kReading, kWriting };
  void wait_for(Step step);
  void read_request();
  void respond(const http::Response& response, bool head_request = false);
  void write_response();
  void finish();

  const uint64_t id_;
  ipc::UniqueFd socket_;
  const AdminRoute& route_;
  const std::string& token_;
  const FinishedCallback& on_finished_;
  uv_poll_t poll_;
  uv_timer_t timer_;
  Step step_ = Step::kReading;
  http::RequestParser parser_;
  bool over_loopback_ = false;     // The client connected to a loopback address of ours.
  bool peer_on_loopback_ = false;  // The client's own address is a loopback one.
  std::string out_;
  size_t written_ = 0;
};

}  // namespace handoff::reactor
