#pragma once

// Test support: a TCP client with deadlines, for driving the reactor over loopback.

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace handoff::testing {

using namespace std::chrono_literals;

// How long a test waits for an answer that must come: a guard against a hang, never a bound on the work.
// `spin N` burns N ms of CPU time, which lasts at least N ms on the wall clock and, on a machine whose cores
// other programs load, several times that; so a test may take spin N for a lower bound of a wait, never for
// an upper one (an order, a counter or a stopped handler says what came first instead).
inline constexpr std::chrono::milliseconds kAnswerTimeout = 60s;

class Client {
 public:
  // Connects to host:port (IPv4 or IPv6 literal), from the IPv4 address source if given (127.0.0.2: another
  // client of the same machine, to the reactor). Throws std::runtime_error on failure.
  Client(const std::string& host, uint16_t port, const std::string& source = "");
  ~Client();
  Client(Client&& other) noexcept;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  int fd() const { return fd_; }

  // Sends all of bytes; false when the peer is gone.
  bool send(const std::string& bytes);
  // Shuts down the sending side (the server reads EOF).
  void finish_sending();
  // The next line without its "\n"; "<timeout>" or "<closed>" when none comes.
  std::string read_line(std::chrono::milliseconds timeout = kAnswerTimeout);
  // Exactly count bytes; fewer when the server closes or the time runs out.
  std::string read_bytes(size_t count, std::chrono::milliseconds timeout = kAnswerTimeout);
  // Reads until the server closes the connection; false on timeout. The bytes read are appended to rest.
  bool wait_closed(std::chrono::milliseconds timeout, std::string* rest = nullptr);

 private:
  int fd_ = -1;
  std::string buffer_;
};

// count fresh connections to host:port, each having sent bytes (the sends are checked: a failed one fails the
// test).
std::vector<Client> connect_each_sending(const std::string& host, uint16_t port, int count,
                                         const std::string& bytes);

// An HTTP response as read by read_response.
struct HttpResponse {
  int status = 0;       // 0 when no response came.
  std::string headers;  // The header lines, each ending in "\r\n".
  std::string body;
  bool has_header(const std::string& line) const { return headers.find(line + "\r\n") != std::string::npos; }
};

// Reads one HTTP response (status line, headers, Content-Length body; no body after a HEAD request).
HttpResponse read_response(Client& client, bool head_request = false);

// One request line, one answer line, on a fresh connection.
std::string ask(const std::string& host, uint16_t port, const std::string& line);

}  // namespace handoff::testing
