// Known answers and round trips for common/crypto/hash.h.
#include "common/crypto/hash.h"

#include <string>

#include <catch2/catch.hpp>

namespace darvoza::crypto {
namespace {

TEST_CASE("Sha256 matches the FIPS 180-2 known answers", "[hash]") {
  CHECK(HexEncode(Sha256("abc")) ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(HexEncode(Sha256("")) ==
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(HexEncode(Sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")) ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(Sha256("abc").size() == kSha256Size);
}

TEST_CASE("Sha512 matches the FIPS 180-2 known answer", "[hash]") {
  CHECK(HexEncode(Sha512("abc")) ==
        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
        "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
  CHECK(Sha512("abc").size() == kSha512Size);
}

TEST_CASE("Sha256Hasher over pieces equals the one-shot digest", "[hash]") {
  std::string data;
  for (int i = 0; i < 10000; ++i) data.push_back(static_cast<char>(i * 7));
  Sha256Hasher hasher;
  hasher.Update(absl::string_view(data).substr(0, 1));
  hasher.Update("");
  hasher.Update(absl::string_view(data).substr(1, 4095));
  hasher.Update(absl::string_view(data).substr(4096));
  CHECK(hasher.Finish() == Sha256(data));

  Sha256Hasher empty;
  CHECK(empty.Finish() == Sha256(""));
}

TEST_CASE("Hex encodes lower-case and round-trips every byte value", "[hash]") {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  const std::string hex = HexEncode(all);
  CHECK(hex.size() == 512);
  CHECK(hex.substr(0, 8) == "00010203");
  CHECK(hex.substr(504) == "fcfdfeff");
  auto back = HexDecode(hex);
  REQUIRE(back.ok());
  CHECK(*back == all);

  auto upper = HexDecode("DEADbeef");
  REQUIRE(upper.ok());
  CHECK(*upper == std::string("\xde\xad\xbe\xef"));
  CHECK(HexDecode("").value() == "");
}

TEST_CASE("HexDecode refuses odd length and non-hex characters", "[hash]") {
  CHECK(HexDecode("abc").status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(HexDecode("zz").status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(HexDecode("0g").status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(HexDecode(" 0").status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(HexDecode(std::string("0\0", 2)).status().code() ==
        absl::StatusCode::kInvalidArgument);
}

TEST_CASE("RandomBytes gives the asked size and does not repeat", "[hash]") {
  CHECK(RandomBytes(0).empty());
  const std::string a = RandomBytes(32);
  const std::string b = RandomBytes(32);
  CHECK(a.size() == 32);
  CHECK(a != b);  // 2^-256 chance of a false failure.
}

}  // namespace
}  // namespace darvoza::crypto
