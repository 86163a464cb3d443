#include "reactor/descriptor_reserve.hpp"

#include <fcntl.h>

namespace handoff::reactor {

bool DescriptorReserve::release() {
  if (!reserved_) return false;
  reserved_.reset();
  return true;
}

void DescriptorReserve::restore() {
  if (!reserved_) reserved_.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
}

}  // namespace handoff::reactor
