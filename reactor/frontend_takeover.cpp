// The Frontend's part of a takeover (reactor/takeover.hpp): the old reactor passes each connection to its
// successor once no handler holds it, with the bytes read of it; the new reactor adopts each and reads on
// from where the old one stopped.

#include "reactor/frontend.hpp"

namespace handoff::reactor {

void Frontend::adopt(PassedConnection connection) {
  ++metrics_.counters.taken_over;
  accept_passed(std::move(connection));
}

void Frontend::accept_passed(PassedConnection connection) {
  const uint32_t flags = connection.flags;
  const Protocol protocol = (flags & ipc::kTakenHttp) != 0           ? Protocol::kHttp
                            : (flags & ipc::kTakenLineProtocol) != 0 ? Protocol::kLine
                                                                     : Protocol::kUnknown;
  accept(std::move(connection.socket),
         {.already_read = std::move(connection.bytes),
          .protocol = protocol,
          .bytes_sent = connection.bytes_sent,
          .request_age = Milliseconds(connection.request_age_ms),
          .continue_sent = (flags & ipc::kFlagContinueSent) != 0,
          .ran_again = (flags & ipc::kFlagRanAgain) != 0},
         false);
}

void Frontend::pass_all_to_successor(PassCallback pass, std::function<void()> all_passed) {
  phase_ = Phase::kHandingOver;
  pass_ = std::move(pass);
  all_passed_ = std::move(all_passed);
  // Kept, should the successor die before every connection is its.
  hold_listeners(Listener::Hold::kTakeover);
  std::vector<ConnectionId> ids;
  for (const auto& entry : connections_) ids.push_back(entry.first);
  for (const ConnectionId id : ids) {
    // A connection a handler serves follows once the handler is done with it (resume); so does one sent
    // ahead that its handler took already. One sent ahead and not taken moves now, as a queued one does.
    if (dispatcher_.handler_of(id)) continue;
    if (dispatcher_.ahead_holder(id) && !withdraw_ahead(id)) continue;
    dispatcher_.connection_gone(id);  // It waited in the queue, or was sent ahead and withdrawn.
    pass_to_successor(id, {});
  }
  report_if_all_passed();
}

void Frontend::stop_passing() {
  pass_ = nullptr;
  all_passed_ = nullptr;
  // Every connection still here is a handler's (the others were passed at once): each is watched again
  // once its handler is done with it, as before the takeover.
  if (phase_ == Phase::kHandingOver) phase_ = Phase::kServing;
}

void Frontend::report_if_all_passed() {
  if (all_passed_ && connections_.empty()) std::exchange(all_passed_, nullptr)();
}

void Frontend::pass_to_successor(ConnectionId id, std::string unconsumed) {
  std::string bytes;
  if (const auto kept = kept_requests_.find(id); kept != kept_requests_.end()) {
    bytes = std::move(kept->second.raw);
    kept_requests_.erase(kept);
  }
  bytes += unconsumed;
  const auto it = connections_.find(id);
  Connection* connection = it->second.release();  // It deletes itself once handed over.
  forget_kept_copy(*connection);
  connections_.erase(it);
  release_below_capacity();  // Should the successor die, this reactor accepts again up to the cap.
  pass_(connection->release_to_successor(std::move(bytes)));
  ++metrics_.counters.handed_over;
  report_if_all_passed();
}

}  // namespace handoff::reactor
