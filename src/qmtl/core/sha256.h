// SHA-256 (FIPS 180-4) from OpenSSL, for token digests, program digests,
// policy checksums and ETags.
//
// Thread safety: pure function.
#pragma once

#include <string>
#include <string_view>

namespace qmtl {

// Lower-case hex digest of `data`.
std::string sha256_hex(std::string_view data);

}  // namespace qmtl
