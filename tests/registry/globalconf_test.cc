// The signed global configuration against the anchor (common/globalconf.h), re-signing, and
// the configuration-signing key rollover.
#include <catch2/catch.hpp>

#include "common/crypto/signer.h"
#include "common/faults.h"
#include "common/globalconf.h"
#include "registry/keys.h"
#include "registry/registry.h"
#include "tests/registry/registry_test_util.h"

namespace darvoza::testing {
namespace {

std::string MessageOf(const absl::StatusOr<v1::GlobalConf>& result) {
  REQUIRE_FALSE(result.ok());
  return std::string(result.status().message());
}

}  // namespace

TEST_CASE("GlobalConf: the published configuration verifies against the anchor", "[registry][conf]") {
  RegistryHarness h;
  h.AddMember(kMember);
  v1::SignedGlobalConf signed_conf = h.GetConf();
  auto conf = VerifySignedGlobalConf(signed_conf, h.anchor(), h.clock().Now());
  INFO(conf.status().ToString());
  REQUIRE(conf.ok());
  CHECK(conf->instance() == "UZ");
  CHECK(conf->serial() >= 2);
  CHECK(conf->members_size() == 1);
  CHECK(!conf->witness_cert_der().empty());
  CHECK(conf->approved_cas_size() == 1);
  CHECK(conf->approved_cas(0).cert_der() == h.anchor().root_ca_cert_der());
  CHECK(absl::FromUnixNanos(conf->expires_at_unix_nanos()) - absl::FromUnixNanos(conf->generated_at_unix_nanos()) ==
        absl::Seconds(600));
  // The file form (conf export) verifies the same way.
  CHECK(VerifySignedGlobalConfBytes(signed_conf.SerializeAsString(), h.anchor(), h.clock().Now()).ok());
}

TEST_CASE("GlobalConf: each kind of bad configuration is refused with its own message",
          "[registry][conf]") {
  RegistryHarness h;
  h.AddMember(kMember);
  const v1::SignedGlobalConf good = h.GetConf();
  const absl::Time now = h.clock().Now();
  const uint64_t serial = Decode(good).serial();

  SECTION("a flipped byte") {
    v1::SignedGlobalConf bad = good;
    std::string bytes = bad.conf();
    bytes[bytes.size() / 2] ^= 0x01;
    bad.set_conf(bytes);
    auto result = VerifySignedGlobalConf(bad, h.anchor(), now);
    CHECK(MessageOf(result).find("signature does not verify") != std::string::npos);
    CHECK(result.status().code() == absl::StatusCode::kUnauthenticated);
    CHECK(ObservedFault(result.status()) == faults::kInvalidConfiguration);
  }
  SECTION("another key's signature, under another CA") {
    RegistryHarness other;  // another instance "UZ" with its own root and keys
    auto other_conf = other.GetConf();
    auto result = VerifySignedGlobalConf(other_conf, h.anchor(), now);
    CHECK(MessageOf(result).find("not valid under the anchor's root CA") != std::string::npos);
  }
  SECTION("another key's signature, with the real signer certificate attached") {
    v1::SignedGlobalConf bad = good;
    auto key = crypto::PrivateKey::Generate(crypto::KeyAlgorithm::kEcdsaP256).value();
    bad.set_signature(key->SignRaw(crypto::SignedBytes(crypto::SignatureContext::kGlobalConf, bad.conf())).value());
    CHECK(MessageOf(VerifySignedGlobalConf(bad, h.anchor(), now)).find("signature does not verify") !=
          std::string::npos);
  }
  SECTION("an older serial") {
    auto result = VerifySignedGlobalConf(good, h.anchor(), now, serial);
    CHECK(MessageOf(result).find("is not newer than the last accepted serial") != std::string::npos);
    CHECK(result.status().code() == absl::StatusCode::kFailedPrecondition);
    CHECK(VerifySignedGlobalConf(good, h.anchor(), now, serial - 1).ok());
  }
  SECTION("an expired configuration") {
    h.clock().Advance(absl::Seconds(601));
    auto result = VerifySignedGlobalConf(good, h.anchor(), h.clock().Now());
    CHECK(MessageOf(result).find("expired at") != std::string::npos);
    CHECK(ObservedFault(result.status()) == faults::kConfigurationExpired);
  }
  SECTION("another instance's anchor") {
    v1::ConfigurationAnchor anchor = h.anchor();
    anchor.set_instance("UZ-TEST");
    // The signer is pinned by the anchor, so it is the instance check that refuses.
    CHECK(MessageOf(VerifySignedGlobalConf(good, anchor, now)).find("is for instance 'UZ'") !=
          std::string::npos);
  }
  SECTION("a certificate from the root that is not a configuration-signing certificate") {
    v1::SignedGlobalConf bad = good;
    auto witness_key = crypto::PrivateKey::LoadFromFile(registry::KeyPath(h.data_dir() + "/reg", "witness")).value();
    auto witness_cert = crypto::Certificate::LoadFromFile(registry::CertPath(h.data_dir() + "/reg", "witness")).value();
    bad.set_signature(
        witness_key->SignRaw(crypto::SignedBytes(crypto::SignatureContext::kGlobalConf, bad.conf())).value());
    bad.set_signer_cert_der(witness_cert->der());
    CHECK(MessageOf(VerifySignedGlobalConf(bad, h.anchor(), now)).find("is neither a configuration-signing") !=
          std::string::npos);
  }
  SECTION("garbage") {
    CHECK(MessageOf(VerifySignedGlobalConfBytes("\x01\x02garbage", h.anchor(), now)).size() > 0);
  }
}

TEST_CASE("GlobalConf: re-signed with a higher serial before it expires, even without changes",
          "[registry][conf]") {
  RegistryHarness h;
  const uint64_t serial = Decode(h.GetConf()).serial();
  // Not yet due.
  CHECK_FALSE(h.server().registry()->RefreshConfIfDue().value());
  h.clock().Advance(absl::Seconds(301));
  CHECK(h.server().registry()->RefreshConfIfDue().value());
  v1::SignedGlobalConf next = h.GetConf();
  CHECK(Decode(next).serial() == serial + 1);
  CHECK(VerifySignedGlobalConf(next, h.anchor(), h.clock().Now(), serial).ok());
  // The first one would have expired by now + 300 s; the new one is still valid.
  h.clock().Advance(absl::Seconds(400));
  CHECK(VerifySignedGlobalConf(next, h.anchor(), h.clock().Now()).ok());
}

TEST_CASE("GlobalConf: raising conf_validity and restarting re-signs before the published one expires",
          "[registry][conf]") {
  RegistryHarness h;  // 600 s
  const v1::SignedGlobalConf published = h.GetConf();
  const uint64_t serial = Decode(published).serial();
  const absl::Time published_expiry = absl::FromUnixNanos(Decode(published).expires_at_unix_nanos());
  h.clock().Advance(absl::Seconds(200));
  h.Stop();
  h.SetConfValidity(absl::Hours(24));  // the operator raises it and restarts
  h.Start();
  CHECK(Decode(h.GetConf()).serial() == serial);  // 200 s of 600: not due yet
  CHECK_FALSE(h.server().registry()->RefreshConfIfDue().value());
  // Half the published configuration's 600 s, not half of the new 24 h.
  h.clock().Advance(absl::Seconds(101));
  CHECK(h.server().registry()->RefreshConfIfDue().value());
  const v1::SignedGlobalConf next = h.GetConf();
  CHECK(Decode(next).serial() == serial + 1);
  // Past the old configuration's expiry the federation still has a valid one, now of 24 h.
  h.clock().SetNow(published_expiry + absl::Seconds(1));
  CHECK(VerifySignedGlobalConf(next, h.anchor(), h.clock().Now(), serial).ok());
  CHECK(absl::FromUnixNanos(Decode(next).expires_at_unix_nanos()) - h.clock().Now() > absl::Hours(23));
}

TEST_CASE("GlobalConf: lowering conf_validity and restarting re-signs at once when it is due by the new one",
          "[registry][conf]") {
  RegistryHarness::Options options;
  options.conf_validity = absl::Hours(24);
  RegistryHarness h(options);
  const uint64_t serial = Decode(h.GetConf()).serial();
  h.clock().Advance(absl::Seconds(400));
  h.Stop();
  h.SetConfValidity(absl::Seconds(600));
  h.Start();
  const v1::GlobalConf conf = Decode(h.GetConf());
  CHECK(conf.serial() == serial + 1);
  CHECK(absl::FromUnixNanos(conf.expires_at_unix_nanos()) - h.clock().Now() <= absl::Seconds(600));
}

TEST_CASE("GlobalConf: after key rotate-conf, new configurations verify with the new and the old anchor",
          "[registry][conf]") {
  RegistryHarness h;
  const v1::ConfigurationAnchor old_anchor = h.anchor();
  const uint64_t serial = Decode(h.GetConf()).serial();

  v1::RotateConfKeyResponse rotated;
  auto context = h.AdminContext();
  grpc::Status status = h.AdminStub()->RotateConfKey(context.get(), v1::AdminEmpty(), &rotated);
  INFO(status.error_message());
  REQUIRE(status.ok());
  v1::ConfigurationAnchor new_anchor;
  REQUIRE(new_anchor.ParseFromString(rotated.anchor()));
  REQUIRE(new_anchor.conf_signing_cert_der_size() == 2);
  CHECK(new_anchor.conf_signing_cert_der(0) == old_anchor.conf_signing_cert_der(0));
  CHECK(new_anchor.root_ca_cert_der() == old_anchor.root_ca_cert_der());
  // anchor.bin in the data directory is the new anchor.
  auto on_disk = LoadConfigurationAnchor(registry::AnchorPath(h.data_dir() + "/reg"));
  REQUIRE(on_disk.ok());
  CHECK(on_disk->SerializeAsString() == new_anchor.SerializeAsString());

  h.AddMember(kMember);
  v1::SignedGlobalConf next = h.GetConf();
  CHECK(Decode(next).serial() > serial);
  CHECK(next.signer_cert_der() == new_anchor.conf_signing_cert_der(1));
  auto with_new = VerifySignedGlobalConf(next, new_anchor, h.clock().Now(), serial);
  INFO(with_new.status().ToString());
  CHECK(with_new.ok());
  auto with_old = VerifySignedGlobalConf(next, old_anchor, h.clock().Now(), serial);
  INFO(with_old.status().ToString());
  CHECK(with_old.ok());

  // The key persists across a restart.
  h.Stop();
  h.Start();
  h.AddMember("UZ/COM/42");
  v1::SignedGlobalConf after = h.GetConf();
  CHECK(after.signer_cert_der() == new_anchor.conf_signing_cert_der(1));
  CHECK(VerifySignedGlobalConf(after, new_anchor, h.clock().Now()).ok());
}

}  // namespace darvoza::testing
