// OutputRecords (reactor/output_records.hpp): how what a handler writes is cut into log records, by the rules
// docs/operations.md gives, whatever pieces the bytes come in.

#include "reactor/output_records.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace handoff::reactor {
namespace {

struct Written {
  std::string text;
  bool traceback;
  bool split;
};

class OutputRecordsTest : public ::testing::Test {
 protected:
  std::vector<std::string> texts() const {
    std::vector<std::string> all;
    for (const Written& record : written_) all.push_back(record.text);
    return all;
  }

  std::vector<Written> written_;
  OutputRecords records_{[this](const OutputRecords::Record& record) {
    written_.push_back({std::string(record.text), record.traceback, record.split});
  }};
};

// Python's own output for `raise ValueError('boom') from error` inside `except KeyError as error`.
constexpr const char* kChainedTraceback =
    "Traceback (most recent call last):\n"
    "  File \"app.py\", line 2, in run\n"
    "    {}['missing']\n"
    "KeyError: 'missing'\n"
    "\n"
    "The above exception was the direct cause of the following exception:\n"
    "\n"
    "Traceback (most recent call last):\n"
    "  File \"app.py\", line 4, in run\n"
    "    raise ValueError('boom') from error\n"
    "ValueError: boom\n";

TEST_F(OutputRecordsTest, ALineIsARecordOnceTheNextShowsItComplete) {
  records_.add("first li");
  records_.add("ne\r\nsecond\n");
  EXPECT_EQ(texts(), std::vector<std::string>{"first line"});
  EXPECT_TRUE(records_.pending());
  records_.end_pending();
  EXPECT_EQ(texts(), (std::vector<std::string>{"first line", "second"}));
  EXPECT_FALSE(written_[0].traceback || written_[0].split);
}

TEST_F(OutputRecordsTest, IndentedLinesContinueTheRecordBlankOnesAreTrimmed) {
  records_.add("usage:\n  one\n\tTwo\n\n\nnext\n\n");
  records_.finish();
  EXPECT_EQ(texts(), (std::vector<std::string>{"usage:\n  one\n\tTwo", "next"}));
}

TEST_F(OutputRecordsTest, AChainedTracebackAndTheLineThatAnnouncesItAreOneRecord) {
  const std::string written =
      std::string("handler[7]: command 'x': raised ValueError('boom')\n") + kChainedTraceback;
  // One byte at a time: the pieces do not matter.
  for (const char c : written) records_.add(std::string_view(&c, 1));
  records_.add("after it\n");
  records_.finish();
  ASSERT_EQ(written_.size(), 2u);
  EXPECT_EQ(written_[0].text + "\n", written);
  EXPECT_TRUE(written_[0].traceback);
  EXPECT_EQ(written_[1].text, "after it");
  EXPECT_FALSE(written_[1].traceback);
}

TEST_F(OutputRecordsTest, ATracebackWaitsForItsExceptionLine) {
  records_.add("Traceback (most recent call last):\n  File \"a.py\", line 1, in <module>\n");
  EXPECT_TRUE(records_.awaits_exception_line());
  records_.add("RuntimeError: dying\n");
  EXPECT_FALSE(records_.awaits_exception_line());
  EXPECT_TRUE(written_.empty());
  records_.add("an unrelated line\n");
  ASSERT_EQ(written_.size(), 1u);
  EXPECT_TRUE(written_[0].text.ends_with("RuntimeError: dying"));
}

TEST_F(OutputRecordsTest, ALineNotEndedIsHeldUntilItsNewlineOrTheEnd) {
  records_.add("progress: 10%");
  records_.end_pending();
  EXPECT_TRUE(written_.empty());
  records_.add(" 20%\nlast words");
  records_.end_pending();
  records_.finish();
  EXPECT_EQ(texts(), (std::vector<std::string>{"progress: 10% 20%", "last words"}));
}

TEST_F(OutputRecordsTest, ALineLongerThanARecordIsCutAtACharacterBoundary) {
  // "é" is two bytes, and the limit falls in the middle of one.
  std::string line(OutputRecords::kMaxRecordBytes - 1, 'a');
  line += "\xc3\xa9tail";
  records_.add(line);  // Written as it comes, before its newline.
  ASSERT_EQ(written_.size(), 1u);
  EXPECT_TRUE(written_[0].split);
  EXPECT_EQ(written_[0].text, std::string(OutputRecords::kMaxRecordBytes - 1, 'a'));
  records_.add("\n");
  records_.finish();
  ASSERT_EQ(written_.size(), 2u);
  EXPECT_EQ(written_[1].text, "\xc3\xa9tail");
  EXPECT_FALSE(written_[1].split);
}

TEST_F(OutputRecordsTest, ARecordThatWouldGrowTooLargeIsSplitAndGoesOn) {
  records_.add("Traceback (most recent call last):\n");
  const std::string frame = "  " + std::string(1000, 'f') + "\n";
  size_t total = 0;
  while (total <= OutputRecords::kMaxRecordBytes) {
    records_.add(frame);
    total += frame.size();
  }
  records_.add("MemoryError\n");
  records_.finish();
  ASSERT_EQ(written_.size(), 2u);
  EXPECT_TRUE(written_[0].split);
  EXPECT_LE(written_[0].text.size(), OutputRecords::kMaxRecordBytes);
  EXPECT_TRUE(written_[1].traceback);  // Still the traceback: its exception line joined the rest.
  EXPECT_TRUE(written_[1].text.ends_with("\nMemoryError"));
  EXPECT_FALSE(written_[1].split);
}

}  // namespace
}  // namespace handoff::reactor
