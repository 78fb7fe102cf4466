// RegistryClient: the security server's side of the registry's public port (docs/design.md §4):
// server-authenticated TLS whose certificate must chain to the anchor's root CA and name the
// registry (CN RegistryTlsCommonName(instance)), so an SS that holds nothing but the anchor
// still knows it talks to the real registry.
//
// Also the gRPC implementation of audit::Witness (the registry witnesses the SS's seals).
//
//   auto registry = RegistryClient::Create(anchor, {});
//   DARVOZA_ASSIGN_OR_RETURN(v1::RequestRecord r, registry->Submit(request, absl::Seconds(5)));
//
// Thread-safe.
#ifndef DARVOZA_SECURITY_SERVER_REGISTRY_CLIENT_H_
#define DARVOZA_SECURITY_SERVER_REGISTRY_CLIENT_H_

#include <memory>
#include <string>
#include <vector>

#include <grpcpp/channel.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "audit/witness.h"
#include "proto/globalconf.pb.h"
#include "proto/registry.grpc.pb.h"

namespace darvoza::ss {

class RegistryClient {
 public:
  // `addresses`: registry public ports to try in order; empty means the anchor's.
  static std::unique_ptr<RegistryClient> Create(const v1::ConfigurationAnchor& anchor,
                                                std::vector<std::string> addresses);

  // Registration.Submit / GetStatus on the first registry that answers. The registry's status
  // and fault otherwise; UNAVAILABLE when none answered within `timeout`.
  absl::StatusOr<v1::RequestRecord> Submit(const v1::SubmitRequest& request,
                                           absl::Duration timeout);
  absl::StatusOr<v1::RequestRecord> GetStatus(const std::string& request_id,
                                              absl::Duration timeout);
  // GlobalConfService.Get.
  absl::StatusOr<v1::SignedGlobalConf> GetConf(absl::Duration timeout);

  // Points the client at `addresses` (empty: the anchor's), trusting `anchor`'s root CA: after
  // the operator installed a new anchor (SIGHUP). Calls in flight finish on the old channels.
  void Reset(const v1::ConfigurationAnchor& anchor, std::vector<std::string> addresses);

  std::vector<std::string> addresses() const;
  // One channel per address, in order.
  std::vector<std::shared_ptr<grpc::Channel>> channels() const;

 private:
  RegistryClient() = default;
  mutable absl::Mutex mu_;
  std::vector<std::string> addresses_ ABSL_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<grpc::Channel>> channels_ ABSL_GUARDED_BY(mu_);
};

// audit::Witness over the registry's Witness RPC.
class RegistryWitness final : public audit::Witness {
 public:
  // `client` is not owned and must outlive this.
  explicit RegistryWitness(RegistryClient* client, absl::Duration timeout = absl::Seconds(5))
      : client_(client), timeout_(timeout) {}
  absl::StatusOr<v1::SignedWitnessReceipt> WitnessSeal(const v1::SignedSeal& seal) override;

 private:
  RegistryClient* const client_;
  const absl::Duration timeout_;
};

}  // namespace darvoza::ss

#endif  // DARVOZA_SECURITY_SERVER_REGISTRY_CLIENT_H_
