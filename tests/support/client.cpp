#include "tests/support/client.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <utility>

namespace handoff::testing {

Client::Client(const std::string& host, uint16_t port, const std::string& source) {
  sockaddr_storage storage{};
  socklen_t length;
  if (host.find(':') != std::string::npos) {
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr);
    length = sizeof(*v6);
  } else {
    auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    inet_pton(AF_INET, host.c_str(), &v4->sin_addr);
    length = sizeof(*v4);
  }
  fd_ = ::socket(storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in from{.sin_family = AF_INET, .sin_port = 0, .sin_addr = {}, .sin_zero = {}};
  const bool bound = source.empty() || (inet_pton(AF_INET, source.c_str(), &from.sin_addr) == 1 &&
                                        ::bind(fd_, reinterpret_cast<sockaddr*>(&from), sizeof(from)) == 0);
  if (fd_ < 0 || !bound || ::connect(fd_, reinterpret_cast<sockaddr*>(&storage), length) != 0) {
    const std::string why = std::strerror(errno);
    if (fd_ >= 0) ::close(fd_);
    throw std::runtime_error("connect to " + host + ":" + std::to_string(port) + ": " + why);
  }
}

Client::~Client() {
  if (fd_ >= 0) ::close(fd_);
}

Client::Client(Client&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), buffer_(std::move(other.buffer_)) {}

bool Client::send(const std::string& bytes) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    sent += n;
  }
  return true;
}

void Client::finish_sending() {
  ::shutdown(fd_, SHUT_WR);
}

std::string Client::read_line(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const size_t end = buffer_.find('\n');
    if (end != std::string::npos) {
      std::string line = buffer_.substr(0, end);
      buffer_.erase(0, end + 1);
      return line;
    }
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return "<timeout>";
    pollfd entry{.fd = fd_, .events = POLLIN, .revents = 0};
    if (::poll(&entry, 1, static_cast<int>(left.count())) <= 0) continue;
    char chunk[4096];
    const ssize_t got = ::recv(fd_, chunk, sizeof(chunk), 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return "<closed>";
    buffer_.append(chunk, got);
  }
}

std::string Client::read_bytes(size_t count, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (buffer_.size() < count) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd entry{.fd = fd_, .events = POLLIN, .revents = 0};
    if (::poll(&entry, 1, static_cast<int>(left.count())) <= 0) continue;
    char chunk[4096];
    const ssize_t got = ::recv(fd_, chunk, sizeof(chunk), 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    buffer_.append(chunk, got);
  }
  std::string bytes = buffer_.substr(0, count);
  buffer_.erase(0, bytes.size());
  return bytes;
}

HttpResponse read_response(Client& client, bool head_request) {
  HttpResponse response;
  const std::string status_line = client.read_line();
  if (!status_line.starts_with("HTTP/1.1 ")) return response;
  response.status = std::stoi(status_line.substr(9, 3));
  size_t length = 0;
  for (;;) {
    std::string line = client.read_line();
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line.starts_with("<")) break;
    if (line.starts_with("Content-Length: ")) length = std::stoul(line.substr(16));
    response.headers += line + "\r\n";
  }
  if (!head_request) response.body = client.read_bytes(length);
  return response;
}

bool Client::wait_closed(std::chrono::milliseconds timeout, std::string* rest) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  if (rest != nullptr) *rest += std::exchange(buffer_, std::string());
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd entry{.fd = fd_, .events = POLLIN, .revents = 0};
    if (::poll(&entry, 1, static_cast<int>(left.count())) <= 0) continue;
    char chunk[4096];
    const ssize_t got = ::recv(fd_, chunk, sizeof(chunk), 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return true;
    if (rest != nullptr) rest->append(chunk, got);
  }
}

std::string ask(const std::string& host, uint16_t port, const std::string& line) {
  Client client(host, port);
  client.send(line + "\n");
  return client.read_line();
}

std::vector<Client> connect_each_sending(const std::string& host, uint16_t port, int count,
                                         const std::string& bytes) {
  std::vector<Client> clients;
  for (int i = 0; i < count; ++i) {
    clients.emplace_back(host, port);
    EXPECT_TRUE(clients.back().send(bytes)) << "client " << i << " could not send";
  }
  return clients;
}

}  // namespace handoff::testing
