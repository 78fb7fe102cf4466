#include "common/globalconf.h"

#include <fstream>
#include <memory>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/crypto/hash.h"
#include "common/crypto/signer.h"
#include "common/crypto/x509.h"
#include "common/faults.h"
#include "common/identifiers.h"

namespace darvoza {
namespace {

absl::Status Invalid(absl::StatusCode code, absl::string_view message) {
  return Fault(code, faults::kInvalidConfiguration, message);
}

std::string TimeText(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

}  // namespace

std::string ConfSigningCommonName(absl::string_view instance) {
  return absl::StrCat("registry:", instance, "/conf-signing");
}
std::string WitnessCommonName(absl::string_view instance) {
  return absl::StrCat("registry:", instance, "/witness");
}
crypto::RevocationList RevocationListOf(
    const google::protobuf::RepeatedPtrField<v1::RevokedCertificate>& revoked) {
  crypto::RevocationList list;
  for (const v1::RevokedCertificate& r : revoked) {
    // A revocation without its time (an older registry's) counts from the beginning.
    list.Add(r.issuer(), r.serial_hex(),
             r.revoked_at_unix_nanos() == 0 ? absl::InfinitePast()
                                            : absl::FromUnixNanos(r.revoked_at_unix_nanos()));
  }
  return list;
}

std::string RegistryTlsCommonName(absl::string_view instance) {
  return absl::StrCat("registry:", instance);
}

absl::StatusOr<GlobalConf> VerifySignedGlobalConf(const SignedGlobalConf& signed_conf,
                                                  const ConfigurationAnchor& anchor,
                                                  absl::Time now,
                                                  std::optional<uint64_t> last_accepted_serial) {
  auto signer_or = crypto::Certificate::FromDer(signed_conf.signer_cert_der());
  if (!signer_or.ok()) {
    return Invalid(absl::StatusCode::kInvalidArgument,
                   absl::StrCat("configuration signer certificate is unreadable: ",
                                signer_or.status().message()));
  }
  std::shared_ptr<const crypto::Certificate> signer = *std::move(signer_or);
  auto root_or = crypto::Certificate::FromDer(anchor.root_ca_cert_der());
  if (!root_or.ok()) {
    return Invalid(absl::StatusCode::kInvalidArgument,
                   "the anchor's root CA certificate is unreadable");
  }
  std::vector<std::shared_ptr<const crypto::Certificate>> trusted = {*root_or};

  bool pinned = false;
  for (const std::string& der : anchor.conf_signing_cert_der()) {
    if (der == signer->der()) pinned = true;
  }
  if (!pinned && signer->subject_common_name() != ConfSigningCommonName(anchor.instance())) {
    return Invalid(absl::StatusCode::kUnauthenticated,
                   absl::StrCat("configuration signer '", signer->subject_common_name(),
                                "' is neither a configuration-signing certificate of the anchor "
                                "nor a successor issued by its root CA"));
  }
  // Pinned or delegated, the signer must chain to the root at `now` (this also checks its
  // validity period against the caller's clock).
  crypto::CertificateProfile purpose = crypto::CertificateProfile::kSigning;
  absl::Status chain =
      crypto::VerifyChain(*signer, {}, trusted, now, crypto::RevocationList(), &purpose);
  if (!chain.ok()) {
    return Invalid(absl::StatusCode::kUnauthenticated,
                   absl::StrCat("configuration signer certificate is not valid under the "
                                "anchor's root CA: ",
                                chain.message()));
  }
  absl::Status sig = crypto::VerifyWithContext(signer->public_key(),
                                               crypto::SignatureContext::kGlobalConf,
                                               signed_conf.conf(), signed_conf.signature());
  if (!sig.ok()) {
    return Invalid(absl::StatusCode::kUnauthenticated,
                   "configuration signature does not verify: the configuration was changed "
                   "or signed by another key");
  }
  GlobalConf conf;
  if (!conf.ParseFromString(signed_conf.conf())) {
    return Invalid(absl::StatusCode::kInvalidArgument,
                   "configuration bytes are not a GlobalConf");
  }
  if (conf.instance() != anchor.instance()) {
    return Invalid(absl::StatusCode::kFailedPrecondition,
                   absl::StrCat("configuration is for instance '", conf.instance(),
                                "' but the anchor is for '", anchor.instance(), "'"));
  }
  if (last_accepted_serial.has_value() && conf.serial() <= *last_accepted_serial) {
    return Invalid(absl::StatusCode::kFailedPrecondition,
                   absl::StrCat("configuration serial ", conf.serial(),
                                " is not newer than the last accepted serial ",
                                *last_accepted_serial, " (an older or replayed configuration)"));
  }
  absl::Time expires = absl::FromUnixNanos(conf.expires_at_unix_nanos());
  if (now >= expires) {
    return Fault(absl::StatusCode::kFailedPrecondition, faults::kConfigurationExpired,
                 absl::StrCat("configuration serial ", conf.serial(), " expired at ",
                              TimeText(expires), " (now ", TimeText(now), ")"));
  }
  return conf;
}

absl::StatusOr<GlobalConf> VerifySignedGlobalConfBytes(
    absl::string_view signed_conf_bytes, const ConfigurationAnchor& anchor, absl::Time now,
    std::optional<uint64_t> last_accepted_serial) {
  SignedGlobalConf signed_conf;
  if (!signed_conf.ParseFromArray(signed_conf_bytes.data(),
                                  static_cast<int>(signed_conf_bytes.size()))) {
    return Invalid(absl::StatusCode::kInvalidArgument,
                   "not a signed global configuration (unreadable SignedGlobalConf)");
  }
  return VerifySignedGlobalConf(signed_conf, anchor, now, last_accepted_serial);
}

absl::StatusOr<ConfigurationAnchor> LoadConfigurationAnchor(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("anchor file ", path, " cannot be read"));
  std::stringstream ss;
  ss << in.rdbuf();
  ConfigurationAnchor anchor;
  if (!anchor.ParseFromString(ss.str()) || anchor.instance().empty() ||
      anchor.root_ca_cert_der().empty() || anchor.conf_signing_cert_der_size() == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " is not a configuration anchor (made by `darvoza registry init`)"));
  }
  return anchor;
}

