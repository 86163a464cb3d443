// HandlerChannel and WriteBatches over a real socketpair and a real libuv loop: the far end plays the
// handler with ipc::BlockingChannel, as handler/ does.

#include "reactor/handler_channel.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include <memory>
#include <string>
#include <vector>

#include "ipc/blocking_channel.hpp"
#include "ipc/socket_io.hpp"
#include "ipc/unique_fd.hpp"
#include "ipc/wire.hpp"

namespace handoff::reactor {
namespace {

class HandlerChannelTest : public ::testing::Test, public HandlerChannel::Events {
 protected:
  void SetUp() override {
    ASSERT_EQ(uv_loop_init(&loop_), 0);
    batches_ = std::make_unique<WriteBatches>(&loop_);
    int ends[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends), 0);
    handler_end_ = ipc::UniqueFd(ends[1]);
    channel_ = std::make_unique<HandlerChannel>(&loop_, *batches_, *this);
    ASSERT_FALSE(channel_->start(ipc::UniqueFd(ends[0])));
  }

  void TearDown() override {
    channel_->stop();
    if (uv_handle_t* handle = channel_->handle()) uv_close(handle, nullptr);
    uv_run(&loop_, UV_RUN_NOWAIT);
    channel_.reset();
    batches_->close();
    uv_run(&loop_, UV_RUN_DEFAULT);
    EXPECT_EQ(uv_loop_close(&loop_), 0);
  }

  void on_frame(ipc::Message message) override { frames_.push_back(std::move(message)); }
  void on_channel_broken(std::string why) override { breaks_.push_back(std::move(why)); }

  // One turn of the loop, without waiting.
  void turn() { uv_run(&loop_, UV_RUN_NOWAIT); }

  // What the handler's end can read now, without waiting.
  std::string readable_now(std::vector<ipc::UniqueFd>* descriptors = nullptr) {
    std::string bytes;
    char buffer[65536];
    for (;;) {
      std::vector<ipc::UniqueFd> received;
      const ssize_t got = ::recv(handler_end_.get(), buffer, sizeof(buffer), MSG_DONTWAIT | MSG_PEEK);
      if (got <= 0) break;
      const ipc::IoResult result = ipc::receive_with_descriptors(handler_end_.get(), buffer, received);
      if (result.error || result.bytes == 0) break;
      bytes.append(buffer, result.bytes);
      if (descriptors != nullptr) {
        for (auto& descriptor : received) descriptors->push_back(std::move(descriptor));
      }
    }
    return bytes;
  }

  static ipc::Message connection_frame(uint64_t id, std::string payload) {
    return {.type = ipc::MessageType::kConnection, .connection_id = id, .payload = std::move(payload)};
  }

  static ino_t inode_of(int descriptor) {
    struct stat status {};
    ::fstat(descriptor, &status);
    return status.st_ino;
  }

