// What a handler answers: the Reply helpers, and Handler's commands, routes and fallback — which function
// a request reaches, and how whatever that function does becomes an answer.

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <string_view>
#include <tuple>

#include "handler/http_reply.hpp"
#include "handoff/handler.hpp"
#include "http/percent_decode.hpp"
#include "ipc/request_record.hpp"
#include "ipc/wire.hpp"

namespace handoff {
namespace {

// Development only (--expose-errors): the client gets the exception's text, which may carry paths, SQL and
// keys.
bool errors_exposed() {
  const char* value = std::getenv("HANDOFF_EXPOSE_ERRORS");
  return value != nullptr && std::string_view(value) == "1";
}

Reply internal_error(std::string_view detail) {
  if (!errors_exposed() || detail.empty()) return Reply::error("internal error", 500);
  return Reply::error("internal error: " + std::string(detail), 500);
}

// The request as a log line names it: "GET /fib/x", or the line.
std::string described(const Request& request) {
  if (request.protocol == Protocol::kHttp) {
    return handler::loggable(std::string(request.method) + " " + std::string(request.target));
  }
  return "line '" + handler::loggable(request.target.empty() ? request.command : request.target) + "'";
}

// The path's segments as sent: "/" gives {""}, "/a/b/" gives {"a", "b", ""}; none for "*" or an authority.
std::vector<std::string_view> raw_segments(std::string_view path) {
  std::vector<std::string_view> segments;
  if (!path.starts_with('/')) return segments;
  for (size_t start = 1;;) {
    const size_t end = std::min(path.find('/', start), path.size());
    segments.push_back(path.substr(start, end - start));
    if (end == path.size()) return segments;
    start = end + 1;
  }
}

constexpr std::array<std::string_view, 7> kMethodOrder = {"GET",   "HEAD",   "POST",   "PUT",
                                                          "PATCH", "DELETE", "OPTIONS"};

// "GET, HEAD, PUT": the methods, each once, in the order of kMethodOrder and then as registered; HEAD with
// GET, which answers it.
std::string allow_value(std::vector<std::string_view> methods) {
  if (std::find(methods.begin(), methods.end(), "GET") != methods.end()) methods.push_back("HEAD");
  std::vector<std::string_view> ordered;
  const auto add = [&](std::string_view method) {
    if (std::find(ordered.begin(), ordered.end(), method) == ordered.end()) ordered.push_back(method);
  };
  for (const std::string_view known : kMethodOrder) {
    if (std::find(methods.begin(), methods.end(), known) != methods.end()) add(known);
  }
  for (const std::string_view method : methods) add(method);
  std::string allow;
  for (const std::string_view method : ordered) (allow += allow.empty() ? "" : ", ") += method;
  return allow;
}

}  // namespace

Reply& Reply::header(std::string name, std::string value) {
  headers.emplace_back(std::move(name), std::move(value));
  return *this;
}

Reply Reply::text(std::string text, int status) {
  if (text.empty() || text.back() != '\n') text += '\n';
  return {.status = status, .body = std::move(text)};
}

Reply Reply::bytes(std::string data, std::string content_type) {
  return {.body = std::move(data), .content_type = std::move(content_type)};
}

Reply Reply::json(std::string json_text, int status) {
  return {.status = status, .body = std::move(json_text), .content_type = "application/json"};
}

Reply Reply::redirect(std::string location, int status) {
  Reply reply{.status = status, .body = "redirected to " + location + "\n"};
  return std::move(reply.header("Location", std::move(location)));
}

Reply Reply::error(std::string reason, int status) {
  return {.status = status, .body = std::move(reason)};
}

uint16_t Handler::number(std::string name, RouteOptions options) {
  table_.push_back({.name = std::move(name), .retryable = options.retryable});
  return table_.size() <= UINT16_MAX ? static_cast<uint16_t>(table_.size()) : 0;
}

std::string Handler::route_table() const {
  std::vector<ipc::RouteEntry> routes;
  routes.reserve(std::min(table_.size(), ipc::kMaxRoutes));
  for (size_t i = 0; i < table_.size() && i < ipc::kMaxRoutes; ++i) {
    routes.push_back(
        {.name = table_[i].name, .flags = table_[i].retryable ? ipc::kRouteRetryable : uint8_t{0}});
  }
  return ipc::route_table_payload(routes);
}

Handler& Handler::command(std::string name, Command function, RouteOptions options) {
  const uint16_t entry = number(name, options);
  commands_.push_back({.name = std::move(name), .function = std::move(function), .number = entry});
  return *this;
}

Handler& Handler::route(std::string method, std::string pattern, Command function, RouteOptions options) {
  // A mistake here is the program's, found at its start: said at once rather than a route that never matches.
  if (!pattern.starts_with('/')) {
    throw std::invalid_argument("route pattern '" + pattern + "': a pattern is a path, starting with '/'");
  }
  if (!handler::is_token(method)) {
    throw std::invalid_argument("route " + pattern + ": '" + method +
                                "' is not a method (a token: GET, PUT, ...)");
  }
  Route route{
      .method = method, .function = std::move(function), .number = number(method + " " + pattern, options)};
  for (const std::string_view segment : raw_segments(pattern)) route.segments.emplace_back(segment);
  routes_.push_back(std::move(route));
  return *this;
}

Handler& Handler::fallback(Command function) {
  fallback_ = std::move(function);
  return *this;
}

bool Handler::has_command(std::string_view name) const {
  for (const NamedCommand& command : commands_) {
    if (command.name == name) return true;
  }
  return false;
}

std::string Handler::command_names() const {
  std::string names;
  for (const NamedCommand& command : commands_) names += (names.empty() ? "" : ", ") + command.name;
  return names;
}

Reply Handler::execute(Request request) const {
  uint16_t route_number = 0;
  return execute(std::move(request), route_number);
}

Reply Handler::execute(Request request, uint16_t& route_number) const {
  route_number = 0;
  if (request.protocol == Protocol::kHttp) {
    // A request made by hand (a test) may give the target alone.
    if (request.path.empty()) std::tie(request.path, request.query) = ipc::split_target(request.target);
    return answer_http(std::move(request), route_number);
  }
  for (const NamedCommand& command : commands_) {
    if (command.name != request.command) continue;
    route_number = command.number;
    return call(command.function, request);
  }
  return Reply::error("unknown command", 404);
}

// Routes first (an exact method, then HEAD on a GET route), then commands (GET /fib/30 is the command fib
// with the argument 30), then the fallback.
Reply Handler::answer_http(Request request, uint16_t& route_number) const {
  const std::vector<std::string_view> segments = raw_segments(request.path);
  std::vector<std::string_view> allowed;
  const Route* chosen = nullptr;
  for (const bool exact : {true, false}) {
    for (const Route& route : routes_) {
      if (route.segments.size() != segments.size()) continue;
      std::vector<std::pair<std::string_view, std::string>> parameters;
      bool matches = true;
      for (size_t i = 0; i < segments.size() && matches; ++i) {
        const std::string& want = route.segments[i];
        if (want.size() > 2 && want.starts_with('{') && want.ends_with('}')) {
          std::optional<std::string> value = http::percent_decode(segments[i]);
          matches = value && !segments[i].empty();
          if (matches) parameters.emplace_back(std::string_view(want).substr(1, want.size() - 2), *value);
        } else {
          matches = want == segments[i];
        }
      }
      if (!matches) continue;
      const bool takes =
          exact ? route.method == request.method : request.method == "HEAD" && route.method == "GET";
      if (takes) {
        request.path_parameters = std::move(parameters);
        chosen = &route;
        break;
      }
      if (exact) allowed.push_back(route.method);
    }
    if (chosen != nullptr) {
      route_number = chosen->number;
      return call(chosen->function, request);
    }
  }
  if (!allowed.empty()) {
    Reply refused = Reply::error("method not allowed", 405);
    return std::move(refused.header("Allow", allow_value(std::move(allowed))));
  }

  // Commands: the segments percent-decoded; an empty last one (a trailing slash) is no argument.
  if (!commands_.empty() && !segments.empty()) {
    std::vector<std::string> decoded;
    for (const std::string_view segment : segments) {
      std::optional<std::string> value = http::percent_decode(segment);
      if (!value) return Reply::error("malformed request: bad percent-encoding in the path", 400);
      decoded.push_back(std::move(*value));
    }
    if (decoded.size() > 1 && decoded.back().empty()) decoded.pop_back();
    for (const NamedCommand& command : commands_) {
      if (command.name != decoded[0]) continue;
      if (request.method != "GET" && request.method != "HEAD" && request.method != "POST") {
        Reply refused = Reply::error("method not allowed: use GET, HEAD or POST", 405);
        return std::move(refused.header("Allow", "GET, HEAD, POST"));
      }
      request.command = decoded[0];
      request.arguments.assign(decoded.begin() + 1, decoded.end());
      route_number = command.number;
      return call(command.function, request);
    }
  }
  if (fallback_) return call(fallback_, request);
  return Reply::error("not found", 404);
}

// Runs user code: whatever it throws, or a reply that cannot be sent, is the handler's own error, not the
// client's: logged (with the pid, to find the handler, and the request) and answered 500; the handler serves
// on.
Reply Handler::call(const Command& function, const Request& request) const {
  try {
    Reply reply = function(request);
    if (std::optional<std::string> why = handler::unsendable(reply)) {
      if (request.protocol == Protocol::kHttp || reply.status < 200 || reply.status > 599) {
        std::fprintf(stderr, "handler[%d]: %s: the reply has %s; answered 500\n", getpid(),
                     described(request).c_str(), why->c_str());
        return internal_error("the reply has " + *why);
      }
    }
    return reply;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "handler[%d]: %s: threw: %s\n", getpid(), described(request).c_str(), error.what());
    return internal_error(error.what());
  } catch (...) {
    std::fprintf(stderr, "handler[%d]: %s: threw something that is not a std::exception\n", getpid(),
                 described(request).c_str());
    return internal_error("");
  }
}

}  // namespace handoff
