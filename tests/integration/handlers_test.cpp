// Integration tests of handlers written by users, through the handler libraries (docs/handlers.md): the C++
// and Python examples behind the real reactor, over both protocols, with exceptions, in parallel, with what
// HTTP gives them (query parameters, percent-decoded path arguments), with their own arguments and no
// descriptor of the reactor's; and what the libraries refuse to write for their user: a content type that
// would split an HTTP response in two, a line answer of several lines. Raw bytes on a socket.

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/client.hpp"
#include "tests/support/handler_scripts.hpp"
#include "tests/support/reactor_process.hpp"
#include "tests/support/temporary_folder.hpp"
#include "tests/support/wait.hpp"

namespace handoff::testing {
namespace {

using namespace std::string_literals;

// The handler under test in each language: the C++ example binary, and the Python example through python3.
std::vector<std::string> commands_of(const char* binary_variable, const std::string& script) {
  return {environment(binary_variable), "python3 " + environment("HANDOFF_EXAMPLES_SOURCE") + "/" + script};
}

std::string language(const ::testing::TestParamInfo<std::string>& info) {
  return info.index == 0 ? "Cpp" : "Python";
}

size_t occurrences(const std::string& text, const std::string& what) {
  size_t count = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++count;
  return count;
}

// --- Users' handlers: the examples in both languages ---

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

// --expose-errors: a developer sees the exception's text in the answer (docs/handlers.md; without it the
// client gets "internal error", tests/integration/web_api_test.cpp).
TEST_P(Wordcount, AnExceptionInUserCodeIsAnErrorReplyAndTheHandlerLivesOn) {
  ReactorProcess reactor({"--handlers", "1", "--handler-cmd", GetParam(), "--expose-errors"});
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
      counts[i] = client.read_line();
      pids[i] = client.read_line();
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

INSTANTIATE_TEST_SUITE_P(Languages, Wordcount,
                         ::testing::ValuesIn(commands_of("HANDOFF_WORDCOUNT", "wordcount.py")), language);

// The C++ and the Python example count alike, whatever the case of the words or their letters.
TEST(BothLanguages, WordcountGivesTheSameAnswers) {
  ReactorProcess cpp(
      {"--handlers", "1", "--handler-cmd", commands_of("HANDOFF_WORDCOUNT", "wordcount.py")[0]});
  ReactorProcess python(
      {"--handlers", "1", "--handler-cmd", commands_of("HANDOFF_WORDCOUNT", "wordcount.py")[1]});
  for (const char* line : {"wordcount Z z Y y y x", "wordcount a1 a1 B2 b2 c3", "wordcount ÄÖ ab ab"}) {
    EXPECT_EQ(ask(cpp.host(), cpp.port(), line), ask(python.host(), python.port(), line)) << line;
  }
}

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

INSTANTIATE_TEST_SUITE_P(Languages, Greet, ::testing::ValuesIn(commands_of("HANDOFF_GREET", "greet.py")),
                         language);

// --- What the libraries give a handler ---

TEST(HandlerLibraries, TheCppHandlerKeepsItsOwnArguments) {
  ReactorProcess reactor(
      {"--handlers", "1", "--handler-cmd", environment("HANDOFF_WORDCOUNT") + " --config x"});
  EXPECT_EQ(ask(reactor.host(), reactor.port(), "wordcount to be or not to be"), "be=2 to=2 not=1 or=1");
}

TEST(HandlerLibraries, ProgramsAPythonHandlerStartsInheritNoDescriptorOfTheReactor) {
  TemporaryFolder folder;
  const std::string command = python_handler(
      folder, "fds.py", "import subprocess\n",
      python_command("fds", {"listing = subprocess.run(['ls', '/proc/self/fd'], close_fds=False,",
                             "                         capture_output=True, text=True).stdout",
                             "return Reply.text(' '.join(sorted(listing.split(), key=int)))"}));
  ReactorProcess reactor({"--handlers", "1", "--handler-cmd", command});
  EXPECT_EQ(ask(reactor.host(), reactor.port(), "fds"), "0 1 2 3");  // 3: the directory ls reads.
}

// --- What the libraries refuse to write ---

// The bytes example answers the N bytes of GET /bytes/N with the content type ?type= names.
class ResponseSplitting : public ::testing::TestWithParam<std::string> {};

// A handler that takes its content type from the request must not write it into the head verbatim: this type
// would give the client a Set-Cookie and then a second response of its own on the keep-alive connection. CR,
// LF and NUL in anything the library writes into a head are refused: the client gets a 500, and the handler
// says why on stderr, once.
TEST_P(ResponseSplitting, AContentTypeFromTheRequestWritesNoHeaderAndNoResponseOfItsOwn) {
  ReactorProcess reactor({"--handlers", "1", "--handler-cmd", GetParam()});
  Client client(reactor.host(), reactor.port());
  ASSERT_TRUE(client.send(
      "GET /bytes/5?type=text/html%0d%0aSet-Cookie:%20session=attacker%0d%0aContent-Length:%200%0d%0a%0d%0a"
      "HTTP/1.1%20200%20OK HTTP/1.1\r\nHost: a\r\n\r\n"
      "GET /bytes/3 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"));
  std::string written;
  ASSERT_TRUE(client.wait_closed(10s, &written));
  EXPECT_EQ(written.find("Set-Cookie"), std::string::npos) << written;
  // Two requests, two responses: the refused one, then the next one's.
  EXPECT_EQ(occurrences(written, "HTTP/1.1 "), 2u) << written;
  EXPECT_TRUE(written.starts_with("HTTP/1.1 500 Internal Server Error\r\n")) << written;
  EXPECT_TRUE(written.ends_with("\r\n\r\nabc")) << written;
  ASSERT_TRUE(reactor.wait_for_log("a content type holding CR, LF or NUL", 5s)) << reactor.stderr_text();
  EXPECT_EQ(occurrences(reactor.stderr_text(), "a content type holding CR, LF or NUL"), 1u)
      << reactor.stderr_text();
}

TEST_P(ResponseSplitting, ALoneLineFeedCarriageReturnOrNulInTheTypeIsRefusedToo) {
  ReactorProcess reactor({"--handlers", "1", "--handler-cmd", GetParam()});
  Client client(reactor.host(), reactor.port());
  for (const char* type : {"text/plain%0aX-Injected:%201", "text/plain%0dX-Injected:%201", "text/plain%00"}) {
    ASSERT_TRUE(client.send("GET /bytes/5?type=" + std::string(type) + " HTTP/1.1\r\nHost: a\r\n\r\n"));
    const HttpResponse response = read_response(client);
    EXPECT_EQ(response.status, 500) << type;
    EXPECT_EQ(response.headers.find("X-Injected"), std::string::npos) << response.headers;
  }
  // A type without them goes out as given, on the same connection.
  ASSERT_TRUE(client.send("GET /bytes/5?type=text/x-letters;%20a=b HTTP/1.1\r\nHost: a\r\n\r\n"));
  const HttpResponse response = read_response(client);
  EXPECT_EQ(response.status, 200);
  EXPECT_TRUE(response.has_header("Content-Type: text/x-letters; a=b")) << response.headers;
  EXPECT_EQ(response.body, "abcde");
}

INSTANTIATE_TEST_SUITE_P(Languages, ResponseSplitting,
                         ::testing::ValuesIn(commands_of("HANDOFF_BYTES", "bytes.py")), language);

class LineAnswers : public ::testing::TestWithParam<std::string> {};

// The greet example echoes the words of its line, and a word may hold a CR or a NUL (only LF ends a line):
// the answer held them as sent, and a client that reads CR as a line end took "ERR fake answer" for the
// answer to its next request. An answer is one line whatever it holds: CR, LF and NUL become spaces.
TEST_P(LineAnswers, ACarriageReturnOrNulInAnAnswerIsASpace) {
  ReactorProcess reactor({"--handlers", "1", "--handler-cmd", GetParam()});
  Client client(reactor.host(), reactor.port());
  ASSERT_TRUE(client.send("greet Ada\rERR fake answer\ngreet Bob\0Eve\ngreet Cy\n"s));
  EXPECT_EQ(client.read_line(), "hello Ada ERR fake answer");
  EXPECT_EQ(client.read_line(), "hello Bob Eve");
  EXPECT_EQ(client.read_line(), "hello Cy");
}

INSTANTIATE_TEST_SUITE_P(Languages, LineAnswers,
                         ::testing::ValuesIn(commands_of("HANDOFF_GREET", "greet.py")), language);

// An error or an exception whose text holds a line break must stay one answer line: as several, a client that
// pipelines would take "fake answer" for the answer to its next request. The C++ library's answers are
// checked over a socket in tests/unit/handler_test.cpp; this is the Python one's, through the reactor.
TEST(LineAnswers, AnErrorOrAnExceptionWithALineBreakIsOneAnswerLineInPython) {
  TemporaryFolder folder;
  const std::string command =
      python_handler(folder, "breaks.py", "",
                     python_command("raise", {"raise ValueError('no such record\\nfake answer')"}) +
                         python_command("refuse", {"return Reply.error('no\\r\\nfake answer\\x00.\\n')"}) +
                         python_command("lines", {"return Reply.text('one\\ntwo\\r\\n')"}) +
                         python_command("ping", {"return Reply.text('pong')"}));
  ReactorProcess reactor({"--handlers", "1", "--handler-cmd", command, "--expose-errors"});
  Client client(reactor.host(), reactor.port());
  ASSERT_TRUE(client.send("raise\nping\nrefuse\nping\nlines\nping\n"));
  EXPECT_EQ(client.read_line(), "ERR internal error: no such record fake answer");
  EXPECT_EQ(client.read_line(), "pong");
  EXPECT_EQ(client.read_line(), "ERR no  fake answer .");
  EXPECT_EQ(client.read_line(), "pong");
  EXPECT_EQ(client.read_line(), "one two");
  EXPECT_EQ(client.read_line(), "pong");
}

}  // namespace
}  // namespace handoff::testing
