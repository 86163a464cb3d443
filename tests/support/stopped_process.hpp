#pragma once

// Test support: a process held still (SIGSTOP) until the guard resumes it (SIGCONT), at the latest when the
// guard goes. A handler stopped in the middle of its request is stuck for as long as the test wants, on a
// quiet machine and on a loaded one alike: whatever is answered meanwhile was not its work, and whatever it
// holds stays unbegun. So a test states an order ("the request ahead was served while its handler was stuck")
// instead of racing a wall-clock deadline against CPU work.

#include <signal.h>
#include <sys/types.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/wait.hpp"

namespace handoff::testing {

class StoppedProcess {
 public:
  // Stops pid and waits until the kernel says it is stopped ('T' in /proc/PID/stat): from then on it runs no
  // instruction of its own. stopped() is false when that did not happen within 5 s (or pid is gone).
  explicit StoppedProcess(pid_t pid) : pid_(pid) {
    if (::kill(pid_, SIGSTOP) != 0) return;
    signalled_ = true;  // Resumed at the latest by the destructor, whatever the wait below finds.
    reached_ = wait_until([this] { return state() == 'T'; }, std::chrono::seconds(5));
  }
  ~StoppedProcess() { resume(); }
  StoppedProcess(const StoppedProcess&) = delete;
  StoppedProcess& operator=(const StoppedProcess&) = delete;

  // Whether it is held still now: it was stopped, and is not resumed yet.
  bool stopped() const { return signalled_ && reached_; }
  // The process's, also once it is resumed.
  pid_t pid() const { return pid_; }

  // Lets it run again (once; later calls do nothing).
  void resume() {
    if (signalled_) ::kill(pid_, SIGCONT);
    signalled_ = false;
  }

 private:
  char state() const {
    std::ifstream stat("/proc/" + std::to_string(pid_) + "/stat");
    std::string text;
    std::getline(stat, text);
    const size_t paren = text.rfind(')');
    return paren != std::string::npos && text.size() > paren + 2 ? text[paren + 2] : '?';
  }

  pid_t pid_;
  bool signalled_ = false;  // SIGSTOP sent, and no SIGCONT since.
  bool reached_ = false;    // The kernel said it was stopped.
};

// Stops each of pids; all_stopped says whether every one is held.
using StoppedProcesses = std::vector<std::unique_ptr<StoppedProcess>>;
inline StoppedProcesses stop_each(const std::vector<pid_t>& pids) {
  StoppedProcesses stopped;
  for (const pid_t pid : pids) stopped.push_back(std::make_unique<StoppedProcess>(pid));
  return stopped;
}
inline bool all_stopped(const StoppedProcesses& stopped) {
  for (const auto& process : stopped) {
    if (!process->stopped()) return false;
  }
  return true;
}

}  // namespace handoff::testing
