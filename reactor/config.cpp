#include "reactor/config.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>

namespace handoff::reactor {
namespace {

bool is_ip_literal(const std::string& host) {
  unsigned char address[sizeof(in6_addr)];
  return inet_pton(AF_INET, host.c_str(), address) == 1 || inet_pton(AF_INET6, host.c_str(), address) == 1;
}

}  // namespace

std::optional<size_t> parse_size(std::string_view text) {
  size_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end == text.data()) return std::nullopt;
  std::string_view suffix(end, text.data() + text.size() - end);
  size_t scale = 1;
  if (suffix == "k" || suffix == "K") {
    scale = size_t{1} << 10;
  } else if (suffix == "m" || suffix == "M") {
    scale = size_t{1} << 20;
  } else if (suffix == "g" || suffix == "G") {
    scale = size_t{1} << 30;
  } else if (!suffix.empty()) {
    return std::nullopt;
  }
  if (value > SIZE_MAX / scale) return std::nullopt;
  return value * scale;
}

std::optional<size_t> parse_count(std::string_view text) {
  if (text.empty() || text.find_first_not_of("0123456789") != std::string_view::npos) return std::nullopt;
  return parse_size(text);
}

std::string ListenAddress::to_string() const {
  if (is_unix()) return "unix:" + path;
  const bool ipv6 = host.find(':') != std::string::npos;
  return (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::optional<ListenAddress> parse_listen_address(std::string_view text) {
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  std::string host(text.substr(0, colon));
  const std::string_view port_text = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    if (host.find(':') == std::string::npos) return std::nullopt;
  } else if (host.find(':') != std::string::npos) {
    return std::nullopt;  // An IPv6 host must be written in brackets.
  }
  if (host == "localhost") host = "127.0.0.1";
  if (!is_ip_literal(host)) return std::nullopt;

  unsigned port = 0;
  const auto [end, error] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || error != std::errc() || end != port_text.data() + port_text.size() ||
      port > 65535) {
    return std::nullopt;
  }
  return ListenAddress{.host = std::move(host), .port = static_cast<uint16_t>(port)};
}

std::optional<ListenAddress> parse_listen_target(std::string_view text, std::string& error) {
  constexpr std::string_view kUnix = "unix:";
  if (!text.starts_with(kUnix)) {
    std::optional<ListenAddress> address = parse_listen_address(text);
    if (!address) error = "is not HOST:PORT with an IP address (e.g. 127.0.0.1:8888, [::1]:0), or unix:PATH";
    return address;
  }
  text.remove_prefix(kUnix.size());
  ListenAddress address;
  constexpr std::string_view kMode = ",mode=";
  if (const size_t at = text.rfind(kMode); at != std::string_view::npos) {
    const std::string_view digits = text.substr(at + kMode.size());
    unsigned mode = 0;
    const auto [end, failed] = std::from_chars(digits.data(), digits.data() + digits.size(), mode, 8);
    if (digits.empty() || failed != std::errc() || end != digits.data() + digits.size() || mode > 0777) {
      error = "has a mode that is not octal permissions from 0 to 0777 (e.g. mode=0660)";
      return std::nullopt;
    }
    address.mode = mode;
    text = text.substr(0, at);
  }
  // sockaddr_un's sun_path holds 108 bytes, its terminating NUL included (unix(7)).
  if (!text.starts_with('/') || text.size() > 107) {
    error = "needs an absolute path of at most 107 bytes after unix:";
    return std::nullopt;
  }
  address.path = std::string(text);
  return address;
}

std::optional<std::vector<std::string>> split_command(std::string_view text) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
    } else if (c == '\'' || c == '"') {
      size_t j = i + 1;
      for (; j < text.size() && text[j] != c; ++j) {
        // Inside double quotes a backslash escapes only \ and " (a shell's $ and ` are not special here).
        if (c == '"' && text[j] == '\\' && j + 1 < text.size() && (text[j + 1] == '\\' || text[j + 1] == '"'))
          ++j;
        word += text[j];
      }
      if (j == text.size()) return std::nullopt;  // Unterminated quote.
      in_word = true;
      i = j;
    } else if (c == '\\' && i + 1 < text.size()) {
      word += text[++i];
      in_word = true;
    } else {
      word += c;
      in_word = true;
    }
  }
  if (in_word) words.push_back(std::move(word));
  return words;
}

std::string command_text(const std::vector<std::string>& words) {
  std::string text;
  for (const std::string& word : words) {
    if (!text.empty()) text += ' ';
    const bool plain = !word.empty() && std::all_of(word.begin(), word.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) ||
             (c != '\0' && std::strchr("_-./:=@%+,", c) != nullptr);
    });
    if (plain) {
      text += word;
      continue;
    }
    // In single quotes every character stands for itself but the quote, which closes, escapes and reopens.
    text += '\'';
    for (const char c : word) text += c == '\'' ? std::string("'\\''") : std::string(1, c);
    text += '\'';
  }
  return text;
}

std::optional<Milliseconds> parse_duration(std::string_view text) {
  uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end == text.data()) return std::nullopt;
  const std::string_view unit(end, text.data() + text.size() - end);
  uint64_t scale;
  if (unit == "ms") {
    scale = 1;
  } else if (unit.empty() || unit == "s") {
    scale = 1000;
  } else if (unit == "m") {
    scale = 60 * 1000;
  } else {
    return std::nullopt;
  }
  if (value > UINT64_MAX / scale / 2) return std::nullopt;
  return Milliseconds(value * scale);
}

std::optional<Microseconds> parse_short_duration(std::string_view text) {
  if (text.ends_with("us")) {
    const std::optional<size_t> count = parse_count(text.substr(0, text.size() - 2));
    if (!count || *count > UINT32_MAX) return std::nullopt;
    return Microseconds(*count);
  }
  const std::optional<Milliseconds> ms = parse_duration(text);
  if (!ms || ms->count() > UINT32_MAX / 1000) return std::nullopt;
  return std::chrono::duration_cast<Microseconds>(*ms);
}

}  // namespace handoff::reactor
