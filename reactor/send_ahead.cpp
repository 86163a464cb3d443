#include "reactor/send_ahead.hpp"

#include <algorithm>
#include <cassert>

#include "reactor/config.hpp"
#include "reactor/frontend.hpp"
#include "reactor/handler_pool.hpp"

namespace handoff::reactor {

static_assert(kMaxSendAhead == ipc::kOfferSlots - 1, "a slot for each request ahead, and one");

uint32_t AheadOffers::offer(ConnectionId connection) {
  assert(offers_.size() < capacity_ && "more sent ahead than the handler can hold");
  // The one it goes on with may not be taken yet, though the reactor has seen its handler report the
  // connection before it: a slot is reused only once its offer is taken or withdrawn, and there is one more
  // slot than connections it holds ahead.
  last_number_ = (last_number_ + 1) & 0xffff;
  const Offer offer{
      .connection = connection, .slot = record_.free_offer_slot(capacity_ + 1), .number = last_number_};
  record_.offer(offer.slot, ipc::offer_word(connection, offer.number));
  offers_.push_back(offer);
  return ipc::kFlagAhead | ipc::ahead_slot_flags(offer.slot) | (offer.number << ipc::kAheadOfferShift);
}

bool AheadOffers::withdraw(ConnectionId connection) {
  const auto offer = std::find_if(offers_.begin(), offers_.end(),
                                  [connection](const Offer& each) { return each.connection == connection; });
  if (offer == offers_.end() || !record_.withdraw(offer->slot, ipc::offer_word(connection, offer->number))) {
    return false;
  }
  offers_.erase(offer);
  return true;
}

void AheadOffers::begin(ConnectionId connection) {
  begun_.reset();
  if (!offers_.empty() && offers_.front().connection == connection) {
    begun_ = offers_.front();
    offers_.pop_front();
  }
}

bool AheadOffers::withdraw_unbegun(ConnectionId connection) {
  return begun_ && begun_->connection == connection &&
         record_.withdraw(begun_->slot, ipc::offer_word(connection, begun_->number));
}

// --- The policy (Frontend's) ---
//
// A busy handler that takes connections ahead gets the longest waiting requests, as many as its depth
// (HandlerPool sets it from its hello, --send-ahead and how long its answers take): it goes on to the next
// without waiting for the reactor. A request sent ahead still waits in the Frontend's books, with its bytes
// kept, until its handler takes it: it can come back (withdrawn) and go elsewhere — to a handler that comes
// free first when its own is stuck on a long request, when its handler retires or dies, or to the reactor
// that takes over.

void Frontend::requeue_stuck_ahead(HandlerId taker) {
  const uint64_t now = uv_hrtime();
  requeue_if_withdrawn(dispatcher_.oldest_ahead(taker, [&](HandlerId holder) {
    return now - pool_.at(holder).request_started_ns() >= kAheadPatienceNs;
  }));
}

void Frontend::requeue_if_withdrawn(std::optional<Assignment> ahead) {
  if (!ahead) return;
  if (pool_.withdraw_ahead(pool_.at(ahead->handler), ahead->connection))
    dispatch_first_in_line(ahead->connection);
}

void Frontend::dispatch_first_in_line(ConnectionId id) {
  Connection& connection = *connections_.at(id);
  connection.set_copy_in_flight();
  if (auto assignment = dispatcher_.connection_ready(id, {.first_in_line = true, .may_go_ahead = false})) {
    send_to_handler(*assignment);
  } else {
    connection.wait_in_queue();
  }
}

Connection::Request Frontend::take_request(Connection& connection) {
  const auto kept = kept_requests_.find(connection.id());
  if (kept == kept_requests_.end()) return connection.take_request(next_request_id_++);
  Connection::Request request = std::move(kept->second);
  kept_requests_.erase(kept);
  return request;
}

void Frontend::on_handler_goes_on(HandlerProcess& handler) {
  Connection& connection = *connections_.at(*dispatcher_.connection_of(handler.id()));
  observe_queue_wait(connection);
  connection.watch_while_served();
  if (handler.exited()) return;  // Its last reports are read after its exit: it takes nothing more.
  requeue_stuck_ahead(handler.id());
  send_aheads(handler.id());
}

void Frontend::send_aheads(HandlerId handler) {
  while (auto assignment = dispatcher_.next_ahead(handler)) send_to_handler(*assignment);
}

void Frontend::on_ahead_returned(ConnectionId id) {
  if (phase_ == Phase::kStopping) {
    refuse(*connections_.at(id), Refusal::kShuttingDown);
  } else if (phase_ == Phase::kHandingOver) {
    pass_to_successor(id, {});
  } else {
    dispatch_first_in_line(id);
  }
}

bool Frontend::withdraw_ahead(ConnectionId id) {
  const std::optional<HandlerId> holder = dispatcher_.ahead_holder(id);
  if (!holder || !pool_.withdraw_ahead(pool_.at(*holder), id)) return false;
  connections_.at(id)->set_copy_in_flight();
  return true;
}

// --- The depth, and withdrawals (HandlerPool's) ---

void HandlerPool::set_ahead_depth(const HandlerProcess& handler, uint64_t answer_interval_ns) {
  const unsigned depth = std::min(handler.ahead_capacity(), config_.send_ahead);
  dispatcher_.set_ahead_depth(handler.id(),
                              answer_interval_ns < kShortAnswerIntervalNs ? depth : std::min(depth, 1u));
}

bool HandlerPool::withdraw_ahead(HandlerProcess& holder, ConnectionId connection) {
  if (!holder.withdraw_ahead(connection)) return false;
  ++metrics_.counters.withdrawn;
  dispatcher_.ahead_withdrawn(holder.id(), connection);
  return true;
}

std::vector<ConnectionId> HandlerPool::withdraw_aheads(HandlerProcess& holder) {
  std::vector<ConnectionId> withdrawn;
  for (const ConnectionId ahead : dispatcher_.aheads_of(holder.id())) {
    if (withdraw_ahead(holder, ahead)) withdrawn.push_back(ahead);
  }
  return withdrawn;
}

}  // namespace handoff::reactor
