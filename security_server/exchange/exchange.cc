// Placeholder until the exchange (issue 6) lands: no services, so the client ports answer
// UNIMPLEMENTED. The lead owns this directory and replaces this file.
#include "security_server/node_services.h"

namespace darvoza::ss {
namespace {

class NoExchange final : public Exchange {
 public:
  grpc::Service* SsToSsService() override { return nullptr; }
  grpc::CallbackGenericService* ClientGenericService(bool) override { return nullptr; }
  void Shutdown() override {}
};

}  // namespace

absl::StatusOr<std::unique_ptr<Exchange>> CreateExchange(const NodeServices& /*services*/) {
  return std::make_unique<NoExchange>();
}

}  // namespace darvoza::ss
