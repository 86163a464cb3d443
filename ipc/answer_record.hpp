#pragma once

// AnswerRecord: one page per handler, shared by the reactor and that handler alone, in which the handler
// notes each answer just before it writes it: where in the hand-off's output the answer will end, its status,
// and whether the connection goes on after it. The reactor reads the page once the handler has died with a
// connection it never reported back, and, while it runs, to see whether it has begun an answer to a client
// that left (a relaxed read: a stale one only delays a cancel). If the socket has then sent exactly up to the
// end noted, the answer went out whole (the handler died between writing it and reporting it) and the
// connection can go on; otherwise the answer was cut, or never begun. Without the page a handler killed right
// after writing would cost the client its connection, and its next request an EOF instead of an answer.
// One word goes the other way: the reactor writes there the connection whose client left, so that the
// handler's code can stop early (Request::cancelled()) before --cancel-grace runs out.
//
// The reactor creates the page (a memfd) for each handler, which inherits it at descriptor 5
// (HANDOFF_RECORD_FD) and maps it writable. A handler can write nonsense there, but only about its own
// connection. docs/architecture.md describes the layout.

#include <cstdint>
#include <optional>
#include <system_error>

#include "ipc/mapped_page.hpp"
#include "ipc/unique_fd.hpp"

namespace handoff::ipc {

inline constexpr const char* kRecordFdVariable = "HANDOFF_RECORD_FD";
inline constexpr int kHandlerRecordFd = 5;

// The page's layout. Every word is read and written with relaxed atomic operations; the reactor reads them
// only after the handler died, and the kernel orders them before the handler's write(2) of the answer.
struct AnswerRecordLayout {
  uint32_t version;        // kAnswerRecordVersion, set by the reactor.
  uint32_t flags;          // Of the answer noted: kAnswerEndsConnection, kAnswerInputPending.
  uint64_t connection_id;  // Written by the reactor before each hand-off.
  uint64_t answer_end;     // Bytes written in the hand-off once the answer noted is out; 0: none noted yet.
  uint32_t status;         // The answer's status (an HTTP status; 200 or the error's for a line).
  uint32_t lingering;      // 1 while the handler waits on its connection for the next request, having read
                           // nothing of it: the reactor may reclaim it (kReclaim), and if it dies then, no
                           // request was lost. Cleared before the handler reads.
  uint64_t offered[8];     // The offers of connections sent ahead (kFlagAhead), in the slot the frame names
                           // (ipc::ahead_slot), until taken: offer_word(connection id, the offer's number);
                           // with kOfferTaken once the handler took one, 0 once withdrawn. One slot more than
                           // a handler may hold sent ahead: the one it goes on with may still be untaken when
                           // the reactor sends the next. Only handlers that take connections ahead use them.
  uint64_t client_left;    // The id of the connection whose client the reactor last saw leave while this
                           // handler served it (0: none yet): a request of that connection is cancelled
                           // (Request::cancelled()). Written by the reactor only; ids are never reused, so a
                           // word left from an earlier connection matches no later one.
};
inline constexpr uint32_t kAnswerRecordVersion = 3;
inline constexpr unsigned kOfferSlots = 8;
static_assert(sizeof(AnswerRecordLayout) == 104, "part of the handler interface");
inline constexpr uint64_t kOfferTaken = uint64_t{1} << 63;
// What a slot holds for the offer numbered offer (the flags' bits above kAheadOfferShift) of a connection.
constexpr uint64_t offer_word(uint64_t connection_id, uint32_t offer) {
  return (connection_id & ((uint64_t{1} << 47) - 1)) | (uint64_t{offer & 0xffff} << 47);
}

// The handler closes the connection after this answer.
inline constexpr uint32_t kAnswerEndsConnection = 1u << 0;
// The handler holds input it has not answered yet (a pipelined request) when it writes this answer.
inline constexpr uint32_t kAnswerInputPending = 1u << 1;

struct NotedAnswer {
  uint64_t answer_end;
  uint32_t status;
  uint32_t flags;
};

class AnswerRecord {
 public:
  // The reactor's side: a new page. The failed call is returned as its errno.
  static std::error_code create(AnswerRecord& out);
  // A handler's side: the page behind fd, mapped writable; fd is closed once mapped.
  static std::error_code map(UniqueFd fd, AnswerRecord& out);

  bool valid() const { return page_.valid(); }
  // The memfd, borrowed: its handler inherits it. Invalid in a handler.
  int descriptor() const { return page_.descriptor(); }

  // The reactor, before it hands connection_id over: nothing is noted for it yet.
  void begin(uint64_t connection_id);
  // The handler, before it writes an answer. Does nothing when the page is not mapped.
  void note(uint64_t answer_end, uint32_t status, uint32_t flags);
  // The reactor, once the handler died: the last answer noted in the hand-off of connection_id, if any.
  std::optional<NotedAnswer> last_noted(uint64_t connection_id) const;
  // The handler, around its wait on the connection between two requests of a hand-off; the reactor reads it.
  void set_lingering(bool lingering);
  // Whether it lingers on connection_id (a word left from an earlier hand-off does not count).
  bool lingering(uint64_t connection_id) const;
  // The reactor, when the client of connection_id left while the handler serves it: the handler's code may
  // stop early (a relaxed store; the handler may see it a little late, never wrongly).
  void tell_client_left(uint64_t connection_id);
  // The handler, as often as it likes (one relaxed load): whether the reactor said the client of
  // connection_id left. False when the page is not mapped.
  bool client_left(uint64_t connection_id) const;

  // A connection sent ahead goes to the handler or back to the reactor, whichever claims it first (a
  // compare-and-swap on its slot of `offered`, so never both). Each call names the offer by its word
  // (offer_word). The reactor, before it sends a connection ahead in slot (below kOfferSlots):
  void offer(unsigned slot, uint64_t word);
  // The reactor: the first slot below slots that holds no offer its handler is yet to take.
  unsigned free_offer_slot(unsigned slots) const;
  // The reactor takes the offer back; false when the handler has taken it already.
  bool withdraw(unsigned slot, uint64_t word);
  // The handler, on reading the frame: true when the connection is its own now (and begun in the record);
  // false when the reactor withdrew it, and the descriptor that came with it is to be closed unused.
  bool take(unsigned slot, uint64_t word, uint64_t connection_id);

 private:
  AnswerRecordLayout* layout() const;
  uint64_t& offer_slot(unsigned slot) const;

  MappedPage page_;
};

}  // namespace handoff::ipc
