// Unit tests of what the reactor and the handler library share about HTTP: the strict request parser, the
// percent-decoding of targets, and the Date of every response.

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "http/percent_decode.hpp"
#include "http/request_parser.hpp"
#include "http/response.hpp"

namespace handoff::http {
namespace {

using State = RequestParser::State;

TEST(RequestParser, ReadsOneRequestAtATimeWithItsFieldsAndBody) {
  RequestParser parser({});
  const std::string first =
      "POST /wordcount?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nX-A: b \r\n\r\nhello";
  const std::string next = "GET /ping HTTP/1.1\r\nHost: a\r\n\r\n";
  EXPECT_EQ(parser.feed(first + next), first.size());  // Stops where the request ends.
  ASSERT_EQ(parser.state(), State::kComplete);
  EXPECT_EQ(parser.head().method, "POST");
  EXPECT_EQ(parser.head().target, "/wordcount?x=1");
  EXPECT_EQ(parser.body(), "hello");
  ASSERT_EQ(parser.head().headers.size(), 3u);
  EXPECT_EQ(parser.head().headers[2].name, "X-A");
  EXPECT_EQ(parser.head().headers[2].value, "b");  // Without its trailing whitespace.
  EXPECT_TRUE(parser.head().keep_alive);
  parser.reset();
  EXPECT_EQ(parser.feed(next), next.size());
  EXPECT_EQ(parser.state(), State::kComplete);
  EXPECT_EQ(parser.head().method, "GET");
}

TEST(RequestParser, ByteByByteIsTheSameAsAtOnce) {
  const std::string request =
      "POST /ping HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nT: "
      "v\r\n\r\n";
  RequestParser parser({});
  for (char c : request) parser.feed(std::string_view(&c, 1));
  EXPECT_EQ(parser.state(), State::kComplete) << parser.refusal_reason();
  EXPECT_EQ(parser.body(), "hello");
}

TEST(RequestParser, RefusesWhatRfc9112RefusesWithItsStatus) {
  const std::vector<std::pair<std::string, int>> cases = {
      {"GET /ping HTTP/1.1\r\nHost: a\r\n\rZGET /pid HTTP/1.1\r\nHost: a\r\n\r\n", 400},  // CR without LF.
      {"GET /ping HTTP/1.1\nHost: a\n\n", 400},                                           // Bare LF.
      {"GET /ping HTTP/1.1\r\nHost : a\r\n\r\n", 400},               // Space before colon.
      {"GET /ping HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400},  // obs-fold.
      {"GET  /ping HTTP/1.1\r\nHost: a\r\n\r\n", 400},               // Two spaces.
      {"GET /ping#x HTTP/1.1\r\nHost: a\r\n\r\n", 400},              // A fragment.
      {"GET /ping HTTP/1.1\r\n\r\n", 400},                           // No Host.
      {"GET /ping HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},     // Two.
      {"GET /ping HTTP/1.1\r\nHost: a b\r\n\r\n", 400},              // Invalid.
      {"GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"POST /ping HTTP/1.1\r\nHost: a\r\nContent-Length: 1_0\r\n\r\n", 400},
      {"POST /ping HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", 400},
      {"POST /ping HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
      {"POST /ping HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
      {"POST /ping HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400},
      {"POST /ping HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n", 400},
      {"POST /ping HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;=b\r\nhello\r\n0\r\n\r\n", 400},
      {"BLARGH /ping HTTP/1.1\r\nHost: a\r\n\r\n", 501},  // A token, but no method.
      {"G(T /ping HTTP/1.1\r\nHost: a\r\n\r\n", 400},     // Not even a token.
      {"GET /ping HTTP/1.2\r\nHost: a\r\n\r\n", 505},
      {"GET /ping HTTP/1.1 \r\nHost: a\r\n\r\n", 400},
      {"GET /" + std::string(9000, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n", 414},
      {"GET /ping HTTP/1.1\r\nHost: a\r\nX: " + std::string(70000, 'a') + "\r\n\r\n", 431},
      {"POST /ping HTTP/1.1\r\nHost: a\r\nContent-Length: 3000000\r\n\r\n", 413},
  };
  for (const auto& [request, status] : cases) {
    RequestParser parser({});
    parser.feed(request);
    EXPECT_EQ(parser.state(), State::kRefused) << request;
    EXPECT_EQ(parser.refusal_status(), status) << request << " -> " << parser.refusal_reason();
  }
}

TEST(RequestParser, AcceptsWhatIsValid) {
  for (const std::string& request : {
           std::string("\r\n\r\nGET /ping HTTP/1.1\r\nHost: a\r\n\r\n"),  // Empty lines first (section 2.2).
           std::string("GET http://a/ping?x HTTP/1.1\r\nHost: a\r\n\r\n"),
           std::string("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"),
           std::string("GET /ping HTTP/1.0\r\n\r\n"),  // HTTP/1.0 needs no Host.
           std::string("GET /ping HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"),
           std::string("GET /ping HTTP/1.1\r\nHost:\r\n\r\n"),  // Empty: no authority.
           std::string("POST /ping HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"),
       }) {
    RequestParser parser({});
    parser.feed(request);
    EXPECT_EQ(parser.state(), State::kComplete) << request << " -> " << parser.refusal_reason();
  }
}

TEST(RequestParser, AnInputThatEndsEarlyIsRefused) {
  RequestParser parser({});
  parser.feed("POST /ping HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhel");
  EXPECT_EQ(parser.state(), State::kBody);
  parser.finish();
  EXPECT_EQ(parser.state(), State::kRefused);
  EXPECT_EQ(parser.refusal_status(), 400);
}

TEST(RequestParser, WithoutFieldsItOnlyChecksAndMeasures) {
  RequestParser parser({.max_body_bytes = 4}, /*keep_fields=*/false);
  parser.feed("POST /ping HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
  EXPECT_TRUE(parser.head_complete());
  EXPECT_TRUE(parser.head().expect_continue);
  EXPECT_TRUE(parser.head().body_follows);
  EXPECT_TRUE(parser.head().headers.empty());
  parser.feed("abc");
  EXPECT_EQ(parser.state(), State::kComplete);
  EXPECT_TRUE(parser.body().empty());
}

TEST(PercentDecode, DecodesEscapesAndOptionallyPluses) {
  EXPECT_EQ(percent_decode("a%20b%2Fc"), "a b/c");
  EXPECT_EQ(percent_decode("a+b"), "a+b");
  EXPECT_EQ(percent_decode("a+b", true), "a b");
  EXPECT_EQ(percent_decode("%zz"), std::nullopt);
  EXPECT_EQ(percent_decode("%2"), std::nullopt);
}

TEST(Response, CarriesServerAndDate) {
  const std::string response = serialize({.status = 201, .body = "made\n"});
  EXPECT_TRUE(response.starts_with("HTTP/1.1 201 Created\r\nServer: handoff\r\nDate: ")) << response;
  const std::string date(date_now());
  EXPECT_EQ(date.size(), 29u) << date;  // "Tue, 01 Dec 2026 18:30:00 GMT"
  EXPECT_TRUE(date.ends_with(" GMT")) << date;
}

}  // namespace
}  // namespace handoff::http
