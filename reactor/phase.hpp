#pragma once

// Internal to the reactor. Where the server is in its life; every part that acts differently once a stop has
// begun (the pool, the connections, the admin routes) is told the phase by the Server.

namespace handoff::reactor {

enum class Phase {
  kServing,   // Accepting and serving.
  kDraining,  // SIGTERM/SIGINT: no new connections; requests in progress and waiting are finished.
  kStopping,  // A second signal, the shutdown timeout or a failed start: handlers are killed.
};

// "serving", "draining", "stopping", as /stats says it.
constexpr const char* phase_name(Phase phase) {
  switch (phase) {
    case Phase::kServing: return "serving";
    case Phase::kDraining: return "draining";
    case Phase::kStopping: return "stopping";
  }
  return "?";
}

}  // namespace handoff::reactor
