// --log-format json keeps the reactor's whole stderr JSON, handlers' output included (issue 32, point 7):
// what a handler or a template writes on its stdout or stderr becomes records of the reactor's shape with the
// writer's pid and "source", a Python traceback (chained ones too) one record at level error, invalid UTF-8
// valid JSON, and a handler's last words before it is killed are all there, before the line of its exit.
// Before, a handler wrote its lines straight to the reactor's stderr, and `jq` stopped at the first one.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/client.hpp"
#include "tests/support/handler_scripts.hpp"
#include "tests/support/reactor_process.hpp"
#include "tests/support/stopped_process.hpp"
#include "tests/support/temporary_folder.hpp"
#include "tests/support/wait.hpp"

namespace handoff::testing {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;

// Every whole line the reactor wrote to stderr that is JSON, parsed (nlohmann's parser refuses a string that
// is not UTF-8); the lines that are not go to not_json.
std::vector<Json> records(const ReactorProcess& reactor, std::vector<std::string>* not_json = nullptr) {
  std::vector<Json> parsed;
  std::istringstream lines(reactor.stderr_text());
  for (std::string line; std::getline(lines, line);) {
    try {
      parsed.push_back(Json::parse(line));
    } catch (const Json::exception&) {
      if (not_json != nullptr) not_json->push_back(line);
    }
  }
  return parsed;
}

// What jq needs: every line so far is JSON.
void expect_only_json(const ReactorProcess& reactor) {
  std::vector<std::string> not_json;
  records(reactor, &not_json);
  for (const std::string& line : not_json) ADD_FAILURE() << "not a JSON line: " << line;
}

std::string message_of(const Json& record) {
  return record.contains("message") && record["message"].is_string() ? record["message"].get<std::string>()
                                                                     : "";
}

// The index of the first record whose message holds text (and that matches, when given); none after timeout.
std::optional<size_t> wait_for_record(const ReactorProcess& reactor, const std::string& text,
                                      const std::function<bool(const Json&)>& matches = {}) {
  std::optional<size_t> found;
  wait_until(
      [&] {
        const std::vector<Json> all = records(reactor);
        for (size_t i = 0; i < all.size(); ++i) {
          if (message_of(all[i]).find(text) != std::string::npos && (!matches || matches(all[i]))) {
            found = i;
            return true;
          }
        }
        return false;
      },
      20s);
  return found;
}

Json record_at(const ReactorProcess& reactor, size_t index) {
  return records(reactor).at(index);
}

int pid_of(const Json& record) {
  return record.contains("pid") ? record["pid"].get<int>() : 0;
}

// The pid in a reactor record that says "template PID started".
int template_pid(const ReactorProcess& reactor) {
  const std::optional<size_t> started = wait_for_record(reactor, "started: it loads");
  if (!started) return 0;
  return std::stoi(message_of(record_at(reactor, *started)).substr(std::string("template ").size()));
}

// A Python handler that writes to its stdout and stderr on command. "crash" prints a traceback and a line
// with no newline, then kills itself at once.
std::string talking_handler(const TemporaryFolder& folder) {
  return python_handler(
      folder, "talking.py",
      "import os, signal, sys, traceback\n"
      "print('importing the app', flush=True)\n",
      python_command("pid", {"return Reply.text(str(os.getpid()))"}) +
          python_command("say", {"sys.stderr.write('said on stderr\\n')", "sys.stderr.flush()",
                                 "print('printed on stdout', flush=True)", "return Reply.text('said')"}) +
          python_command("bytes", {"sys.stderr.buffer.write(b'not utf-8: \\xff\\xfe end\\n')",
                                   "sys.stderr.flush()", "return Reply.text('written')"}) +
          python_command("chained", {"try:", "    {}['missing']", "except KeyError as error:",
                                     "    raise ValueError('boom') from error"}) +
          python_command("crash", {"try:", "    raise RuntimeError('dying words')", "except RuntimeError:",
                                   "    traceback.print_exc()", "sys.stderr.write('held without a newline')",
                                   "sys.stderr.flush()", "os.kill(os.getpid(), signal.SIGKILL)"}));
}

TEST(JsonLogs, PythonHandlerOutputBecomesRecordsWithItsPid) {
  TemporaryFolder folder;
  ReactorProcess reactor(
      {"--log-format", "json", "--handlers", "1", "--handler-cmd", talking_handler(folder)});
  ASSERT_TRUE(wait_until([&] { return reactor.idle_handlers() == 1; }, 30s));
  const int handler = std::stoi(ask(reactor.host(), reactor.port(), "pid"));
  const size_t baseline = reactor.quiet_descriptors();

  const auto imported = wait_for_record(reactor, "importing the app");
  ASSERT_TRUE(imported);
  const Json import_record = record_at(reactor, *imported);
  EXPECT_EQ(pid_of(import_record), handler);
  EXPECT_EQ(import_record["source"], "handler");
  EXPECT_EQ(import_record["level"], "info");
  EXPECT_EQ(message_of(import_record), "importing the app");
  EXPECT_TRUE(import_record.contains("time"));

  EXPECT_EQ(ask(reactor.host(), reactor.port(), "say"), "said");
  const auto said = wait_for_record(reactor, "said on stderr");
  const auto printed = wait_for_record(reactor, "printed on stdout");
  ASSERT_TRUE(said && printed);
  EXPECT_LT(*said, *printed);  // One pipe for both streams keeps their order.
  EXPECT_EQ(message_of(record_at(reactor, *said)), "said on stderr");

  EXPECT_EQ(ask(reactor.host(), reactor.port(), "bytes"), "written");
  const auto invalid = wait_for_record(reactor, "not utf-8");
  ASSERT_TRUE(invalid);
  EXPECT_EQ(message_of(record_at(reactor, *invalid)), "not utf-8: \xef\xbf\xbd\xef\xbf\xbd end");

  // The library's line, and both tracebacks of the chain, in one record.
  (void)ask(reactor.host(), reactor.port(), "chained");
  const auto chained = wait_for_record(reactor, "raised ValueError");
  ASSERT_TRUE(chained);
  const Json traceback = record_at(reactor, *chained);
  const std::string text = message_of(traceback);
  EXPECT_EQ(traceback["level"], "error");
  EXPECT_EQ(pid_of(traceback), handler);
  EXPECT_TRUE(text.starts_with("handler[" + std::to_string(handler) + "]: line 'chained': raised")) << text;
  EXPECT_NE(text.find("Traceback (most recent call last):"), std::string::npos) << text;
  EXPECT_NE(text.find("KeyError: 'missing'"), std::string::npos) << text;
  EXPECT_NE(text.find("The above exception was the direct cause of the following exception:"),
            std::string::npos)
      << text;
  EXPECT_TRUE(text.ends_with("ValueError: boom")) << text;

  // Killed right after it wrote: its traceback and its unended line are read to the end at its exit, and
  // logged before the reactor's line of that exit.
  Client client(reactor.host(), reactor.port());
  client.send("crash\n");
  (void)client.read_line();
  const auto exit_line =
      wait_for_record(reactor, "handler " + std::to_string(handler) + " was killed by signal 9");
  ASSERT_TRUE(exit_line);
  const auto dying = wait_for_record(reactor, "RuntimeError: dying words");
  const auto held = wait_for_record(reactor, "held without a newline");
  ASSERT_TRUE(dying && held);
  EXPECT_LT(*dying, *exit_line);
  EXPECT_LT(*held, *exit_line);
  const Json dying_record = record_at(reactor, *dying);
  EXPECT_TRUE(message_of(dying_record).starts_with("Traceback (most recent call last):"));
  EXPECT_EQ(dying_record["level"], "error");
  EXPECT_EQ(pid_of(dying_record), handler);
  EXPECT_EQ(pid_of(record_at(reactor, *held)), handler);

  // Its replacement has a pipe of its own, and the dead one's is closed.
  ASSERT_TRUE(wait_until([&] { return reactor.idle_handlers() == 1; }, 30s));
  EXPECT_EQ(reactor.quiet_descriptors(), baseline);
  expect_only_json(reactor);
}

// What a process holds: 'Z' for one that died and was not reaped yet (proc(5)); '?' when it is gone.
char process_state(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  std::getline(stat, text);
  const size_t paren = text.rfind(')');
  return paren != std::string::npos && text.size() > paren + 2 ? text[paren + 2] : '?';
}

// A handler that wrote more than the reactor reads in a turn and died while the reactor was held still: all
// it wrote is in its pipe, and is read to the end at its exit, not only what one read takes. (Its pipe is
// made 1 MiB large, so that it writes it all without waiting for the reactor.)
TEST(JsonLogs, AllOfWhatAHandlerWroteBeforeItDiedIsLogged) {
  TemporaryFolder folder;
  const std::string gate = folder.path("gate");
  const std::string waiting = folder.path("waiting");
  const std::string command = python_handler(
      folder, "flood.py", "import fcntl, os, signal, sys, time, traceback\n",
      python_command("pid", {"return Reply.text(str(os.getpid()))"}) +
          python_command("flood",
                         {"open('" + waiting + "', 'w').close()",
                          "while not os.path.exists('" + gate + "'):", "    time.sleep(0.01)",
                          "fcntl.fcntl(2, getattr(fcntl, 'F_SETPIPE_SZ', 1031), 1 << 20)",
                          "for i in range(2000):", "    sys.stderr.write('line %d %s\\n' % (i, 'x' * 100))",
                          "try:", "    raise RuntimeError('dying words')", "except RuntimeError:",
                          "    traceback.print_exc()", "sys.stderr.write('held without a newline')",
                          "sys.stderr.flush()", "os.kill(os.getpid(), signal.SIGKILL)"}));
  ReactorProcess reactor({"--log-format", "json", "--handlers", "1", "--handler-cmd", command});
  ASSERT_TRUE(wait_until([&] { return reactor.idle_handlers() == 1; }, 30s));
  const int handler = std::stoi(ask(reactor.host(), reactor.port(), "pid"));
  Client client(reactor.host(), reactor.port());
  client.send("flood\n");
  ASSERT_TRUE(wait_until([&] { return std::ifstream(waiting).good(); }, 20s));
  {
    StoppedProcess held(reactor.pid());
    ASSERT_TRUE(held.stopped());
    std::ofstream(gate).close();
    // Dead, and not reaped: its parent, the reactor, is stopped.
    ASSERT_TRUE(wait_until([&] { return process_state(handler) == 'Z'; }, 20s));
  }
  const auto exit_line =
      wait_for_record(reactor, "handler " + std::to_string(handler) + " was killed by signal 9");
  ASSERT_TRUE(exit_line);
  const std::vector<Json> all = records(reactor);
  size_t flood_lines = 0;
  std::optional<size_t> dying, held_line;
  for (size_t i = 0; i < all.size(); ++i) {
    const std::string text = message_of(all[i]);
    if (text.starts_with("line ") && pid_of(all[i]) == handler) ++flood_lines;
    if (text.find("RuntimeError: dying words") != std::string::npos) dying = i;
    if (text == "held without a newline") held_line = i;
  }
  EXPECT_EQ(flood_lines, 2000u);
  ASSERT_TRUE(dying && held_line);
  EXPECT_LT(*dying, *exit_line);
  EXPECT_LT(*held_line, *exit_line);
  expect_only_json(reactor);
}

// A C++ handler forked from a C++ template: the template's own lines say "source":"template" and its pid, a
// forked handler's its own pid, not the template's (each gets a pipe of its own with its fork).
TEST(JsonLogs, ForkedCppHandlersHaveTheirOwnPid) {
  TemporaryFolder folder;
  const std::string command = folder.file(
      "wordcount.sh",
      "#!/bin/sh\necho 'the template loads' >&2\nexec '" + environment("HANDOFF_WORDCOUNT") + "'\n", true);
  ReactorProcess reactor({"--log-format", "json", "--handlers", "2", "--preload", "--handler-cmd", command});
  ASSERT_TRUE(wait_until([&] { return reactor.idle_handlers() == 2; }, 30s));
  const int from = template_pid(reactor);
  ASSERT_NE(from, 0);
  const auto loads = wait_for_record(reactor, "the template loads");
  ASSERT_TRUE(loads);
  EXPECT_EQ(pid_of(record_at(reactor, *loads)), from);
  EXPECT_EQ(record_at(reactor, *loads)["source"], "template");

  Client client(reactor.host(), reactor.port());
  client.send("pid\nwordcount\n");
  const int handler = std::stoi(client.read_line());
  (void)client.read_line();
  EXPECT_NE(handler, from);
  const auto threw = wait_for_record(reactor, "threw: no words to count");
  ASSERT_TRUE(threw);
  const Json record = record_at(reactor, *threw);
  EXPECT_EQ(pid_of(record), handler);
  EXPECT_EQ(record["source"], "handler");
  EXPECT_EQ(message_of(record),
            "handler[" + std::to_string(handler) + "]: line 'wordcount': threw: no words to count");
  expect_only_json(reactor);
}

// The same with the Python library's template: what the app prints as it is imported, once, is the
// template's; a traceback in a forked handler is one record with the handler's pid.
TEST(JsonLogs, ForkedPythonHandlersHaveTheirOwnPid) {
  TemporaryFolder folder;
  ReactorProcess reactor(
      {"--log-format", "json", "--handlers", "2", "--preload", "--handler-cmd", talking_handler(folder)});
  ASSERT_TRUE(wait_until([&] { return reactor.idle_handlers() == 2; }, 30s));
  const int from = template_pid(reactor);
  const auto imported = wait_for_record(reactor, "importing the app");
  ASSERT_TRUE(imported);
  EXPECT_EQ(pid_of(record_at(reactor, *imported)), from);
  EXPECT_EQ(record_at(reactor, *imported)["source"], "template");

  Client client(reactor.host(), reactor.port());
  client.send("pid\nchained\n");
  const int handler = std::stoi(client.read_line());
  (void)client.read_line();
  EXPECT_NE(handler, from);
  const auto chained = wait_for_record(reactor, "raised ValueError");
  ASSERT_TRUE(chained);
  const Json traceback = record_at(reactor, *chained);
  EXPECT_EQ(pid_of(traceback), handler);
  EXPECT_EQ(traceback["source"], "handler");
  EXPECT_EQ(traceback["level"], "error");
  EXPECT_TRUE(message_of(traceback).ends_with("ValueError: boom"));
  expect_only_json(reactor);
}

// In text format (the default) nothing changes: a handler writes its lines to the reactor's stderr as they
// are.
TEST(TextLogs, HandlersWriteToTheReactorsStderrAsBefore) {
  ReactorProcess reactor({"--handlers", "1", "--handler-cmd", environment("HANDOFF_WORDCOUNT")});
  EXPECT_NE(ask(reactor.host(), reactor.port(), "wordcount"), "");
  EXPECT_TRUE(reactor.wait_for_log("]: line 'wordcount': threw: no words to count\n", 20s));
  EXPECT_EQ(reactor.stderr_text().find("\"source\""), std::string::npos);
}

}  // namespace
}  // namespace handoff::testing
