#pragma once

// Internal to the reactor. Where the server is in its life; every part that acts differently once a stop has
// begun (the pool, the connections, the admin routes) is told the phase by the Server.

namespace handoff::reactor {

enum class Phase {
  kServing,  // Accepting and serving.
  // SIGUSR2, and the new reactor is ready (reactor/takeover.hpp): it accepts; the connections move to it,
  // each once no handler holds it. The pool serves on meanwhile.
  kHandingOver,
  kDraining,  // SIGTERM/SIGINT: no new connections; requests in progress and waiting are finished.
  kStopping,  // A second signal, the shutdown timeout or a failed start: handlers are killed.
};

// "serving", "handing over", "draining", "stopping", as /stats says it.
constexpr const char* phase_name(Phase phase) {
  switch (phase) {
    case Phase::kServing: return "serving";
    case Phase::kHandingOver: return "handing over";
    case Phase::kDraining: return "draining";
    case Phase::kStopping: return "stopping";
  }
  return "?";
}

}  // namespace handoff::reactor
