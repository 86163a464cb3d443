#include "ipc/mapped_page.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

namespace handoff::ipc {
namespace {

std::error_code last_error() {
  return {errno, std::system_category()};
}

}  // namespace

MappedPage::~MappedPage() {
  unmap();
}

MappedPage::MappedPage(MappedPage&& other) noexcept
    : fd_(std::move(other.fd_)), data_(std::exchange(other.data_, nullptr)) {}

MappedPage& MappedPage::operator=(MappedPage&& other) noexcept {
  if (this != &other) {
    unmap();
    fd_ = std::move(other.fd_);
    data_ = std::exchange(other.data_, nullptr);
  }
  return *this;
}

void MappedPage::unmap() {
  if (data_ != nullptr) ::munmap(data_, kBytes);
  data_ = nullptr;
}

std::error_code MappedPage::create(const char* name, Others others, MappedPage& out) {
  UniqueFd fd(::memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd) return last_error();
  if (::ftruncate(fd.get(), kBytes) != 0) return last_error();
  void* data = ::mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (data == MAP_FAILED) return last_error();
  // The size is final, so that nobody can shrink the page under its creator (SIGBUS); the future-write seal
  // comes after the creator's own writable mapping, which it spares.
  const int seals =
      F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL | (others == Others::kReadOnly ? F_SEAL_FUTURE_WRITE : 0);
  if (::fcntl(fd.get(), F_ADD_SEALS, seals) != 0) {
    const std::error_code error = last_error();
    ::munmap(data, kBytes);
    return error;
  }
  MappedPage page;
  page.fd_ = std::move(fd);
  page.data_ = data;
  out = std::move(page);
  return {};
}

std::error_code MappedPage::map(UniqueFd fd, bool writable, MappedPage& out) {
  void* data =
      ::mmap(nullptr, kBytes, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd.get(), 0);
  if (data == MAP_FAILED) return last_error();
  MappedPage page;
  page.data_ = data;
  out = std::move(page);
  return {};
}

}  // namespace handoff::ipc
