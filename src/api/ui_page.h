// The operator page (GET /admin/ui): one self-contained HTML document, with its
// styles and scripts inline, built into the binary from src/api/ui/operator.html.
// It reads only this server's own JSON and metrics routes.
#pragma once

#include <string_view>

namespace affinity {

std::string_view OperatorPageHtml();

}  // namespace affinity
