// Sealed boxes (common/sealed_box.h): ECDH P-256 + HKDF + AES-256-GCM per chunk.
#include "common/sealed_box.h"

#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "absl/strings/match.h"

namespace darvoza {
namespace {

std::unique_ptr<crypto::PrivateKey> Key(crypto::KeyAlgorithm a = crypto::KeyAlgorithm::kEcdsaP256) {
  auto key = crypto::PrivateKey::Generate(a);
  REQUIRE(key.ok());
  return *std::move(key);
}

// Splits a box into header and chunk records (each u32 length + data).
struct Parts {
  std::string header;
  std::vector<std::string> chunks;
  std::string Join() const {
    std::string out = header;
    for (const std::string& c : chunks) out += c;
    return out;
  }
};

Parts Split(const std::string& box) {
  Parts p;
  size_t pos = 8;
  const size_t der_len = (static_cast<uint8_t>(box[pos]) << 8) | static_cast<uint8_t>(box[pos + 1]);
  pos += 2 + der_len + 4;
  p.header = box.substr(0, pos);
  while (pos < box.size()) {
    uint32_t len = 0;
    for (int i = 0; i < 4; ++i) len = (len << 8) | static_cast<uint8_t>(box[pos + i]);
    p.chunks.push_back(box.substr(pos, 4 + len));
    pos += 4 + len;
  }
  return p;
}

TEST_CASE("Sealed box round trip, wrong key, flipped byte, reordered and cut chunks",
          "[sealed_box]") {
  auto auditor = Key();
  auto stranger = Key();
  std::string plain;
  for (int i = 0; i < 1000; ++i) plain += "audit record " + std::to_string(i) + "\n";
  auto box = SealedBoxEncrypt(*auditor->GetPublicKey(), plain, 1024);
  REQUIRE(box.ok());
  CHECK(IsSealedBox(*box));
  auto opened = SealedBoxDecrypt(*auditor, *box);
  REQUIRE(opened.ok());
  CHECK(*opened == plain);

  auto wrong = SealedBoxDecrypt(*stranger, *box);
  CHECK(wrong.status().code() == absl::StatusCode::kUnauthenticated);
  CHECK(absl::StrContains(wrong.status().message(), "chunk 0"));

  Parts parts = Split(*box);
  REQUIRE(parts.chunks.size() > 4);
  {
    Parts swapped = parts;
    std::swap(swapped.chunks[1], swapped.chunks[2]);
    auto r = SealedBoxDecrypt(*auditor, swapped.Join());
    CHECK(r.status().code() == absl::StatusCode::kUnauthenticated);
    CHECK(absl::StrContains(r.status().message(), "chunk 1"));
  }
  {
    Parts cut = parts;
    cut.chunks.pop_back();
    CHECK(SealedBoxDecrypt(*auditor, cut.Join()).status().code() ==
          absl::StatusCode::kUnauthenticated);
  }
  {
    std::string flipped = *box;
    flipped[parts.header.size() + 4 + 100] ^= 0x01;
    auto r = SealedBoxDecrypt(*auditor, flipped);
    CHECK(r.status().code() == absl::StatusCode::kUnauthenticated);
  }
  {
    std::string header_changed = *box;
    header_changed[parts.header.size() - 1] ^= 0x01;  // chunk size in the header
    CHECK_FALSE(SealedBoxDecrypt(*auditor, header_changed).ok());
  }
  auto empty = SealedBoxEncrypt(*auditor->GetPublicKey(), "");
  REQUIRE(empty.ok());
  CHECK(SealedBoxDecrypt(*auditor, *empty).value() == "");
  auto ed = Key(crypto::KeyAlgorithm::kEd25519);
  CHECK(SealedBoxEncrypt(*ed->GetPublicKey(), "x").status().code() ==
        absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace darvoza
