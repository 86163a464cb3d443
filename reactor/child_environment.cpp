#include "reactor/child_environment.hpp"

#include <string_view>

extern char** environ;

namespace handoff::reactor {

std::vector<std::string> environment_with(const std::vector<std::string>& settings) {
  std::vector<std::string> result;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const std::string_view variable(*entry);
    bool overridden = false;
    for (const std::string& setting : settings) {
      const std::string_view name = std::string_view(setting).substr(0, setting.find('=') + 1);
      overridden = overridden || variable.starts_with(name);
    }
    if (!overridden) result.emplace_back(variable);
  }
  result.insert(result.end(), settings.begin(), settings.end());
  return result;
}

std::vector<char*> as_c_strings(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  for (std::string& s : strings) pointers.push_back(s.data());
  pointers.push_back(nullptr);
  return pointers;
}

}  // namespace handoff::reactor
