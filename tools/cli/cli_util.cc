#include "tools/cli/cli_util.h"

#include <iostream>

#include "absl/strings/str_cat.h"
#include "common/faults.h"

namespace darvoza::cli {

int PrintFailure(const absl::Status& status, absl::string_view unreachable_hint) {
  std::string text = absl::StrCat("error: ", status.message());
  const std::string fault = FaultCode(status);
  if (!fault.empty()) absl::StrAppend(&text, " [", fault, "]");
  std::cerr << text << "\n";
  if (status.code() == absl::StatusCode::kUnavailable && !unreachable_hint.empty()) {
    std::cerr << "hint: " << unreachable_hint << "\n";
  }
  return 1;
}

}  // namespace darvoza::cli
