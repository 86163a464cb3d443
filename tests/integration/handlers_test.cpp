// Integration tests of handlers written by users: the C++ and Python wordcount and greet examples behind the
// real reactor, over both protocols, with exceptions, in parallel, and with what HTTP gives them (query
// parameters, percent-decoded path arguments).

#include <gtest/gtest.h>
#include <set>
#include <thread>

#include "tests/support/client.hpp"
#include "tests/support/reactor_process.hpp"
#include "tests/support/temporary_folder.hpp"
#include "tests/support/wait.hpp"

namespace handoff::testing {
namespace {

// The handler commands under test: the C++ example binary, and the Python example through python3.
std::vector<std::string> handler_commands() {
  return {environment("HANDOFF_WORDCOUNT"),
          "python3 " + environment("HANDOFF_EXAMPLES_SOURCE") + "/wordcount.py"};
}

class Wordcount : public ::testing::TestWithParam<std::string> {};

TEST_P(Wordcount, CountsWordsOnALineAndInAPostedBody) {
  ReactorProcess reactor({"--handlers", "2", "--handler-cmd", GetParam()});
  EXPECT_EQ(ask(reactor.host(), reactor.port(), "wordcount to be or not to be"), "be=2 to=2 not=1 or=1");

  Client client(reactor.host(), reactor.port());
  const std::string text = "It was the best of times, it was the worst of times; it was the age of wisdom.";
  client.send("POST /wordcount HTTP/1.1\r\nHost: a\r\nContent-Length: " + std::to_string(text.size()) +
              "\r\n\r\n" + text);
  const HttpResponse response = read_response(client);
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "it=3 of=3 the=3 was=3 times=2 age=1 best=1 wisdom=1 worst=1\n");
  // Chunked, on the same kept-alive connection.
  client.send(
      "POST /wordcount HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4\r\na b \r\n3\r\nb "
      "c\r\n0\r\n\r\n");
  EXPECT_EQ(read_response(client).body, "b=2 a=1 c=1\n");
  client.send("GET /nothing HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(read_response(client).status, 404);
}

TEST_P(Wordcount, AnExceptionInUserCodeIsAnErrorReplyAndTheHandlerLivesOn) {
  ReactorProcess reactor({"--handlers", "1", "--handler-cmd", GetParam()});
  Client client(reactor.host(), reactor.port());
  client.send("pid\nwordcount\npid\n");
  const std::string before = client.read_line();
  EXPECT_EQ(client.read_line(), "ERR internal error: no words to count");
  EXPECT_EQ(client.read_line(), before);  // The same process: it did not die.

  Client http(reactor.host(), reactor.port());
  http.send("POST /wordcount HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n...");
  const HttpResponse response = read_response(http);
  EXPECT_EQ(response.status, 500);
  EXPECT_EQ(response.body, "internal error: no words to count\n");
}

TEST_P(Wordcount, ConcurrentRequestsRunInParallelOnDifferentHandlers) {
  ReactorProcess reactor({"--handlers", "2", "--handler-cmd", GetParam()});
  // Both handlers are ready once two different ones have answered (idle handlers take turns).
  std::set<std::string> ready;
  ASSERT_TRUE(wait_until(
      [&] {
        ready.insert(ask(reactor.host(), reactor.port(), "pid"));
        return ready.size() == 2;
      },
      10s));
  // A long line (read whole by the reactor, then counted by the handler) keeps each handler busy for a while;
  // the pid after it, pipelined, says which handler did the work.
  std::string words;
  for (int i = 0; i < 60000; ++i) words += " w" + std::to_string(i % 1000);
  std::string pids[2], counts[2];
  std::thread clients[2];
  for (int i = 0; i < 2; ++i) {
    clients[i] = std::thread([&, i] {
      Client client(reactor.host(), reactor.port());
      client.send("wordcount" + words + "\npid\n");
      counts[i] = client.read_line(60s);
      pids[i] = client.read_line(60s);
    });
  }
  for (std::thread& client : clients) client.join();
  for (const std::string& count : counts) EXPECT_TRUE(count.starts_with("w0=60 w1=60 ")) << count;
  EXPECT_NE(pids[0], pids[1]);
  const std::vector<pid_t> handlers = reactor.handler_pids();
  for (const std::string& pid : pids) {
    EXPECT_NE(std::find(handlers.begin(), handlers.end(), std::stoi(pid)), handlers.end()) << pid;
  }
}

TEST_P(Wordcount, TheSameAnswersInBothLanguages) {
  ReactorProcess cpp({"--handlers", "1", "--handler-cmd", handler_commands()[0]});
  ReactorProcess python({"--handlers", "1", "--handler-cmd", handler_commands()[1]});
  for (const char* line : {"wordcount Z z Y y y x", "wordcount a1 a1 B2 b2 c3", "wordcount ÄÖ ab ab"}) {
    EXPECT_EQ(ask(cpp.host(), cpp.port(), line), ask(python.host(), python.port(), line)) << line;
  }
}

INSTANTIATE_TEST_SUITE_P(Languages, Wordcount, ::testing::ValuesIn(handler_commands()), [](const auto& info) {
  return info.index == 0 ? std::string("Cpp") : std::string("Python");
});

class Greet : public ::testing::TestWithParam<std::string> {};

// Handlers saw too little of HTTP: no query string, "%20" kept literal, an empty argument for a trailing
// slash.
TEST_P(Greet, ReadsQueryParametersAndPercentDecodedArguments) {
  ReactorProcess reactor({"--handlers", "1", "--handler-cmd", GetParam()});
  EXPECT_EQ(ask(reactor.host(), reactor.port(), "greet Ada"), "hello Ada");
  Client client(reactor.host(), reactor.port());
  for (const auto& [target, answer] : std::vector<std::pair<std::string, std::string>>{
           {"/greet?name=Ada%20L.", "hello Ada L.\n"},
           {"/greet?x=1&name=Grace+Hopper", "hello Grace Hopper\n"},
           {"/greet/Ada%20B/", "hello Ada B\n"},
           {"/greet", "hello world\n"},
           {"http://example.com/greet?name=Alan", "hello Alan\n"}}) {
    ASSERT_TRUE(client.send("GET " + target + " HTTP/1.1\r\nHost: a\r\n\r\n"));
    const HttpResponse response = read_response(client);
    EXPECT_EQ(response.status, 200) << target;
    EXPECT_EQ(response.body, answer) << target;
    EXPECT_TRUE(response.has_header("Server: handoff")) << target;
    EXPECT_NE(response.headers.find("Date: "), std::string::npos) << target;
  }
}

INSTANTIATE_TEST_SUITE_P(Languages, Greet,
                         ::testing::Values(environment("HANDOFF_GREET"),
                                           "python3 " + environment("HANDOFF_EXAMPLES_SOURCE") + "/greet.py"),
                         [](const auto& info) {
                           return info.index == 0 ? std::string("Cpp") : std::string("Python");
                         });

}  // namespace
}  // namespace handoff::testing
