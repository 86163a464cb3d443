// Integration tests of what an adversarial run against the built server found (issue "What an attacker and a
// chaos run still find"), each written the way the run met it: a client that reads its answers slowly, work
// whose client has gone, the admin port asked for a huge pool or reached out of descriptors.

#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <atomic>
#include <thread>

#include "tests/support/client.hpp"
#include "tests/support/reactor_process.hpp"
#include "tests/support/temporary_folder.hpp"
#include "tests/support/wait.hpp"

namespace handoff::testing {
namespace {

// A Python handler with an answer far larger than any socket buffer, and ping.
std::string python_big_answer_handler(const TemporaryFolder& folder) {
  return "python3 " + folder.file("big.py",
                                  "from handoff_handler import Handler, Reply\n"
                                  "handler = Handler()\n"
                                  "@handler.command('big')\n"
                                  "def big(request):\n"
                                  "    return Reply.text('x' * (16 << 20))\n"
                                  "@handler.command('ping')\n"
                                  "def ping(request):\n"
                                  "    return Reply.text('pong')\n"
                                  "handler.run()\n");
}

// Two clients that pipelined requests and read their answers slowly kept both handlers busy for ~9 s, and
// another client waited as long: a handler blocked writing to a client that does not read is pinned as by a
// slow upload. Now an answer that the client has not taken within --write-timeout is given up, the
// connection closed and counted, and the handler serves on.
TEST(SlowReaders, AClientThatReadsItsAnswerSlowlyHoldsAHandlerNoLongerThanTheWriteTimeout) {
  TemporaryFolder folder;
  ReactorProcess reactor(
      {"--handlers", "1", "--write-timeout", "1s", "--handler-cmd", python_big_answer_handler(folder)});
  Client slow(reactor.host(), reactor.port());
  ASSERT_TRUE(slow.send("big\n"));
  std::atomic<bool> reading = true, stop = false;
  std::thread reader([&] {
    // 4 KiB every 50 ms (the client's pace, not a wait for a state), 20 s at most.
    for (int i = 0; i < 400 && !stop && slow.read_bytes(4096, 2s).size() == 4096; ++i) {
      std::this_thread::sleep_for(50ms);
    }
    reading = false;
  });

  EXPECT_TRUE(wait_until([&] { return reactor.stat("counters.errors.write_timeout") == 1; }, 15s))
      << reactor.stats();
  EXPECT_TRUE(reading) << "the handler gave up only once the client stopped reading";
  EXPECT_EQ(ask(reactor.host(), reactor.port(), "ping"), "pong");
  stop = true;
  reader.join();
}

// POST /pool?size=1024 blocked the event loop ~6 s while it forked 1,022 processes: no client and no admin
// request was served meanwhile. Handlers of a resize start a few per loop turn now, so the admin port answers
// while the pool grows; and --max-handlers caps the size asked for.
TEST(AdminPort, ALargeResizeDoesNotStopTheLoopAndItsSizeIsCapped) {
  ReactorProcess reactor({"--handlers", "1", "--max-handlers", "40"});
  ASSERT_TRUE(reactor.wait_for_handlers(1, 10s));
  const HttpResponse too_large = reactor.admin("POST", "/pool?size=41");
  EXPECT_EQ(too_large.status, 400);
  EXPECT_NE(too_large.body.find("from 1 to 40 (--max-handlers)"), std::string::npos) << too_large.body;
  EXPECT_EQ(reactor.stat("pool.target"), 1);

  ASSERT_EQ(reactor.admin("POST", "/pool?size=40").status, 200);
  const int64_t started =
      reactor.stat("pool.idle") + reactor.stat("pool.busy") + reactor.stat("pool.starting");
  EXPECT_LT(started, 40) << "the admin port answered only once every handler had been started";
  EXPECT_TRUE(reactor.wait_for_handlers(40, 60s)) << reactor.stats();
  EXPECT_EQ(ask(reactor.host(), reactor.port(), "ping"), "pong");
}

}  // namespace
}  // namespace handoff::testing
