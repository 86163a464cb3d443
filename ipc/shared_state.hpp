#pragma once

// SharedState: one page of memory the reactor shares with all its handlers, so that a handler can learn what
// the reactor knows without a message: how many connections wait for a handler, how many handlers wait for
// work, and whether the reactor is draining. The reactor creates it
// (a memfd) and writes it; every handler inherits it at descriptor 4 (HANDOFF_STATE_FD) and maps it
// read-only, so a handler cannot corrupt what the reactor relies on. The layout is documented in
// docs/architecture.md.

#include <atomic>
#include <cstdint>
#include <system_error>

#include "ipc/mapped_page.hpp"
#include "ipc/unique_fd.hpp"

namespace handoff::ipc {

// The environment variable that names the page's descriptor in a handler, and that descriptor.
inline constexpr const char* kStateFdVariable = "HANDOFF_STATE_FD";
inline constexpr int kHandlerStateFd = 4;

// The page's layout. Every word is read and written with relaxed atomic operations.
struct SharedStateLayout {
  uint32_t version;   // kSharedStateVersion.
  uint32_t waiting;   // Connections with a complete request waiting for a handler.
  uint32_t draining;  // 1 once the reactor drains (SIGTERM, SIGINT): HTTP answers say Connection: close.
  uint32_t idle;      // Handlers waiting for work: while one is, another may linger (--linger).
};
inline constexpr uint32_t kSharedStateVersion = 2;
static_assert(sizeof(SharedStateLayout) == 16);

class SharedState {
 public:
  // The reactor's side: a new page, writable. The failed call is returned as -errno.
  static std::error_code create(SharedState& out);
  // A handler's side: the page behind fd, mapped read-only; fd is closed once mapped.
  static std::error_code map_read_only(UniqueFd fd, SharedState& out);

  bool valid() const { return page_.valid(); }
  // The memfd, borrowed: handlers inherit it. Invalid in a handler (closed after mapping).
  int descriptor() const { return page_.descriptor(); }

  void set_waiting(uint32_t count);
  // 0 when the page is not mapped.
  uint32_t waiting() const;
  void set_idle(uint32_t count);
  // 0 when the page is not mapped.
  uint32_t idle() const;
  void set_draining();
  // False when the page is not mapped.
  bool draining() const;

 private:
  SharedStateLayout* layout() const;

  MappedPage page_;
};

}  // namespace handoff::ipc
