#pragma once

// The ipc wire format between the reactor and its handlers: every frame is one fixed-size Header followed by
// payload_size bytes of payload. A frame of type kConnection carries exactly one descriptor (SCM_RIGHTS),
// attached to the first byte of its header, unless its flags say the handler holds the socket already
// (kFlagKept); no other frame between a reactor and its handlers carries one. kForkChannel, kForkOutput and
// kForkRecord, from the reactor to a template, carry one each.
// The same frames carry a takeover between two reactors (reactor/takeover.hpp), where kTakeoverListener and
// kTakeoverConnection carry one each. docs/architecture.md describes it.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

#include "ipc/unique_fd.hpp"

namespace handoff::ipc {

inline constexpr uint32_t kMagic = 0x46444e48;  // The bytes "HNDF" read as a little-endian integer.
inline constexpr uint16_t kVersion = 2;
inline constexpr uint32_t kMaxPayloadBytes = 16u << 20;
// A kConnection frame carries a whole request, whose body may be as large as --max-request-bytes allows (1
// GiB) and its head --max-head-bytes (1 MiB): its payload may be larger than other frames'.
inline constexpr uint32_t kMaxRequestPayloadBytes = 3u << 30;

// The environment variable in which the reactor tells a handler the number of its channel descriptor.
inline constexpr const char* kChannelFdVariable = "HANDOFF_IPC_FD";
// The descriptor number at which every handler inherits its channel to the reactor.
inline constexpr int kHandlerChannelFd = 3;
// Set to 1 for a template (--preload): the handler command is to load its code, say hello with kIsTemplate
// and fork handlers when asked, rather than serve. A handler it forks must not see it set.
inline constexpr const char* kTemplateVariable = "HANDOFF_TEMPLATE";

enum class MessageType : uint16_t {
  kHello = 1,       // handler -> reactor, its first frame: it speaks this version and is ready for work.
  kConnection = 2,  // reactor -> handler: a client socket (attached) and its request, read whole and parsed:
                    // a request record (ipc/request_record.hpp).
  kDone = 3,      // handler -> reactor: finished with the connection; payload: a Progress, then the bytes it
                  // has of the connection and did not use (of the record's rest, or read itself).
  kAnswered = 4,  // handler -> reactor: an answer is complete and another request of the same hand-off
                  // follows; payload: a Progress.
  kReclaim = 5,   // reactor -> handler: a request waits, or the handler is to retire; a handler lingering on
                  // its connection (noted in its answer record) ends the hand-off now, any other skips it.
                  // Sent at most once a hand-off; one that comes after the hand-off ended is skipped.
  // Between an old reactor and the new one that takes over from it:
  kTakeoverListener = 6,    // old -> new: a listening socket (attached); flags: kFlagAdminPort, kFlagLast.
  kTakeoverReady = 7,       // new -> old: its handlers are ready, and it accepts on the sockets.
  kTakeoverConnection = 8,  // old -> new: a client connection (attached); payload: a Progress (the bytes the
                            // socket has sent so far, and the age of the request being read), then the bytes
                            // the old one read of it that no handler took; flags: kTakenHttp or
                            // kTakenLineProtocol, its protocol if known; kFlagContinueSent; kFlagMoreBytes.
  kTakeoverEnd = 9,         // old -> new: every connection has been sent.
  kForget = 10,  // reactor -> handler: close the copy of the connection's socket kept for it (kFlagKept).
  kTakeoverBytes =
      11,  // old -> new: more of the bytes of the connection the frame before it began (same
           // connection_id), which said kFlagMoreBytes; flags: kFlagMoreBytes when yet more follow.
  // Between the reactor and a template (--preload: the handler command started once, which forks handlers;
  // it said hello with kIsTemplate). connection_id is the handler's number, chosen by the reactor.
  kForkChannel =
      12,  // reactor -> template: fork a handler; attached: the handler's channel, its kHandlerChannelFd.
  kForkRecord = 13,     // reactor -> template, right after kForkChannel: attached, its answer record.
  kHandlerForked = 14,  // template -> reactor: payload: a Forked. A failed fork: pid 0, then what failed.
  kHandlerExited =
      15,  // template -> reactor: the handler exited and the template reaped it; payload: an Exit.
  // reactor -> template, with --log-format json only, between the kForkChannel and the kForkRecord of the
  // same handler: attached, the write end of the handler's output pipe, its descriptors 1 and 2 (without it,
  // the handler keeps the template's).
  kForkOutput = 16,
};

// The most payload a frame of that type may carry.
constexpr uint32_t max_payload_bytes(MessageType type) {
  return type == MessageType::kConnection ? kMaxRequestPayloadBytes : kMaxPayloadBytes;
}

// The start of the payload of kAnswered and kDone frames.
struct Progress {
  uint64_t bytes_written;  // Written to the client in this hand-off so far.
  uint16_t status;         // Of the request answered last (an HTTP status; 200 or the error's for a line);
                           // 0 when no request was answered since the previous report.
  uint16_t route;  // The number of the route or command that answered it in the handler's route table (its
                   // kHello), from 1; 0 for none (an unknown command, a 404, the fallback) and between
                   // reactors.
  uint32_t
      request_age_ms;  // kTakeoverConnection: how long ago the request being read began (0: none); else 0.
};
static_assert(sizeof(Progress) == 16, "part of the wire format");
static_assert(std::is_trivially_copyable_v<Progress>);

// A kAnswered or kDone payload: progress, then (kDone) the unused bytes.
std::string progress_payload(uint64_t bytes_written, int status, std::string_view unconsumed = {},
                             uint16_t route = 0);
// Splits such a payload; false when it is too short to hold a Progress.
bool split_progress_payload(std::string& payload, Progress& progress);

// Flags are numbered per frame type: the same bit means different things in different frames.
//
// Flags of a kConnection frame. Its payload is the request record (ipc/request_record.hpp).
inline constexpr uint32_t kFlagHttp = 1u << 0;  // The connection speaks HTTP/1.x, not the line protocol.
inline constexpr uint32_t kFlagInputClosed = 1u
                                             << 1;  // The client sent EOF after the bytes the reactor read.
// Sent ahead, while the handler is busy: it is the handler's only if it takes it in its answer record
// (ipc/answer_record.hpp); otherwise the reactor withdrew it, and the descriptor is closed unused. Its
// claim's slot in the answer record is bits 8-10 of the flags, and bits 16-31 number the offer (one
// connection may be sent ahead to the same handler again while its earlier, withdrawn frame is still unread
// there): the claim is for this one only.
inline constexpr uint32_t kFlagAhead = 1u << 2;
// Keeping a connection (the handler's copy of a keep-alive socket, so that its next request needs no
// SCM_RIGHTS, no descriptor install and no close): kFlagKeep asks the handler to keep its copy if the
// connection stays open, and kFlagKept says no descriptor is attached: the handler serves the copy it kept.
inline constexpr uint32_t kFlagKeep = 1u << 3;
inline constexpr uint32_t kFlagKept = 1u << 4;
inline constexpr unsigned kAheadSlotShift = 8;
inline constexpr uint32_t kAheadSlotMask = 7u << kAheadSlotShift;
inline constexpr unsigned kAheadOfferShift = 16;
constexpr uint32_t ahead_slot_flags(unsigned slot) {
  return (slot << kAheadSlotShift) & kAheadSlotMask;
}
constexpr unsigned ahead_slot(uint32_t flags) {
  return (flags & kAheadSlotMask) >> kAheadSlotShift;
}

// Flags of a kHello frame: the handler's capabilities, one word.
inline constexpr uint32_t kCanTakeAhead = 1u << 0;  // It may be sent connections ahead (kFlagAhead).
inline constexpr uint32_t kCanKeep = 1u << 1;       // It may be asked to keep them (kFlagKeep).
// It takes several frames in one write, the descriptors of all of them attached to its first byte, in the
// order of the frames that carry one (ipc::BlockingChannel does): the reactor then sends the frames it has
// for it in one turn of its loop with one sendmsg.
inline constexpr uint32_t kCanTakeBatches = 1u << 2;
// Said by a template, never by a handler: it forks handlers when asked (kForkChannel) and serves no request.
inline constexpr uint32_t kIsTemplate = 1u << 3;

// The most descriptors one write carries (SCM_RIGHTS allows 253): a connection and all those ahead of it.
inline constexpr size_t kMaxDescriptorsPerWrite = 8;

// The payload of a handler's kHello: its route table, one entry per route or command it registered, in the
// order registered; entry i (from 1) is route number i, which its Progress reports name. Each entry is a
// RouteEntryHead, then name_bytes bytes of name: "METHOD PATTERN" for an HTTP route as registered ("GET
// /notes/{id}"), the name for a command ("fib"). An empty payload is an empty table (a handler that numbers
// nothing, and a template's hello).
struct RouteEntryHead {
  uint16_t name_bytes;
  uint8_t flags;  // kRouteRetryable.
  uint8_t reserved;
};
static_assert(sizeof(RouteEntryHead) == 4, "part of the wire format");
// The handler says a request of it may be run again, on another handler, when the one that ran it died
// before it began an answer: it has no effect beyond its answer (a pure computation, a read).
inline constexpr uint8_t kRouteRetryable = 1u << 0;
// The most entries a table holds, and the longest name: an encoder leaves out the entries past the first
// kMaxRoutes and cuts a longer name to its first kMaxRouteNameBytes bytes; a decoder does the same with a
// table that breaks them, so such entries count as route 0 (or under the cut name).
inline constexpr size_t kMaxRoutes = 1024;
inline constexpr size_t kMaxRouteNameBytes = 200;

struct RouteEntry {
  std::string name;
  uint8_t flags = 0;
};
// The payload of a kHello that names routes, within the bounds above.
std::string route_table_payload(const std::vector<RouteEntry>& routes);
// The table of a kHello payload, bounded as above; false when the payload is not a sequence of whole entries
// (an entry's head or name runs past its end).
bool decode_route_table(std::string_view payload, std::vector<RouteEntry>& routes);

// Flags of a kDone frame.
inline constexpr uint32_t kDoneKeepOpen = 1u << 0;  // The client may send more: watch the connection again.
inline constexpr uint32_t kDoneWriteTimedOut = 1u << 1;  // The client did not take an answer in time.
// The handler kept its copy of the socket (it was asked to, kFlagKeep), until a kForget or the next
// kConnection frame of the connection that carries a descriptor.
inline constexpr uint32_t kDoneKept = 1u << 2;

// Flags of a kTakeoverListener frame.
inline constexpr uint32_t kFlagAdminPort = 1u << 0;  // The admin port's, not the service port's.
inline constexpr uint32_t kFlagLast = 1u << 1;       // No other listening socket follows.
// Flags of a kTakeoverConnection frame: its protocol, when known (neither: not yet decided).
inline constexpr uint32_t kTakenHttp = 1u << 0;
inline constexpr uint32_t kTakenLineProtocol = 1u << 1;
// The old reactor answered the request's "Expect: 100-continue" already: the new one does not again.
inline constexpr uint32_t kFlagContinueSent = 1u << 2;
// A kTakeoverConnection or kTakeoverBytes frame whose bytes go on in a kTakeoverBytes frame: a request read
// up to the frame limit does not fit in one frame with its Progress.
inline constexpr uint32_t kFlagMoreBytes = 1u << 3;
// A kTakeoverConnection frame: the old reactor ran the request in its bytes on a second handler already, its
// first having died (--retry-crashed): the new one does not run it a third time.
inline constexpr uint32_t kFlagRanAgain = 1u << 4;

// The payloads of kHandlerForked and kHandlerExited.
struct Forked {
  uint32_t pid;  // 0: the fork failed, and the payload goes on with why, as text.
};
static_assert(sizeof(Forked) == 4, "part of the wire format");
struct Exit {
  int32_t exit_status;  // As the process exited, or 0 when a signal ended it.
  int32_t term_signal;  // The signal that ended it, or 0.
};
static_assert(sizeof(Exit) == 8, "part of the wire format");

// All fields are in host byte order: both ends of a channel run on the same machine.
struct Header {
  uint32_t magic;
  uint16_t version;
  uint16_t type;
  uint64_t connection_id;  // Chosen by the reactor; a kDone frame repeats the id of its kConnection frame.
  uint32_t flags;
  uint32_t payload_size;
};
static_assert(sizeof(Header) == 24, "the header is part of the wire format");
static_assert(std::is_trivially_copyable_v<Header>);

struct Message {
  MessageType type = MessageType::kHello;
  uint64_t connection_id = 0;
  uint32_t flags = 0;
  std::string payload;
  UniqueFd descriptor;  // Set for kConnection (unless kFlagKept) and the takeover's sockets only.
};

// The ways a frame can be wrong, as std::error_code values of ipc's own category.
enum class Errc {
  kBadMagic = 1,
  kVersionMismatch,
  kUnknownType,
  kFrameTooLarge,
  kUnexpectedDescriptor,
  kMissingDescriptor,
  kControlDataTruncated,
  kPeerClosed,
  kTruncatedFrame,
};
const std::error_category& ipc_category();
std::error_code make_error_code(Errc e);

// Checks magic, version, type and size of a received header.
std::error_code check_header(const Header& header);

// Whether a frame with this type and these flags carries a descriptor.
bool carries_descriptor(MessageType type, uint32_t flags);

// The header and payload of message, ready to be sent (its descriptor is attached by the sender).
std::string encode(const Message& message);

}  // namespace handoff::ipc

template <>
struct std::is_error_code_enum<handoff::ipc::Errc> : std::true_type {};
