// The pool's part of --preload (reactor/handler_pool.hpp): which template a new handler is forked from, and
// the life of the templates themselves.

#include <signal.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "reactor/child_command.hpp"
#include "reactor/handler_pool.hpp"
#include "reactor/log.hpp"

namespace handoff::reactor {

HandlerTemplate* HandlerPool::template_for(bool for_reload) {
  HandlerTemplate* newest = nullptr;
  HandlerTemplate* newest_ready = nullptr;
  for (const auto& candidate : templates_) {
    if (candidate->exited() || candidate->ending()) continue;
    newest = candidate.get();
    if (candidate->ready()) newest_ready = candidate.get();
  }
  if (for_reload) return newest;  // reload() has just started it.
  if (newest_ready != nullptr) return newest_ready;
  return newest != nullptr ? newest : start_template();
}

HandlerTemplate* HandlerPool::start_template() {
  auto started = make_loop_owned<HandlerTemplate>(loop_, config_, batches_,
                                                  static_cast<HandlerTemplate::Events&>(*this));
  if (started->spawn(config_.handler_command, environment_, state_page_.descriptor())) return nullptr;
  log_at(LogLevel::kInfo, "template %d started: it loads '%s' once, and handlers are forked from it",
         started->pid(), command_text(config_.handler_command).c_str());
  templates_.push_back(std::move(started));
  return templates_.back().get();
}

void HandlerPool::on_template_ready(HandlerTemplate&) {
  end_old_templates(false);
}

void HandlerPool::end_old_templates(bool all) {
  const HandlerTemplate* kept = nullptr;
  if (!all) {
    for (auto it = templates_.rbegin(); it != templates_.rend() && kept == nullptr; ++it) {
      if ((*it)->ready() && !(*it)->ending() && !(*it)->exited()) kept = it->get();
    }
    if (kept == nullptr) return;
  }
  // Those newer than the one kept are still loading (a reload's): they stay.
  for (const auto& old : templates_) {
    if (old.get() == kept) break;
    if (!old->exited()) old->end();
  }
}

void HandlerPool::on_template_exited(HandlerTemplate& handler_template, int64_t exit_status,
                                     int term_signal) {
  const std::string how = how_it_ended(exit_status, term_signal);
  const bool expected = handler_template.ending() && handler_template.failure().empty();
  if (expected || phase_ != Phase::kServing) {
    log_at(LogLevel::kInfo, "template %d %s: its handlers are gone", handler_template.pid(), how.c_str());
  } else if (!handler_template.ready()) {
    log_at(LogLevel::kError, "template %d %s before it was ready (its log above says why)",
           handler_template.pid(), how.c_str());
  } else {
    log_at(LogLevel::kWarn, "template %d %s; the handlers it forked serve on", handler_template.pid(),
           how.c_str());
  }
  const bool restart = handler_template.ready() && !expected && phase_ == Phase::kServing;
  std::erase_if(templates_,
                [&handler_template](const auto& owned) { return owned.get() == &handler_template; });
  // A template that loaded once and then died is started again at once, so that the next replacement is
  // forked, not loaded; one that never loaded is started again only when a handler needs it (with the
  // handlers' backoff).
  const bool another = std::any_of(templates_.begin(), templates_.end(),
                                   [](const auto& other) { return !other->exited() && !other->ending(); });
  if (restart && !another) (void)start_template();
  finish_if_empty();
}

}  // namespace handoff::reactor
