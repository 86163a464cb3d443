#pragma once

// Test support: the real reactor binary, started on 127.0.0.1:0 in a child process, and what a test reads
// from the outside (its port, its handlers, its open descriptors, its stderr).

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "tests/support/client.hpp"

namespace handoff::testing {

class ReactorProcess {
 public:
  // Starts the reactor with these arguments (plus --listen 127.0.0.1:0 and --admin 127.0.0.1:0 unless they
  // name those) and waits for its "listening on" lines. max_descriptors, when not 0, is the reactor's
  // RLIMIT_NOFILE, soft and hard (it raises its soft limit to the hard one itself). Throws
  // std::runtime_error, with its stderr, when they do not come.
  explicit ReactorProcess(std::vector<std::string> arguments = {}, unsigned max_descriptors = 0);
  ~ReactorProcess();  // SIGTERM, then SIGKILL if it does not exit in time (40 s).

  ReactorProcess(const ReactorProcess&) = delete;
  ReactorProcess& operator=(const ReactorProcess&) = delete;

  pid_t pid() const { return pid_; }
  uint16_t port() const { return port_; }
  uint16_t admin_port() const { return admin_port_; }  // 0 with --admin off.
  const std::string& host() const { return host_; }
  // Every "listening on" line's address, in order ("127.0.0.1:40123", "unix:/tmp/x.sock"); host() and port()
  // are the first's.
  const std::vector<std::string>& listening() const { return listening_; }

  // The live children of the reactor, from /proc.
  std::vector<pid_t> handler_pids() const;
  // Waits until the reactor has exactly count children; false on timeout.
  bool wait_for_handlers(size_t count, std::chrono::milliseconds timeout) const;
  // The number of descriptors the reactor has open, from /proc/PID/fd.
  size_t open_descriptors() const;
  // The reactor's descriptor count once it is quiet: no client connection open (per /stats), and the count
  // unchanged over 100 ms (so that the admin connection of that query is gone too).
  size_t quiet_descriptors() const;
  // Waits until the reactor has count descriptors open; false on timeout.
  bool wait_for_descriptors(size_t count, std::chrono::milliseconds timeout) const;
  // What the reactor (and its handlers) wrote to stderr so far.
  std::string stderr_text() const;

  // The test makes a handler crash on purpose: in the sanitized build the sanitizer reports that crash, and
  // it is not a finding.
  void expect_crash_reports() { crash_reports_expected_ = true; }

  // Sends signal_number to the reactor's whole process group (the reactor and its handlers), as a terminal's
  // Ctrl-C or systemd's KillMode=control-group does. The reactor is started as the leader of a group of its
  // own, so nothing else is hit.
  void signal_group(int signal_number) const;

  // GET /stats on the admin port: the JSON body, or "" when it cannot be had (admin off, reactor gone).
  std::string stats() const;
  // One request to the admin port on a fresh connection (Host: 127.0.0.1); throws when it cannot connect.
  HttpResponse admin(const std::string& method, const std::string& target) const;
  // One number of /stats, named by its path of keys ("pool.busy", "counters.errors.timeout"); -1 when the
  // stats or the key are missing.
  int64_t stat(const std::string& path) const;
  // The same for a number that need not be whole ("uptime_seconds"); NaN when missing.
  double stat_real(const std::string& path) const;
  int64_t busy_handlers() const { return stat("pool.busy"); }
  int64_t idle_handlers() const { return stat("pool.idle"); }
  int64_t queue_length() const { return stat("pool.queue_length"); }
  int64_t requests_answered() const { return stat("counters.requests"); }
  // The state of the last reload in /stats: "none", "in progress", "done", "abandoned"; "" without stats.
  std::string reload_state() const;
  // Waits until the reactor's stderr holds text; false on timeout.
  bool wait_for_log(const std::string& text, std::chrono::milliseconds timeout) const;

  // Upgrades the reactor in place (SIGUSR2, reactor/takeover.hpp): waits for the old process to exit, then
  // follows the new one, which took over its ports (the admin port too, which must be on). The new reactor is
  // the old one's child; this process makes itself a child subreaper (prctl(2)), so that it is this process's
  // child once the old one exits, and is reaped as the old one would have been. Returns the old process's
  // exit status, or -1 when it did not exit within timeout (nothing is followed then). meanwhile, if given,
  // runs between the signal and the wait, with the old reactor's pid.
  int take_over(std::chrono::milliseconds timeout, const std::function<void(pid_t old)>& meanwhile = {});

  // Sends signal_number and waits for the exit. Returns the exit status, or 128 + signal when killed, or -1
  // when it did not exit within timeout (it is then killed).
  int signal_and_wait(int signal_number, std::chrono::milliseconds timeout);

 private:
  pid_t pid_ = -1;
  pid_t group_ = -1;  // The process group the reactor leads, or its predecessor led (signal_group).
  uint16_t port_ = 0;
  uint16_t admin_port_ = 0;
  std::string host_;
  std::vector<std::string> listening_;
  std::string stderr_path_;
  bool crash_reports_expected_ = false;
};

// Runs a program to completion with input on its stdin; returns its stdout. Kills it after timeout.
struct ProgramResult {
  int status = -1;  // Exit status, 128 + signal, or -1 when it timed out.
  std::string out;
  std::string err;
};
ProgramResult run_program(const std::vector<std::string>& argv, const std::string& input,
                          std::chrono::milliseconds timeout);

// Expects wrk's run (run_program's result) to have exited 0 after more than at_least requests, with no
// socket error (a refused, reset or timed-out connection) and no non-2xx answer: wrk prints those lines
// only when there were some.
void expect_clean_wrk_run(const ProgramResult& result, long at_least);

// Running the reactor out of descriptors: start it with kFewDescriptors (and a --max-connections above that,
// so that it does run out), then use_up_descriptors connects clients into held until the reactor says it
// paused accepting (some clients wait in the backlog); false if it never does within 5 s.
inline constexpr unsigned kFewDescriptors = 48;
bool use_up_descriptors(const ReactorProcess& reactor, std::vector<Client>& held);

// The reactor under test with arguments, as run_program takes it; run as root (CI), with
// --allow-root-handlers, which the reactor then wants.
std::vector<std::string> reactor_command(std::vector<std::string> arguments);

// The path of the reactor under test (HANDOFF_REACTOR, set by meson).
std::string reactor_path();

// Descriptors of a process other than this one, from /proc/PID/fd.
size_t count_descriptors(pid_t pid);

// The whole number at path ("pool.busy") in a /stats document; -1 when it is not there.
int64_t stat_in(const std::string& json, const std::string& path);

}  // namespace handoff::testing
