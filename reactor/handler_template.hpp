#pragma once

// Internal to the reactor. HandlerTemplate: with --preload, the handler command started once as a template
// (gunicorn's --preload, Android's zygote). It loads the app (a Python module imports it, with Flask or
// numpy), says hello with kIsTemplate, and then forks a handler each time the reactor asks (kForkChannel and
// kForkRecord, carrying the handler's channel and answer record): the handler serves within milliseconds of
// the ask, the app's memory shared with the template copy-on-write. The template is its handlers' parent: it
// reaps each and reports its exit (kHandlerExited). It dies with the reactor; its handlers outlive it, and
// end when the reactor ends their channels.
//
// The HandlerPool owns its templates: the newest forks the new handlers; an older one (a SIGHUP started a
// newer one) is ended, and exits once the last handler it forked is gone.

#include <uv.h>

#include <cstdint>
#include <deque>
#include <string>
#include <system_error>
#include <unordered_map>
#include <vector>

#include "reactor/config.hpp"
#include "reactor/forked_process.hpp"
#include "reactor/handler_channel.hpp"
#include "reactor/handler_output.hpp"

namespace handoff::reactor {

class HandlerTemplate final : HandlerChannel::Events {
 public:
  class Events {
   public:
    // It said hello: it has loaded the app, and forks the handlers asked for.
    virtual void on_template_ready(HandlerTemplate& handler_template) = 0;
    // The process exited and was reaped: drop it now. Every handler asked of it has heard already.
    virtual void on_template_exited(HandlerTemplate& handler_template, int64_t exit_status,
                                    int term_signal) = 0;

   protected:
    ~Events() = default;
  };

  // Create with make_loop_owned (reactor/loop_owned.hpp), then spawn. batches (borrowed) outlives it.
  HandlerTemplate(uv_loop_t* loop, const Config& config, WriteBatches& batches, Events& events);

  // Starts the handler command as a template: as a handler is started (reactor/handler_process.hpp), with
  // HANDOFF_TEMPLATE=1; with --log-format json, with an output pipe of its own, whose records say "source":
  // "template". The failed call is logged; after a failure the object only needs closing.
  std::error_code spawn(const std::vector<std::string>& argv, const std::vector<std::string>& environment,
                        int state_page);

  int pid() const { return process_.pid; }
  bool ready() const { return ready_; }
  bool exited() const { return exited_; }
  // Whether it was ended (end()) or broke: it forks nothing more.
  bool ending() const { return ending_; }
  // Why it did not become ready, or broke (its log line says the rest): empty when nothing went wrong.
  const std::string& failure() const { return failure_; }
  // Handlers asked of it that have not exited yet.
  size_t children() const { return children_.size(); }

  // Asks it to fork child's process; channel and record are the handler's ends, and output (-1 for none)
  // the write end of its output pipe, which the handler gets as its stdout and stderr in place of the
  // template's (all borrowed: sent now, or copied). Asks made before its hello wait in the channel. Never
  // asked of one that exited.
  void fork(ForkedProcess& child, uint64_t id, int channel, int record, int output);
  // child is being closed: it hears nothing more.
  void forget(uint64_t id) { children_.erase(id); }

  // It forks nothing more, and exits once its last handler is gone.
  void end();
  void kill(int signal);
  void close();  // Deletes the object once libuv is done with it; call after on_template_exited.

 private:
  friend struct CloseOnLoop;
  ~HandlerTemplate() = default;

  // HandlerChannel::Events.
  void on_frame(ipc::Message message) override;
  void on_channel_broken(std::string why) override;

  void on_forked(const ipc::Message& message);
  void on_child_exited(const ipc::Message& message);
  void fail(std::string why);

  uv_loop_t* loop_;
  const Config& config_;
  Events& events_;
  uv_process_t process_{};
  uv_timer_t start_timer_{};
  HandlerChannel channel_;
  HandlerOutput output_;  // Opened with --log-format json only.
  // Every handler asked of it that has not exited, by id: those not forked yet are also in unforked_, in
  // the order asked (the template forks in that order).
  std::unordered_map<uint64_t, ForkedProcess*> children_;
  std::deque<uint64_t> unforked_;
  bool ready_ = false;
  bool ending_ = false;
  bool exited_ = false;
  std::string failure_;
};

}  // namespace handoff::reactor
