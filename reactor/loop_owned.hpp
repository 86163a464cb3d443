#pragma once

// Internal to the reactor. LoopOwned<T>: the owning pointer for an object that wraps libuv handles.
// libuv may still use a handle after uv_close() until its close callback runs, so such an object cannot be
// deleted on the spot: destroying a LoopOwned<T> calls T::close(), which closes the handles, and the object
// is deleted in its last close callback (libuv's uv_close contract, docs "uv_handle_t").
//
// Such a class keeps its destructor private, names CloseOnLoop its friend, and ends its close() with
// CloseOnLoop::close_then_delete(this, {...its handles...}).

#include <uv.h>

#include <cstddef>
#include <initializer_list>
#include <memory>
#include <utility>

namespace handoff::reactor {

// A libuv handle of any type as the base type that uv_close and uv_is_active take.
template <typename Handle>
uv_handle_t* as_handle(Handle* handle) {
  return reinterpret_cast<uv_handle_t*>(handle);
}

struct CloseOnLoop {
  template <typename T>
  void operator()(T* object) const {
    object->close();
  }

  // Closes every handle given (a null one is skipped: never initialised) and deletes owner in the close
  // callback of the last. After uv_close libuv calls nothing but the close callback (a process handle's exit
  // callback is cleared for that), so each handle's data is taken over for the count of handles still
  // closing.
  template <typename T>
  static void close_then_delete(T* owner, std::initializer_list<uv_handle_t*> handles) {
    struct Closing {
      T* owner;
      size_t open;
    };
    auto* closing = new Closing{owner, 0};
    for (uv_handle_t* handle : handles) closing->open += handle != nullptr;
    if (closing->open == 0) {
      delete closing->owner;
      delete closing;
      return;
    }
    for (uv_handle_t* handle : handles) {
      if (handle == nullptr) continue;
      // A process handle closed inside another's exit callback may still get its own in the same pass of
      // libuv's SIGCHLD handling (uv__chld takes the next pending handle before it calls the current one's
      // callback): with no exit callback, libuv skips it.
      if (handle->type == UV_PROCESS) reinterpret_cast<uv_process_t*>(handle)->exit_cb = nullptr;
      handle->data = closing;
      uv_close(handle, [](uv_handle_t* closed) {
        auto* state = static_cast<Closing*>(closed->data);
        if (--state->open > 0) return;
        delete state->owner;
        delete state;
      });
    }
  }
};

template <typename T>
using LoopOwned = std::unique_ptr<T, CloseOnLoop>;

// Creates a T with new; it is deleted by itself once closed.
template <typename T, typename... Args>
LoopOwned<T> make_loop_owned(Args&&... args) {
  return LoopOwned<T>(new T(std::forward<Args>(args)...));
}

}  // namespace handoff::reactor
