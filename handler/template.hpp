#pragma once

// Internal to the handler library. The template of the reactor's --preload (ipc/wire.hpp, kForkChannel to
// kHandlerExited): a handler executable started with HANDOFF_TEMPLATE=1 has done what it does before
// Handler::run (loaded a model, filled its tables) once, and forks each handler from there, so that a handler
// replaced after a crash or a recycle serves within milliseconds and shares that memory copy-on-write. It is
// the parent of its handlers: it reaps each one and reports how it exited. When the reactor ends the channel,
// it forks nothing more and exits once the last handler it forked is gone.

namespace handoff::handler {

// Serves as the template on channel_fd. Returns only in a forked handler, with its channel at descriptor 3
// and its answer record at 5, as a handler the reactor started gets them; the template itself exits here.
void serve_as_template(int channel_fd);

}  // namespace handoff::handler
