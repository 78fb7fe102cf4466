// Key generation, PKCS#8 PEM and key files (mode 0600) for common/crypto/keys.h.
#include "common/crypto/keys.h"

#include <dirent.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "absl/strings/match.h"
#include "common/crypto/hash.h"
#include "tests/test_support.h"

namespace darvoza::crypto {
namespace {

using darvoza::testing::ReadFileForTest;
using darvoza::testing::TempDir;
using darvoza::testing::WriteFileForTest;

// A P-384 key: a valid PKCS#8 key of a curve Darvoza does not accept.
constexpr char kP384Pkcs8[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDANPhPy2ndh4vS7G84T\n"
    "hE5dsDhc2YOGZhEWLA/Kq0NV3yXj24IF1zPhzRXNAPjN96KhZANiAAQ7Y/fG+lg6\n"
    "HEDpfdvqLFwRJx8dIiY1A5/saUOL/bgsLwQZDTP/A9MCOC1y+yR+QNVUcfdFGm32\n"
    "CTysKvr+DKD3+ER6R2qBoJnx7pPXGeOUCW+4aORUllGgXqK1/QPKxvU=\n"
    "-----END PRIVATE KEY-----\n";

// A P-256 key in the legacy SEC1 form rather than PKCS#8.
constexpr char kP256Sec1[] =
    "-----BEGIN EC PRIVATE KEY-----\n"
    "MHcCAQEEIDUjKePwtiK0sRhani1ChUo323CUSdkLSp0Z9yjA+1eqoAoGCCqGSM49\n"
    "AwEHoUQDQgAE5EnHI9ebW92rcqB3vNVOTbGK98EvVJZuZtDifWVSffnn+YDxC9Xa\n"
    "7aeMlZQTW+UMidRTDIjdasAHrUvOORIOUA==\n"
    "-----END EC PRIVATE KEY-----\n";

// The DER SubjectPublicKeyInfo of a P-384 key.
constexpr char kP384SpkiHex[] =
    "3076301006072a8648ce3d020106052b8104002203620004db4d71dfbdd0d066029d1ec6ad870485cde777"
    "70b436f6fac190a429bec907b8d2c0cbb40bd4f16f6e390d8193b134bc68d62215ccfff3de027f5fbec9b3"
    "430ef331b7905ae4aee92d978900309b1376ee169aa8d1b025af3e4ffc87fd81511d";

std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = opendir(dir.c_str());
  REQUIRE(d != nullptr);
  while (dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  closedir(d);
  return names;
}

mode_t FileMode(const std::string& path) {
  struct stat st;
  REQUIRE(stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

TEST_CASE("Key algorithm names round-trip", "[keys]") {
  CHECK(KeyAlgorithmName(KeyAlgorithm::kEcdsaP256) == "ecdsa-p256");
  CHECK(KeyAlgorithmName(KeyAlgorithm::kEd25519) == "ed25519");
  CHECK(ParseKeyAlgorithm("ecdsa-p256").value() == KeyAlgorithm::kEcdsaP256);
  CHECK(ParseKeyAlgorithm("ed25519").value() == KeyAlgorithm::kEd25519);
  CHECK(ParseKeyAlgorithm("rsa").status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("Generated keys round-trip through PKCS#8 PEM", "[keys]") {
  const KeyAlgorithm algorithm = GENERATE(KeyAlgorithm::kEcdsaP256, KeyAlgorithm::kEd25519);
  auto key = PrivateKey::Generate(algorithm);
  REQUIRE(key.ok());
  CHECK((*key)->algorithm() == algorithm);
  const std::string pem = (*key)->ToPem();
  CHECK(absl::StartsWith(pem, "-----BEGIN PRIVATE KEY-----\n"));

  auto back = PrivateKey::FromPem(pem);
  REQUIRE(back.ok());
  CHECK((*back)->algorithm() == algorithm);
  CHECK((*back)->PublicKeyDer() == (*key)->PublicKeyDer());

  // The reloaded key signs what the original key's public half accepts.
  auto sig = (*back)->SignRaw("payload");
  REQUIRE(sig.ok());
  CHECK((*key)->GetPublicKey()->VerifyRaw("payload", *sig).ok());

  auto other = PrivateKey::Generate(algorithm);
  REQUIRE(other.ok());
  CHECK((*other)->PublicKeyDer() != (*key)->PublicKeyDer());
}

TEST_CASE("PrivateKey::FromPem refuses what is not an unencrypted P-256/Ed25519 PKCS#8 key",
          "[keys]") {
  CHECK(PrivateKey::FromPem("").status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(PrivateKey::FromPem("not a key").status().code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(PrivateKey::FromPem(kP256Sec1).status().code() == absl::StatusCode::kInvalidArgument);
  auto p384 = PrivateKey::FromPem(kP384Pkcs8);
  CHECK(p384.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(absl::StrContains(p384.status().message(), "P-256"));
  // An encrypted key is refused without ever asking for a passphrase.
  CHECK(PrivateKey::FromPem("-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n"
                            "-----END ENCRYPTED PRIVATE KEY-----\n")
            .status()
            .code() == absl::StatusCode::kInvalidArgument);
  // A PKCS#8 header around garbage.
  CHECK(PrivateKey::FromPem("-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n")
            .status()
            .code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("PublicKey::FromDer round-trips and refuses other key types", "[keys]") {
  const KeyAlgorithm algorithm = GENERATE(KeyAlgorithm::kEcdsaP256, KeyAlgorithm::kEd25519);
  auto key = PrivateKey::Generate(algorithm);
  REQUIRE(key.ok());
  auto pub = PublicKey::FromDer((*key)->PublicKeyDer());
  REQUIRE(pub.ok());
  CHECK((*pub)->algorithm() == algorithm);
  CHECK((*pub)->der() == (*key)->PublicKeyDer());

  CHECK(PublicKey::FromDer("").status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(PublicKey::FromDer("garbage").status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(PublicKey::FromDer((*key)->PublicKeyDer() + "x").status().code() ==
        absl::StatusCode::kInvalidArgument);
  auto p384 = PublicKey::FromDer(HexDecode(kP384SpkiHex).value());
  CHECK(p384.status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("SaveToFile creates mode 0600 and LoadFromFile round-trips", "[keys]") {
  const KeyAlgorithm algorithm = GENERATE(KeyAlgorithm::kEcdsaP256, KeyAlgorithm::kEd25519);
  TempDir dir;
  const std::string path = dir.File("auth.key");
  auto key = PrivateKey::Generate(algorithm);
  REQUIRE(key.ok());

  // A permissive umask must not make the key readable by others.
  const mode_t old_umask = umask(0);
  const absl::Status saved = (*key)->SaveToFile(path);
  umask(old_umask);
  REQUIRE(saved.ok());
  CHECK(FileMode(path) == 0600);
  CHECK(ReadFileForTest(path) == (*key)->ToPem());
  // No temporary file is left behind.
  CHECK(ListDir(dir.path()) == std::vector<std::string>{"auth.key"});

  auto loaded = PrivateKey::LoadFromFile(path);
  REQUIRE(loaded.ok());
  CHECK((*loaded)->algorithm() == algorithm);
  CHECK((*loaded)->PublicKeyDer() == (*key)->PublicKeyDer());
}

TEST_CASE("SaveToFile refuses to replace a key unless told to", "[keys]") {
  TempDir dir;
  const std::string path = dir.File("seal.key");
  auto first = PrivateKey::Generate(KeyAlgorithm::kEcdsaP256);
  auto second = PrivateKey::Generate(KeyAlgorithm::kEd25519);
  REQUIRE(first.ok());
  REQUIRE(second.ok());
  REQUIRE((*first)->SaveToFile(path).ok());

  const absl::Status again = (*second)->SaveToFile(path);
  CHECK(again.code() == absl::StatusCode::kAlreadyExists);
  CHECK(PrivateKey::LoadFromFile(path).value()->PublicKeyDer() == (*first)->PublicKeyDer());

  REQUIRE((*second)->SaveToFile(path, /*overwrite=*/true).ok());
  CHECK(PrivateKey::LoadFromFile(path).value()->PublicKeyDer() == (*second)->PublicKeyDer());
  CHECK(FileMode(path) == 0600);
  CHECK(ListDir(dir.path()) == std::vector<std::string>{"seal.key"});

  CHECK((*first)->SaveToFile(dir.File("no-such-dir/x.key")).code() ==
        absl::StatusCode::kNotFound);
}

TEST_CASE("LoadFromFile refuses a key file readable by group or others", "[keys]") {
  const mode_t mode = GENERATE(0644, 0640, 0604, 0660);
  TempDir dir;
  const std::string path = dir.File("leaky.key");
  auto key = PrivateKey::Generate(KeyAlgorithm::kEcdsaP256);
  REQUIRE(key.ok());
  REQUIRE((*key)->SaveToFile(path).ok());
  REQUIRE(chmod(path.c_str(), mode) == 0);

  auto loaded = PrivateKey::LoadFromFile(path);
  CHECK(loaded.status().code() == absl::StatusCode::kPermissionDenied);
  CHECK(absl::StrContains(loaded.status().message(), "readable by others"));
  CHECK(absl::StrContains(loaded.status().message(), "chmod 600"));

  REQUIRE(chmod(path.c_str(), 0600) == 0);
  CHECK(PrivateKey::LoadFromFile(path).ok());
}

TEST_CASE("LoadFromFile reports a missing file and a non-key file", "[keys]") {
  TempDir dir;
  CHECK(PrivateKey::LoadFromFile(dir.File("missing.key")).status().code() ==
        absl::StatusCode::kNotFound);
  WriteFileForTest(dir.File("junk.key"), "hello");
  REQUIRE(chmod(dir.File("junk.key").c_str(), 0600) == 0);
  CHECK(PrivateKey::LoadFromFile(dir.File("junk.key")).status().code() ==
        absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace darvoza::crypto
