#include "registry/keys.h"

#include <sys/stat.h>

#include <filesystem>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/crypto/hash.h"
#include "common/globalconf.h"
#include "common/host_port.h"
#include "common/identifiers.h"
#include "common/status_macros.h"
#include "registry/config.h"
#include "common/files.h"
#include "registry/store.h"
#include "proto/registry.pb.h"

namespace darvoza::registry {
namespace {

constexpr uint64_t kRootSerial = 1;
constexpr uint64_t kWitnessSerial = 2;
constexpr uint64_t kTlsSerial = 3;
constexpr uint64_t kFirstConfSerial = 4;
constexpr uint64_t kFirstFreeSerial = 5;

absl::Status WriteCert(const std::string& path, const crypto::Certificate& cert) {
  return WriteFileAtomically(path, cert.ToPem(), 0644);
}

}  // namespace

std::string KeyPath(const std::string& d, const std::string& name) {
  return absl::StrCat(d, "/keys/", name, ".key");
}
std::string CertPath(const std::string& d, const std::string& name) {
  return absl::StrCat(d, "/certs/", name, ".pem");
}
std::string AnchorPath(const std::string& d) { return d + "/anchor.bin"; }
std::string AdminTokenPath(const std::string& d) { return d + "/admin.token"; }
std::string DatabasePath(const std::string& d) { return d + "/db"; }
std::string ConfigPath(const std::string& d) { return d + "/registry.toml"; }
std::string ConfSigningName(uint32_t index) { return absl::StrCat("conf-signing-", index); }

absl::StatusOr<RegistryKeys> LoadRegistryKeys(const std::string& d, uint32_t conf_key_index) {
  RegistryKeys keys;
  DARVOZA_ASSIGN_OR_RETURN(keys.root_key, crypto::PrivateKey::LoadFromFile(KeyPath(d, "root-ca")));
  DARVOZA_ASSIGN_OR_RETURN(keys.root_cert, crypto::Certificate::LoadFromFile(CertPath(d, "root-ca")));
  std::string conf_name = ConfSigningName(conf_key_index);
  DARVOZA_ASSIGN_OR_RETURN(keys.conf_key, crypto::PrivateKey::LoadFromFile(KeyPath(d, conf_name)));
  DARVOZA_ASSIGN_OR_RETURN(keys.conf_cert, crypto::Certificate::LoadFromFile(CertPath(d, conf_name)));
  DARVOZA_ASSIGN_OR_RETURN(keys.witness_key, crypto::PrivateKey::LoadFromFile(KeyPath(d, "witness")));
  DARVOZA_ASSIGN_OR_RETURN(keys.witness_cert,
                           crypto::Certificate::LoadFromFile(CertPath(d, "witness")));
  DARVOZA_ASSIGN_OR_RETURN(auto tls, LoadTlsKeyPair(d));
  keys.tls_key_pem = std::move(tls.first);
  keys.tls_cert_pem = std::move(tls.second);
  return keys;
}

absl::StatusOr<std::pair<std::string, std::string>> LoadTlsKeyPair(const std::string& d) {
  // The TLS key goes to gRPC as PEM; loading it first checks its mode and form.
  DARVOZA_ASSIGN_OR_RETURN(auto tls_key, crypto::PrivateKey::LoadFromFile(KeyPath(d, "tls")));
  DARVOZA_ASSIGN_OR_RETURN(auto tls_cert, crypto::Certificate::LoadFromFile(CertPath(d, "tls")));
  return std::make_pair(tls_key->ToPem(), tls_cert->ToPem());
}

absl::Status CreateConfSigningKey(const std::string& d, const std::string& instance,
                                  uint32_t index, uint64_t cert_serial,
                                  const crypto::PrivateKey& root_key,
                                  const crypto::Certificate& root_cert, absl::Time now) {
  DARVOZA_ASSIGN_OR_RETURN(auto key, crypto::PrivateKey::Generate(crypto::KeyAlgorithm::kEcdsaP256));
  crypto::IssueOptions opts;
  opts.serial = cert_serial;
  opts.not_before = now - absl::Minutes(5);
  opts.not_after = now + absl::Hours(24 * 365 * 3);
  opts.profile = crypto::CertificateProfile::kSigning;
  DARVOZA_ASSIGN_OR_RETURN(auto cert, crypto::IssueCertificate(root_key, &root_cert,
                                                               *key->GetPublicKey(),
                                                               ConfSigningCommonName(instance), opts));
  std::string name = ConfSigningName(index);
  DARVOZA_RETURN_IF_ERROR(key->SaveToFile(KeyPath(d, name)));
  return WriteCert(CertPath(d, name), *cert);
}

absl::Status WriteAnchorFile(const std::string& path, const v1::ConfigurationAnchor& anchor) {
  return WriteFileAtomically(path, anchor.SerializeAsString(), 0644);
}

absl::Status CheckAnchorAddress(absl::string_view address) {
  absl::StatusOr<HostPort> parsed = ParseDialAddress(address);
  if (parsed.ok()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("registry address '", absl::CHexEscape(address),
                                                 "' is not host:port: ",
                                                 parsed.status().message()));
}

absl::StatusOr<v1::ConfigurationAnchor> InitRegistry(const InitOptions& options) {
  // Checked before anything is written: a bad address must not leave a half-made data dir.
  for (const auto& a : options.registry_addresses) DARVOZA_RETURN_IF_ERROR(CheckAnchorAddress(a));
  Clock* clock = options.clock != nullptr ? options.clock : Clock::Real();
  absl::Status part = ValidateIdentifierPart(options.instance);
  if (!part.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("instance '", options.instance, "' is not a valid identifier part: ",
                     part.message()));
  }
  if (options.data_dir.empty()) return absl::InvalidArgumentError("--data-dir is required");
  std::error_code ec;
  // registry.toml names the directory absolutely, so the daemon may start from anywhere.
  const std::string d = std::filesystem::absolute(options.data_dir, ec).lexically_normal().string();
  if (ec) return absl::InvalidArgumentError(absl::StrCat("bad --data-dir: ", ec.message()));
  if (std::filesystem::exists(DatabasePath(d), ec) || std::filesystem::exists(AnchorPath(d), ec)) {
    return absl::AlreadyExistsError(
        absl::StrCat(d, " already holds a registry; use a fresh directory"));
  }
  DARVOZA_RETURN_IF_ERROR(MakeDirectory(d, 0700));
  DARVOZA_RETURN_IF_ERROR(MakeDirectory(d + "/keys", 0700));
  DARVOZA_RETURN_IF_ERROR(MakeDirectory(d + "/certs", 0755));
  const absl::Time now = clock->Now();
  const absl::Time not_before = now - absl::Minutes(5);

