#include "reactor/handler_template.hpp"

#include <signal.h>
#include <unistd.h>

#include <cassert>
#include <cstring>
#include <utility>

#include "ipc/wire.hpp"
#include "reactor/child_command.hpp"
#include "reactor/log.hpp"
#include "reactor/loop_owned.hpp"

namespace handoff::reactor {

HandlerTemplate::HandlerTemplate(uv_loop_t* loop, const Config& config, WriteBatches& batches, Events& events)
    : loop_(loop),
      config_(config),
      events_(events),
      channel_(loop, batches, *this),
      output_(loop, "template") {
  process_.data = start_timer_.data = this;
  uv_timer_init(loop_, &start_timer_);
}

std::error_code HandlerTemplate::spawn(const std::vector<std::string>& argv,
                                       const std::vector<std::string>& environment, int state_page) {
  ipc::UniqueFd reactor_end, child_end;
  if (auto error = open_channel_pair(reactor_end, child_end, "a template's")) {
    exited_ = true;
    return error;
  }

  ipc::UniqueFd output;
  if (config_.log_format == LogFormat::kJson) {
    if (auto error = output_.open(output)) {
      exited_ = true;
      return error;
    }
  }
  // As a handler's, less the answer record: each handler gets its own with its fork.
  std::vector<std::string> settings = environment;
  settings.push_back(std::string(ipc::kTemplateVariable) + "=1");
  const int output_fd = output ? output.get() : STDERR_FILENO;
  ChildCommand command(argv, settings, {-1, output_fd, output_fd, child_end.get(), state_page});
  const uv_exit_cb on_exit = [](uv_process_t* process, int64_t exit_status, int term_signal) {
    auto* self = static_cast<HandlerTemplate*>(process->data);
    self->exited_ = true;
    uv_timer_stop(&self->start_timer_);
    self->channel_.read_rest();  // The exits it reported before its own.
    self->output_.finish();      // Its last words, before the line of its exit.
    // Its handlers live on: each one's exit shows on its pidfd from now on; one not forked yet never will be.
    const std::string how = "(pid " + std::to_string(self->pid()) + ") " +
                            how_it_ended(exit_status, term_signal) +
                            (self->failure_.empty() ? "" : " (" + self->failure_ + ")");
    for (auto& [id, child] : std::exchange(self->children_, {})) child->on_template_gone(how);
    self->unforked_.clear();
    self->events_.on_template_exited(*self, exit_status, term_signal);
  };
  const uv_process_options_t options = command.options(on_exit);
  if (const int error = uv_spawn(loop_, &process_, &options); error < 0) {
    exited_ = true;
    log_at(LogLevel::kError, "cannot start the template '%s': %s", argv[0].c_str(), uv_strerror(error));
    return {-error, std::system_category()};
  }
  output_.start(process_.pid);
  if (auto error = channel_.start(std::move(reactor_end))) return error;
  uv_timer_start(
      &start_timer_,
      [](uv_timer_t* timer) {
        auto* self = static_cast<HandlerTemplate*>(timer->data);
        self->fail("it did not say hello within --handler-start-timeout (" +
                   std::to_string(self->config_.handler_start_timeout.count()) + " ms)");
      },
      static_cast<uint64_t>(config_.handler_start_timeout.count()), 0);
  return {};
}

void HandlerTemplate::fork(ForkedProcess& child, uint64_t id, int channel, int record, int output) {
  assert(!exited_ && "a handler asked of a template that exited");
  // One asked of a template whose channel no longer sends fails at its exit, which is on the way.
  children_.emplace(id, &child);
  unforked_.push_back(id);
  channel_.send({.type = ipc::MessageType::kForkChannel, .connection_id = id}, channel);
  if (output >= 0) channel_.send({.type = ipc::MessageType::kForkOutput, .connection_id = id}, output);
  channel_.send({.type = ipc::MessageType::kForkRecord, .connection_id = id}, record);
}

// --- What the template says ---

void HandlerTemplate::on_frame(ipc::Message message) {
  switch (message.type) {
    case ipc::MessageType::kHello:
      if (ready_) break;
      if ((message.flags & ipc::kIsTemplate) == 0) {
        fail(
            "it said hello as a handler, not as a template: its handler library cannot preload (--preload "
            "needs one that can, such as the Python module handoff_handler)");
        return;
      }
      ready_ = true;
      uv_timer_stop(&start_timer_);
      log_at(LogLevel::kInfo, "template %d is ready: handlers are forked from it", pid());
      events_.on_template_ready(*this);
      return;
    case ipc::MessageType::kHandlerForked: on_forked(message); return;
    case ipc::MessageType::kHandlerExited: on_child_exited(message); return;
    default: break;
  }
  fail("it sent an unexpected frame (type " + std::to_string(static_cast<unsigned>(message.type)) + ")");
}

void HandlerTemplate::on_forked(const ipc::Message& message) {
  ipc::Forked forked{};
  if (message.payload.size() < sizeof(forked) || unforked_.empty() ||
      unforked_.front() != message.connection_id) {
    fail("it reported a fork the reactor did not ask for next");
    return;
  }
  std::memcpy(&forked, message.payload.data(), sizeof(forked));
  unforked_.pop_front();
  const auto child = children_.find(message.connection_id);
  if (forked.pid == 0) {
    const std::string why = message.payload.substr(sizeof(forked));
    log_at(LogLevel::kError, "template %d could not fork a handler: %s", pid(), why.c_str());
    if (child != children_.end()) {
      ForkedProcess* failed = child->second;
      children_.erase(child);
      failed->on_fork_failed("its template could not fork it: " + why);
    }
    return;
  }
  if (child != children_.end()) child->second->on_forked(static_cast<int>(forked.pid));
}

void HandlerTemplate::on_child_exited(const ipc::Message& message) {
  ipc::Exit exit{};
  if (message.payload.size() != sizeof(exit)) {
    fail("it sent a kHandlerExited frame of " + std::to_string(message.payload.size()) + " bytes");
    return;
  }
  std::memcpy(&exit, message.payload.data(), sizeof(exit));
  const auto child = children_.find(message.connection_id);
  if (child == children_.end()) return;  // Closed by the reactor already.
  ForkedProcess* exited = child->second;
  children_.erase(child);
  exited->on_exit_reported(exit.exit_status, exit.term_signal);
}

void HandlerTemplate::on_channel_broken(std::string why) {
  if (!why.empty()) fail(std::move(why));
  // Else it closed its channel: it is exiting, and its exit follows.
}

void HandlerTemplate::fail(std::string why) {
  if (failure_.empty()) failure_ = why;
  log_at(LogLevel::kError, "template %d: %s; it is stopped", pid(), why.c_str());
  ending_ = true;
  channel_.stop();
  kill(SIGKILL);
}

void HandlerTemplate::end() {
  if (ending_) return;
  ending_ = true;
  channel_.end_sending();
}

void HandlerTemplate::kill(int signal) {
  if (!exited_ && process_.loop != nullptr) uv_process_kill(&process_, signal);
}

void HandlerTemplate::close() {
  channel_.stop();
  CloseOnLoop::close_then_delete(
      this, {channel_.handle(), process_.loop != nullptr ? as_handle(&process_) : nullptr,
             as_handle(&start_timer_), output_.poll_handle(), output_.timer_handle()});
}

}  // namespace handoff::reactor
