// Helpers for the registry's tests: an initialised registry in a temporary directory served
// in-process on port 0 (with a SimulatedClock), stubs for its public and admin ports, and
// security-server-side material (keys, CSRs, seals).
#ifndef DARVOZA_TESTS_REGISTRY_REGISTRY_TEST_UTIL_H_
#define DARVOZA_TESTS_REGISTRY_REGISTRY_TEST_UTIL_H_

#include <memory>
#include <string>
#include <vector>

#include <grpcpp/client_context.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/clock.h"
#include "common/crypto/keys.h"
#include "common/crypto/x509.h"
#include "proto/registry.grpc.pb.h"
#include "registry/config.h"
#include "registry/server.h"
#include "tests/test_support.h"

namespace darvoza::testing {

inline constexpr char kInstance[] = "UZ";
inline constexpr char kMember[] = "UZ/GOV/70000001";
inline constexpr char kServer[] = "UZ/GOV/70000001/ss1";

// A registry made by InitRegistry in a TempDir and served by RegistryServer.
class RegistryHarness {
 public:
  struct Options {
    bool auto_approve = false;
    bool auto_approve_renewals = true;
    absl::Duration conf_validity = absl::Seconds(600);
    int64_t max_pending_requests = registry::kDefaultMaxPendingRequests;
  };
  RegistryHarness() : RegistryHarness(Options{}) {}
  explicit RegistryHarness(const Options& options);
  ~RegistryHarness();

  // (Re)starts / stops the server on the same data directory.
  void Start();
  void Stop();
  // conf_validity_seconds as the next Start() reads it (an operator's edit before a restart).
  void SetConfValidity(absl::Duration validity) { config_.conf_validity = validity; }

  registry::RegistryServer& server() { return *server_; }
  SimulatedClock& clock() { return clock_; }
  const std::string& data_dir() const { return dir_.path(); }
  // The registry's own data directory (inside data_dir()): what `--data-dir` names.
  const std::string& registry_dir() const { return config_.data_dir; }
  const v1::ConfigurationAnchor& anchor() const { return anchor_; }
  const std::string& admin_token() const { return token_; }

  std::unique_ptr<v1::Registration::Stub> RegistrationStub();
  std::unique_ptr<v1::GlobalConfService::Stub> ConfStub();
  std::unique_ptr<v1::Witness::Stub> WitnessStub();
  std::unique_ptr<v1::RegistryAdmin::Stub> AdminStub();
  // A context carrying the admin token, with a 10 s deadline.
  std::unique_ptr<grpc::ClientContext> AdminContext();

  // Registration.Submit with a 10 s deadline; `fault` (optional) gets the x-road-error trailer.
  grpc::Status Submit(const v1::SubmitRequest& request, v1::RequestRecord* out,
                      std::string* fault = nullptr);

  // Admin shortcuts that REQUIRE success.
  void AddMember(const std::string& member);
  v1::RequestRecord Approve(const std::string& request_id);
  v1::SignedGlobalConf GetConf();

 private:
  Options options_;
  TempDir dir_;
  SimulatedClock clock_;
  registry::RegistryConfig config_;
  v1::ConfigurationAnchor anchor_;
  std::string token_;
  std::unique_ptr<registry::RegistryServer> server_;
};

// A security server's keys and the requests it makes.
struct FakeSecurityServer {
  explicit FakeSecurityServer(const std::string& id_text = kServer);
  // Registration with auth + seal CSRs (and a signing CSR for the owner member).
  v1::SubmitRequest RegistrationRequest(bool with_signing = true) const;
  // A renewal with fresh keys, signed with `current_auth_key` (context kRegistration).
  v1::SubmitRequest RenewalRequest(const crypto::PrivateKey& current_auth_key);
  v1::SubmitRequest HostingRequest(const std::string& subsystem) const;
  // A seal of [first, last] with chain head `head`, naming (prev_seq, prev_head), signed with
  // the seal key.
  v1::SignedSeal MakeSeal(uint64_t first, uint64_t last, const std::string& head,
                          uint64_t prev_seq, const std::string& prev_head,
                          const std::string& seal_cert_der) const;

  v1::SecurityServerId id;
  std::unique_ptr<crypto::PrivateKey> auth_key;
  std::unique_ptr<crypto::PrivateKey> seal_key;
  std::unique_ptr<crypto::PrivateKey> signing_key;
};

// Makes `request` a renewal: signs its server_registration with `current_auth_key` (context
// kRegistration), as an SS does with its current auth key.
void SignRenewal(v1::SubmitRequest* request, const crypto::PrivateKey& current_auth_key);

// The certificate of `kind` in an approved request record (REQUIRES one).
std::shared_ptr<const crypto::Certificate> CertOf(const v1::RequestRecord& record, v1::CertKind kind);

// The build tree: $DARVOZA_BUILD_DIR, or the one this test was built in.
std::string BuildDir();

struct CommandResult {
  int exit_code;       // -1 when the command did not exit normally (a crash)
  std::string output;  // stdout and stderr together
};
// Runs the real `darvoza` CLI of the build tree with `args` (no shell involved in the args).
CommandResult RunDarvozaCli(const std::vector<std::string>& args);

// The fault (x-road-error trailer) of a finished call.
std::string FaultOf(const grpc::ClientContext& context);

// Decodes the GlobalConf inside (REQUIRES readable).
v1::GlobalConf Decode(const v1::SignedGlobalConf& signed_conf);

// A 32-byte test hash filled with `c`.
std::string Hash32(char c);

}  // namespace darvoza::testing

#endif  // DARVOZA_TESTS_REGISTRY_REGISTRY_TEST_UTIL_H_
