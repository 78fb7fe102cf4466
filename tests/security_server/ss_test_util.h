// Helpers for the security server's tests: a registry served in-process on port 0 (restartable
// on the same port), security servers set up as an operator would (init, register, approval,
// daemon), admin stubs, generic calls and TLS client channels with throw-away certificates.
#ifndef DARVOZA_TESTS_SECURITY_SERVER_SS_TEST_UTIL_H_
#define DARVOZA_TESTS_SECURITY_SERVER_SS_TEST_UTIL_H_

#include <functional>
#include <memory>
#include <string>

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/support/byte_buffer.h>

#include "absl/time/time.h"
#include "common/clock.h"
#include "common/crypto/keys.h"
#include "common/crypto/x509.h"
#include "proto/security_server.grpc.pb.h"
#include "registry/config.h"
#include "registry/registry.h"
#include "registry/server.h"
#include "security_server/config.h"
#include "security_server/node.h"
#include "tests/test_support.h"

namespace darvoza::testing {

inline constexpr char kSsInstance[] = "UZ";
inline constexpr char kSsMember[] = "UZ/GOV/70000001";
inline constexpr char kSsServer[] = "UZ/GOV/70000001/ss1";
inline constexpr char kSsSubsystem[] = "UZ/GOV/70000001/tax-registry";

// A registry in `dir`/reg served by RegistryServer with `clock`.
class TestRegistry {
 public:
  struct Options {
    bool auto_approve = false;
    absl::Duration conf_validity = absl::Seconds(600);
    absl::Duration cert_validity = absl::Hours(24 * 365);
  };
  TestRegistry(const std::string& dir, Clock* clock, const Options& options);
  ~TestRegistry();
  // Starts (again, on the same public port after the first start).
  void Start();
  void Stop();
  bool running() const { return server_ != nullptr; }

  registry::Registry& registry() { return *server_->registry(); }
  const std::string& address() const { return address_; }
  std::string anchor_file() const;
  // The serial of the registry's current configuration.
  uint64_t conf_serial();

 private:
  Clock* const clock_;
  registry::RegistryConfig config_;
  std::string address_;
  std::unique_ptr<registry::RegistryServer> server_;
};

// Polls `condition` every 20 ms until it holds or `timeout` (real time) passes.
bool WaitFor(const std::function<bool()>& condition, absl::Duration timeout = absl::Seconds(20));

// `ss init` for kSsServer in `data_dir` against `registry`, with ports on 127.0.0.1:0.
ss::SsConfig InitTestSecurityServer(const std::string& data_dir, TestRegistry& registry);
// `ss register`, approved by the registry's administrator: certificates stored.
void RegisterAndApprove(const std::string& data_dir, TestRegistry& registry);

// Admin access to a running node.
std::unique_ptr<v1::SecurityServerAdmin::Stub> AdminStub(const ss::Node& node);
std::unique_ptr<grpc::ClientContext> AdminContext(const std::string& data_dir);

// A unary call of `method` with raw bytes over any channel. Returns the status; *response gets
// the raw response bytes.
grpc::Status GenericUnary(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                          const std::string& request, std::string* response,
                          grpc::ClientContext* context = nullptr);

// A key and a certificate of its own (self-issued), as an information system might hold.
struct TestIdentity {
  std::unique_ptr<crypto::PrivateKey> key;
  std::shared_ptr<const crypto::Certificate> cert;
  std::string key_pem;
  std::string cert_pem;
};
TestIdentity MakeTestIdentity(const std::string& common_name);
// A TLS channel that presents (key_pem, cert_pem) and accepts any server certificate.
std::shared_ptr<grpc::Channel> TlsChannelWithIdentity(const std::string& address,
                                                      const std::string& key_pem,
                                                      const std::string& cert_pem);

// The SHA-256 of the server certificate a finished call saw; "" when none.
std::string PeerCertSha256(const grpc::ClientContext& context);
std::string FaultOfCall(const grpc::ClientContext& context);

}  // namespace darvoza::testing

#endif  // DARVOZA_TESTS_SECURITY_SERVER_SS_TEST_UTIL_H_
