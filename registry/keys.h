// The registry's key material and its files in the data directory (docs/design.md §4):
//   keys/root-ca.key, certs/root-ca.pem                 instance root CA (issues everything)
//   keys/conf-signing-<n>.key, certs/conf-signing-<n>.pem  configuration-signing key n
//   keys/witness.key, certs/witness.pem                 signs witness receipts
//   keys/tls.key, certs/tls.pem                         the public port's TLS identity
//   admin.token                                         the administrator credential (0600)
//   anchor.bin                                          the current ConfigurationAnchor
//   registry.toml                                       the daemon's configuration
//   db/                                                 RegistryStore
// Key files are PKCS#8 PEM with mode 0600; the data directory is mode 0700.
#ifndef DARVOZA_REGISTRY_KEYS_H_
#define DARVOZA_REGISTRY_KEYS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/admin_token.h"
#include "common/clock.h"
#include "common/crypto/keys.h"
#include "common/crypto/x509.h"
#include "proto/globalconf.pb.h"

namespace darvoza::registry {

std::string KeyPath(const std::string& data_dir, const std::string& name);
std::string CertPath(const std::string& data_dir, const std::string& name);
std::string AnchorPath(const std::string& data_dir);
std::string AdminTokenPath(const std::string& data_dir);
std::string DatabasePath(const std::string& data_dir);
std::string ConfigPath(const std::string& data_dir);
std::string ConfSigningName(uint32_t index);  // "conf-signing-<index>"

// Loaded key material. Immutable after loading, except that RotateConf replaces conf_*.
struct RegistryKeys {
  std::unique_ptr<crypto::PrivateKey> root_key;
  std::shared_ptr<const crypto::Certificate> root_cert;
  std::unique_ptr<crypto::PrivateKey> conf_key;
  std::shared_ptr<const crypto::Certificate> conf_cert;
  std::unique_ptr<crypto::PrivateKey> witness_key;
  std::shared_ptr<const crypto::Certificate> witness_cert;
  std::string tls_key_pem;
  std::string tls_cert_pem;
};

// Loads everything, with configuration-signing key `conf_key_index`. NOT_FOUND naming the
// missing file; PERMISSION_DENIED for a key readable by others.
absl::StatusOr<RegistryKeys> LoadRegistryKeys(const std::string& data_dir,
                                              uint32_t conf_key_index);

// The public port's TLS identity as PEM (key, certificate). Errors as LoadRegistryKeys.
absl::StatusOr<std::pair<std::string, std::string>> LoadTlsKeyPair(const std::string& data_dir);

// Makes configuration-signing key `index` and its certificate (issued by the root CA with CN
// ConfSigningCommonName(instance), serial `cert_serial`), writing both files.
absl::Status CreateConfSigningKey(const std::string& data_dir, const std::string& instance,
                                  uint32_t index, uint64_t cert_serial,
                                  const crypto::PrivateKey& root_key,
                                  const crypto::Certificate& root_cert, absl::Time now);

// Writes `anchor` to `path` atomically (temporary file + rename), mode 0644.
absl::Status WriteAnchorFile(const std::string& path, const v1::ConfigurationAnchor& anchor);

// A registry address for the anchor, which every security server dials: ParseDialAddress
// (common/host_port.h). INVALID_ARGUMENT quoting the address (escaped) and saying why.
// `registry init` and `anchor set-addresses` share it.
absl::Status CheckAnchorAddress(absl::string_view address);

// The admin token file is read by common/admin_token.h (one rule for both daemons).
using ::darvoza::ReadAdminToken;

struct InitOptions {
  std::string instance;                         // e.g. "UZ"
  std::string data_dir;                         // created (0700) when missing; must be empty
  std::vector<std::string> registry_addresses;  // host:port written into the anchor
  std::string public_listen = "0.0.0.0:4400";   // written into registry.toml
  std::string ops_listen = "127.0.0.1:4402";    // written into registry.toml ("" = off)
  bool auto_approve = false;                    // written into registry.toml
  Clock* clock = nullptr;                       // Default: Clock::Real()
};

// `darvoza registry init`: creates the root CA, the first configuration-signing key, the
// witness key, the TLS identity, the admin token, registry.toml, anchor.bin and the database.
// ALREADY_EXISTS when data_dir already holds a registry; INVALID_ARGUMENT for a bad instance.
absl::StatusOr<v1::ConfigurationAnchor> InitRegistry(const InitOptions& options);

}  // namespace darvoza::registry

#endif  // DARVOZA_REGISTRY_KEYS_H_
