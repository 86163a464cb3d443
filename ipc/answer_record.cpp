#include "ipc/answer_record.hpp"

#include <atomic>
#include <utility>

namespace handoff::ipc {
namespace {

template <typename T>
void store(T& word, T value) {
  std::atomic_ref<T>(word).store(value, std::memory_order_relaxed);
}

template <typename T>
T load(T& word) {
  return std::atomic_ref<T>(word).load(std::memory_order_relaxed);
}

}  // namespace

std::error_code AnswerRecord::create(AnswerRecord& out) {
  AnswerRecord record;
  if (auto error = MappedPage::create("handoff-answer-record", MappedPage::Others::kMayWrite, record.page_)) {
    return error;
  }
  store(record.layout()->version, kAnswerRecordVersion);
  out = std::move(record);
  return {};
}

std::error_code AnswerRecord::map(UniqueFd fd, AnswerRecord& out) {
  AnswerRecord record;
  if (auto error = MappedPage::map(std::move(fd), true, record.page_)) return error;
  if (load(record.layout()->version) != kAnswerRecordVersion) {
    return std::make_error_code(std::errc::protocol_not_supported);
  }
  out = std::move(record);
  return {};
}

AnswerRecordLayout* AnswerRecord::layout() const {
  return static_cast<AnswerRecordLayout*>(page_.data());
}

uint64_t& AnswerRecord::offer_slot(unsigned slot) const {
  return layout()->offered[slot % kOfferSlots];
}

void AnswerRecord::begin(uint64_t connection_id) {
  if (!valid()) return;
  store(layout()->answer_end, uint64_t{0});
  store(layout()->lingering, uint32_t{0});
  store(layout()->connection_id, connection_id);
}

void AnswerRecord::set_lingering(bool lingering) {
  if (valid()) store(layout()->lingering, uint32_t{lingering});
}

bool AnswerRecord::lingering(uint64_t connection_id) const {
  return valid() && load(layout()->connection_id) == connection_id && load(layout()->lingering) == 1;
}

void AnswerRecord::tell_client_left(uint64_t connection_id) {
  if (valid()) store(layout()->client_left, connection_id);
}

bool AnswerRecord::client_left(uint64_t connection_id) const {
  return valid() && connection_id != 0 && load(layout()->client_left) == connection_id;
}

void AnswerRecord::note(uint64_t answer_end, uint32_t status, uint32_t flags) {
  if (!valid()) return;
  store(layout()->status, status);
  store(layout()->flags, flags);
  store(layout()->answer_end, answer_end);
}

void AnswerRecord::offer(unsigned slot, uint64_t word) {
  if (valid()) std::atomic_ref<uint64_t>(offer_slot(slot)).store(word, std::memory_order_release);
}

unsigned AnswerRecord::free_offer_slot(unsigned slots) const {
  if (!valid()) return 0;
  for (unsigned slot = 0; slot < slots && slot < kOfferSlots; ++slot) {
    const uint64_t word = std::atomic_ref<uint64_t>(offer_slot(slot)).load(std::memory_order_acquire);
    if (word == 0 || (word & kOfferTaken) != 0) return slot;
  }
  return 0;  // Not reached: the reactor offers no more than slots - 1 at once.
}

bool AnswerRecord::withdraw(unsigned slot, uint64_t word) {
  uint64_t expected = word;
  return valid() && std::atomic_ref<uint64_t>(offer_slot(slot)).compare_exchange_strong(expected, 0);
}

bool AnswerRecord::take(unsigned slot, uint64_t word, uint64_t connection_id) {
  if (!valid()) return true;  // A reactor that gives no record withdraws nothing.
  uint64_t expected = word;
  if (!std::atomic_ref<uint64_t>(offer_slot(slot)).compare_exchange_strong(expected, word | kOfferTaken)) {
    return false;
  }
  begin(connection_id);
  return true;
}

std::optional<NotedAnswer> AnswerRecord::last_noted(uint64_t connection_id) const {
  if (!valid() || load(layout()->connection_id) != connection_id) return std::nullopt;
  const uint64_t end = load(layout()->answer_end);
  if (end == 0) return std::nullopt;
  return NotedAnswer{.answer_end = end, .status = load(layout()->status), .flags = load(layout()->flags)};
}

}  // namespace handoff::ipc
