#include "adapters/examples/tax_registry_service.h"

#include <mutex>

namespace darvoza::examples {

grpc::ServerUnaryReactor* TaxRegistryService::GetTaxDebt(grpc::CallbackServerContext* ctx,
                                                         const v1::TaxDebtRequest* request,
                                                         v1::TaxDebtReply* reply) {
  auto* reactor = ctx->DefaultReactor();
  if (request->person_id().empty()) {
    reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "person_id is required"));
    return reactor;
  }
  hits_.fetch_add(1);
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = ctx->client_metadata().find("x-road-client");
    last_client_ = it == ctx->client_metadata().end()
                       ? std::string()
                       : std::string(it->second.data(), it->second.size());
  }
  // A deterministic answer: the debt is derived from the person id.
  int64_t debt = 0;
  for (char c : request->person_id()) debt = (debt * 31 + static_cast<unsigned char>(c)) % 1000000;
  reply->set_person_id(request->person_id());
  reply->set_debt_tiyin(debt);
  reply->set_as_of("2026-11-26");
  reply->set_answered_by(name_);
  ctx->AddTrailingMetadata("x-tax-registry-version", "1");
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerWriteReactor<v1::Payment>* TaxRegistryService::StreamPayments(
    grpc::CallbackServerContext* /*ctx*/, const v1::PaymentsRequest* /*request*/) {
  class Done final : public grpc::ServerWriteReactor<v1::Payment> {
   public:
    Done() { Finish(grpc::Status::OK); }
    void OnDone() override { delete this; }
  };
  return new Done();
}

std::string TaxRegistryService::last_client() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_client_;
}

}  // namespace darvoza::examples
