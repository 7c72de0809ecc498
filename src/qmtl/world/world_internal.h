// Helpers shared by the world part's source files. Not installed, not for
// other parts.
#pragma once

#include <boost/json.hpp>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "qmtl/core/result.h"
#include "qmtl/core/time.h"
#include "qmtl/metrics/series.h"
#include "qmtl/policy/policy.h"
#include "qmtl/store/store.h"

namespace qmtl::world {

// Free text of one line (no control characters), at most `max` bytes.
Result<void> validate_text(std::string_view what, std::string_view text, size_t max,
                           bool allow_empty);
Result<void> validate_actor(std::string_view actor);

// kFailedPrecondition when the world is Paused: no strategy changes state then.
Result<void> check_transitions_allowed(const store::World& w);

// A metric value for the run's JSON: null when absent.
boost::json::value number_or_null(std::optional<double> v);

// The value of every metric the policy refers to (one per policy.refs slot),
// computed over `rs` with `window` as the policy window; `shown` gets each
// reference's text -> value, for explanations.
std::vector<std::optional<double>> policy_values(
    const policy::Policy& pol, const metrics::ReturnSeries& rs, Duration window,
    std::map<std::string, std::optional<double>>& shown);

// A settings object with null members dropped, or kInvalidArgument naming a
// member that would hold a secret ("password", "secret", "token", "api_key")
// — by its key only, never its value. password_env and password_file (names of
// where a secret is) pass.
Result<boost::json::object> without_secrets(const boost::json::object& o);

// Checks the password_env / password_file pair of a settings object: at most
// one, a variable name, an absolute path. The message names what to fix.
Result<void> check_secret_reference(const std::string& password_env,
                                    const std::string& password_file);

}  // namespace qmtl::world
