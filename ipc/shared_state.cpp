#include "ipc/shared_state.hpp"

#include <utility>

namespace handoff::ipc {

std::error_code SharedState::create(SharedState& out) {
  MappedPage page;
  if (auto error = MappedPage::create("handoff-state", MappedPage::Others::kReadOnly, page)) return error;
  SharedState state;
  state.page_ = std::move(page);
  std::atomic_ref<uint32_t>(state.layout()->version).store(kSharedStateVersion, std::memory_order_relaxed);
  out = std::move(state);
  return {};
}

std::error_code SharedState::map_read_only(UniqueFd fd, SharedState& out) {
  SharedState state;
  if (auto error = MappedPage::map(std::move(fd), false, state.page_)) return error;
  if (std::atomic_ref<uint32_t>(state.layout()->version).load(std::memory_order_relaxed) !=
      kSharedStateVersion) {
    return std::make_error_code(std::errc::protocol_not_supported);
  }
  out = std::move(state);
  return {};
}

SharedStateLayout* SharedState::layout() const {
  return static_cast<SharedStateLayout*>(page_.data());
}

void SharedState::set_waiting(uint32_t count) {
  if (valid()) std::atomic_ref<uint32_t>(layout()->waiting).store(count, std::memory_order_relaxed);
}

void SharedState::set_idle(uint32_t count) {
  if (valid()) std::atomic_ref<uint32_t>(layout()->idle).store(count, std::memory_order_relaxed);
}

uint32_t SharedState::idle() const {
  return valid() ? std::atomic_ref<uint32_t>(layout()->idle).load(std::memory_order_relaxed) : 0;
}

void SharedState::set_draining() {
  if (valid()) std::atomic_ref<uint32_t>(layout()->draining).store(1, std::memory_order_relaxed);
}

bool SharedState::draining() const {
  return valid() && std::atomic_ref<uint32_t>(layout()->draining).load(std::memory_order_relaxed) != 0;
}

uint32_t SharedState::waiting() const {
  return valid() ? std::atomic_ref<uint32_t>(layout()->waiting).load(std::memory_order_relaxed) : 0;
}

}  // namespace handoff::ipc
