#include "handler/client_stream.hpp"

#include "ipc/wire.hpp"

namespace handoff::handler {

ClientStream::ClientStream(int client_fd, std::string received, uint32_t flags, const Limits& limits,
                           uint64_t bytes_written)
    : client_fd_(client_fd),
      limits_(limits),
      buffer_(std::move(received)),
      input_closed_((flags & ipc::kFlagInputClosed) != 0),
      bytes_written_(bytes_written) {}

bool ClientStream::flush(bool ends_connection) {
  if (pending_output_.empty()) return true;
  if (limits_.answer_record != nullptr) {
    const uint32_t flags = (ends_connection ? ipc::kAnswerEndsConnection : 0u) |
                           (unused().empty() ? 0u : ipc::kAnswerInputPending);
    limits_.answer_record->note(bytes_written_ + pending_output_.size(), static_cast<uint32_t>(status_),
                                flags);
  }
  const std::error_code error = write_all(client_fd_, pending_output_, limits_.write_timeout);
  if (error == std::errc::timed_out) write_timed_out_ = true;
  const bool sent = !error;
  bytes_written_ += pending_output_.size();
  pending_output_.clear();
  return sent;
}

}  // namespace handoff::handler
