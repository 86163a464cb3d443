#pragma once

// Internal to the reactor. AdminRoutes: what the admin port answers. GET /healthz, /stats (JSON), /metrics
// (Prometheus) and / (the status page) read a snapshot of the pool, the queue and the counters; POST
// /pool?size=N resizes the pool; POST /drain takes the reactor out of a balancer's rotation.
// docs/operations.md documents every route and field.

#include <uv.h>

#include <cstdint>
#include <string_view>

#include "http/response.hpp"
#include "ipc/shared_state.hpp"
#include "reactor/dispatcher.hpp"
#include "reactor/frontend.hpp"
#include "reactor/handler_pool.hpp"
#include "reactor/metrics.hpp"

namespace handoff::reactor {

class AdminRoutes {
 public:
  // Reads all of these, resizes pool and marks state_page draining, for as long as it lives.
  AdminRoutes(uv_loop_t* loop, HandlerPool& pool, const Frontend& frontend, const Dispatcher& dispatcher,
              const Metrics& metrics, ipc::SharedState& state_page);

  // The answer to one request: method ("GET"), path ("/stats"), query string ("size=4", without the '?').
  http::Response answer(std::string_view method, std::string_view path, std::string_view query);

 private:
  http::Response resize_pool(std::string_view query);
  http::Response leave_rotation();
  StatsSnapshot snapshot() const;

  uv_loop_t* loop_;
  HandlerPool& pool_;
  const Frontend& frontend_;
  const Dispatcher& dispatcher_;
  const Metrics& metrics_;
  ipc::SharedState& state_page_;
  const uint64_t started_ns_;
  // POST /drain was asked: /healthz says 503 so that balancers move away, and every HTTP answer closes its
  // connection, so that clients reconnect through the balancer; new connections are still served.
  bool leaving_ = false;
};

}  // namespace handoff::reactor
