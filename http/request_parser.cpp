#include "http/request_parser.hpp"

#include <strings.h>

// The rules below were written against llhttp 8.1 (http/meson.build stops the build on another version).
static_assert(LLHTTP_VERSION_MAJOR == 8 && LLHTTP_VERSION_MINOR == 1,
              "http/request_parser.cpp was written against llhttp 8.1: review its rules for this version");

#include <algorithm>
#include <cctype>

namespace handoff::http {
namespace {

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

std::string_view trim_trailing_whitespace(std::string_view text) {
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// RFC 9112 section 3.2 and RFC 3986 section 3.2.2: host [ ":" port ], with host a reg-name (unreserved,
// pct-encoded, sub-delims), an IPv4 address or a bracketed IP literal. Empty is allowed (no authority).
bool valid_host(std::string_view host) {
  if (host.starts_with('[')) {
    const size_t close = host.find(']');
    if (close == std::string_view::npos) return false;
    for (const char c : host.substr(1, close - 1)) {
      if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.') return false;
    }
    host.remove_prefix(close + 1);
    if (host.empty()) return true;
    if (host[0] != ':') return false;
    return std::all_of(host.begin() + 1, host.end(), [](char c) { return c >= '0' && c <= '9'; });
  }
  const size_t colon = host.find(':');
  const std::string_view name = host.substr(0, colon);
  const bool name_ok = std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           std::string_view("-._~%!$&'()*+,;=").find(c) != std::string_view::npos;
  });
  if (!name_ok) return false;
  if (colon == std::string_view::npos) return true;
  const std::string_view port = host.substr(colon + 1);
  return std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool is_tchar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// What is wrong with a request line (RFC 9112 section 3): method SP request-target SP HTTP-version, with
// single spaces, a token for the method and "HTTP/" DIGIT "." DIGIT. 0: nothing; 400: malformed; 505: a
// version this server does not speak. A line cut short (the parser stopped in it) is judged as far as it
// goes.
int request_line_status(std::string_view line, bool complete) {
  const size_t method_end = std::min(line.find(' '), line.size());
  const std::string_view method = line.substr(0, method_end);
  if ((method.empty() && complete) || !std::all_of(method.begin(), method.end(), is_tchar)) return 400;
  if (!complete) return 0;
  const size_t target_end = line.find(' ', method_end + 1);
  if (method_end == line.size() || target_end == std::string_view::npos || target_end == method_end + 1) {
    return 400;
  }
  const std::string_view version = line.substr(target_end + 1);
  const auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (version.size() != 8 || !version.starts_with("HTTP/") || !digit(version[5]) || version[6] != '.' ||
      !digit(version[7])) {
    return 400;
  }
  return version == "HTTP/1.1" || version == "HTTP/1.0" ? 0 : 505;
}

// RFC 9112 section 3.2 and RFC 3986 section 3.3: the characters of an origin-form or absolute-form target
// (pchar, "/", "?"), each '%' followed by two hex digits. No fragment ('#'), no backslash, no other byte.
bool valid_target_bytes(std::string_view target) {
  for (size_t i = 0; i < target.size(); ++i) {
    const char c = target[i];
    if (c == '%') {
      if (i + 2 >= target.size() || !std::isxdigit(static_cast<unsigned char>(target[i + 1])) ||
          !std::isxdigit(static_cast<unsigned char>(target[i + 2]))) {
        return false;
      }
      i += 2;
    } else if (!std::isalnum(static_cast<unsigned char>(c)) &&
               std::string_view("-._~!$&'()*+,;=:@/?").find(c) == std::string_view::npos) {
      return false;
    }
  }
  return true;
}

// An absolute-form target names its host, without userinfo (RFC 9110 sections 4.2.1 and 4.2.4).
bool valid_absolute_target(std::string_view target) {
  const size_t scheme_end = target.find("://");
  if (scheme_end == std::string_view::npos || scheme_end == 0) return false;
  const std::string_view rest = target.substr(scheme_end + 3);
  const std::string_view authority = rest.substr(0, rest.find_first_of("/?"));
  return !authority.empty() && authority.find('@') == std::string_view::npos;
}

}  // namespace

std::string_view RequestHead::header(std::string_view name) const {
  for (const HeaderField& field : headers) {
    if (equals_ignoring_case(field.name, name)) return field.value;
  }
  return {};
}

RequestParser::RequestParser(RequestLimits limits, bool keep_fields)
    : limits_(limits), keep_fields_(keep_fields) {
  llhttp_settings_init(&settings_);
  settings_.on_method = [](llhttp_t* p, const char* at, size_t length) {
    RequestParser& parser = self(p);
    parser.head_.method.append(at, length);
    return 0;
  };
  settings_.on_url = [](llhttp_t* p, const char* at, size_t length) {
    return self(p).on_url(std::string_view(at, length));
  };
  settings_.on_header_field = [](llhttp_t* p, const char* at, size_t length) {
    self(p).field_.append(at, length);
    return 0;
  };
  settings_.on_header_value = [](llhttp_t* p, const char* at, size_t length) {
    self(p).value_.append(at, length);
    return 0;
  };
  settings_.on_header_value_complete = [](llhttp_t* p) { return self(p).on_header_value_complete(); };
  settings_.on_headers_complete = [](llhttp_t* p) { return self(p).on_headers_complete(); };
  settings_.on_body = [](llhttp_t* p, const char* at, size_t length) {
    return self(p).on_body(std::string_view(at, length));
  };
  settings_.on_chunk_extension_name = [](llhttp_t* p, const char*, size_t length) {
    if (length > 0) self(p).chunk_extension_named_ = true;  // llhttp reports an empty name too.
    return 0;
  };
  settings_.on_chunk_extension_value = [](llhttp_t* p, const char*, size_t) {
    // RFC 9112 section 7.1.1: chunk-ext-name [ "=" chunk-ext-val ]; llhttp 8.1 takes ";=b".
    return self(p).chunk_extension_named_
               ? 0
               : self(p).refuse(400, "malformed request: a chunk extension without a name");
  };
  settings_.on_chunk_header = [](llhttp_t* p) {
    RequestParser& parser = self(p);
    parser.chunk_extension_named_ = false;
    if (p->content_length != 0) return 0;
    // The last chunk: the trailer section follows, whose bytes feed() checks as it does the head's.
    parser.in_trailers_ = true;
    return static_cast<int>(HPE_PAUSED);
  };
  settings_.on_message_complete = [](llhttp_t* p) {
    self(p).state_ = State::kComplete;
    return static_cast<int>(HPE_PAUSED);  // One request at a time: what follows is the next one's.
  };
  reset();
}

void RequestParser::reset() {
  llhttp_init(&parser_, HTTP_REQUEST, &settings_);
  parser_.data = this;
  state_ = State::kHead;
  consumed_ = 0;
  head_ = RequestHead();
  body_.clear();
  body_bytes_ = head_bytes_ = trailer_bytes_ = 0;
  field_.clear();
  value_.clear();
  request_line_.clear();
  request_line_complete_ = false;
  chunk_extension_named_ = in_trailers_ = trailers_begun_ = false;
  at_line_start_ = false;
  hosts_ = 0;
  host_valid_ = true;
  after_cr_ = false;
  refusal_status_ = 0;
  refusal_reason_.clear();
}

int RequestParser::refuse(int status, std::string reason) {
  state_ = State::kRefused;
  refusal_status_ = status;
  refusal_reason_ = std::move(reason);
  return -1;
}

size_t RequestParser::feed(std::string_view bytes) {
  size_t taken = 0;
  // Runs on after the head's pause even with no byte left: a request without a body is complete there.
  while (state_ == State::kHead || state_ == State::kBody) {
    const std::string_view rest = bytes.substr(taken);
    const State before = state_;
    const llhttp_errno_t error = llhttp_execute(&parser_, rest.data(), rest.size());
    // The parser pauses where the head ends and where the request ends, so that the exact bytes of each are
    // known.
    const size_t parsed =
        error == HPE_PAUSED ? static_cast<size_t>(llhttp_get_error_pos(&parser_) - rest.data()) : rest.size();
    if (before == State::kHead) {
      check_line_ends(rest.substr(0, parsed));
      // A head that ends in a CR and any byte: llhttp 8.1 takes "\r\n\rZ" for its end.
      if (state_ == State::kBody && after_cr_) refuse(400, "malformed request: a CR not followed by LF");
      if (state_ == State::kBody) check_head();
    }
    taken += parsed;
    consumed_ += parsed;
    if (before == State::kHead && consumed_ > limits_.max_head_bytes && state_ != State::kRefused) {
      refuse(431, "request header fields too large");
    }
    if (before == State::kHead && state_ == State::kBody) head_bytes_ = consumed_;
    if (before == State::kBody && state_ != State::kRefused &&
        consumed_ - head_bytes_ > RequestLimits::body_phase_bytes(limits_.max_body_bytes)) {
      refuse(413, "request body too large (with its chunk framing)");
    }
    if (before == State::kBody && trailers_begun_) {
      check_line_ends(rest.substr(0, parsed));
      trailer_bytes_ += parsed;
      if (trailer_bytes_ > limits_.max_head_bytes && state_ != State::kRefused) {
        refuse(431, "request trailer fields too large");
      }
    }
    if (in_trailers_ && !trailers_begun_) {
      trailers_begun_ = true;  // Paused at the last chunk: from here on the bytes are the trailer section.
      at_line_start_ = true;
      after_cr_ = false;
    }
    if (error == HPE_PAUSED && state_ == State::kBody) {
      llhttp_resume(&parser_);
    } else if (error != HPE_OK && error != HPE_PAUSED && state_ != State::kRefused) {
      refuse_as_llhttp_does(error);
    } else if (error == HPE_OK) {
      break;
    }
  }
  return taken;
}

// A request llhttp stopped at: its status by what is wrong with the request line, if anything, else by what
// llhttp found (an unknown method with a well-formed token: 501).
void RequestParser::refuse_as_llhttp_does(llhttp_errno_t error) {
  if (const int status = request_line_status(request_line_, request_line_complete_); status == 505) {
    refuse(505, "only HTTP/1.0 and HTTP/1.1 are supported");
  } else if (status != 0) {
    refuse(400, "malformed request: a malformed request line");
  } else if (error == HPE_INVALID_METHOD) {
    refuse(501, "method not implemented");
  } else {
    refuse(400, std::string("malformed request: ") + llhttp_get_error_reason(&parser_));
  }
}

// The head's bytes, one by one, for what llhttp 8.1 lets through. RFC 9112 section 2.2: a CR must be followed
// by LF, and every line of a head handoff accepts ends in CRLF (the strict choice: a bare LF is refused);
// llhttp ends a head at a CR followed by any byte, which lets "\r\n\rZGET /..." smuggle a second request
// past a proxy that reads the bytes as one. Section 5.2: no obs-fold (a line that begins with SP or HTAB).
// It also keeps the request line (after any empty lines before it) for request_line_status.
void RequestParser::check_line_ends(std::string_view head_bytes) {
  for (const char c : head_bytes) {
    if (state_ == State::kRefused) return;
    if (after_cr_ && c != '\n') {
      refuse(400, "malformed request: a CR not followed by LF");
    } else if (!after_cr_ && c == '\n') {
      refuse(400, "malformed request: a line that ends in LF alone (CRLF is required)");
    } else if (at_line_start_ && request_line_complete_ && (c == ' ' || c == '\t')) {
      refuse(400, "malformed request: obs-fold (a header line that begins with whitespace)");
    }
    if (!request_line_complete_ && c != '\r' && c != '\n') {
      if (request_line_.size() <= limits_.max_target_bytes + 32) request_line_ += c;
    } else if (!request_line_complete_ && !request_line_.empty()) {
      request_line_complete_ = true;
    }
    at_line_start_ = c == '\n';
    after_cr_ = c == '\r';
  }
}

void RequestParser::finish() {
  if (state_ == State::kComplete || state_ == State::kRefused) return;
  if (llhttp_finish(&parser_) != HPE_OK || state_ != State::kComplete) {
    if (state_ != State::kRefused) refuse(400, "incomplete request");
  }
}

int RequestParser::on_url(std::string_view bytes) {
  head_.target.append(bytes);
  if (head_.target.size() > limits_.max_target_bytes) return refuse(414, "request target too long");
  return 0;
}

int RequestParser::on_header_value_complete() {
  const std::string_view value = trim_trailing_whitespace(value_);
  if (in_trailers_) {
    // A trailer field is checked as a field, and then dropped: RFC 9110 section 6.5.1 forbids merging it into
    // the header fields, which a proxy in front may not have vetted (Authorization, X-Forwarded-For).
    const bool bad = field_.empty() || value.find_first_of("\r\n") != std::string_view::npos;
    field_.clear();
    value_.clear();
    return bad ? refuse(400, "malformed request: a malformed trailer field") : 0;
  }
  if (field_.empty()) return refuse(400, "malformed request: a header field without a name");
  if (value.find_first_of("\r\n") != std::string_view::npos) {
    return refuse(400, "malformed request: obs-fold (a header value over two lines)");
  }
  if (equals_ignoring_case(field_, "transfer-encoding") && value.empty()) {
    return refuse(400, "malformed request: an empty Transfer-Encoding");
  }
  if (equals_ignoring_case(field_, "host")) {
    ++hosts_;
    host_valid_ = host_valid_ && valid_host(value);
  } else if (equals_ignoring_case(field_, "expect")) {
    head_.expect_continue = equals_ignoring_case(value, "100-continue");
  }
  if (keep_fields_) head_.headers.push_back({field_, std::string(value)});
  field_.clear();
  value_.clear();
  return 0;
}

int RequestParser::on_headers_complete() {
  head_.version_minor = parser_.http_minor;
  head_.keep_alive = llhttp_should_keep_alive(&parser_) != 0;
  head_.body_follows = (parser_.flags & F_CHUNKED) || parser_.content_length > 0;
  state_ = State::kBody;
  return HPE_PAUSED;  // feed() checks the head, its bytes and its fields (check_head), then resumes.
}

// The rules llhttp leaves to its user, once the head is complete and its bytes are checked.
void RequestParser::check_head() {
  // The request line as a whole: llhttp lets several spaces, and a missing version (HTTP/0.9), through.
  if (const int status = request_line_status(request_line_, true); status == 505) {
    refuse(505, "only HTTP/1.0 and HTTP/1.1 are supported");
  } else if (status != 0) {
    refuse(400, "malformed request: a malformed request line");
  } else if (parser_.http_major != 1 || parser_.http_minor > 1) {
    refuse(505, "only HTTP/1.0 and HTTP/1.1 are supported");
  } else if (head_.target == "*"
                 ? head_.method != "OPTIONS"
                 : !valid_target_bytes(head_.target) ||
                       (!head_.target.starts_with('/') && !valid_absolute_target(head_.target))) {
    refuse(400, "malformed request: an invalid request target (or * with another method than OPTIONS)");
  } else if ((parser_.flags & F_TRANSFER_ENCODING) && parser_.http_minor == 0) {
    refuse(400, "malformed request: Transfer-Encoding in an HTTP/1.0 request");
  } else if (parser_.http_minor == 1 && hosts_ == 0) {
    refuse(400, "malformed request: no Host header");
  } else if (hosts_ > 1) {
    refuse(400, "malformed request: more than one Host header");
  } else if (!host_valid_) {
    refuse(400, "malformed request: invalid Host header");
  } else if ((parser_.flags & F_CONTENT_LENGTH) && parser_.content_length > limits_.max_body_bytes) {
    refuse(413, "request body too large");
  }
}

int RequestParser::on_body(std::string_view bytes) {
  body_bytes_ += bytes.size();
  if (body_bytes_ > limits_.max_body_bytes) return refuse(413, "request body too large");
  if (keep_fields_) body_.append(bytes);  // Else the body is only measured.
  return 0;
}

}  // namespace handoff::http
