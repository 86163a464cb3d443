#include "reactor/admin/status_page.hpp"

#include "reactor/admin/status_page_html.hpp"

namespace handoff::reactor {

const std::string& status_page_html() {
  static const std::string page(kStatusPageHtml);
  return page;
}

}  // namespace handoff::reactor
