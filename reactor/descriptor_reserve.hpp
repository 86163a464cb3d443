#pragma once

// Internal to the reactor. DescriptorReserve: one descriptor held back (on /dev/null) for the admin port.
// Out of descriptors (EMFILE), the reactor cannot accept, and operators could not look in just when they most
// need to. The admin listener then frees the reserve and accepts its connection into it; every listener takes
// the reserve back, when it is missing, before it accepts anything else, so that the first descriptor to come
// free goes to it (the libev and nginx habit, used here to serve rather than to refuse).

#include "ipc/unique_fd.hpp"

namespace handoff::reactor {

class DescriptorReserve {
 public:
  DescriptorReserve() { restore(); }

  // Frees the reserved descriptor; false when there was none to free.
  bool release();
  // Reserves a descriptor again, if there is none reserved and one is free.
  void restore();

 private:
  ipc::UniqueFd reserved_;
};

}  // namespace handoff::reactor
