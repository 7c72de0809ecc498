// YAML documents as JSON values: strategy files and settings are written in
// YAML and stored and sent as JSON. Here because the policy part is where
// yaml-cpp lives; the CLI and the Python package read YAML through it.
//
// Thread safety: pure function.
#pragma once

#include <boost/json.hpp>
#include <string_view>

#include "qmtl/core/result.h"

namespace qmtl::policy {

// The document in `text`: mappings become objects, sequences arrays; a
// scalar becomes true/false, a number when it reads as a JSON number, else a
// string (a quoted scalar is always a string). kInvalidArgument naming
// `source`:line:column for malformed YAML.
Result<boost::json::value> yaml_to_json(std::string_view text, std::string_view source);

}  // namespace qmtl::policy
