#pragma once

// ClientStream: the handler's side of one hand-off of a client connection, whatever its protocol. It holds
// the bytes it has of the connection (those the reactor read past the request, or those read while
// lingering), how far the session has used them, and the answers queued and written. It never reads: the
// reactor reads every request whole. It borrows the socket; the hand-off's message owns it.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "handler/client_io.hpp"
#include "handler/session.hpp"

namespace handoff::handler {

class ClientStream {
 public:
  // flags: the kConnection frame's flags (ipc/wire.hpp); bytes_written: written earlier in the hand-off.
  ClientStream(int client_fd, std::string received, uint32_t flags, const Limits& limits,
               uint64_t bytes_written = 0);

  // The bytes not used yet, from the start of the request being parsed.
  std::string_view unused() const { return std::string_view(buffer_).substr(consumed_); }
  void consume(size_t bytes) { consumed_ += bytes; }

  bool input_closed() const { return input_closed_; }

  void queue(std::string_view bytes) { pending_output_ += bytes; }
  // Sends what is queued; false when the client is gone or stopped reading. ends_connection: nothing
  // follows on this connection (noted in the answer record with the answer).
  bool flush(bool ends_connection = false);
  uint64_t bytes_written() const { return bytes_written_; }

  // The outcome of a hand-off that ends here: keep-open hands the unused bytes back to the reactor.
  // Notes the answer just queued: its status (an HTTP status; 200 or the error's for a line), and the number
  // of the route or command that made it (Handler::execute; 0 for none).
  void answered(int status, uint16_t route) {
    status_ = status;
    route_ = route;
  }
  // The last answer not yet reported to the reactor (status 0: none), which is then reported.
  struct Unreported {
    int status;
    uint16_t route;
  };
  Unreported take_answer() { return {std::exchange(status_, 0), std::exchange(route_, 0)}; }

  SessionOutcome keep_open() {
    const Unreported answer = take_answer();
    return {.keep_open = true,
            .unconsumed = std::string(unused()),
            .bytes_written = bytes_written_,
            .status = answer.status,
            .route = answer.route};
  }
  // Sends what is queued (if the client still takes it) and ends the connection.
  SessionOutcome close() {
    flush(true);
    return closed();
  }
  // Ends the connection without sending anything more.
  SessionOutcome closed() {
    const Unreported answer = take_answer();
    return {.bytes_written = bytes_written_,
            .status = answer.status,
            .route = answer.route,
            .write_timed_out = write_timed_out_};
  }

 private:
  const int client_fd_;
  const Limits& limits_;
  std::string buffer_;
  size_t consumed_ = 0;
  bool input_closed_;
  std::string pending_output_;
  uint64_t bytes_written_ = 0;
  int status_ = 0;
  uint16_t route_ = 0;
  bool write_timed_out_ = false;
};

}  // namespace handoff::handler
