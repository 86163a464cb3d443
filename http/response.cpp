#include "http/response.hpp"

#include <cstdio>
#include <ctime>

namespace handoff::http {

std::string_view reason_phrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 207: return "Multi-Status";
    case 208: return "Already Reported";
    case 226: return "IM Used";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 305: return "Use Proxy";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 423: return "Locked";
    case 424: return "Failed Dependency";
    case 425: return "Too Early";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 451: return "Unavailable For Legal Reasons";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 506: return "Variant Also Negotiates";
    case 507: return "Insufficient Storage";
    case 508: return "Loop Detected";
    case 511: return "Network Authentication Required";
    default: return "Unknown";
  }
}

std::string_view date_now() {
  // Formatted once a second at most: every response carries it.
  thread_local time_t formatted_at = -1;
  thread_local char text[32];
  const time_t now = std::time(nullptr);
  if (now != formatted_at) {
    // Fixed English names, not strftime's: those follow LC_TIME, which a handler's code may set.
    static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                              "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    tm utc;
    gmtime_r(&now, &utc);
    std::snprintf(text, sizeof(text), "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[utc.tm_wday], utc.tm_mday,
                  kMonths[utc.tm_mon], utc.tm_year + 1900, utc.tm_hour, utc.tm_min, utc.tm_sec);
    formatted_at = now;
  }
  return text;
}

std::string serialize(const Response& response, bool head_request) {
  std::string out;
  out.reserve(160 + response.extra_headers.size() + (head_request ? 0 : response.body.size()));
  out += "HTTP/1.1 ";
  out += std::to_string(response.status);
  out += ' ';
  out += reason_phrase(response.status);
  out += "\r\n";
  if (!response.server.empty()) {
    out += "Server: ";
    out += response.server;
    out += "\r\n";
  }
  out += "Date: ";
  out += date_now();
  out += "\r\nContent-Type: ";
  out += response.content_type;
  // RFC 9110 sections 6.4.1 and 8.6: 204 and 304 have no content, so neither a body nor a Content-Length of
  // it goes out; a body sent with them would be read as the start of the next response.
  const bool no_content = response.status == 204 || response.status == 304;
  if (!no_content) {
    out += "\r\nContent-Length: ";
    out += std::to_string(response.body.size());
  }
  out += "\r\n";
  out += response.extra_headers;
  switch (response.connection) {
    case ConnectionHeader::kNone: break;
    case ConnectionHeader::kClose: out += "Connection: close\r\n"; break;
    case ConnectionHeader::kKeepAlive: out += "Connection: keep-alive\r\n"; break;
  }
  out += "\r\n";
  if (!head_request && !no_content) out += response.body;
  return out;
}

}  // namespace handoff::http
