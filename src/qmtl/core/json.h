// Helpers for reading untrusted JSON documents field by field.
//
// Each accessor returns a Result whose error names the field and the expected
// type, so API handlers can answer 400 with a message that says what to fix.
//
// Thread safety: pure functions over caller-owned values.
#pragma once

#include <boost/json.hpp>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include "qmtl/core/result.h"

namespace qmtl::json {

// Parses `text` as one JSON document. Errors give the byte offset of the problem.
Result<boost::json::value> parse(std::string_view text);

// `v` as an object, or an error "<what> must be a JSON object".
Result<const boost::json::object*> as_object(const boost::json::value& v, std::string_view what);

// Refuses any key of `obj` not in `allowed`, naming the key and the allowed set.
Result<void> check_keys(const boost::json::object& obj,
                        std::initializer_list<std::string_view> allowed, std::string_view what);

// The string field `key`: an error if absent (when required) or not a string.
Result<std::string> get_string(const boost::json::object& obj, std::string_view key);
Result<std::optional<std::string>> get_optional_string(const boost::json::object& obj,
                                                       std::string_view key);

// Compact serialisation.
std::string dump(const boost::json::value& v);

}  // namespace qmtl::json
