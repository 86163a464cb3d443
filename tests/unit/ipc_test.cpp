// Unit tests of ipc: the descriptor owner, the frame format, and the channel over a socketpair, in one
// process and across fork.

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <chrono>
#include <cstring>
#include <thread>

#include "ipc/answer_record.hpp"
#include "ipc/blocking_channel.hpp"
#include "ipc/frame_decoder.hpp"
#include "ipc/request_record.hpp"
#include "ipc/shared_state.hpp"
#include "ipc/socket_io.hpp"
#include "ipc/wire.hpp"
#include "tests/support/descriptors.hpp"

namespace handoff::ipc {
namespace {

using testing::open_descriptor_count;

struct ChannelPair {
  ChannelPair() {
    int ends[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends), 0);
    left = UniqueFd(ends[0]);
    right = UniqueFd(ends[1]);
  }
  UniqueFd left, right;
};

UniqueFd make_pipe(UniqueFd& write_end) {
  int ends[2];
  EXPECT_EQ(::pipe2(ends, O_CLOEXEC), 0);
  write_end = UniqueFd(ends[1]);
  return UniqueFd(ends[0]);
}

// Whether descriptor is the write end of the pipe whose read end is read_end: a byte written comes out there.
bool writes_into(int descriptor, int read_end) {
  const char mark = 'x';
  char byte = 0;
  return ::write(descriptor, &mark, 1) == 1 && ::read(read_end, &byte, 1) == 1 && byte == mark;
}

Header header_of(const std::string& frame) {
  Header header;
  std::memcpy(&header, frame.data(), sizeof(header));
  return header;
}

TEST(UniqueFd, ClosesOnDestructionAndMovesOwnership) {
  const size_t before = open_descriptor_count();
  {
    UniqueFd write_end;
    UniqueFd read_end = make_pipe(write_end);
    EXPECT_EQ(open_descriptor_count(), before + 2);
    UniqueFd moved = std::move(read_end);
    EXPECT_FALSE(read_end.valid());
    EXPECT_TRUE(moved.valid());
  }
  EXPECT_EQ(open_descriptor_count(), before);
}

TEST(UniqueFd, ReleaseHandsOwnershipToTheCaller) {
  UniqueFd write_end;
  UniqueFd read_end = make_pipe(write_end);
  const int raw = read_end.release();
  EXPECT_FALSE(read_end.valid());
  EXPECT_EQ(::fcntl(raw, F_GETFD), FD_CLOEXEC);  // Still open.
  ::close(raw);
}

TEST(Wire, EncodesTheDocumentedHeader) {
  const std::string frame =
      encode({.type = MessageType::kDone, .connection_id = 42, .flags = kDoneKeepOpen, .payload = "partial"});
  ASSERT_EQ(frame.size(), sizeof(Header) + 7);
  const Header header = header_of(frame);
  EXPECT_EQ(std::memcmp(frame.data(), "HNDF", 4), 0);
  EXPECT_EQ(header.version, kVersion);
  EXPECT_EQ(header.type, 3);
  EXPECT_EQ(header.connection_id, 42u);
  EXPECT_EQ(header.flags, kDoneKeepOpen);
  EXPECT_EQ(header.payload_size, 7u);
  EXPECT_EQ(frame.substr(sizeof(Header)), "partial");
  EXPECT_FALSE(check_header(header));
}

TEST(Wire, RejectsBadHeaders) {
  Header header = header_of(encode({.type = MessageType::kHello}));
  Header bad = header;
  bad.magic = 0x12345678;
  EXPECT_EQ(check_header(bad), Errc::kBadMagic);
  bad = header;
  bad.version = kVersion + 1;
  EXPECT_EQ(check_header(bad), Errc::kVersionMismatch);
  bad = header;
  bad.type = 99;
  EXPECT_EQ(check_header(bad), Errc::kUnknownType);
  bad = header;
  bad.payload_size = kMaxPayloadBytes + 1;
  EXPECT_EQ(check_header(bad), Errc::kFrameTooLarge);
  // A whole request may be larger than any other frame: a 1 GiB body is a valid kConnection payload.
  bad.type = static_cast<uint16_t>(MessageType::kConnection);
  EXPECT_FALSE(check_header(bad));
  bad.payload_size = kMaxRequestPayloadBytes + 1;
  EXPECT_EQ(check_header(bad), Errc::kFrameTooLarge);
}

TEST(Wire, AProgressNamesTheRouteThatAnswered) {
  std::string payload = progress_payload(120, 404, "rest", 7);
  ASSERT_EQ(payload.size(), sizeof(Progress) + 4);
  // At the offsets docs/protocol.md gives: bytes 0-7, status 8-9, route 10-11.
  EXPECT_EQ(std::memcmp(payload.data() + 8, "\x94\x01\x07\x00", 4), 0);
  Progress progress{};
  ASSERT_TRUE(split_progress_payload(payload, progress));
  EXPECT_EQ(progress.bytes_written, 120u);
  EXPECT_EQ(progress.status, 404);
  EXPECT_EQ(progress.route, 7);
  EXPECT_EQ(payload, "rest");
}

// A hello's route table (docs/protocol.md, "The route table"): the bytes documented, and back.
TEST(Wire, ARouteTableReadsBackAndHasTheDocumentedBytes) {
  const std::vector<RouteEntry> routes = {{.name = "GET /notes/{id}", .flags = 0},
                                          {.name = "fib", .flags = kRouteRetryable}};
  const std::string payload = route_table_payload(routes);
  EXPECT_EQ(payload, std::string("\x0f\x00\x00\x00GET /notes/{id}\x03\x00\x01\x00"
                                 "fib",
                                 4 + 15 + 4 + 3));
  std::vector<RouteEntry> decoded = {{.name = "stale"}};
  ASSERT_TRUE(decode_route_table(payload, decoded));
  ASSERT_EQ(decoded.size(), 2u);
  EXPECT_EQ(decoded[0].name, "GET /notes/{id}");
  EXPECT_EQ(decoded[0].flags, 0);
  EXPECT_EQ(decoded[1].name, "fib");
  EXPECT_EQ(decoded[1].flags, kRouteRetryable);
  // A hello without payload: an empty table.
  ASSERT_TRUE(decode_route_table("", decoded));
  EXPECT_TRUE(decoded.empty());
}

TEST(Wire, ARouteTableThatEndsInsideAnEntryIsRefused) {
  const std::string payload = route_table_payload({{.name = "ping"}, {.name = "pid"}});
  std::vector<RouteEntry> decoded;
  for (size_t cut = 1; cut < payload.size(); ++cut) {
    EXPECT_EQ(decode_route_table(std::string_view(payload).substr(0, cut), decoded), cut == 8) << cut;
  }
}

// The bounds: entries past kMaxRoutes are left out and a longer name is cut, by the encoder and the decoder
// alike, so that a table one end wrote is the table the other reads.
TEST(Wire, ARouteTableIsBoundedInEntriesAndNameBytes) {
  std::vector<RouteEntry> many(kMaxRoutes + 5, RouteEntry{.name = "r", .flags = kRouteRetryable});
  many[0].name = std::string(kMaxRouteNameBytes + 50, 'x');
  std::vector<RouteEntry> decoded;
  ASSERT_TRUE(decode_route_table(route_table_payload(many), decoded));
  ASSERT_EQ(decoded.size(), kMaxRoutes);
  EXPECT_EQ(decoded[0].name, std::string(kMaxRouteNameBytes, 'x'));
  EXPECT_EQ(decoded.back().name, "r");

  // A table another handler wrote past the bounds reads the same.
  std::string raw;
  const RouteEntryHead long_head{.name_bytes = kMaxRouteNameBytes + 1, .flags = 0, .reserved = 0};
  raw.append(reinterpret_cast<const char*>(&long_head), sizeof(long_head));
  raw.append(kMaxRouteNameBytes + 1, 'y');
  const std::string rest =
      route_table_payload(std::vector<RouteEntry>(kMaxRoutes + 2, RouteEntry{.name = "z"}));
  ASSERT_TRUE(decode_route_table(raw + rest, decoded));
  ASSERT_EQ(decoded.size(), kMaxRoutes);
  EXPECT_EQ(decoded[0].name, std::string(kMaxRouteNameBytes, 'y'));
  EXPECT_EQ(decoded[1].name, "z");
}

// The request record (ipc/request_record.hpp): what the reactor writes of a parsed request, a handler reads
// back whole, at the offsets docs/protocol.md gives.
struct Field {
  std::string name, value;
};

TEST(RequestRecord, ReadsBackWhatWasWritten) {
  const std::vector<Field> fields = {{"Host", "example.com"}, {"Set-Thing", "a"}, {"set-thing", "b"}};
  std::string record = "prefix";
  append_request_record(record,
                        {.request_id = 77,
                         .client_address = "2001:db8::1",
                         .client_port = 40000,
                         .http_minor = 0,
                         .keep_alive = false,
                         .method = "PUT",
                         .target = "/a%2Fb/?x=1&x=2",
                         .body = std::string_view("bo\0dy", 5),
                         .rest = "GET / HTTP/1.1\r\n"},
                        fields);
  ASSERT_TRUE(record.starts_with("prefix"));
  RequestView view;
  ASSERT_TRUE(decode_request_record(std::string_view(record).substr(6), view));
  EXPECT_EQ(view.request_id, 77u);
  EXPECT_EQ(view.client_address, "2001:db8::1");
  EXPECT_EQ(view.client_port, 40000);
  EXPECT_EQ(view.http_minor, 0);
  EXPECT_FALSE(view.keep_alive);
  EXPECT_EQ(view.method, "PUT");
  EXPECT_EQ(view.target, "/a%2Fb/?x=1&x=2");
  EXPECT_EQ(view.path, "/a%2Fb/");
  EXPECT_EQ(view.query, "x=1&x=2");
  ASSERT_EQ(view.headers.size(), 3u);
  EXPECT_EQ(view.headers[2].first, "set-thing");
  EXPECT_EQ(view.headers[2].second, "b");
  EXPECT_EQ(view.body, std::string_view("bo\0dy", 5));
  EXPECT_EQ(view.rest, "GET / HTTP/1.1\r\n");
  RequestRecordHeader head;
  std::memcpy(&head, record.data() + 6, sizeof(head));
  EXPECT_EQ(head.field_count, 3u);
  EXPECT_EQ(head.fields_bytes, 3 * 8 + 4 + 11 + 9 + 1 + 9 + 1);
}

TEST(RequestRecord, RefusesSizesThatDoNotAddUp) {
  std::string record;
  append_request_record(record, {.client_address = "127.0.0.1", .target = "fib 30"}, std::vector<Field>());
  RequestView view;
  ASSERT_TRUE(decode_request_record(record, view));
  EXPECT_EQ(view.target, "fib 30");
  EXPECT_EQ(view.path, "");  // A line has no path.
  for (size_t cut = 0; cut < record.size(); ++cut) {
    EXPECT_FALSE(decode_request_record(std::string_view(record).substr(0, cut), view)) << cut;
  }
  EXPECT_FALSE(decode_request_record(record + "x", view));
  RequestRecordHeader head;
  std::memcpy(&head, record.data(), sizeof(head));
  head.field_count = 1000000;  // More fields than their bytes could hold.
  std::memcpy(record.data(), &head, sizeof(head));
  EXPECT_FALSE(decode_request_record(record, view));
}

TEST(RequestRecord, SplitsEveryFormOfTarget) {
  using Split = std::pair<std::string_view, std::string_view>;
  EXPECT_EQ(split_target("/"), Split("/", ""));
  EXPECT_EQ(split_target("/a/b?"), Split("/a/b", ""));
  EXPECT_EQ(split_target("/a?b?c"), Split("/a", "b?c"));
  EXPECT_EQ(split_target("http://h:8/p/q?x"), Split("/p/q", "x"));
  EXPECT_EQ(split_target("http://h:8"), Split("/", ""));
  EXPECT_EQ(split_target("http://h?x=1"), Split("/", "x=1"));
  EXPECT_EQ(split_target("*"), Split("*", ""));
  EXPECT_EQ(split_target("example.com:443"), Split("example.com:443", ""));
}

TEST(FrameDecoder, ReassemblesFramesSplitAnywhere) {
  const std::string stream = encode({.type = MessageType::kHello}) +
                             encode({.type = MessageType::kDone, .connection_id = 7, .payload = "abc"}) +
                             encode({.type = MessageType::kDone, .connection_id = 8, .flags = kDoneKeepOpen});
  for (size_t step = 1; step <= stream.size(); ++step) {
    FrameDecoder decoder;
    std::vector<Message> messages;
    std::error_code error;
    for (size_t offset = 0; offset < stream.size(); offset += step) {
      decoder.append(std::span(stream).subspan(offset, std::min(step, stream.size() - offset)));
      while (auto message = decoder.next(error)) messages.push_back(std::move(*message));
      ASSERT_FALSE(error) << error.message();
    }
    ASSERT_EQ(messages.size(), 3u) << "step " << step;
    EXPECT_EQ(messages[0].type, MessageType::kHello);
    EXPECT_EQ(messages[1].connection_id, 7u);
    EXPECT_EQ(messages[1].payload, "abc");
    EXPECT_EQ(messages[2].flags, kDoneKeepOpen);
    EXPECT_EQ(decoder.buffered(), 0u);
  }
}

TEST(FrameDecoder, RejectsGarbageAndFramesThatNeedADescriptor) {
  FrameDecoder garbage;
  garbage.append(std::string_view("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::error_code error;
  EXPECT_FALSE(garbage.next(error));
  EXPECT_EQ(error, Errc::kBadMagic);

  FrameDecoder connection;
  connection.append(encode({.type = MessageType::kConnection}));
  EXPECT_FALSE(connection.next(error));
  EXPECT_EQ(error, Errc::kMissingDescriptor);
}

TEST(BlockingChannel, PassesADescriptorThatRefersToTheSameOpenFile) {
  const size_t before = open_descriptor_count();
  {
    ChannelPair pair;
    BlockingChannel reactor(std::move(pair.left));
    BlockingChannel handler(std::move(pair.right));
    UniqueFd write_end;
    UniqueFd read_end = make_pipe(write_end);

    Message sent{
        .type = MessageType::kConnection, .connection_id = 5, .flags = kFlagInputClosed, .payload = "fib 3"};
    sent.descriptor = std::move(write_end);
    ASSERT_FALSE(reactor.send(sent));
    sent.descriptor.reset();  // The sender's copy may go; the receiver's stays valid.

    Message received;
    ASSERT_FALSE(handler.receive(received));
    EXPECT_EQ(received.type, MessageType::kConnection);
    EXPECT_EQ(received.connection_id, 5u);
    EXPECT_EQ(received.flags, kFlagInputClosed);
    EXPECT_EQ(received.payload, "fib 3");
    ASSERT_TRUE(received.descriptor.valid());
    EXPECT_EQ(::fcntl(received.descriptor.get(), F_GETFD), FD_CLOEXEC);
    EXPECT_TRUE(writes_into(received.descriptor.get(), read_end.get()));
  }
  EXPECT_EQ(open_descriptor_count(), before);
}

TEST(BlockingChannel, PassesADescriptorAcrossFork) {
  ChannelPair pair;
  char path[] = "/tmp/handoff-ipc-test-XXXXXX";
  UniqueFd file(::mkstemp(path));
  ASSERT_TRUE(file.valid());
  ::unlink(path);

  const pid_t child = ::fork();
  if (child == 0) {
    // The child is the handler: it receives the file and writes through it.
    pair.left.reset();
    BlockingChannel channel(std::move(pair.right));
    Message message;
    if (channel.receive(message) || !message.descriptor) ::_exit(1);
    if (::write(message.descriptor.get(), "from child", 10) != 10) ::_exit(2);
    if (channel.send({.type = MessageType::kDone, .connection_id = message.connection_id})) ::_exit(3);
    ::_exit(0);
  }
  pair.right.reset();
  BlockingChannel channel(std::move(pair.left));
  Message message{.type = MessageType::kConnection, .connection_id = 9};
  message.descriptor = UniqueFd(::dup(file.get()));
  ASSERT_FALSE(channel.send(message));
  Message done;
  ASSERT_FALSE(channel.receive(done));
  EXPECT_EQ(done.type, MessageType::kDone);
  EXPECT_EQ(done.connection_id, 9u);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_EQ(status, 0);

  // Same open file description: the child's write moved the shared offset.
  EXPECT_EQ(::lseek(file.get(), 0, SEEK_CUR), 10);
  char text[11] = {};
  ASSERT_EQ(::pread(file.get(), text, 10, 0), 10);
  EXPECT_STREQ(text, "from child");
  Message eof;
  EXPECT_EQ(channel.receive(eof), Errc::kPeerClosed);
}

// The new reactor of a takeover reads the old one's frames on its event loop: on a non-blocking socket,
// receive says "try again" in the middle of a frame and keeps what it has, descriptor included.
TEST(BlockingChannel, OnANonBlockingSocketAFrameInPiecesKeepsItsDescriptor) {
  const size_t before = open_descriptor_count();
  {
    ChannelPair pair;
    ASSERT_EQ(::fcntl(pair.right.get(), F_SETFL, ::fcntl(pair.right.get(), F_GETFL) | O_NONBLOCK), 0);
    BlockingChannel successor(std::move(pair.right));
    UniqueFd write_end;
    UniqueFd read_end = make_pipe(write_end);
    const std::string frame = encode(
        {.type = MessageType::kTakeoverConnection, .flags = kFlagHttp, .payload = "GET / HTTP/1.1\r\nHo"});
    const size_t half = sizeof(Header) + 4;
    ASSERT_EQ(
        send_with_descriptor(pair.left.get(), std::string_view(frame).substr(0, half), write_end.get()).bytes,
        half);
    write_end.reset();
    Message message;
    EXPECT_EQ(successor.receive(message), std::errc::resource_unavailable_try_again);
    EXPECT_EQ(successor.receive(message), std::errc::resource_unavailable_try_again);
    const std::string rest = frame.substr(half);
    ASSERT_EQ(::write(pair.left.get(), rest.data(), rest.size()), static_cast<ssize_t>(rest.size()));
    ASSERT_FALSE(successor.receive(message));
    EXPECT_EQ(message.type, MessageType::kTakeoverConnection);
    EXPECT_EQ(message.flags, kFlagHttp);
    EXPECT_EQ(message.payload, "GET / HTTP/1.1\r\nHo");
    ASSERT_TRUE(message.descriptor.valid());
    EXPECT_TRUE(writes_into(message.descriptor.get(), read_end.get()));
    EXPECT_EQ(successor.receive(message), std::errc::resource_unavailable_try_again);
  }
  EXPECT_EQ(open_descriptor_count(), before);
}

// Sends first_frame (one that carries no descriptor), then a kConnection that carries one, the descriptor
// attached to the first's write or to its own: either way the second frame gets it.
void expect_descriptor_for_the_second_frame(const Message& first_frame, bool attached_to_first) {
  const size_t before = open_descriptor_count();
  {
    ChannelPair pair;
    BlockingChannel handler(std::move(pair.right));
    UniqueFd write_end;
    UniqueFd read_end = make_pipe(write_end);
    const std::string first_bytes = encode(first_frame);
    const std::string second_bytes = encode({.type = MessageType::kConnection, .connection_id = 8});
    ASSERT_EQ(
        send_with_descriptor(pair.left.get(), first_bytes, attached_to_first ? write_end.get() : -1).bytes,
        first_bytes.size());
    ASSERT_EQ(
        send_with_descriptor(pair.left.get(), second_bytes, attached_to_first ? -1 : write_end.get()).bytes,
        second_bytes.size());
    write_end.reset();

    Message first;
    ASSERT_FALSE(handler.receive(first));
    EXPECT_EQ(first.type, first_frame.type);
    EXPECT_FALSE(first.descriptor.valid());
    Message second;
    ASSERT_FALSE(handler.receive(second));
    EXPECT_EQ(second.type, MessageType::kConnection);
    EXPECT_EQ(second.connection_id, 8u);
    ASSERT_TRUE(second.descriptor.valid());
    EXPECT_TRUE(writes_into(second.descriptor.get(), read_end.get()));
  }
  EXPECT_EQ(open_descriptor_count(), before);
}

// A kReclaim that reaches a handler after its hand-off ended is read together with the next kConnection and
// that frame's descriptor (recvmsg reads on until the write that carries one): the descriptor is the second
// frame's. The first version refused it, and every late kReclaim killed a handler.
TEST(BlockingChannel, GivesADescriptorToItsFrameBehindOneWithout) {
  expect_descriptor_for_the_second_frame({.type = MessageType::kReclaim, .connection_id = 7}, false);
}

// A batch's descriptors all ride on its first byte, and a read may end where a frame without one ends (a
// write longer than the kernel puts in one buffer): the descriptor waits for the next frame that carries one.
// (The first version of batches refused it there, and the handler exited.)
TEST(BlockingChannel, ADescriptorThatCameWithAFrameWithoutOneWaitsForTheNextThatCarriesOne) {
  expect_descriptor_for_the_second_frame(
      {.type = MessageType::kConnection, .connection_id = 7, .flags = kFlagKept | kFlagKeep}, true);
}

// A connection whose socket the handler kept comes without a descriptor (kFlagKept), and the one behind it,
// with a descriptor and forgets sent along after it in the same write, still gets its own.
TEST(BlockingChannel, AKeptConnectionComesWithoutADescriptorAndTheNextWithOneGetsIt) {
  const size_t before = open_descriptor_count();
  {
    ChannelPair pair;
    BlockingChannel handler(std::move(pair.right));
    handler.wait_in_poll();
    UniqueFd write_end;
    UniqueFd read_end = make_pipe(write_end);
    EXPECT_FALSE(carries_descriptor(MessageType::kConnection, kFlagKept));
    EXPECT_TRUE(carries_descriptor(MessageType::kConnection, kFlagKeep));
    EXPECT_FALSE(carries_descriptor(MessageType::kForget, 0));
    const std::string kept =
        encode({.type = MessageType::kConnection, .connection_id = 7, .flags = kFlagKept | kFlagKeep});
    ASSERT_EQ(::write(pair.left.get(), kept.data(), kept.size()), static_cast<ssize_t>(kept.size()));
    const std::string next = encode({.type = MessageType::kConnection, .connection_id = 8}) +
                             encode({.type = MessageType::kForget, .connection_id = 7});
    ASSERT_EQ(send_with_descriptor(pair.left.get(), next, write_end.get()).bytes, next.size());
    write_end.reset();

    Message first;
    ASSERT_FALSE(handler.receive(first));
    EXPECT_EQ(first.connection_id, 7u);
    EXPECT_FALSE(first.descriptor.valid());
    Message second;
    ASSERT_FALSE(handler.receive(second));
    EXPECT_EQ(second.connection_id, 8u);
    ASSERT_TRUE(second.descriptor.valid());
    EXPECT_TRUE(writes_into(second.descriptor.get(), read_end.get()));
    Message forget;
    ASSERT_FALSE(handler.receive(forget));
    EXPECT_EQ(forget.type, MessageType::kForget);
    EXPECT_EQ(forget.connection_id, 7u);
    EXPECT_FALSE(forget.descriptor.valid());
  }
  EXPECT_EQ(open_descriptor_count(), before);
}

// A reactor batches the frames it has for a handler that says kCanTakeBatches into one write, every
// descriptor on its first byte: each goes to its own frame, in order, past the frames that carry none.
TEST(BlockingChannel, ABatchedWriteGivesEachFrameItsOwnDescriptor) {
  const size_t before = open_descriptor_count();
  {
    ChannelPair pair;
    BlockingChannel handler(std::move(pair.right));
    handler.wait_in_poll();
    constexpr size_t kConnections = kMaxDescriptorsPerWrite;
    std::vector<UniqueFd> read_ends;
    std::vector<UniqueFd> write_ends;
    std::vector<int> attached;
    std::string batch = encode({.type = MessageType::kReclaim, .connection_id = 1});
    for (size_t i = 0; i < kConnections; ++i) {
      UniqueFd write_end;
      read_ends.push_back(make_pipe(write_end));
      attached.push_back(write_end.get());
      write_ends.push_back(std::move(write_end));
      batch += encode({.type = MessageType::kConnection, .connection_id = 100 + i, .payload = "GET"});
      batch += encode({.type = MessageType::kConnection, .connection_id = 200 + i, .flags = kFlagKept});
    }
    ASSERT_EQ(send_with_descriptors(pair.left.get(), batch, attached).bytes, batch.size());
    write_ends.clear();

    Message reclaim;
    ASSERT_FALSE(handler.receive(reclaim));
    EXPECT_EQ(reclaim.type, MessageType::kReclaim);
    EXPECT_FALSE(reclaim.descriptor.valid());
    for (size_t i = 0; i < kConnections; ++i) {
      Message passed;
      ASSERT_FALSE(handler.receive(passed));
      EXPECT_EQ(passed.connection_id, 100 + i);
      ASSERT_TRUE(passed.descriptor.valid());
      EXPECT_TRUE(writes_into(passed.descriptor.get(), read_ends[i].get())) << "frame " << i;
      Message kept;
      ASSERT_FALSE(handler.receive(kept));
      EXPECT_EQ(kept.connection_id, 200 + i);
      EXPECT_FALSE(kept.descriptor.valid());
    }
  }
  EXPECT_EQ(open_descriptor_count(), before);
}

// Waiting in poll, a receive still sleeps until a frame comes, and reports the peer closing.
TEST(BlockingChannel, WaitingInPollReceivesAFrameThatComesLaterAndTheEnd) {
  ChannelPair pair;
  BlockingChannel handler(std::move(pair.right));
  handler.wait_in_poll();
  std::thread reactor([left = std::move(pair.left)]() mutable {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const std::string reclaim = encode({.type = MessageType::kReclaim, .connection_id = 9});
    (void)!::write(left.get(), reclaim.data(), reclaim.size());
    left.reset();
  });
  Message message;
  EXPECT_FALSE(handler.receive(message));
  EXPECT_EQ(message.type, MessageType::kReclaim);
  EXPECT_EQ(handler.receive(message), Errc::kPeerClosed);
  reactor.join();
}

// A connection sent ahead comes right behind a large request: the read that brings the end of the first frame
// brings the second one's descriptor too, before the first frame was returned. The first version refused it.
TEST(BlockingChannel, KeepsTheNextFramesDescriptorThatCameWithTheEndOfALongOne) {
  const size_t before = open_descriptor_count();
  {
    ChannelPair pair;
    BlockingChannel reactor(std::move(pair.left));
    BlockingChannel handler(std::move(pair.right));
    UniqueFd first_write, second_write;
    UniqueFd first_read = make_pipe(first_write);
    UniqueFd second_read = make_pipe(second_write);
    Message large{.type = MessageType::kConnection, .connection_id = 1, .payload = std::string(100000, 'x')};
    large.descriptor = std::move(first_write);
    Message ahead{
        .type = MessageType::kConnection, .connection_id = 2, .flags = kFlagAhead, .payload = "ping\n"};
    ahead.descriptor = std::move(second_write);
    ASSERT_FALSE(reactor.send(large));  // Both fit in the socket's buffer: sent before anything is read.
    ASSERT_FALSE(reactor.send(ahead));
    large.descriptor.reset();
    ahead.descriptor.reset();

    for (const auto& [id, read_end] : {std::pair{1u, &first_read}, std::pair{2u, &second_read}}) {
      Message message;
      ASSERT_FALSE(handler.receive(message)) << id;
      EXPECT_EQ(message.connection_id, id);
      ASSERT_TRUE(message.descriptor.valid()) << id;
      EXPECT_TRUE(writes_into(message.descriptor.get(), read_end->get())) << "descriptor of frame " << id;
    }
  }
  EXPECT_EQ(open_descriptor_count(), before);
}

// A connection sent ahead goes to exactly one side, and a claim is for one offer: the same connection sent
// ahead again, after a withdrawal, is not taken by its earlier frame.
TEST(AnswerRecord, AnOfferIsTakenOrWithdrawnOnceAndOnlyAsItsOwnNumber) {
  AnswerRecord reactor;
  ASSERT_FALSE(AnswerRecord::create(reactor));
  AnswerRecord handler;
  ASSERT_FALSE(AnswerRecord::map(UniqueFd(::dup(reactor.descriptor())), handler));

  EXPECT_EQ(reactor.free_offer_slot(2), 0u);
  reactor.offer(0, offer_word(7, 1));
  EXPECT_EQ(reactor.free_offer_slot(2), 1u);  // Not taken yet: the next offer goes to the other slot.
  EXPECT_TRUE(handler.take(0, offer_word(7, 1), 7));
  EXPECT_FALSE(reactor.withdraw(0, offer_word(7, 1)));  // Too late.
  EXPECT_EQ(reactor.free_offer_slot(2), 0u);

  reactor.offer(0, offer_word(8, 2));
  EXPECT_TRUE(reactor.withdraw(0, offer_word(8, 2)));
  reactor.offer(0, offer_word(8, 3));                  // The same connection again, a new offer.
  EXPECT_FALSE(handler.take(0, offer_word(8, 2), 8));  // The withdrawn frame, read late.
  EXPECT_TRUE(handler.take(0, offer_word(8, 3), 8));
  EXPECT_EQ(reactor.last_noted(8), std::nullopt);  // Begun for connection 8, nothing noted yet.
}

// A handler that holds several ahead: each offer in a slot of its own until it is taken or withdrawn, and
// the frame names its slot (bits 8-10 of its flags).
TEST(AnswerRecord, OffersTakeTheFirstSlotNotHeldByAnUntakenOne) {
  AnswerRecord reactor;
  ASSERT_FALSE(AnswerRecord::create(reactor));
  AnswerRecord handler;
  ASSERT_FALSE(AnswerRecord::map(UniqueFd(::dup(reactor.descriptor())), handler));
  for (unsigned slot = 0; slot < kOfferSlots; ++slot) {
    ASSERT_EQ(reactor.free_offer_slot(kOfferSlots), slot);
    reactor.offer(slot, offer_word(20 + slot, slot + 1));
  }
  EXPECT_TRUE(handler.take(0, offer_word(20, 1), 20));
  EXPECT_TRUE(reactor.withdraw(5, offer_word(25, 6)));
  EXPECT_EQ(reactor.free_offer_slot(4), 0u);  // Taken: free again.
  reactor.offer(0, offer_word(30, 9));
  EXPECT_EQ(reactor.free_offer_slot(kOfferSlots), 5u);  // Withdrawn.
  EXPECT_FALSE(handler.take(5, offer_word(25, 6), 25));
  EXPECT_TRUE(handler.take(7, offer_word(27, 8), 27));

  EXPECT_EQ(ahead_slot(ahead_slot_flags(6)), 6u);
  EXPECT_EQ(ahead_slot_flags(1) & ~kAheadSlotMask, 0u);
}

// A descriptor no frame takes is closed when the channel ends, and more than the reactor ever has in flight
// are refused: none leaks.
TEST(BlockingChannel, ClosesDescriptorsNoFrameTakes) {
  const size_t before = open_descriptor_count();
  {
    ChannelPair pair;
    BlockingChannel handler(std::move(pair.right));
    UniqueFd write_end;
    UniqueFd read_end = make_pipe(write_end);
    const std::string hello = encode({.type = MessageType::kHello});
    ASSERT_EQ(send_with_descriptor(pair.left.get(), hello, write_end.get()).bytes, hello.size());
    write_end.reset();
    pair.left.reset();

    Message message;
    EXPECT_FALSE(handler.receive(message));
    EXPECT_EQ(message.type, MessageType::kHello);
    EXPECT_FALSE(message.descriptor.valid());
    EXPECT_EQ(handler.receive(message), Errc::kPeerClosed);
    // Every copy of the write end is closed, so the pipe reads EOF.
    char byte;
    EXPECT_EQ(::read(read_end.get(), &byte, 1), 0);
  }
  {
    ChannelPair pair;
    BlockingChannel handler(std::move(pair.right));
    UniqueFd write_end;
    UniqueFd read_end = make_pipe(write_end);
    const std::vector<int> copies(kMaxDescriptorsPerWrite, write_end.get());
    const std::string hello = encode({.type = MessageType::kHello});
    for (int i = 0; i < 3; ++i) {
      ASSERT_EQ(send_with_descriptors(pair.left.get(), hello, copies).bytes, hello.size());
    }
    write_end.reset();

    Message message;
    EXPECT_FALSE(handler.receive(message));
    EXPECT_FALSE(handler.receive(message));
    EXPECT_EQ(handler.receive(message), Errc::kUnexpectedDescriptor);
  }
  EXPECT_EQ(open_descriptor_count(), before);
}

TEST(BlockingChannel, ReportsAMissingDescriptor) {
  ChannelPair pair;
  BlockingChannel handler(std::move(pair.right));
  const std::string frame = encode({.type = MessageType::kConnection, .payload = "ping\n"});
  ASSERT_EQ(::write(pair.left.get(), frame.data(), frame.size()), static_cast<ssize_t>(frame.size()));
  Message message;
  EXPECT_EQ(handler.receive(message), Errc::kMissingDescriptor);
}

TEST(BlockingChannel, ReportsATruncatedFrameAndAPeerThatLeft) {
  ChannelPair pair;
  BlockingChannel handler(std::move(pair.right));
  const std::string frame = encode({.type = MessageType::kDone, .payload = "0123456789"});
  ASSERT_EQ(::write(pair.left.get(), frame.data(), frame.size() - 3), static_cast<ssize_t>(frame.size() - 3));
  pair.left.reset();
  Message message;
  EXPECT_EQ(handler.receive(message), Errc::kTruncatedFrame);
}

TEST(SocketIo, TooManyDescriptorsAreReportedAndNoneLeaks) {
  const size_t before = open_descriptor_count();
  {
    ChannelPair pair;
    // More descriptors than the receiver has room for: the kernel drops the rest and sets MSG_CTRUNC.
    constexpr int kCount = 2 * kMaxDescriptorsPerWrite + 4;
    std::vector<UniqueFd> pipes;
    int raw[kCount];
    for (int i = 0; i < kCount; ++i) {
      UniqueFd write_end;
      pipes.push_back(make_pipe(write_end));
      raw[i] = write_end.get();
      pipes.push_back(std::move(write_end));
    }
    char control[CMSG_SPACE(sizeof(raw))] = {};
    char byte = 'x';
    iovec iov{.iov_base = &byte, .iov_len = 1};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(raw));
    std::memcpy(CMSG_DATA(cmsg), raw, sizeof(raw));
    ASSERT_EQ(::sendmsg(pair.left.get(), &msg, 0), 1);

    std::vector<UniqueFd> received;
    char buffer[8];
    const IoResult result = receive_with_descriptors(pair.right.get(), buffer, received);
    EXPECT_EQ(result.error, Errc::kControlDataTruncated);
    EXPECT_EQ(result.bytes, 1u);
    EXPECT_LT(received.size(), static_cast<size_t>(kCount));
  }
  EXPECT_EQ(open_descriptor_count(), before);
}

TEST(SocketIo, NonBlockingSendReportsWouldBlockAndNeverRaisesSigpipe) {
  ChannelPair pair;
  ASSERT_EQ(::fcntl(pair.left.get(), F_SETFL, O_NONBLOCK), 0);
  const std::string chunk(64 * 1024, 'x');
  IoResult result;
  for (int i = 0; i < 1000 && !result.error; ++i) result = send_with_descriptor(pair.left.get(), chunk, -1);
  EXPECT_TRUE(result.would_block());

  pair.right.reset();
  result = send_with_descriptor(pair.left.get(), chunk, -1);
  EXPECT_EQ(result.error, std::errc::broken_pipe);  // Not a SIGPIPE: the test is still running.
}

// The reactor's record outlives a handler that noted an answer and died: what the handler noted is what the
// reactor reads, for that connection only, and a new hand-off forgets it.
TEST(AnswerRecord, WhatADeadHandlerNotedIsReadForItsConnectionOnly) {
  AnswerRecord reactor_side;
  ASSERT_FALSE(AnswerRecord::create(reactor_side));
  reactor_side.begin(7);
  EXPECT_FALSE(reactor_side.last_noted(7));

  const pid_t child = ::fork();
  if (child == 0) {
    AnswerRecord handler_side;
    if (AnswerRecord::map(UniqueFd(::dup(reactor_side.descriptor())), handler_side)) ::_exit(1);
    handler_side.note(120, 200, kAnswerInputPending);
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_EQ(status, 0);

  const std::optional<NotedAnswer> noted = reactor_side.last_noted(7);
  ASSERT_TRUE(noted);
  EXPECT_EQ(noted->answer_end, 120u);
  EXPECT_EQ(noted->status, 200u);
  EXPECT_EQ(noted->flags, kAnswerInputPending);
  EXPECT_FALSE(reactor_side.last_noted(8));
  reactor_side.begin(8);
  EXPECT_FALSE(reactor_side.last_noted(7));
  EXPECT_FALSE(reactor_side.last_noted(8));
}

TEST(AnswerRecord, ItsSizeIsSealedAgainstAHandlerThatWouldShrinkIt) {
  AnswerRecord record;
  ASSERT_FALSE(AnswerRecord::create(record));
  EXPECT_NE(::ftruncate(record.descriptor(), 0), 0);
  EXPECT_EQ(errno, EPERM);
}

// Request::cancelled() reads the word the reactor sets when a client leaves: it names that connection alone,
// a later hand-off does not clear it, and a handler without the page never sees a request cancelled.
TEST(AnswerRecord, TheClientLeftWordNamesOneConnection) {
  AnswerRecord reactor;
  ASSERT_FALSE(AnswerRecord::create(reactor));
  AnswerRecord handler;
  ASSERT_FALSE(AnswerRecord::map(UniqueFd(::dup(reactor.descriptor())), handler));
  EXPECT_FALSE(handler.client_left(7));
  EXPECT_FALSE(handler.client_left(0));  // The word before any client left names no connection.
  reactor.tell_client_left(7);
  EXPECT_TRUE(handler.client_left(7));
  EXPECT_FALSE(handler.client_left(8));
  reactor.begin(8);
  EXPECT_FALSE(handler.client_left(8));
  EXPECT_TRUE(handler.client_left(7));
  EXPECT_FALSE(AnswerRecord().client_left(7));
}

// Handlers inherit the state page's descriptor: through it they could map the page writable and set
// "draining" or "waiting" for every other handler. The page is sealed against all but the reactor's writes.
TEST(SharedState, AHandlerCanMapItOnlyReadOnly) {
  SharedState reactor_side;
  ASSERT_FALSE(SharedState::create(reactor_side));
  void* writable = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, reactor_side.descriptor(), 0);
  EXPECT_EQ(writable, MAP_FAILED);
  EXPECT_EQ(errno, EPERM);
  EXPECT_EQ(::write(reactor_side.descriptor(), "x", 1), -1);
  reactor_side.set_draining();  // The reactor's own mapping still writes.
  SharedState handler_side;
  ASSERT_FALSE(SharedState::map_read_only(UniqueFd(::dup(reactor_side.descriptor())), handler_side));
  EXPECT_TRUE(handler_side.draining());
}

}  // namespace
}  // namespace handoff::ipc
