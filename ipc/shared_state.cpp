#include "ipc/shared_state.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

namespace handoff::ipc {
namespace {

constexpr size_t kPageBytes = 4096;

std::error_code last_error() {
  return {errno, std::system_category()};
}

}  // namespace

SharedState::~SharedState() {
  unmap();
}

SharedState::SharedState(SharedState&& other) noexcept
    : fd_(std::move(other.fd_)), page_(std::exchange(other.page_, nullptr)) {}

SharedState& SharedState::operator=(SharedState&& other) noexcept {
  if (this != &other) {
    unmap();
    fd_ = std::move(other.fd_);
    page_ = std::exchange(other.page_, nullptr);
  }
  return *this;
}

void SharedState::unmap() {
  if (page_ != nullptr) ::munmap(page_, kPageBytes);
  page_ = nullptr;
}

std::error_code SharedState::create(SharedState& out) {
  UniqueFd fd(::memfd_create("handoff-state", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd) return last_error();
  if (::ftruncate(fd.get(), kPageBytes) != 0) return last_error();
  // The size is final: a handler cannot shrink the page under the reactor (SIGBUS).
  if (::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) return last_error();
  void* page = ::mmap(nullptr, kPageBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (page == MAP_FAILED) return last_error();
  SharedState state;
  state.fd_ = std::move(fd);
  state.page_ = static_cast<SharedStateLayout*>(page);
  std::atomic_ref<uint32_t>(state.page_->version).store(kSharedStateVersion, std::memory_order_relaxed);
  out = std::move(state);
  return {};
}

std::error_code SharedState::map_read_only(UniqueFd fd, SharedState& out) {
  void* page = ::mmap(nullptr, kPageBytes, PROT_READ, MAP_SHARED, fd.get(), 0);
  if (page == MAP_FAILED) return last_error();
  SharedState state;
  state.page_ = static_cast<SharedStateLayout*>(page);
  if (std::atomic_ref<uint32_t>(state.page_->version).load(std::memory_order_relaxed) !=
      kSharedStateVersion) {
    return std::make_error_code(std::errc::protocol_not_supported);
  }
  out = std::move(state);
  return {};
}

void SharedState::set_waiting(uint32_t count) {
  if (page_ != nullptr) std::atomic_ref<uint32_t>(page_->waiting).store(count, std::memory_order_relaxed);
}

void SharedState::set_draining() {
  if (page_ != nullptr) std::atomic_ref<uint32_t>(page_->draining).store(1, std::memory_order_relaxed);
}

bool SharedState::draining() const {
  return page_ != nullptr && std::atomic_ref<uint32_t>(page_->draining).load(std::memory_order_relaxed) != 0;
}

uint32_t SharedState::waiting() const {
  return page_ == nullptr ? 0 : std::atomic_ref<uint32_t>(page_->waiting).load(std::memory_order_relaxed);
}

}  // namespace handoff::ipc
