// The exchange: wires the consumer's client-port services and the provider's SS↔SS
// service around one ExchangeCore, follows new global configurations (closing channels to
// servers that are gone or revoked) and prunes the replay window's nonces.
#include <memory>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "security_server/exchange/consumer.h"
#include "security_server/exchange/exchange_core.h"
#include "security_server/exchange/provider.h"
#include "security_server/exchange/rest_consumer.h"
#include "security_server/global_conf_client.h"
#include "security_server/node_services.h"

namespace darvoza::ss {
namespace {

exchange::ExchangeOptions OptionsFor(const NodeServices& node) {
  exchange::ExchangeOptions options;
  options.batch_signatures = node.batch_signatures;
  return options;
}

class ExchangeImpl final : public Exchange {
 public:
  explicit ExchangeImpl(const NodeServices& node)
      : core_(node, OptionsFor(node)),
        provider_(&core_),
        provider_fallback_(&core_),
        plaintext_client_(&core_, /*tls_port=*/false),
        tls_client_(&core_, /*tls_port=*/true) {
    std::weak_ptr<exchange::ProviderPool> pool = core_.shared_pool();
    node.conf->AddListener([pool](std::shared_ptr<const v1::GlobalConf> conf) {
      if (auto p = pool.lock(); p != nullptr && conf != nullptr) p->OnNewConf(*conf);
    });
    core_.RestoreReplayWindow();
    pruner_ = std::thread([this] { PruneLoop(); });
  }

  ~ExchangeImpl() override { Shutdown(); }

  grpc::Service* SsToSsService() override { return &provider_; }
  grpc::CallbackGenericService* SsToSsFallbackService() override { return &provider_fallback_; }
  grpc::CallbackGenericService* ClientGenericService(bool tls_port) override {
    return tls_port ? &tls_client_ : &plaintext_client_;
  }

  void ServeRest(HttpRequest request, HttpReply reply) override {
    exchange::ServeRestRequest(&core_, std::move(request), std::move(reply));
  }
  HttpResponse RestRefusal(const absl::Status& status) override {
    return exchange::RestFaultResponse(status, "");
  }

  void Shutdown() override {
    {
      absl::MutexLock lock(&mu_);
      if (stop_) return;
      stop_ = true;
    }
    if (pruner_.joinable()) pruner_.join();
  }

 private:
  // Nonces older than the replay window can never be accepted again: forget them once a
  // minute (real time) so the window's memory follows the traffic.
  void PruneLoop() {
    absl::MutexLock lock(&mu_);
    while (!stop_) {
      mu_.AwaitWithTimeout(absl::Condition(&stop_), absl::Minutes(1));
      if (stop_) break;
      mu_.Unlock();
      core_.replay().Prune();
      mu_.Lock();
    }
  }

  exchange::ExchangeCore core_;
  exchange::ProviderService provider_;
  exchange::ProviderFallbackService provider_fallback_;
  exchange::ConsumerService plaintext_client_;
  exchange::ConsumerService tls_client_;
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread pruner_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Exchange>> CreateExchange(const NodeServices& services) {
  return std::make_unique<ExchangeImpl>(services);
}

}  // namespace darvoza::ss
