// The check of a signed global configuration against a configuration anchor
// (docs/design.md §4, §6), shared by the registry (self-check before publishing), the
// security server (every configuration it fetches) and `darvoza conf verify`.
//
// Who may sign a configuration: a certificate the anchor lists (pinned), or, for a key
// rollover that SSs holding an older anchor must follow, a successor configuration-signing
// certificate: one issued by the anchor's root CA with subject CN
// ConfSigningCommonName(instance) and the signing profile. The registry never issues that CN
// for a request (request certificates carry server:/member: CNs), so only the registry's own
// rotate-conf can make one. docs/registry.md explains the rollover.
//
//   DARVOZA_ASSIGN_OR_RETURN(ConfigurationAnchor anchor, LoadConfigurationAnchor(path));
//   DARVOZA_ASSIGN_OR_RETURN(GlobalConf conf,
//                            VerifySignedGlobalConf(signed_conf, anchor, clock->Now(), last));
#ifndef DARVOZA_COMMON_GLOBALCONF_H_
#define DARVOZA_COMMON_GLOBALCONF_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/crypto/x509.h"
#include "proto/globalconf.pb.h"

namespace darvoza {

using v1::ConfigurationAnchor;
using v1::GlobalConf;
using v1::SignedGlobalConf;

// Subject CNs of the registry's own certificates.
std::string ConfSigningCommonName(absl::string_view instance);  // registry:UZ/conf-signing
std::string WitnessCommonName(absl::string_view instance);      // registry:UZ/witness
std::string RegistryTlsCommonName(absl::string_view instance);  // registry:UZ

// The revocations `revoked` lists (a GlobalConf's, or the registry's own state's), with their
// revoked_at times, as crypto::VerifyChain takes them: the one place they are turned into a
// RevocationList. Listing one pair twice (configurations merged) keeps its earliest time.
crypto::RevocationList RevocationListOf(
    const google::protobuf::RepeatedPtrField<v1::RevokedCertificate>& revoked);

// Checks `signed_conf` against `anchor` at time `now` and returns the decoded configuration.
// Each failure has its own message; the fault is Server.ClientProxy.InvalidConfiguration
// except expiry (Server.ClientProxy.ConfigurationExpired):
//   INVALID_ARGUMENT    not a SignedGlobalConf / signer certificate unreadable / conf unreadable
//   UNAUTHENTICATED     signer not trusted by the anchor; signature does not verify
//   FAILED_PRECONDITION instance differs from the anchor's; serial not newer than
//                       `last_accepted_serial` (when given); expired at `now`
absl::StatusOr<GlobalConf> VerifySignedGlobalConf(
    const SignedGlobalConf& signed_conf, const ConfigurationAnchor& anchor, absl::Time now,
    std::optional<uint64_t> last_accepted_serial = std::nullopt);

// The same, for serialized SignedGlobalConf bytes (a file, a mirror download).
absl::StatusOr<GlobalConf> VerifySignedGlobalConfBytes(
    absl::string_view signed_conf_bytes, const ConfigurationAnchor& anchor, absl::Time now,
    std::optional<uint64_t> last_accepted_serial = std::nullopt);

// Reads an anchor file (a serialized ConfigurationAnchor). NOT_FOUND when missing,
// INVALID_ARGUMENT when unreadable or without instance / root CA / signing certificate.
absl::StatusOr<ConfigurationAnchor> LoadConfigurationAnchor(const std::string& path);

// A readable multi-line rendering of a configuration (for `conf show`).
std::string DescribeGlobalConf(const GlobalConf& conf);

}  // namespace darvoza

#endif  // DARVOZA_COMMON_GLOBALCONF_H_
