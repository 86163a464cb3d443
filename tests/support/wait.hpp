#pragma once

// Test support: waiting for a state instead of sleeping for a time (as Redis's wait_for_condition does).

#include <chrono>
#include <functional>

namespace handoff::testing {

// Asks condition every few milliseconds until it holds (true) or timeout passes (false). The condition is
// asked once more at the deadline, so a state reached just in time still counts.
bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

}  // namespace handoff::testing