std::string DescribeGlobalConf(const GlobalConf& conf) {
  std::ostringstream out;
  out << "instance: " << conf.instance() << "\n";
  out << "serial: " << conf.serial() << "\n";
  out << "generated at: " << TimeText(absl::FromUnixNanos(conf.generated_at_unix_nanos())) << "\n";
  out << "expires at: " << TimeText(absl::FromUnixNanos(conf.expires_at_unix_nanos())) << "\n";
  out << "members (" << conf.members_size() << "):\n";
  for (const auto& m : conf.members()) {
    out << "  " << FormatMemberId(m.id());
    if (!m.name().empty()) out << "  \"" << m.name() << "\"";
    out << "\n";
    for (const auto& s : m.subsystems()) out << "    subsystem " << FormatSubsystemId(s.id()) << "\n";
  }
  out << "security servers (" << conf.security_servers_size() << "):\n";
  for (const auto& s : conf.security_servers()) {
    out << "  " << FormatSecurityServerId(s.id()) << " at " << s.address() << "\n";
    for (const auto& fp : s.auth_cert_sha256()) {
      out << "    auth cert sha256 " << crypto::HexEncode(fp) << "\n";
    }
    for (const auto& h : s.hosted_subsystems()) out << "    hosts " << FormatSubsystemId(h) << "\n";
  }
  out << "global groups (" << conf.global_groups_size() << "):\n";
  for (const auto& g : conf.global_groups()) {
    out << "  " << FormatGlobalGroupId(g.id());
    if (!g.description().empty()) out << "  \"" << g.description() << "\"";
    out << "\n";
    for (const auto& m : g.members()) out << "    " << FormatSubsystemId(m) << "\n";
  }
  out << "approved CAs (" << conf.approved_cas_size() << "):";
  for (const auto& ca : conf.approved_cas()) out << " " << ca.name();
  out << "\n";
  out << "revoked certificates (" << conf.revoked_size() << "):\n";
  for (const auto& r : conf.revoked()) {
    out << "  " << r.issuer() << " serial " << r.serial_hex();
    if (r.revoked_at_unix_nanos() != 0) {
      out << " revoked " << TimeText(absl::FromUnixNanos(r.revoked_at_unix_nanos()));
    }
    out << "\n";
  }
  out << "registry endpoints:";
  for (const auto& e : conf.registry_endpoints()) out << " " << e.address();
  out << "\n";
  return out.str();
}

}  // namespace darvoza
