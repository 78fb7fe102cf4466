// The example agency backend: a tax registry answering GetTaxDebt. It counts the calls it
// answers so tests can prove that a refused or failed-over exchange never reached it twice.
//
//   TaxRegistryService service("ss2");
//   builder.RegisterService(&service);
//   ... service.hits() ...
#ifndef DARVOZA_ADAPTERS_EXAMPLES_TAX_REGISTRY_SERVICE_H_
#define DARVOZA_ADAPTERS_EXAMPLES_TAX_REGISTRY_SERVICE_H_

#include <atomic>
#include <string>

#include "proto/example_agency.grpc.pb.h"

namespace darvoza::examples {

class TaxRegistryService final : public v1::TaxRegistry::CallbackService {
 public:
  // `name` is echoed in every answer (answered_by), to tell backends apart.
  explicit TaxRegistryService(std::string name) : name_(std::move(name)) {}

  grpc::ServerUnaryReactor* GetTaxDebt(grpc::CallbackServerContext* ctx,
                                       const v1::TaxDebtRequest* request,
                                       v1::TaxDebtReply* reply) override;
  grpc::ServerWriteReactor<v1::Payment>* StreamPayments(
      grpc::CallbackServerContext* ctx, const v1::PaymentsRequest* request) override;

  // Calls answered so far.
  int64_t hits() const { return hits_.load(); }
  // The x-road-client metadata of the last call (who the provider SS says asked).
  std::string last_client() const;

 private:
  const std::string name_;
  std::atomic<int64_t> hits_{0};
  mutable std::mutex mu_;
  std::string last_client_;
};

}  // namespace darvoza::examples

#endif  // DARVOZA_ADAPTERS_EXAMPLES_TAX_REGISTRY_SERVICE_H_
