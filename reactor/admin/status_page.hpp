#pragma once

// Internal to the reactor. The admin port's status page: one self-contained HTML document (no external
// scripts, styles or fonts) that reads /stats every second and draws the pool, the queue, the counters and
// the latency histograms. The HTML is reactor/admin/status_page.html, embedded at build time (meson.build).

#include <string>

namespace handoff::reactor {

const std::string& status_page_html();

}  // namespace handoff::reactor