  uv_loop_t loop_{};
  std::unique_ptr<WriteBatches> batches_;
  std::unique_ptr<HandlerChannel> channel_;
  ipc::UniqueFd handler_end_;
  std::vector<ipc::Message> frames_;
  std::vector<std::string> breaks_;
};

TEST_F(HandlerChannelTest, AFrameArrivesWithItsDescriptor) {
  int pipe_ends[2];
  ASSERT_EQ(::pipe2(pipe_ends, O_CLOEXEC), 0);
  const ipc::UniqueFd read_end(pipe_ends[0]), write_end(pipe_ends[1]);

  channel_->send(connection_frame(7, "GET / HTTP/1.1\r\n\r\n"), read_end.get());

  ipc::BlockingChannel handler(std::move(handler_end_));
  ipc::Message received;
  ASSERT_FALSE(handler.receive(received));
  EXPECT_EQ(received.type, ipc::MessageType::kConnection);
  EXPECT_EQ(received.connection_id, 7u);
  EXPECT_EQ(received.payload, "GET / HTTP/1.1\r\n\r\n");
  ASSERT_TRUE(received.descriptor);
  EXPECT_EQ(inode_of(received.descriptor.get()), inode_of(read_end.get()));
}

TEST_F(HandlerChannelTest, WithoutBatchesEachFrameGoesOutAtOnce) {
  channel_->send(connection_frame(1, "a"));
  EXPECT_FALSE(channel_->joins_batch());
  EXPECT_EQ(readable_now().size(), ipc::encode(connection_frame(1, "a")).size());
}

TEST_F(HandlerChannelTest, TheFramesOfOneLoopTurnGoInOneWriteWithTheirDescriptors) {
  channel_->take_batches();
  int pipe_ends[2];
  ASSERT_EQ(::pipe2(pipe_ends, O_CLOEXEC), 0);
  const ipc::UniqueFd read_end(pipe_ends[0]), write_end(pipe_ends[1]);

  channel_->send(connection_frame(1, "first"), read_end.get());
  EXPECT_TRUE(channel_->joins_batch());
  channel_->send(connection_frame(2, "second"), write_end.get());
  channel_->send({.type = ipc::MessageType::kForget, .connection_id = 3});
  EXPECT_EQ(readable_now(), "") << "a batch waits for the end of the loop's turn";

  turn();
  std::vector<ipc::UniqueFd> descriptors;
  const std::string bytes = readable_now(&descriptors);
  EXPECT_EQ(bytes, ipc::encode(connection_frame(1, "first")) + ipc::encode(connection_frame(2, "second")) +
                       ipc::encode({.type = ipc::MessageType::kForget, .connection_id = 3}));
  ASSERT_EQ(descriptors.size(), 2u);
  EXPECT_EQ(inode_of(descriptors[0].get()), inode_of(read_end.get()));
  EXPECT_EQ(inode_of(descriptors[1].get()), inode_of(write_end.get()));
  EXPECT_FALSE(channel_->joins_batch());
}

TEST_F(HandlerChannelTest, ABatchIsSentAtOnceWhenAskedBeforeAWithdrawal) {
  channel_->take_batches();
  channel_->send(connection_frame(1, "x"));
  channel_->send_batch_now();
  EXPECT_EQ(readable_now(), ipc::encode(connection_frame(1, "x")));
  turn();  // Nothing is left to send twice.
  EXPECT_EQ(readable_now(), "");
}

TEST_F(HandlerChannelTest, WhatTheSocketDoesNotTakeWaitsInTheOutboxInOrder) {
  const int small = 4096;
  ASSERT_EQ(::setsockopt(handler_end_.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
  const std::string big(4 << 20, 'b');
  int pipe_ends[2];
  ASSERT_EQ(::pipe2(pipe_ends, O_CLOEXEC), 0);
  ipc::UniqueFd read_end(pipe_ends[0]);
  const ipc::UniqueFd write_end(pipe_ends[1]);
  channel_->send(connection_frame(1, big));
  channel_->send(connection_frame(2, "after"), read_end.get());
  const ino_t pipe_inode = inode_of(read_end.get());
  read_end.reset();  // The outbox keeps a copy of its own.

  std::string bytes;
  std::vector<ipc::UniqueFd> descriptors;
  const size_t expected =
      ipc::encode(connection_frame(1, big)).size() + ipc::encode(connection_frame(2, "after")).size();
  for (int turns = 0; bytes.size() < expected && turns < 100000; ++turns) {
    turn();
    bytes += readable_now(&descriptors);
  }
  EXPECT_EQ(bytes, ipc::encode(connection_frame(1, big)) + ipc::encode(connection_frame(2, "after")));
  ASSERT_EQ(descriptors.size(), 1u);
  EXPECT_EQ(inode_of(descriptors[0].get()), pipe_inode);
  EXPECT_TRUE(breaks_.empty());
}

TEST_F(HandlerChannelTest, FramesFromTheHandlerArriveAndItsCloseBreaksTheChannelWithNoReason) {
  ipc::BlockingChannel handler(std::move(handler_end_));
  ASSERT_FALSE(handler.send({.type = ipc::MessageType::kHello, .flags = ipc::kCanTakeBatches}));
  ASSERT_FALSE(handler.send(
      {.type = ipc::MessageType::kDone, .connection_id = 9, .payload = ipc::progress_payload(120, 200)}));
  turn();
  ASSERT_EQ(frames_.size(), 2u);
  EXPECT_EQ(frames_[0].type, ipc::MessageType::kHello);
  EXPECT_EQ(frames_[1].type, ipc::MessageType::kDone);
  EXPECT_EQ(frames_[1].connection_id, 9u);

  ::shutdown(handler.fd(), SHUT_RDWR);
  turn();
  ASSERT_EQ(breaks_.size(), 1u);
  EXPECT_EQ(breaks_[0], "");
  EXPECT_EQ(channel_->state(), HandlerChannel::State::kBroken);
  channel_->send(connection_frame(1, "late"));  // Nothing goes out once broken, and nothing fails.
}

TEST_F(HandlerChannelTest, ADescriptorFromTheHandlerBreaksTheChannel) {
  int pipe_ends[2];
  ASSERT_EQ(::pipe2(pipe_ends, O_CLOEXEC), 0);
  const ipc::UniqueFd read_end(pipe_ends[0]), write_end(pipe_ends[1]);
  const std::string hello = ipc::encode({.type = ipc::MessageType::kHello});
  ASSERT_FALSE(ipc::send_with_descriptor(handler_end_.get(), hello, read_end.get()).error);
  turn();
  EXPECT_TRUE(frames_.empty());
  ASSERT_EQ(breaks_.size(), 1u);
  EXPECT_EQ(breaks_[0], "it sent a descriptor, which handlers never do");
}

TEST_F(HandlerChannelTest, ABadFrameBreaksTheChannelSayingWhy) {
  const std::string garbage(64, 'Z');
  ASSERT_EQ(::send(handler_end_.get(), garbage.data(), garbage.size(), 0), 64);
  turn();
  ASSERT_EQ(breaks_.size(), 1u);
  EXPECT_EQ(breaks_[0].rfind("it sent a bad frame: ", 0), 0u) << breaks_[0];
}

TEST_F(HandlerChannelTest, ASendThatFindsTheHandlerGoneStillReadsWhatItWroteBefore) {
  {
    ipc::BlockingChannel handler(std::move(handler_end_));
    ASSERT_FALSE(handler.send(
        {.type = ipc::MessageType::kDone, .connection_id = 4, .payload = ipc::progress_payload(10, 200)}));
  }  // The handler's end closes, its report unread.
  channel_->send(connection_frame(5, "to nobody"));
  channel_->send(connection_frame(6, "to nobody"));  // A second send finds it gone: said once.
  ASSERT_EQ(breaks_.size(), 1u);
  EXPECT_EQ(breaks_[0], "");
  EXPECT_EQ(channel_->state(), HandlerChannel::State::kGone);
  channel_->read_rest();
  ASSERT_EQ(frames_.size(), 1u);
  EXPECT_EQ(frames_[0].connection_id, 4u);
}

TEST_F(HandlerChannelTest, EndSendsTheBatchThenTheHandlerReadsEof) {
  channel_->take_batches();
  channel_->send({.type = ipc::MessageType::kReclaim, .connection_id = 12});
  channel_->end();
  EXPECT_EQ(channel_->state(), HandlerChannel::State::kEnded);
  ipc::BlockingChannel handler(std::move(handler_end_));
  ipc::Message received;
  const std::error_code error = handler.receive(received);
  ASSERT_FALSE(error) << error.message();
  EXPECT_EQ(received.type, ipc::MessageType::kReclaim);
  EXPECT_EQ(received.connection_id, 12u);
  EXPECT_EQ(handler.receive(received), ipc::Errc::kPeerClosed);
}

}  // namespace
}  // namespace handoff::reactor