  DARVOZA_ASSIGN_OR_RETURN(auto root_key, crypto::PrivateKey::Generate(crypto::KeyAlgorithm::kEcdsaP256));
  crypto::IssueOptions root_opts;
  root_opts.serial = kRootSerial;
  root_opts.not_before = not_before;
  root_opts.not_after = now + absl::Hours(24 * 365 * 20);
  root_opts.profile = crypto::CertificateProfile::kRootCa;
  DARVOZA_ASSIGN_OR_RETURN(
      auto root_cert,
      crypto::IssueCertificate(*root_key, nullptr, *root_key->GetPublicKey(),
                               absl::StrCat("registry:", options.instance, "/root-ca"), root_opts));
  DARVOZA_RETURN_IF_ERROR(root_key->SaveToFile(KeyPath(d, "root-ca")));
  DARVOZA_RETURN_IF_ERROR(WriteCert(CertPath(d, "root-ca"), *root_cert));

  auto issue_own = [&](const std::string& name, const std::string& cn, uint64_t serial,
                       crypto::CertificateProfile profile) -> absl::Status {
    DARVOZA_ASSIGN_OR_RETURN(auto key, crypto::PrivateKey::Generate(crypto::KeyAlgorithm::kEcdsaP256));
    crypto::IssueOptions opts;
    opts.serial = serial;
    opts.not_before = not_before;
    opts.not_after = now + absl::Hours(24 * 365 * 5);
    opts.profile = profile;
    DARVOZA_ASSIGN_OR_RETURN(auto cert, crypto::IssueCertificate(*root_key, root_cert.get(),
                                                                 *key->GetPublicKey(), cn, opts));
    DARVOZA_RETURN_IF_ERROR(key->SaveToFile(KeyPath(d, name)));
    return WriteCert(CertPath(d, name), *cert);
  };
  DARVOZA_RETURN_IF_ERROR(issue_own("witness", WitnessCommonName(options.instance), kWitnessSerial,
                                    crypto::CertificateProfile::kSigning));
  DARVOZA_RETURN_IF_ERROR(issue_own("tls", RegistryTlsCommonName(options.instance), kTlsSerial,
                                    crypto::CertificateProfile::kTlsAuth));
  DARVOZA_RETURN_IF_ERROR(CreateConfSigningKey(d, options.instance, 1, kFirstConfSerial, *root_key,
                                               *root_cert, now));
  DARVOZA_ASSIGN_OR_RETURN(auto conf_cert, crypto::Certificate::LoadFromFile(
                                               CertPath(d, ConfSigningName(1))));

  DARVOZA_RETURN_IF_ERROR(WriteFileAtomically(
      AdminTokenPath(d), crypto::HexEncode(crypto::RandomBytes(32)) + "\n", 0600));

  RegistryConfig config;
  config.data_dir = d;
  config.public_listen = options.public_listen;
  config.ops_listen = options.ops_listen;
  config.auto_approve = options.auto_approve;
  DARVOZA_RETURN_IF_ERROR(WriteFileAtomically(ConfigPath(d), FormatRegistryConfig(config), 0644));

  v1::ConfigurationAnchor anchor;
  anchor.set_instance(options.instance);
  for (const auto& a : options.registry_addresses) anchor.add_registry_addresses(a);
  anchor.set_root_ca_cert_der(root_cert->der());
  anchor.add_conf_signing_cert_der(conf_cert->der());
  anchor.set_generated_at_unix_nanos(absl::ToUnixNanos(now));
  DARVOZA_RETURN_IF_ERROR(WriteAnchorFile(AnchorPath(d), anchor));

  DARVOZA_ASSIGN_OR_RETURN(auto store, RegistryStore::Open(DatabasePath(d), /*create=*/true));
  v1::RegistryState state;
  state.set_instance(options.instance);
  state.set_conf_serial(0);
  state.set_next_cert_serial(kFirstFreeSerial);
  state.set_conf_key_index(1);
  StoreBatch batch;
  batch.Put("state", state.SerializeAsString());
  batch.Put("anchor", anchor.SerializeAsString());
  DARVOZA_RETURN_IF_ERROR(store->Write(batch));
  return anchor;
}

}  // namespace darvoza::registry
