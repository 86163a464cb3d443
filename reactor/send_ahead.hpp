#pragma once

// Internal to the reactor. Send-ahead (--send-ahead): a busy handler is sent its next connections before it
// is done with its current one, and goes on to them without waiting for the reactor. The policy — what goes
// ahead, and when it is taken back — is the Frontend's, in send_ahead.cpp beside this.
//
// AheadOffers: the connections sent ahead to one handler and not begun yet. Each has an offer in a slot of
// the handler's answer record (ipc/answer_record.hpp); the handler takes it when it goes on to that
// connection, or the reactor withdraws it, whichever comes first: both exchange the slot's word atomically,
// so never both.

#include <cstdint>
#include <deque>
#include <optional>

#include "ipc/answer_record.hpp"
#include "ipc/wire.hpp"
#include "reactor/dispatcher.hpp"

namespace handoff::reactor {

class AheadOffers {
 public:
  // record (borrowed) is the handler's answer record, which outlives this.
  explicit AheadOffers(ipc::AnswerRecord& record) : record_(record) {}

  // What the handler said in its hello: whether it takes connections ahead (ipc::kCanTakeAhead).
  void set_capability(bool takes_ahead) { capacity_ = takes_ahead ? kDeep : 0; }
  // How many connections it can hold ahead at once: 0 (it takes none), or one less than the answer record's
  // offer slots.
  unsigned capacity() const { return capacity_; }
  size_t size() const { return offers_.size(); }

  // Offers connection in a free slot; returns the kConnection flags that name the offer.
  uint32_t offer(ConnectionId connection);
  // Takes the offer of connection back: true when the handler had not taken it (it will not serve it).
  bool withdraw(ConnectionId connection);
  // The handler went on with connection, the oldest offer not withdrawn (it reads its frames in the order
  // they were sent): that offer is its current connection's from now on.
  void begin(ConnectionId connection);
  // The handler's current connection did not come ahead.
  void begin_directly() { begun_.reset(); }
  // For a handler that died: true when its current connection came ahead and it had not taken it yet (then
  // nothing of it was begun, and it is withdrawn now).
  bool withdraw_unbegun(ConnectionId connection);

 private:
  static constexpr unsigned kDeep = ipc::kOfferSlots - 1;
  struct Offer {
    ConnectionId connection;
    unsigned slot;
    uint32_t number;
  };

  ipc::AnswerRecord& record_;
  unsigned capacity_ = 0;
  std::deque<Offer> offers_;  // Sent ahead and not begun (nor withdrawn), oldest first.
  uint32_t last_number_ = 0;
  std::optional<Offer> begun_;  // The current connection's, when it came ahead.
};

}  // namespace handoff::reactor
