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

Result<std::optional<bool>> get_optional_bool(const boost::json::object& obj, std::string_view key);
Result<bool> get_bool(const boost::json::object& obj, std::string_view key);
// A whole number (1 and 1.0 both pass; 1.5 does not).
Result<std::optional<int64_t>> get_optional_int(const boost::json::object& obj,
                                                std::string_view key);
// The array at `key`, or null when absent; kInvalidArgument when it is
// something else. The pointer is into `obj`.
Result<const boost::json::array*> get_optional_array(const boost::json::object& obj,
                                                     std::string_view key);
Result<std::optional<double>> get_optional_number(const boost::json::object& obj,
                                                  std::string_view key);

// "a string", "an object", ...: for messages about a value of the wrong type.
std::string_view kind_name(const boost::json::value& v);

// Compact serialisation.
std::string dump(const boost::json::value& v);

}  // namespace qmtl::json
