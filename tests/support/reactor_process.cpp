#include "tests/support/reactor_process.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "tests/support/client.hpp"
#include "tests/support/wait.hpp"

namespace handoff::testing {
namespace {

using Clock = std::chrono::steady_clock;

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// Waits for pid until deadline; -1 when it is still running then.
int wait_until(pid_t pid, Clock::time_point deadline) {
  for (;;) {
    int status = 0;
    const pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) return decode_status(status);
    if (done < 0) return -1;
    if (Clock::now() >= deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

pid_t parent_of(pid_t pid) {
  const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return -1;
  std::istringstream fields(stat.substr(paren + 2));
  char state;
  pid_t parent = -1;
  fields >> state >> parent;
  // A zombie has exited: it is no longer a live handler.
  return state == 'Z' ? -1 : parent;
}

}  // namespace

void expect_clean_wrk_run(const ProgramResult& result, long at_least) {
  EXPECT_EQ(result.status, 0) << result.err;
  std::smatch requests;
  ASSERT_TRUE(std::regex_search(result.out, requests, std::regex(R"((\d+) requests in)"))) << result.out;
  EXPECT_GT(std::stol(requests[1]), at_least) << result.out;
  EXPECT_EQ(result.out.find("Socket errors"), std::string::npos) << result.out;
  EXPECT_EQ(result.out.find("Non-2xx"), std::string::npos) << result.out;
}

std::string reactor_path() {
  const char* path = std::getenv("HANDOFF_REACTOR");
  return path != nullptr ? path : "build/reactor/handoff";
}

size_t count_descriptors(pid_t pid) {
  DIR* folder = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
  if (folder == nullptr) return 0;
  size_t count = 0;
  while (const dirent* entry = ::readdir(folder)) {
    if (entry->d_name[0] != '.') ++count;
  }
  ::closedir(folder);
  return count;
}

bool use_up_descriptors(const ReactorProcess& reactor, std::vector<Client>& held) {
  for (int i = 0; i < 60; ++i) held.emplace_back(reactor.host(), reactor.port());
  return reactor.wait_for_log("pausing accepts", 5s);
}

std::vector<std::string> reactor_command(std::vector<std::string> arguments) {
  if (::geteuid() == 0) arguments.insert(arguments.begin(), "--allow-root-handlers");
  arguments.insert(arguments.begin(), reactor_path());
  return arguments;
}

ReactorProcess::ReactorProcess(std::vector<std::string> arguments, unsigned max_descriptors) {
  bool has_admin = false, admin_off = false, chooses_user = false;
  size_t listens = 0;
  for (size_t i = 0; i < arguments.size(); ++i) {
    chooses_user = chooses_user || arguments[i] == "--user" || arguments[i] == "--allow-root-handlers";
    if (arguments[i].starts_with("--listen")) ++listens;
    has_admin = has_admin || arguments[i].starts_with("--admin");
    admin_off = admin_off ||
                (arguments[i] == "--admin" && i + 1 < arguments.size() && arguments[i + 1] == "off") ||
                arguments[i] == "--admin=off";
  }
  if (listens == 0) arguments.insert(arguments.begin(), {"--listen", "127.0.0.1:0"});
  listens = std::max<size_t>(listens, 1);
  // Tests that run as root (CI does) run their handlers as root, as an operator would have to say.
  if (::geteuid() == 0 && !chooses_user) arguments.insert(arguments.begin(), "--allow-root-handlers");
  if (!has_admin) arguments.insert(arguments.begin(), {"--admin", "127.0.0.1:0"});
  const size_t lines_expected = listens + (admin_off ? 0 : 1);
  arguments.insert(arguments.begin(), reactor_path());

  char stderr_template[] = "/tmp/handoff-reactor-stderr-XXXXXX";
  const int stderr_fd = ::mkostemp(stderr_template, O_CLOEXEC);
  stderr_path_ = stderr_template;
  int out[2];
  if (stderr_fd < 0 || ::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("cannot make pipes");

  pid_ = ::fork();
  if (pid_ == 0) {
    ::setpgid(0, 0);  // A process group of its own, for signal_group.
    if (max_descriptors != 0) {
      const rlimit files{.rlim_cur = max_descriptors, .rlim_max = max_descriptors};
      ::setrlimit(RLIMIT_NOFILE, &files);
    }
    ::dup2(out[1], STDOUT_FILENO);
    ::dup2(stderr_fd, STDERR_FILENO);
    const int null = ::open("/dev/null", O_RDONLY);
    ::dup2(null, STDIN_FILENO);
    std::vector<char*> argv;
    for (std::string& argument : arguments) argv.push_back(argument.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    std::fprintf(stderr, "exec %s: %s\n", argv[0], std::strerror(errno));
    ::_exit(127);
  }
  ::setpgid(pid_, pid_);  // Also here, so that the group exists before either side goes on.
  group_ = pid_;
  ::close(out[1]);
  ::close(stderr_fd);

  // Read the first lines of stdout: "listening on HOST:PORT", then "admin listening on HOST:PORT".
  std::string line;
  const Clock::time_point deadline = Clock::now() + std::chrono::seconds(20);
  while (static_cast<size_t>(std::count(line.begin(), line.end(), '\n')) < lines_expected &&
         Clock::now() < deadline) {
    pollfd entry{.fd = out[0], .events = POLLIN, .revents = 0};
    if (::poll(&entry, 1, 100) <= 0) continue;
    char chunk[256];
    const ssize_t got = ::read(out[0], chunk, sizeof(chunk));
    if (got <= 0) break;
    line.append(chunk, got);
  }
  ::close(out[0]);
  const std::string prefix = "listening on ";
  std::string admin_line;
  for (size_t at = 0, end; (end = line.find('\n', at)) != std::string::npos; at = end + 1) {
    const std::string one = line.substr(at, end - at);
    if (one.starts_with(prefix)) listening_.push_back(one.substr(prefix.size()));
    if (one.starts_with("admin " + prefix)) admin_line = one;
  }
  line = line.substr(0, line.find('\n'));
  const size_t colon = line.rfind(':');
  if (!line.starts_with(prefix) || colon == std::string::npos) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
    throw std::runtime_error("reactor did not report listening; stdout: '" + line +
                             "' stderr: " + stderr_text());
  }
  host_ = line.substr(prefix.size(), colon - prefix.size());
  if (host_.starts_with("[")) host_ = host_.substr(1, host_.size() - 2);
  port_ = static_cast<uint16_t>(std::stoi(line.substr(colon + 1)));
  if (!admin_off) {
    if (!admin_line.starts_with("admin listening on ")) {
      throw std::runtime_error("reactor did not report its admin port; stdout: '" + line + "\n" + admin_line +
                               "'");
    }
    admin_port_ = static_cast<uint16_t>(std::stoi(admin_line.substr(admin_line.rfind(':') + 1)));
  }
}

ReactorProcess::~ReactorProcess() {
  // Every reactor a test starts must stop cleanly, and neither it nor its handlers may have tripped a
  // sanitizer (in the sanitized build, a leak at exit fails the exit status).
  if (pid_ > 0) {
    // Longer than --shutdown-timeout's default (30 s): a reactor still finishing requests on a loaded machine
    // is let finish, and one that cannot is told by its own exit status (1), not by this wait.
    const int status = signal_and_wait(SIGTERM, std::chrono::seconds(40));
    if (status != 0) {
      // The end of its stderr says why (an abort's message, the last warnings).
      const std::string errors = stderr_text();
      ADD_FAILURE() << "the reactor did not exit cleanly on SIGTERM (status " << status
                    << "); its stderr ends:\n"
                    << errors.substr(errors.size() > 4000 ? errors.size() - 4000 : 0);
    }
  }
  const std::string errors = stderr_text();
  for (const char* finding : {"Sanitizer", "runtime error:"}) {
    if (crash_reports_expected_) break;
    if (errors.find(finding) != std::string::npos)
      ADD_FAILURE() << "sanitizer finding on stderr:\n" << errors;
  }
  if (!stderr_path_.empty()) ::unlink(stderr_path_.c_str());
}

int ReactorProcess::signal_and_wait(int signal_number, std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return -1;
  ::kill(pid_, signal_number);
  int status = wait_until(pid_, Clock::now() + timeout);
  if (status == -1) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  pid_ = -1;
  return status;
}

int ReactorProcess::take_over(std::chrono::milliseconds timeout,
                              const std::function<void(pid_t)>& meanwhile) {
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  ::kill(pid_, SIGUSR2);
  if (meanwhile) meanwhile(pid_);
  const int status = wait_until(pid_, Clock::now() + timeout);
  if (status == -1) return -1;
  // The new reactor may be gone already (a test that stops it too): nothing is followed then.
  const std::string json = [&]() -> std::string {
    try {
      Client client(host_, admin_port_);
      client.send("GET /stats HTTP/1.1\r\nHost: localhost\r\n\r\n");
      return read_response(client).body;
    } catch (const std::runtime_error&) {
      return "";
    }
  }();
  const int64_t successor = stat_in(json, "pid");
  pid_ = successor > 0 ? static_cast<pid_t>(successor) : -1;
  return status;
}

std::vector<pid_t> ReactorProcess::handler_pids() const {
  std::vector<pid_t> children;
  DIR* proc = ::opendir("/proc");
  while (const dirent* entry = ::readdir(proc)) {
    const pid_t pid = std::atoi(entry->d_name);
    if (pid > 0 && parent_of(pid) == pid_) children.push_back(pid);
  }
  ::closedir(proc);
  return children;
}

bool ReactorProcess::wait_for_handlers(size_t count, std::chrono::milliseconds timeout) const {
  return wait_until([&] { return handler_pids().size() == count; }, timeout);
}

void ReactorProcess::signal_group(int signal_number) const {
  if (pid_ > 0) ::kill(-group_, signal_number);
}

HttpResponse ReactorProcess::admin(const std::string& method, const std::string& target) const {
  Client client(host_, admin_port_);
  client.send(method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  return read_response(client, method == "HEAD");
}

std::string ReactorProcess::stats() const {
  if (pid_ <= 0 || admin_port_ == 0) return "";
  try {
    Client client(host_, admin_port_);
    if (!client.send("GET /stats HTTP/1.1\r\nHost: localhost\r\n\r\n")) return "";
    const HttpResponse response = read_response(client);
    return response.status == 200 ? response.body : "";
  } catch (const std::runtime_error&) {
    return "";  // Not accepting any more: the reactor is stopping.
  }
}

namespace {

// Where the value of the key path (see ReactorProcess::stat) begins in json; npos when it is missing.
// /stats names each key once within its object, so finding the keys of the path one after another, each
// after the last, lands on the right value without a JSON parser.
size_t find_value(const std::string& json, const std::string& path) {
  size_t at = 0;
  for (size_t start = 0; start <= path.size();) {
    const size_t dot = std::min(path.find('.', start), path.size());
    at = json.find("\"" + path.substr(start, dot - start) + "\":", at);
    if (at == std::string::npos) return at;
    at += dot - start + 3;
    start = dot + 1;
  }
  return at;
}

}  // namespace

int64_t ReactorProcess::stat(const std::string& path) const {
  return stat_in(stats(), path);
}

int64_t stat_in(const std::string& json, const std::string& path) {
  const size_t at = find_value(json, path);
  if (at == std::string::npos) return -1;
  char* end = nullptr;
  const long long value = std::strtoll(json.c_str() + at, &end, 10);
  return end == json.c_str() + at ? -1 : value;
}

double ReactorProcess::stat_real(const std::string& path) const {
  const std::string json = stats();
  const size_t at = find_value(json, path);
  if (at == std::string::npos) return std::nan("");
  char* end = nullptr;
  const double value = std::strtod(json.c_str() + at, &end);
  return end == json.c_str() + at ? std::nan("") : value;
}

std::string ReactorProcess::reload_state() const {
  const std::string json = stats();
  const std::string key = "\"reload\":{\"state\":\"";
  const size_t at = json.find(key);
  if (at == std::string::npos) return "";
  const size_t start = at + key.size();
  return json.substr(start, json.find('"', start) - start);
}

bool ReactorProcess::wait_for_log(const std::string& text, std::chrono::milliseconds timeout) const {
  return wait_until([&] { return stderr_text().find(text) != std::string::npos; }, timeout);
}

size_t ReactorProcess::open_descriptors() const {
  return count_descriptors(pid_);
}

size_t ReactorProcess::quiet_descriptors() const {
  wait_until([&] { return stat("pool.open_connections") == 0; }, std::chrono::seconds(10));
  size_t count = open_descriptors();
  Clock::time_point unchanged_since = Clock::now();
  wait_until(
      [&] {
        const size_t now = open_descriptors();
        if (now != count) unchanged_since = Clock::now();
        count = now;
        return Clock::now() - unchanged_since >= std::chrono::milliseconds(100);
      },
      std::chrono::seconds(10));
  return count;
}

bool ReactorProcess::wait_for_descriptors(size_t count, std::chrono::milliseconds timeout) const {
  return wait_until([&] { return open_descriptors() == count; }, timeout);
}

std::string ReactorProcess::stderr_text() const {
  return read_file(stderr_path_);
}

ProgramResult run_program(const std::vector<std::string>& argv, const std::string& input,
                          std::chrono::milliseconds timeout) {
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
    throw std::runtime_error("cannot make pipes");
  }
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(in[0], STDIN_FILENO);
    ::dup2(out[1], STDOUT_FILENO);
    ::dup2(err[1], STDERR_FILENO);
    std::vector<std::string> copy = argv;
    std::vector<char*> c_argv;
    for (std::string& argument : copy) c_argv.push_back(argument.data());
    c_argv.push_back(nullptr);
    ::execvp(c_argv[0], c_argv.data());
    std::fprintf(stderr, "exec %s: %s\n", c_argv[0], std::strerror(errno));
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  // The input is small; write it all, then close so that the program sees EOF.
  size_t written = 0;
  while (written < input.size()) {
    const ssize_t n = ::write(in[1], input.data() + written, input.size() - written);
    if (n <= 0) break;
    written += n;
  }
  ::close(in[1]);

  ProgramResult result;
  const Clock::time_point deadline = Clock::now() + timeout;
  pollfd entries[2] = {{.fd = out[0], .events = POLLIN, .revents = 0},
                       {.fd = err[0], .events = POLLIN, .revents = 0}};
  int open_pipes = 2;
  while (open_pipes > 0 && Clock::now() < deadline) {
    if (::poll(entries, 2, 50) <= 0) continue;
    for (pollfd& entry : entries) {
      if (entry.fd < 0 || entry.revents == 0) continue;
      char chunk[4096];
      const ssize_t got = ::read(entry.fd, chunk, sizeof(chunk));
      if (got <= 0) {
        ::close(entry.fd);
        entry.fd = -1;
        --open_pipes;
      } else {
        (&entry == &entries[0] ? result.out : result.err).append(chunk, got);
      }
    }
  }
  for (pollfd& entry : entries) {
    if (entry.fd >= 0) ::close(entry.fd);
  }
  result.status = wait_until(pid, deadline);
  if (result.status == -1) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
  return result;
}

}  // namespace handoff::testing
