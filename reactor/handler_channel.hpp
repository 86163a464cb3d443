#pragma once

// Internal to the reactor. HandlerChannel: the reactor's end of one handler's channel, a Unix stream socket
// (nginx's ngx_channel.c beside ngx_process.c). It sends frames, each with the descriptor that goes with its
// first byte, reads the frames the handler sends, and says once when the channel broke. What the frames mean
// is the HandlerProcess's business; this only moves them, and runs the nginx checklist on every receive (EOF,
// errors, descriptors the handler should never send, a frame the decoder refuses).
//
// A write the socket does not take whole waits in an outbox with copies of its descriptors, and goes out
// when the socket is writable. A handler that takes batches (ipc kCanTakeBatches) gets the frames of one
// loop turn in one write: they gather in a batch that WriteBatches sends before the loop goes on.
//
// WriteBatches: the channels with a batch waiting, sent after the turn's I/O callbacks (a check handle) and
// before the loop sleeps (a prepare handle), as Redis flushes its clients' pending writes in beforeSleep.
// The descriptors of a batch are borrowed: a Connection closes its socket only in a libuv close callback,
// which runs after the check handles of the same turn; the one close that is at once (a connection passed
// to a new reactor) follows a withdrawal, which sends the batch first (send_batch_now).

#include <uv.h>

#include <cstddef>
#include <deque>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "ipc/frame_decoder.hpp"
#include "ipc/socket_io.hpp"
#include "ipc/unique_fd.hpp"
#include "ipc/wire.hpp"

namespace handoff::reactor {

class HandlerChannel;

class WriteBatches {
 public:
  explicit WriteBatches(uv_loop_t* loop);
  WriteBatches(const WriteBatches&) = delete;
  WriteBatches& operator=(const WriteBatches&) = delete;

  // channel has a batch waiting: it is sent before the loop goes on. A channel is listed once.
  void add(HandlerChannel& channel);
  // channel is going away, or sent its batch by itself.
  void remove(HandlerChannel& channel);
  // Sends every batch waiting now.
  void send_all();
  // Closes the handles; the object must outlive their close callbacks (it is a member of the pool, which
  // closes it as its last handles close).
  void close();

 private:
  uv_check_t after_io_{};
  uv_prepare_t before_sleep_{};
  std::vector<HandlerChannel*> waiting_;  // Borrowed: each removes itself as it goes.
  std::vector<HandlerChannel*> sending_;  // What send_all sends now; a channel removed meanwhile is null.
};

class HandlerChannel {
 public:
  class Events {
   public:
    // A whole frame arrived. It may call anything on the channel, the sends among them.
    virtual void on_frame(ipc::Message message) = 0;
    // The channel broke, once: why is empty when the handler closed it or went away (its exit says why),
    // else what the handler did wrong or what failed. No frame is sent from now on.
    virtual void on_channel_broken(std::string why) = 0;

   protected:
    ~Events() = default;
  };

  enum class State {
    kOpen,    // Frames go both ways.
    kGone,    // A send found the handler gone (EPIPE): nothing is sent, and what it wrote is still read.
    kEnded,   // The reactor ended it (end): the handler reads EOF when it next waits for work.
    kBroken,  // Nothing more goes either way.
  };

  // batches (borrowed) outlives the channel.
  HandlerChannel(uv_loop_t* loop, WriteBatches& batches, Events& events);
  HandlerChannel(const HandlerChannel&) = delete;
  HandlerChannel& operator=(const HandlerChannel&) = delete;
  ~HandlerChannel();

  // Starts reading socket, the reactor's end. The failed call is logged.
  std::error_code start(ipc::UniqueFd socket);
  State state() const { return state_; }
  bool sends() const { return state_ == State::kOpen && !sending_ended_; }

  // From now on frames of one loop turn go in one write (the handler said kCanTakeBatches).
  void take_batches() { takes_batches_ = true; }
  // Sends message, with descriptor (borrowed; -1 for none) attached to its first byte: now as far as the
  // socket takes it, or in the turn's batch; what the socket does not take waits in the outbox. Nothing is
  // sent once the channel no longer sends().
  void send(const ipc::Message& message, int descriptor = -1);
  // Whether a frame sent now joins a batch that already holds one (it will not cost a write of its own).
  bool joins_batch() const {
    return batching() && !batch_.empty() && batch_descriptors_.size() < ipc::kMaxDescriptorsPerWrite;
  }
  // Sends the batch now, as far as the socket takes it.
  void send_batch_now();

  // Reads every frame still in the socket: the handler is gone or going, and what it reported before counts.
  void read_rest();
  // Stops reading and sending, for a reason of the owner's (the handler broke the protocol).
  void stop();
  // Sends what is batched and shuts the socket down: the handler reads EOF when it next waits for work.
  void end();
  // The same for the sending side only: the peer reads EOF, and what it sends is still read (a template
  // reports the exits of its handlers until the last is gone).
  void end_sending();

  // For the owner's close: the poll handle, or null when it was never initialised.
  uv_handle_t* handle() { return polled_ ? reinterpret_cast<uv_handle_t*>(&poll_) : nullptr; }

 private:
  // Writes not taken by the socket yet, each with copies of the descriptors that go with its first byte,
  // until that byte is sent.
  struct Outgoing {
    std::string bytes;
    std::vector<ipc::UniqueFd> descriptors;
  };

  bool batching() const { return takes_batches_ && state_ == State::kOpen && outbox_.empty(); }
  void on_poll_event(int status, int events);
  // Reads up to max_reads times and passes on each frame.
  void read_frames(int max_reads);
  // As much of bytes as the socket takes now, descriptors attached to the first byte; breaks on an error.
  size_t send_now(std::string_view bytes, std::span<const int> descriptors);
  // Puts what the socket did not take of a write in the outbox: with copies of its descriptors of the
  // outbox's own when none of it was sent (their connections may close before it goes).
  void keep_unsent(std::string_view rest, std::span<const int> descriptors, bool any_sent);
  void flush_outbox();
  void forget_batch();
  // Each change of the polled events costs an epoll_ctl: they change only when they must.
  void update_polling();
  void break_with(State state, std::string why);
  // Drops the batch and the outbox, and polls for nothing more: what ends every state that sends.
  void stop_sending();

  uv_loop_t* loop_;
  ipc::UniqueFd socket_;
  WriteBatches& batches_;
  Events& events_;
  uv_poll_t poll_{};
  bool polled_ = false;    // poll_ is initialised.
  int polled_events_ = 0;  // The events poll_ watches now.
  State state_ = State::kOpen;
  bool sending_ended_ = false;  // end_sending() was called.
  ipc::FrameDecoder decoder_;
  std::deque<Outgoing> outbox_;
  bool takes_batches_ = false;
  std::string batch_;
  std::vector<int> batch_descriptors_;  // Borrowed (see the top of the file).
  bool listed_ = false;                 // In batches_.
};

}  // namespace handoff::reactor
