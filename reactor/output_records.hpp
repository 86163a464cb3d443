#pragma once

// Internal to the reactor. OutputRecords: the bytes a child process (a handler, a template) writes on its
// stdout and stderr, cut into log records for --log-format json (reactor/handler_output.hpp reads them). It
// knows nothing of pipes or time: it takes bytes as they come and hands out each record once it is complete.
//
// The rules (docs/operations.md, "Handler output"):
// - A line ends at "\n" (a "\r" before it is dropped). A line not ended yet is held until its "\n" comes, or
//   until finish(): a line written in pieces (C's unbuffered stderr writes each fprintf apart) is one line.
// - A record is one line and the lines that continue it. A line continues the record before it when it is
//   indented (begins with a space or a tab: a traceback's frames, a stack trace, a multi-line message), when
//   it is blank, or when it is "Traceback (most recent call last):" (the traceback follows the line that
//   announces it, as logging.exception and the handler library write it). Within a Python traceback, the
//   first line after the frames that is not indented is its exception line, and continues it too; after it,
//   the sentences that chain a second traceback to the first ("During handling of the above exception,
//   another exception occurred:", "The above exception was the direct cause of the following exception:")
//   and that traceback do as well. So a whole traceback, chained ones included, is one record.
// - A record's trailing blank lines are dropped, and so is a blank line that no record precedes.
// - A record holds at most kMaxRecordBytes of text. One that would grow larger is handed out as it is,
//   marked split, and the line that did not fit begins the next; a line longer than that is cut into pieces
//   of kMaxRecordBytes (at a UTF-8 character's boundary), each but the last marked split.
//
// A complete line may still be continued by the next, so the last record stays pending until a line that
// does not continue it comes, or end_pending() (the reader's quiet timer) or finish() says nothing will.

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace handoff::reactor {

class OutputRecords {
 public:
  static constexpr size_t kMaxRecordBytes = 64 * 1024;

  struct Record {
    std::string_view text;  // Lines joined by "\n", with no "\n" at the end.
    bool traceback;         // It holds a Python traceback (or a piece of one).
    bool split;             // Cut at kMaxRecordBytes: the next record of the same process goes on with it.
  };
  using Write = std::function<void(const Record& record)>;

  // write is called once for every record, in order, as soon as it is complete.
  explicit OutputRecords(Write write) : write_(std::move(write)) {}

  // Takes the next bytes of the stream, any number, cut anywhere.
  void add(std::string_view bytes);
  // Nothing continues the pending record: it is written now (a line not ended yet stays held).
  void end_pending() { write_pending(false); }
  // No byte follows: the pending record and a line not ended are written.
  void finish();

  // Whether a record waits for a line that may continue it.
  bool pending() const { return !message_.empty(); }
  // Whether that record is a Python traceback that has not come to its exception line yet: more of it is
  // on the way for sure.
  bool awaits_exception_line() const { return traceback_ == Traceback::kFrames; }

 private:
  enum class Traceback {
    kNone,    // The pending record holds none.
    kFrames,  // After "Traceback (most recent call last):", before the exception line.
    kEnded,   // After an exception line: a chained traceback may follow.
  };

  void take_line(std::string line);
  bool continues(std::string_view line) const;
  void follow_traceback(std::string_view line);
  // Writes the front of line in pieces of kMaxRecordBytes while it is longer than that (the pending record
  // first), leaving the rest in line.
  void write_pieces(std::string& line);
  void write_pending(bool split);

  Write write_;
  std::string partial_;  // The bytes after the last "\n".
  std::string message_;  // The pending record; empty when none is.
  Traceback traceback_ = Traceback::kNone;
  bool holds_traceback_ = false;  // The pending record has had a traceback's first line.
};

}  // namespace handoff::reactor
