// Setting a security server up before its daemon runs: `darvoza ss init` and
// `darvoza ss register` (docs/design.md §4).
//
//   init:     data directory (0700) with the anchor, ss.toml, admin.token (0600), the auth,
//             seal and signing keys (0600) and their CSRs.
//   register: sends the CSRs to the registry's public port (TLS trusted through the anchor),
//             then waits for or polls the outcome and stores the issued certificates. The
//             request id is kept in <data dir>/registration.request, so running it again
//             polls instead of submitting twice.
#ifndef DARVOZA_SECURITY_SERVER_PROVISIONING_H_
#define DARVOZA_SECURITY_SERVER_PROVISIONING_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proto/globalconf.pb.h"
#include "proto/registry.pb.h"
#include "security_server/config.h"

namespace darvoza::ss {

struct InitOptions {
  // Data directory, server id and the listen settings go into ss.toml. config.data_dir and
  // config.server_id are required.
  SsConfig config;
  // The configuration anchor file to install (copied to <data dir>/anchor.bin).
  std::string anchor_file;
  // Members whose signing keys this SS holds. Default: the server's owner.
  std::vector<std::string> members;
};

// ALREADY_EXISTS when the data directory already holds keys; INVALID_ARGUMENT for a bad id
// or anchor; the anchor's instance must be the server id's.
absl::Status InitSecurityServer(const InitOptions& options);

struct RegisterOptions {
  std::string data_dir;  // made by InitSecurityServer
  // Registry public ports; empty: ss.toml's registry_addresses, else the anchor's.
  std::vector<std::string> registry_addresses;
  // How long to wait for approval; zero: submit (or look once) and return.
  absl::Duration wait = absl::ZeroDuration();
  absl::Duration poll_interval = absl::Seconds(1);
  // While the registry does not answer (and `wait` has not run out), the pause before the next
  // attempt doubles from poll_interval up to this.
  absl::Duration max_backoff = absl::Seconds(30);
  // How often a still-PENDING request is reported while waiting.
  absl::Duration progress_interval = absl::Seconds(30);
  // Receives each line of progress as it happens: the request id once submitted, a request
  // still pending, the registry not answering. May be empty.
  std::function<void(const std::string&)> progress;
};

// The registry addresses `ss register` dials and where they come from: the --registry flag,
// ss.toml's registry_addresses, or the anchor, in that order of precedence.
struct RegistryAddressChoice {
  std::vector<std::string> addresses;
  std::string source;  // "--registry", "ss.toml registry_addresses" or "the anchor"
};
RegistryAddressChoice ChooseRegistryAddresses(const std::vector<std::string>& flag,
                                              const SsConfig& config,
                                              const v1::ConfigurationAnchor& anchor);

// Submits the registration (or looks up the one submitted before) and waits up to
// options.wait for a decision, retrying with backoff while the registry does not answer. On
// APPROVED the certificates are stored. Returns the request record (PENDING when still
// undecided). FAILED_PRECONDITION when REJECTED (with the reason); UNAVAILABLE when no registry
// answered before options.wait ran out.
absl::StatusOr<v1::RequestRecord> RegisterSecurityServer(const RegisterOptions& options);

// <data dir>/admin.token, the admin API's credential: common/admin_token.h's ReadAdminToken.
absl::StatusOr<std::string> ReadAdminToken(const std::string& data_dir);

}  // namespace darvoza::ss

#endif  // DARVOZA_SECURITY_SERVER_PROVISIONING_H_
