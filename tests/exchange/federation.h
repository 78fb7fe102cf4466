// A whole Darvoza federation in one test process: a registry and any number of security
// servers, each a real daemon library (RegistryServer, ss::Node) serving real gRPC over real
// loopback sockets with real certificates, set up the way an operator would (init, register,
// hosting request, services, access rights) in a temporary directory.
//
//   Federation fed;
//   fed.AddMember("UZ/GOV/70000001", "Tax Committee");
//   auto& ss1 = fed.StartSecurityServer("UZ/GOV/70000001/ss1");
//   fed.Host(ss1, "UZ/GOV/70000001/tax-registry");
//   fed.AddService(ss1, "UZ/GOV/70000001/tax-registry", "darvoza.examples.v1.TaxRegistry",
//                  backend_address);
//   fed.WaitForConfEverywhere();
#ifndef DARVOZA_TESTS_EXCHANGE_FEDERATION_H_
#define DARVOZA_TESTS_EXCHANGE_FEDERATION_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "audit/archive.h"
#include "common/clock.h"
#include "proto/globalconf.pb.h"
#include "proto/security_server.grpc.pb.h"
#include "registry/registry.h"
#include "registry/server.h"
#include "security_server/config.h"
#include "security_server/node.h"
#include "tests/test_support.h"

namespace darvoza::testing {

// A port that was free a moment ago (for SS-to-SS addresses, which are registered before the
// server binds them).
int PickFreePort();

class Federation {
 public:
  struct SecurityServer {
    std::string id;
    std::string data_dir;
    ss::SsConfig config;
    std::unique_ptr<ss::Node> node;
    std::unique_ptr<v1::SecurityServerAdmin::Stub> admin;
    std::string admin_token;

    // The plaintext client port, host:port.
    std::string client_address() const { return node->addresses().client; }
    std::string client_tls_address() const { return node->addresses().client_tls; }
    // The plaintext REST port, host:port.
    std::string rest_address() const { return node->addresses().rest; }
    // The REST port over TLS, host:port.
    std::string rest_tls_address() const { return node->addresses().rest_tls; }
  };

  // Initialises and starts a registry (auto-approving, for tests) of instance `instance`.
  // `clock` (not owned) drives the registry and every security server; null: the real clock.
  explicit Federation(const std::string& instance = "UZ", Clock* clock = nullptr);
  ~Federation();
  Federation(const Federation&) = delete;
  Federation& operator=(const Federation&) = delete;

  registry::Registry& registry() { return *registry_server_->registry(); }
  const v1::ConfigurationAnchor& anchor() const { return anchor_; }
  const std::string& anchor_file() const { return anchor_file_; }
  std::string registry_address() const { return registry_server_->addresses().public_address; }
  Clock* clock() const { return clock_; }
  const std::string& root() const { return dir_.path(); }

  void AddMember(const std::string& member, const std::string& name);
  void AddSubsystem(const std::string& subsystem);

  // `ss init` + `ss register` (approved at once) + the daemon, holding signing keys for
  // `members` (default: the owner).
  // `ss_port`: the SS-to-SS port to listen on (0: a free one).
  SecurityServer& StartSecurityServer(const std::string& server_id,
                                      std::vector<std::string> members = {}, int ss_port = 0);
  // Stops the daemon (keeping its data directory) / starts it again on the same ports.
  void StopSecurityServer(SecurityServer& ss);
  void RestartSecurityServer(SecurityServer& ss);

  // Hosting request through the SS's admin API (approved by the registry at once). `tls_pin`:
  // SHA-256 of the IS certificate for mTLS mode; empty: plaintext mode.
  void Host(SecurityServer& ss, const std::string& subsystem, const std::string& tls_pin = "");
  // Registers `service_code` of `subsystem` with a grpc:// backend on `ss`.
  void AddService(SecurityServer& ss, const std::string& subsystem,
                  const std::string& service_code, const std::string& backend_address);
  // The same with the backend as the operator gives it (grpc://..., http(s)://...) and the
  // service's timeout (0: the default).
  void AddServiceAt(SecurityServer& ss, const std::string& subsystem,
                    const std::string& service_code, const std::string& backend,
                    int timeout_millis = 0);
  // Grants `subject` (kind-prefixed) the right to call `service` / takes it away again.
  void Grant(SecurityServer& ss, const std::string& service, const std::string& subject);
  void Revoke(SecurityServer& ss, const std::string& service, const std::string& subject);

  // Every record of `ss`'s log, sealed, witnessed and verified offline with the anchor, as
  // `darvoza audit verify` does.
  audit::VerifyReport VerifyAuditLog(SecurityServer& ss);

  // Stops the registry (security servers keep their last configuration).
  void StopRegistry();

  // Waits (up to 20 s) until every running SS holds the registry's current configuration.
  void WaitForConfEverywhere();

  // A context for an admin call on `ss` (token attached).
  std::unique_ptr<grpc::ClientContext> AdminContext(const SecurityServer& ss) const;

 private:
  TempDir dir_;
  Clock* const clock_;
  std::string instance_;
  v1::ConfigurationAnchor anchor_;
  std::string anchor_file_;
  std::unique_ptr<registry::RegistryServer> registry_server_;
  std::map<std::string, std::unique_ptr<SecurityServer>> servers_;
};

}  // namespace darvoza::testing

#endif  // DARVOZA_TESTS_EXCHANGE_FEDERATION_H_
