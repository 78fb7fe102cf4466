// ConsumerExchange: the part of the consumer side that the gRPC and REST client interfaces
// share (docs/design.md §5 steps 1-4): once an interface has turned its request into an envelope
// and a body, this checks that the global configuration lists this SS as the client's host, picks
// the provider SSs, signs the envelope with the client member's key, logs the request, sends it
// over mTLS, checks the signed response (signature, message id, provider SS, request hash),
// and logs it with one durable wait. Only an attempt that cannot have reached the provider SS
// (decided from transport-level facts, never from message text or when an x-road-error came
// back) moves on to the next provider SS; a request that may have been sent is never sent
// again. Refusals are logged durably before the interface answers.
//
// An interface derives from it, fills envelope_ and body_, calls CheckHosting() and
// PrepareRoute(), then SendToNextProvider(). Exactly one of Reply() (the verified response is
// durable; CheckAnswer() passed) or FinishRefused() is called afterwards, from a gRPC or audit
// thread; the object may delete itself there. CancelExchange() may be called from any thread.
#ifndef DARVOZA_SECURITY_SERVER_EXCHANGE_CONSUMER_EXCHANGE_H_
#define DARVOZA_SECURITY_SERVER_EXCHANGE_CONSUMER_EXCHANGE_H_

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <grpcpp/client_context.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "proto/envelope.pb.h"
#include "security_server/exchange/exchange_core.h"

namespace darvoza::ss::exchange {

// Test-only: `hook` sees (and may change) every signed request this process's consumer SSs
// are about to put on the wire, after it was logged: a stand-in for whatever lies between two
// security servers. Null removes it. Not for production code.
void SetOutgoingRequestHookForTest(std::function<void(v1::SignedMessage&)> hook);

// Test-only: `hook` sees (and may change) every signed response this process's consumer SSs
// receive from a provider SS, with the request envelope it answers, before any check of it:
// a stand-in for a hostile provider SS. Null removes it. Not for production code.
void SetIncomingResponseHookForTest(
    std::function<void(const v1::Envelope&, v1::SignedMessage&)> hook);

class ConsumerExchange {
 public:
  ConsumerExchange(const ConsumerExchange&) = delete;
  ConsumerExchange& operator=(const ConsumerExchange&) = delete;

 protected:
  // `core` is not owned and must outlive this.
  explicit ConsumerExchange(ExchangeCore* core)
      : core_(core), started_(core->node().clock->MonotonicNow()) {}
  virtual ~ConsumerExchange() = default;

  // Loads the current global configuration into conf_ and checks that it lists this SS as
  // the host of envelope_.client(): a hosting the registry has not (or no longer) approved
  // would only be refused by the provider after signing and sending.
  absl::Status CheckHosting();

  // REQUIRES: CheckHosting() passed; envelope_ holds client, service, call and the client's
  // values; body_ holds the body. Refuses a body over the limit, fills the body hash and the
  // consumer SS, and picks the provider SS candidates (only `pinned` when set) and the
  // client member's signing key.
  absl::Status PrepareRoute(const std::optional<v1::SecurityServerId>& pinned);

  // Signs a fresh envelope for the next candidate and sends it (from this thread, or from the
  // signing task's when the signature is batched: ExchangeCore::SignEnvelope).
  void SendToNextProvider();

  // Cancels the attempt under way, if any. Any thread.
  void CancelExchange() ABSL_LOCKS_EXCLUDED(mu_);

  // Logs the refusal (durably) and then calls FinishRefused(status).
  void Refuse(const absl::Status& status);
  // Counts the finished exchange (ExchangeMetrics): `fault` of the refusal, "" when a provider
  // answered.
  void CountExchange(absl::string_view fault);

  // The interface's own checks of a response already verified as signed by the provider
  // (response_, signed_response_): what it will hand to its client. A failure is refused.
  virtual absl::Status CheckAnswer() = 0;
  // The response passed every check and its record is durable.
  virtual void Reply() = 0;
  // The exchange was refused with `status` (already logged when it came through Refuse).
  virtual void FinishRefused(const absl::Status& status) = 0;
  // The client's address for the log ("" when the interface does not know it).
  virtual std::string ClientPeer() const { return ""; }
  // The client's own deadline, if any.
  virtual std::chrono::system_clock::time_point ClientDeadline() const {
    return std::chrono::system_clock::time_point::max();
  }

  ExchangeCore* const core_;
  const ExchangeCore::InProgress in_progress_{core_};
  const absl::Duration started_;
  std::string body_;
  v1::Envelope envelope_;
  std::shared_ptr<const v1::GlobalConf> conf_;
  v1::SignedMessage signed_request_;
  v1::SignedMessage signed_response_;
  v1::ResponseEnvelope response_;

 private:
  // Logs the signed request and sends it.
  void SendSigned(absl::StatusOr<v1::SignedMessage> signed_request);
  void OnProviderDone(const grpc::Status& status);
  absl::Status VerifyResponse();

  // The current attempt's context. Only this object's own sequence replaces it (never while
  // a call on it is in flight), so the pointer stays valid until the next attempt starts;
  // mu_ orders the replacement against a cancellation from another thread.
  grpc::ClientContext* ProviderContext() ABSL_LOCKS_EXCLUDED(mu_);

  SigningIdentity identity_;
  std::vector<std::shared_ptr<ProviderPeer>> candidates_;
  size_t next_candidate_ = 0;
  std::shared_ptr<ProviderPeer> peer_;
  bool client_verified_ = false;  // CheckHosting passed: envelope_.client() may label metrics
  absl::Status last_error_;
  absl::Time attempt_started_;
  absl::Duration attempt_started_mono_;
  bool ready_at_start_ = false;
  uint64_t handshakes_at_start_ = 0;

  absl::Mutex mu_;
  std::unique_ptr<grpc::ClientContext> provider_ctx_ ABSL_GUARDED_BY(mu_);
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace darvoza::ss::exchange

#endif  // DARVOZA_SECURITY_SERVER_EXCHANGE_CONSUMER_EXCHANGE_H_
