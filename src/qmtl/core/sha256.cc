#include "qmtl/core/sha256.h"

#include <openssl/evp.h>

#include <array>
#include <stdexcept>

namespace qmtl {

std::string sha256_hex(std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int len = 0;
  // OpenSSL's one-shot digest: a reviewed, accelerated implementation of a
  // function tokens and program digests depend on. It fails only when the
  // library cannot allocate its context, which no caller can handle.
  if (EVP_Digest(data.data(), data.size(), md.data(), &len, EVP_sha256(), nullptr) != 1 ||
      len != 32) {
    throw std::runtime_error("OpenSSL could not compute a SHA-256 digest");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  const size_t n = len;
  std::string out(2 * n, '0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = kHex[md[i] >> 4];
    out[2 * i + 1] = kHex[md[i] & 0xf];
  }
  return out;
}

}  // namespace qmtl
