#include "reactor/socket_poller.hpp"

#include <sys/epoll.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "reactor/log.hpp"

namespace handoff::reactor {
namespace {

// Events fetched per wake-up; more are fetched in the next turn (the loop watches epoll_ level-triggered).
constexpr int kMaxEventsPerWakeup = 256;
constexpr uint32_t kEvents = EPOLLIN | EPOLLRDHUP | EPOLLET;

std::error_code errno_code(int value) {
  return {value, std::system_category()};
}

}  // namespace

std::error_code SocketPoller::open(uv_loop_t* loop, LoopOwned<SocketPoller>& poller) {
  ipc::UniqueFd epoll(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll) {
    const int error = errno;
    log_at(LogLevel::kError, "epoll_create1 for the client sockets: %s", std::strerror(error));
    return errno_code(error);
  }
  poller.reset(new SocketPoller(loop, std::move(epoll)));
  return {};
}

SocketPoller::SocketPoller(uv_loop_t* loop, ipc::UniqueFd epoll) : epoll_(std::move(epoll)) {
  uv_poll_init(loop, &poll_, epoll_.get());
  uv_idle_init(loop, &idle_);
  poll_.data = idle_.data = this;
  uv_poll_start(&poll_, UV_READABLE,
                [](uv_poll_t* poll, int, int) { static_cast<SocketPoller*>(poll->data)->deliver_ready(); });
}

std::error_code SocketPoller::add(int socket, Watcher& watcher, Key& key) {
  key = next_key_++;
  epoll_event event{};
  event.events = kEvents;
  event.data.u64 = key;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, socket, &event) != 0) {
    const int error = errno;
    log_at(LogLevel::kError, "epoll_ctl(EPOLL_CTL_ADD) for a client socket: %s", std::strerror(error));
    return errno_code(error);
  }
  watchers_.emplace(key, &watcher);
  return {};
}

bool SocketPoller::report_input(int socket, Key key, bool input) {
  epoll_event event{};
  event.events = input ? kEvents : kEvents & ~EPOLLIN;
  event.data.u64 = key;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, socket, &event) == 0) return true;
  log_at(LogLevel::kWarn, "epoll_ctl(EPOLL_CTL_MOD) for a client socket: %s", std::strerror(errno));
  return false;
}

void SocketPoller::forget(Key key) {
  if (watchers_.erase(key) == 0) return;
  close_if_done();
}

void SocketPoller::forget_passed(int socket, Key key) {
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, socket, nullptr) != 0) {
    log_at(LogLevel::kWarn, "epoll_ctl(EPOLL_CTL_DEL) for a client socket: %s", std::strerror(errno));
  }
  forget(key);
}

void SocketPoller::look_again(Key key) {
  if (looks_.empty()) {
    uv_idle_start(&idle_, [](uv_idle_t* idle) { static_cast<SocketPoller*>(idle->data)->deliver_looks(); });
  }
  looks_.push_back(key);
}

void SocketPoller::deliver_ready() {
  epoll_event events[kMaxEventsPerWakeup];
  const int ready = ::epoll_wait(epoll_.get(), events, kMaxEventsPerWakeup, 0);
  for (int i = 0; i < ready; ++i) {
    // A watcher may remove itself or others while its event is handled: each is looked up as it comes.
    const auto it = watchers_.find(events[i].data.u64);
    if (it != watchers_.end()) it->second->on_socket_event(events[i].events);
  }
}

void SocketPoller::deliver_looks() {
  std::vector<Key> keys;
  keys.swap(looks_);
  uv_idle_stop(&idle_);
  for (const Key key : keys) {
    const auto it = watchers_.find(key);
    if (it != watchers_.end()) it->second->on_socket_event(EPOLLIN);
  }
}

void SocketPoller::close() {
  closing_ = true;
  close_if_done();
}

void SocketPoller::close_if_done() {
  if (!closing_ || !watchers_.empty() || uv_is_closing(as_handle(&poll_))) return;
  CloseOnLoop::close_then_delete(this, {as_handle(&poll_), as_handle(&idle_)});
}

}  // namespace handoff::reactor
