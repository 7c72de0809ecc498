// The web assets inlined into reports (generated from web/ at build time by
// cmake/embed.cmake). Internal to the report part.
#pragma once

#include <string_view>

namespace qmtl::report {

extern const std::string_view kUplotJs;       // web/node_modules/uplot/dist/uPlot.iife.min.js
extern const std::string_view kUplotCss;      // web/node_modules/uplot/dist/uPlot.min.css
extern const std::string_view kUplotLicense;  // web/node_modules/uplot/LICENSE (MIT)
extern const std::string_view kReportJs;      // web/report/report.js
extern const std::string_view kReportCss;     // web/report/report.css

}  // namespace qmtl::report
