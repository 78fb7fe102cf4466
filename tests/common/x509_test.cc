// Certificates, CSRs, issuing, chain verification and the certificate cache
// (common/crypto/x509.h). Time comes from a SimulatedClock, never the system clock.
#include "common/crypto/x509.h"

#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_replace.h"
#include "common/clock.h"
#include "common/crypto/hash.h"
#include "tests/test_support.h"

namespace darvoza::crypto {
namespace {

using darvoza::testing::TempDir;
using darvoza::testing::WriteFileForTest;

const absl::Time kStart = absl::FromUnixSeconds(1'700'000'000);
constexpr char kServerCn[] = "server:UZ/GOV/70000001/ss1";

struct Ca {
  std::unique_ptr<PrivateKey> key;
  std::shared_ptr<const Certificate> cert;
};

Ca MakeRoot(KeyAlgorithm algorithm, const std::string& cn = "Darvoza Test Root",
            uint64_t serial = 1) {
  auto key = PrivateKey::Generate(algorithm);
  REQUIRE(key.ok());
  IssueOptions opts{.serial = serial,
                    .not_before = kStart - absl::Hours(1),
                    .not_after = kStart + absl::Hours(24 * 3650),
                    .profile = CertificateProfile::kRootCa};
  auto cert = IssueCertificate(**key, nullptr, *(*key)->GetPublicKey(), cn, opts);
  REQUIRE(cert.ok());
  return Ca{std::move(key).value(), std::move(cert).value()};
}

std::shared_ptr<const Certificate> Issue(const Ca& ca, const PublicKey& subject,
                                         const std::string& cn, CertificateProfile profile,
                                         uint64_t serial, absl::Time not_before = kStart,
                                         absl::Time not_after = kStart + absl::Hours(24)) {
  IssueOptions opts{
      .serial = serial, .not_before = not_before, .not_after = not_after, .profile = profile};
  auto cert = IssueCertificate(*ca.key, ca.cert.get(), subject, cn, opts);
  REQUIRE(cert.ok());
  return std::move(cert).value();
}

absl::Status Verify(const Certificate& leaf, const Ca& ca, absl::Time at,
                    const RevocationList& revoked = RevocationList(),
                    const CertificateProfile* purpose = nullptr) {
  return VerifyChain(leaf, {}, {ca.cert}, at, revoked, purpose);
}

void CheckRefused(const absl::Status& status, absl::string_view phrase) {
  INFO(status.ToString());
  CHECK(status.code() == absl::StatusCode::kUnauthenticated);
  CHECK(absl::StrContains(status.message(), phrase));
}

TEST_CASE("A root CA certificate carries what was asked for", "[x509]") {
  const KeyAlgorithm algorithm = GENERATE(KeyAlgorithm::kEcdsaP256, KeyAlgorithm::kEd25519);
  Ca root = MakeRoot(algorithm, "Darvoza Test Root", 0x0abc);
  const Certificate& cert = *root.cert;
  CHECK(cert.subject_common_name() == "Darvoza Test Root");
  CHECK(cert.subject() == "CN=Darvoza Test Root");
  CHECK(cert.issuer() == "CN=Darvoza Test Root");
  CHECK(cert.serial_hex() == "abc");
  CHECK(cert.not_before() == kStart - absl::Hours(1));
  CHECK(cert.not_after() == kStart + absl::Hours(24 * 3650));
  CHECK(cert.is_ca());
  CHECK(cert.profile().value() == CertificateProfile::kRootCa);
  CHECK(cert.public_key().der() == root.key->PublicKeyDer());
  CHECK(cert.public_key().algorithm() == algorithm);
  CHECK(cert.sha256() == Sha256(cert.der()));
  CHECK(cert.sha256().size() == kSha256Size);
}

TEST_CASE("CSRs round-trip with the identifier as CN", "[x509]") {
  const KeyAlgorithm algorithm = GENERATE(KeyAlgorithm::kEcdsaP256, KeyAlgorithm::kEd25519);
  auto key = PrivateKey::Generate(algorithm);
  REQUIRE(key.ok());
  auto csr = CertificateRequest::Create(**key, kServerCn);
  REQUIRE(csr.ok());
  CHECK((*csr)->subject_common_name() == kServerCn);
  CHECK((*csr)->public_key().der() == (*key)->PublicKeyDer());

  auto from_der = CertificateRequest::Parse((*csr)->der());
  REQUIRE(from_der.ok());
  CHECK((*from_der)->subject_common_name() == kServerCn);
  CHECK((*from_der)->public_key().der() == (*key)->PublicKeyDer());

  const std::string pem = (*csr)->ToPem();
  CHECK(absl::StartsWith(pem, "-----BEGIN CERTIFICATE REQUEST-----"));
  auto from_pem = CertificateRequest::Parse(pem);
  REQUIRE(from_pem.ok());
  CHECK((*from_pem)->der() == (*csr)->der());

  // An identifier longer than X.520's 64-character common name still works.
  const std::string long_cn = "subsystem:UZ/GOV/70000001/" + std::string(80, 'a');
  auto long_csr = CertificateRequest::Create(**key, long_cn);
  REQUIRE(long_csr.ok());
  CHECK(CertificateRequest::Parse((*long_csr)->der()).value()->subject_common_name() == long_cn);

  CHECK(CertificateRequest::Create(**key, "").status().code() ==
        absl::StatusCode::kInvalidArgument);
}

TEST_CASE("CertificateRequest::Parse refuses garbage and a tampered self-signature", "[x509]") {
  CHECK(CertificateRequest::Parse("").status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(CertificateRequest::Parse("garbage").status().code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(CertificateRequest::Parse("-----BEGIN CERTIFICATE REQUEST-----\nMAA=\n"
                                  "-----END CERTIFICATE REQUEST-----\n")
            .status()
            .code() == absl::StatusCode::kInvalidArgument);

  const KeyAlgorithm algorithm = GENERATE(KeyAlgorithm::kEcdsaP256, KeyAlgorithm::kEd25519);
  auto key = PrivateKey::Generate(algorithm);
  REQUIRE(key.ok());
  auto csr = CertificateRequest::Create(**key, kServerCn);
  REQUIRE(csr.ok());
  const std::string der = (*csr)->der();

  CHECK(CertificateRequest::Parse(der.substr(0, der.size() - 1)).status().code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(CertificateRequest::Parse(der + "x").status().code() ==
        absl::StatusCode::kInvalidArgument);

  // Someone rewrites the identifier in a signed request: same length, so it still parses.
  const std::string renamed = absl::StrReplaceAll(der, {{"ss1", "ss2"}});
  REQUIRE(renamed != der);
  auto tampered_body = CertificateRequest::Parse(renamed);
  CHECK(tampered_body.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(absl::StrContains(tampered_body.status().message(), "self-signature"));

  std::string bad_sig = der;
  bad_sig[bad_sig.size() - 2] ^= 0x01;
  CHECK(CertificateRequest::Parse(bad_sig).status().code() ==
        absl::StatusCode::kInvalidArgument);
}

TEST_CASE("Issued certificates carry their profile", "[x509]") {
  const KeyAlgorithm ca_algorithm = GENERATE(KeyAlgorithm::kEcdsaP256, KeyAlgorithm::kEd25519);
  const KeyAlgorithm leaf_algorithm =
      GENERATE(KeyAlgorithm::kEcdsaP256, KeyAlgorithm::kEd25519);
  Ca root = MakeRoot(ca_algorithm);
  auto key = PrivateKey::Generate(leaf_algorithm);
  REQUIRE(key.ok());
  auto csr = CertificateRequest::Create(**key, kServerCn);
  REQUIRE(csr.ok());

  IssueOptions opts{.serial = 0x1234567890abcdefULL,
                    .not_before = kStart,
                    .not_after = kStart + absl::Hours(24),
                    .profile = CertificateProfile::kTlsAuth};
  auto tls = IssueCertificate(*root.key, root.cert.get(), **csr, opts);
  REQUIRE(tls.ok());
  CHECK((*tls)->subject_common_name() == kServerCn);
  CHECK((*tls)->subject() == std::string("CN=") + kServerCn);
  CHECK((*tls)->issuer() == root.cert->subject());
  CHECK((*tls)->serial_hex() == "1234567890abcdef");
  CHECK_FALSE((*tls)->is_ca());
  CHECK((*tls)->profile().value() == CertificateProfile::kTlsAuth);
  CHECK((*tls)->public_key().der() == (*key)->PublicKeyDer());
  CHECK(Verify(**tls, root, kStart + absl::Hours(1)).ok());

  auto signing = Issue(root, *(*key)->GetPublicKey(), "member:UZ/GOV/70000001",
                       CertificateProfile::kSigning, 2);
  CHECK_FALSE(signing->is_ca());
  CHECK(signing->profile().value() == CertificateProfile::kSigning);
  CHECK(Verify(*signing, root, kStart + absl::Hours(1)).ok());
}

TEST_CASE("A TLS certificate names its hosts in subjectAltName, DNS and IP", "[x509]") {
  Ca root = MakeRoot(KeyAlgorithm::kEcdsaP256);
  auto key = PrivateKey::Generate(KeyAlgorithm::kEcdsaP256);
  REQUIRE(key.ok());
  IssueOptions opts{.serial = 7,
                    .not_before = kStart,
                    .not_after = kStart + absl::Hours(24),
                    .profile = CertificateProfile::kTlsAuth,
                    .subject_alt_hosts = {"ss1.gov.example", "127.0.0.1", "2001:db8::1"}};
  auto cert = IssueCertificate(*root.key, root.cert.get(), *(*key)->GetPublicKey(), kServerCn, opts);
  REQUIRE(cert.ok());
  CHECK((*cert)->SubjectAltHosts() ==
        std::vector<std::string>{"ss1.gov.example", "127.0.0.1", "2001:db8::1"});
  CHECK((*cert)->profile().value() == CertificateProfile::kTlsAuth);
  CHECK(Verify(**cert, root, kStart + absl::Hours(1)).ok());
  // Parsed back from DER (what a peer receives), the names are the same.
  auto parsed = Certificate::FromDer((*cert)->der());
  REQUIRE(parsed.ok());
  CHECK((*parsed)->SubjectAltHosts() == (*cert)->SubjectAltHosts());

  // Without hosts there is no extension at all.
  opts.subject_alt_hosts.clear();
  opts.serial = 8;
  auto plain = IssueCertificate(*root.key, root.cert.get(), *(*key)->GetPublicKey(), kServerCn, opts);
  REQUIRE(plain.ok());
  CHECK((*plain)->SubjectAltHosts().empty());

  // A host that is not one cannot become an extension entry (or two).
  for (const char* bad : {"", "a,DNS:evil.example", "evil.example,IP:10.0.0.1", "0.0.0.0", "::",
                          "-lead.example", "trail-.example", "a..b", "under_score.example",
                          "sp ace", "*.example"}) {
    INFO(bad);
    opts.subject_alt_hosts = {bad};
    auto refused =
        IssueCertificate(*root.key, root.cert.get(), *(*key)->GetPublicKey(), kServerCn, opts);
    CHECK(refused.status().code() == absl::StatusCode::kInvalidArgument);
  }
}

TEST_CASE("SubjectAltHostOf takes the host of host:port and checks it", "[x509]") {
  CHECK(SubjectAltHostOf("127.0.0.1:5500").value() == "127.0.0.1");
  CHECK(SubjectAltHostOf("ss1.gov.example:5500").value() == "ss1.gov.example");
  CHECK(SubjectAltHostOf("[::1]:5500").value() == "::1");
  CHECK_FALSE(SubjectAltHostOf("0.0.0.0:5500").ok());
  CHECK_FALSE(SubjectAltHostOf("[::]:5500").ok());
  CHECK_FALSE(SubjectAltHostOf("ss1.gov.example").ok());  // no port
  CHECK_FALSE(SubjectAltHostOf("[::1:5500").ok());
  CHECK_FALSE(SubjectAltHostOf(":5500").ok());
}

TEST_CASE("IssueCertificate refuses bad options and mismatched issuers", "[x509]") {
  Ca root = MakeRoot(KeyAlgorithm::kEcdsaP256);
  auto key = PrivateKey::Generate(KeyAlgorithm::kEcdsaP256);
  REQUIRE(key.ok());
  auto pub = (*key)->GetPublicKey();
  IssueOptions good{.serial = 5,
                    .not_before = kStart,
                    .not_after = kStart + absl::Hours(1),
                    .profile = CertificateProfile::kSigning};
  REQUIRE(IssueCertificate(*root.key, root.cert.get(), *pub, "member:A/B/C", good).ok());

  IssueOptions zero_serial = good;
  zero_serial.serial = 0;
  CHECK(IssueCertificate(*root.key, root.cert.get(), *pub, "member:A/B/C", zero_serial)
            .status()
            .code() == absl::StatusCode::kInvalidArgument);
  IssueOptions backwards = good;
  backwards.not_after = backwards.not_before;
  CHECK(IssueCertificate(*root.key, root.cert.get(), *pub, "member:A/B/C", backwards)
            .status()
            .code() == absl::StatusCode::kInvalidArgument);
  // The issuer key does not belong to the issuer certificate.
  CHECK(IssueCertificate(**key, root.cert.get(), *pub, "member:A/B/C", good).status().code() ==
        absl::StatusCode::kInvalidArgument);
  // A leaf cannot issue.
  auto leaf = Issue(root, *pub, "member:A/B/C", CertificateProfile::kSigning, 6);
  CHECK(IssueCertificate(**key, leaf.get(), *pub, "member:A/B/D", good).status().code() ==
        absl::StatusCode::kInvalidArgument);
  // Self-signed means signed by the subject's own key.
  CHECK(IssueCertificate(*root.key, nullptr, *pub, "x", good).status().code() ==
        absl::StatusCode::kInvalidArgument);
}

TEST_CASE("VerifyChain accepts the good chain and names each reason for refusal", "[x509]") {
  const KeyAlgorithm algorithm = GENERATE(KeyAlgorithm::kEcdsaP256, KeyAlgorithm::kEd25519);
  SimulatedClock clock(kStart + absl::Hours(1));
  Ca root = MakeRoot(algorithm);
  auto key = PrivateKey::Generate(algorithm);
  REQUIRE(key.ok());
  auto leaf = Issue(root, *(*key)->GetPublicKey(), kServerCn, CertificateProfile::kTlsAuth, 42);
  REQUIRE(Verify(*leaf, root, clock.Now()).ok());

  SECTION("another CA's certificate is of an unknown issuer") {
    Ca other = MakeRoot(algorithm, "Other Root");
    auto foreign =
        Issue(other, *(*key)->GetPublicKey(), kServerCn, CertificateProfile::kTlsAuth, 42);
    REQUIRE(Verify(*foreign, other, clock.Now()).ok());
    CheckRefused(Verify(*foreign, root, clock.Now()), "unknown issuer");
  }
  SECTION("another CA with the same name is still an unknown issuer") {
    Ca twin = MakeRoot(algorithm);
    auto foreign =
        Issue(twin, *(*key)->GetPublicKey(), kServerCn, CertificateProfile::kTlsAuth, 42);
    CheckRefused(Verify(*foreign, root, clock.Now()), "unknown issuer");
  }
  SECTION("no trusted certificates at all") {
    CheckRefused(VerifyChain(*leaf, {}, {}, clock.Now(), RevocationList()), "unknown issuer");
  }
  SECTION("a revoked leaf") {
    RevocationList revoked;
    revoked.Add(root.cert->subject(), "2a");
    CHECK(revoked.size() == 1);
    CHECK(revoked.IsRevoked(*leaf));
    CheckRefused(Verify(*leaf, root, clock.Now(), revoked), "certificate revoked");
  }
  SECTION("a revoked leaf given with upper case and leading zeros") {
    RevocationList revoked;
    revoked.Add(root.cert->subject(), "002A");
    CheckRefused(Verify(*leaf, root, clock.Now(), revoked), "certificate revoked");
  }
  SECTION("the same serial from another issuer is not revoked") {
    RevocationList revoked;
    revoked.Add("CN=Other Root", "2a");
    CHECK(Verify(*leaf, root, clock.Now(), revoked).ok());
  }
  SECTION("a revoked root") {
    RevocationList revoked;
    revoked.Add(root.cert->issuer(), root.cert->serial_hex());
    CheckRefused(Verify(*leaf, root, clock.Now(), revoked), "certificate revoked");
  }
  SECTION("expired") {
    clock.Advance(absl::Hours(24));
    CheckRefused(Verify(*leaf, root, clock.Now()), "certificate expired");
  }
  SECTION("not yet valid") {
    clock.SetNow(kStart - absl::Minutes(1));
    CheckRefused(Verify(*leaf, root, clock.Now()), "certificate not yet valid");
  }
  SECTION("a tampered signature") {
    std::string der = leaf->der();
    der[der.size() - 2] ^= 0x01;
    auto tampered = Certificate::FromDer(der);
    REQUIRE(tampered.ok());
    CheckRefused(Verify(**tampered, root, clock.Now()), "bad signature");
  }
  SECTION("the wrong purpose") {
    const CertificateProfile signing = CertificateProfile::kSigning;
    const CertificateProfile tls = CertificateProfile::kTlsAuth;
    const CertificateProfile ca = CertificateProfile::kRootCa;
    CHECK(Verify(*leaf, root, clock.Now(), RevocationList(), &tls).ok());
    CheckRefused(Verify(*leaf, root, clock.Now(), RevocationList(), &signing),
                 "wrong certificate purpose");
    CheckRefused(Verify(*leaf, root, clock.Now(), RevocationList(), &ca),
                 "wrong certificate purpose");
    auto member = Issue(root, *(*key)->GetPublicKey(), "member:UZ/GOV/70000001",
                        CertificateProfile::kSigning, 43);
    CHECK(Verify(*member, root, clock.Now(), RevocationList(), &signing).ok());
    CheckRefused(Verify(*member, root, clock.Now(), RevocationList(), &tls),
                 "wrong certificate purpose");
  }
}

TEST_CASE("VerifyChain follows intermediates and checks each link", "[x509]") {
  SimulatedClock clock(kStart + absl::Hours(1));
  Ca root = MakeRoot(KeyAlgorithm::kEd25519);
  auto intermediate_key = PrivateKey::Generate(KeyAlgorithm::kEcdsaP256);
  REQUIRE(intermediate_key.ok());
  Ca intermediate{std::move(intermediate_key).value(), nullptr};
  intermediate.cert = Issue(root, *intermediate.key->GetPublicKey(), "Darvoza Intermediate",
                            CertificateProfile::kRootCa, 7, kStart - absl::Hours(1),
                            kStart + absl::Hours(48));
  CHECK(intermediate.cert->is_ca());
  auto key = PrivateKey::Generate(KeyAlgorithm::kEcdsaP256);
  REQUIRE(key.ok());
  auto leaf =
      Issue(intermediate, *(*key)->GetPublicKey(), kServerCn, CertificateProfile::kTlsAuth, 9);

  CHECK(VerifyChain(*leaf, {intermediate.cert}, {root.cert}, clock.Now(), RevocationList())
            .ok());
  CheckRefused(VerifyChain(*leaf, {}, {root.cert}, clock.Now(), RevocationList()),
               "unknown issuer");
  // An intermediate is not a trust anchor: partial chains are off.
  CheckRefused(
      VerifyChain(*leaf, {}, {intermediate.cert}, clock.Now(), RevocationList()),
      "unknown issuer");

  RevocationList revoked;
  revoked.Add(intermediate.cert->issuer(), intermediate.cert->serial_hex());
  CheckRefused(VerifyChain(*leaf, {intermediate.cert}, {root.cert}, clock.Now(), revoked),
               "certificate revoked");

  // A leaf certificate cannot act as an issuer even if it signs correctly.
  Ca fake_ca{std::move(key).value(), leaf};
  auto other_key = PrivateKey::Generate(KeyAlgorithm::kEcdsaP256);
  REQUIRE(other_key.ok());
  IssueOptions opts{.serial = 10,
                    .not_before = kStart,
                    .not_after = kStart + absl::Hours(2),
                    .profile = CertificateProfile::kTlsAuth};
  CHECK(IssueCertificate(*fake_ca.key, fake_ca.cert.get(), *(*other_key)->GetPublicKey(), "x",
                         opts)
            .status()
            .code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("Certificates round-trip through PEM, DER and files", "[x509]") {
  Ca root = MakeRoot(KeyAlgorithm::kEcdsaP256);
  const std::string pem = root.cert->ToPem();
  CHECK(absl::StartsWith(pem, "-----BEGIN CERTIFICATE-----"));
  auto from_pem = Certificate::FromPem(pem);
  REQUIRE(from_pem.ok());
  CHECK((*from_pem)->der() == root.cert->der());
  CHECK((*from_pem)->sha256() == root.cert->sha256());

  TempDir dir;
  WriteFileForTest(dir.File("root.pem"), "leading text\n" + pem);
  WriteFileForTest(dir.File("root.der"), root.cert->der());
  CHECK(Certificate::LoadFromFile(dir.File("root.pem")).value()->der() == root.cert->der());
  CHECK(Certificate::LoadFromFile(dir.File("root.der")).value()->der() == root.cert->der());
  CHECK(Certificate::LoadFromFile(dir.File("none.pem")).status().code() ==
        absl::StatusCode::kNotFound);

  CHECK(Certificate::FromDer("").status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(Certificate::FromDer("garbage").status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(Certificate::FromDer(root.cert->der() + "x").status().code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(Certificate::FromPem("no certificate here").status().code() ==
        absl::StatusCode::kInvalidArgument);
}

TEST_CASE("CertificateCache parses once and counts hits", "[x509]") {
  Ca root = MakeRoot(KeyAlgorithm::kEcdsaP256);
  Ca other = MakeRoot(KeyAlgorithm::kEd25519, "Other Root");
  CertificateCache cache(/*max_entries=*/2);
  auto first = cache.Get(root.cert->der());
  REQUIRE(first.ok());
  CHECK(cache.hits() == 0);
  auto second = cache.Get(root.cert->der());
  REQUIRE(second.ok());
  CHECK(second->get() == first->get());
  CHECK(cache.hits() == 1);
  CHECK(cache.size() == 1);

  CHECK(cache.Get("garbage").status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(cache.size() == 1);

  REQUIRE(cache.Get(other.cert->der()).ok());
  CHECK(cache.size() == 2);
  // Full: a third certificate clears the cache, then is stored.
  Ca third = MakeRoot(KeyAlgorithm::kEcdsaP256, "Third Root");
  REQUIRE(cache.Get(third.cert->der()).ok());
  CHECK(cache.size() == 1);
  auto again = cache.Get(root.cert->der());
  REQUIRE(again.ok());
  CHECK(again->get() != first->get());  // Parsed anew after the clear.
  CHECK(cache.hits() == 1);
}

}  // namespace
}  // namespace darvoza::crypto
