#pragma once

// Internal to the reactor. LoopOwned<T>: the owning pointer for an object that wraps libuv handles.
// libuv may still use a handle after uv_close() until its close callback runs, so such an object cannot be
// deleted on the spot: destroying a LoopOwned<T> calls T::close(), which closes the handles, and the object
// deletes itself in its last close callback (libuv's uv_close contract, docs "uv_handle_t").

#include <memory>
#include <utility>

namespace handoff::reactor {

struct CloseOnLoop {
  template <typename T>
  void operator()(T* object) const {
    object->close();
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
