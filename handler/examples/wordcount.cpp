// A handler that does real work on a request body: the ten most frequent words of a text.
//   curl --data-binary @book.txt http://127.0.0.1:8888/wordcount   ->  the=4120 and=3190 ...
//   wordcount to be or not to be                                   ->  be=2 to=2 not=1 or=1
// Words are runs of ASCII letters and digits, lower-cased; ties go in alphabetical order. handler/examples/
// wordcount.py answers the same in Python.

#include <unistd.h>
#include <algorithm>
#include <cctype>
#include <handoff/handler.hpp>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

constexpr size_t kTopWords = 10;

std::string top_words(std::string_view text) {
  std::unordered_map<std::string, size_t> counts;
  std::string word;
  for (size_t i = 0; i <= text.size(); ++i) {
    const unsigned char c = i < text.size() ? text[i] : ' ';
    if (c < 0x80 && std::isalnum(c)) {
      word += static_cast<char>(std::tolower(c));
    } else if (!word.empty()) {
      ++counts[word];
      word.clear();
    }
  }
  if (counts.empty()) throw std::invalid_argument("no words to count");
  std::vector<std::pair<std::string, size_t>> ranked(counts.begin(), counts.end());
  const size_t shown = std::min(kTopWords, ranked.size());
  std::partial_sort(ranked.begin(), ranked.begin() + shown, ranked.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  std::string answer;
  for (size_t i = 0; i < shown; ++i) {
    answer += (i ? " " : "") + ranked[i].first + "=" + std::to_string(ranked[i].second);
  }
  return answer;
}

}  // namespace

int main(int argc, char** argv) {
  handoff::Handler handler;
  handler.command("wordcount", [](const handoff::Request& request) {
    // Over HTTP the text is the body; on a line, the words after the command.
    std::string text(request.body);
    for (std::string_view word : request.arguments) (text += ' ') += word;
    return handoff::Reply::text(top_words(text));
  });
  handler.command("pid",
                  [](const handoff::Request&) { return handoff::Reply::text(std::to_string(getpid())); });
  return handler.run(argc, argv);
}
