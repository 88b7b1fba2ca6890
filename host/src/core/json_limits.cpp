#include "core/json_limits.hpp"

#include <string>

namespace aether {

Status check_json_text(std::string_view text, size_t max_depth, std::string_view what,
                       std::string_view limit_name) {
  std::string problem = rules::json_text_problem(text, max_depth, what, limit_name);
  return problem.empty() ? Status::ok() : Status::invalid(std::move(problem));
}

}  // namespace aether
