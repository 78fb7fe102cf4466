#include "security_server/exchange/consumer_exchange.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/crypto/hash.h"
#include "common/faults.h"
#include "common/grpc_status.h"
#include "common/identifiers.h"
#include "common/outside_values.h"
#include "common/status_macros.h"
#include "security_server/exchange/protocol_version.h"
#include "security_server/global_conf_client.h"
#include "security_server/metrics.h"

namespace darvoza::ss::exchange {
namespace {

ABSL_CONST_INIT absl::Mutex g_hook_mu(absl::kConstInit);
std::function<void(v1::SignedMessage&)>* g_outgoing_hook ABSL_GUARDED_BY(g_hook_mu) = nullptr;

std::function<void(const v1::Envelope&, v1::SignedMessage&)>* g_incoming_hook
    ABSL_GUARDED_BY(g_hook_mu) = nullptr;

void ApplyOutgoingHook(v1::SignedMessage& message) {
  absl::MutexLock lock(&g_hook_mu);
  if (g_outgoing_hook != nullptr) (*g_outgoing_hook)(message);
}

void ApplyIncomingHook(const v1::Envelope& request, v1::SignedMessage& response) {
  absl::MutexLock lock(&g_hook_mu);
  if (g_incoming_hook != nullptr) (*g_incoming_hook)(request, response);
}

// Whether the failed attempt cannot have reached the provider SS, so that sending the request
// to another provider SS cannot make it run twice. Decided from transport-level facts only:
// the channel was not READY when the attempt started and no TLS handshake with that provider
// completed during it (so no connection existed that could have carried the request), and
// nothing at all came back from a peer (no initial or trailing metadata, hence no
// x-road-error). Never from the status message: a provider's own refusal can carry the same
// text as gRPC's local connection failure. When in doubt the answer is "maybe sent".
bool NeverSent(const grpc::Status& status, grpc::ClientContext& ctx, bool ready_at_start,
               uint64_t handshakes_at_start, const ProviderPeer& peer) {
  if (status.error_code() != grpc::StatusCode::UNAVAILABLE) return false;
  if (ready_at_start || peer.accepted_handshakes() != handshakes_at_start) return false;
  return ctx.GetServerInitialMetadata().empty() && ctx.GetServerTrailingMetadata().empty();
}

// A provider SS's refusal enters this SS here: its fault code is echoed to the client in a
// trailer and its message is logged, so a fault that is not sendable metadata is dropped
// (the caller then names the failure itself) and a message that is not clean UTF-8 replaced.
absl::Status CheckedPeerStatus(absl::Status status) {
  if (status.ok()) return status;
  std::string fault = FaultCode(status);
  if (!ValidateMetadataEntry("x-road-error", fault).ok()) fault.clear();
  absl::Status checked =
      ValidateStatusMessage(status.message()).ok()
          ? absl::Status(status.code(), status.message())
          : absl::Status(status.code(), "(the provider security server's status message was "
                                        "not valid text and is not shown)");
  return fault.empty() ? checked : WithFault(checked, fault);
}

// Whether `conf` lists this security server `self` as a host of `client`.
bool HostedHere(const v1::GlobalConf& conf, const v1::SecurityServerId& self,
                const v1::SubsystemId& client) {
  for (const v1::SecurityServerEntry& entry : conf.security_servers()) {
    if (!SameSecurityServer(entry.id(), self)) continue;
    for (const v1::SubsystemId& hosted : entry.hosted_subsystems()) {
      if (SameSubsystem(hosted, client)) return true;
    }
  }
  return false;
}

}  // namespace

void SetOutgoingRequestHookForTest(std::function<void(v1::SignedMessage&)> hook) {
  absl::MutexLock lock(&g_hook_mu);
  delete g_outgoing_hook;
  g_outgoing_hook =
      hook ? new std::function<void(v1::SignedMessage&)>(std::move(hook)) : nullptr;
}

void SetIncomingResponseHookForTest(
    std::function<void(const v1::Envelope&, v1::SignedMessage&)> hook) {
  absl::MutexLock lock(&g_hook_mu);
  delete g_incoming_hook;
  g_incoming_hook = hook ? new std::function<void(const v1::Envelope&, v1::SignedMessage&)>(
                               std::move(hook))
                         : nullptr;
}

absl::Status ConsumerExchange::CheckHosting() {
  auto conf = core_->node().conf->Current();
  if (!conf.ok()) return conf.status();
  conf_ = *std::move(conf);
  if (!HostedHere(*conf_, core_->node().self, envelope_.client())) {
    return Fault(absl::StatusCode::kPermissionDenied, faults::kNotAuthorized,
                 absl::StrCat("the global configuration (serial ", conf_->serial(),
                              ") does not list this security server as the host of ",
                              FormatSubsystemId(envelope_.client())));
  }
  client_verified_ = true;  // authenticated by the interface, hosted here per the registry
  return absl::OkStatus();
}

absl::Status ConsumerExchange::PrepareRoute(const std::optional<v1::SecurityServerId>& pinned) {
  if (body_.size() > core_->options().max_message_bytes) {
    return Fault(absl::StatusCode::kResourceExhausted, faults::kInvalidRequest,
                 absl::StrCat("the request body has ", body_.size(), " bytes; at most ",
                              core_->options().max_message_bytes, " are passed through"));
  }
  envelope_.set_body_sha256(crypto::Sha256(body_));
  envelope_.set_body_length(body_.size());
  *envelope_.mutable_consumer_server() = core_->node().self;
  envelope_.set_protocol_version(kProtocolVersion);

  auto candidates = core_->pool().Candidates(*conf_, envelope_.service().subsystem(),
                                             pinned.has_value() ? &*pinned : nullptr);
  if (!candidates.ok()) return candidates.status();
  candidates_ = *std::move(candidates);

  auto identity = core_->node().keys->SigningSigner(envelope_.client().member());
  if (!identity.ok()) {
    return Fault(absl::StatusCode::kFailedPrecondition, faults::kNotAuthorized,
                 absl::StrCat("this security server holds no signing key for member ",
                              FormatMemberId(envelope_.client().member()), ": ",
                              identity.status().message()));
  }
  identity_ = *std::move(identity);
  return absl::OkStatus();
}

void ConsumerExchange::SendToNextProvider() {
  if (next_candidate_ >= candidates_.size()) {
    Refuse(last_error_.ok() ? Fault(absl::StatusCode::kUnavailable, faults::kNetworkError,
                                    "no provider security server could be reached")
                            : last_error_);
    return;
  }
  peer_ = candidates_[next_candidate_++];
  *envelope_.mutable_target_server() = peer_->entry().id();
  envelope_.set_nonce(crypto::RandomBytes(16));
  envelope_.set_created_at_unix_nanos(absl::ToUnixNanos(core_->node().clock->Now()));
  std::string envelope_bytes;
  if (!envelope_.SerializeToString(&envelope_bytes)) {
    Refuse(Fault(absl::StatusCode::kInternal, faults::kInternalError,
                 "cannot serialize the envelope"));
    return;
  }
  core_->SignEnvelope(identity_, crypto::SignatureContext::kRequest, std::move(envelope_bytes),
                      body_, AcceptsBatchSignatures(peer_->protocol_version()),
                      [this](absl::StatusOr<v1::SignedMessage> signed_request) {
                        SendSigned(std::move(signed_request));
                      });
}

void ConsumerExchange::SendSigned(absl::StatusOr<v1::SignedMessage> signed_request) {
  if (!signed_request.ok()) {
    Refuse(WithFault(signed_request.status(), faults::kInternalError));
    return;
  }
  signed_request_ = *std::move(signed_request);

  // The request record joins the next group commit; the response record's durable wait
  // covers it (one durable wait per exchange).
  v1::AuditRecord record =
      SignedMessageRecord(v1::REQUEST_OUT, envelope_, signed_request_, peer_->entry().id());
  record.set_body_sha256(envelope_.body_sha256());  // hashed from body_ in PrepareRoute
  core_->Audit(std::move(record), body_, core_->HashOnly(envelope_.client()),
               ExchangeCore::AuditWait::kQueued, [](absl::Status) {});

  ApplyOutgoingHook(signed_request_);
  attempt_started_ = core_->node().clock->Now();
  attempt_started_mono_ = core_->node().clock->MonotonicNow();
  ready_at_start_ = peer_->channel()->GetState(/*try_to_connect=*/false) == GRPC_CHANNEL_READY;
  handshakes_at_start_ = peer_->accepted_handshakes();
  grpc::ClientContext* call_ctx = nullptr;
  {
    absl::MutexLock lock(&mu_);
    provider_ctx_ = std::make_unique<grpc::ClientContext>();
    auto deadline = std::chrono::system_clock::now() +
                    absl::ToChronoMilliseconds(core_->options().provider_timeout);
    if (ClientDeadline() < deadline) deadline = ClientDeadline();
    provider_ctx_->set_deadline(deadline);
    if (cancelled_) provider_ctx_->TryCancel();
    call_ctx = provider_ctx_.get();
  }
  signed_response_.Clear();
  peer_->stub()->async()->Call(call_ctx, &signed_request_, &signed_response_,
                               [this](grpc::Status status) { OnProviderDone(status); });
}

void ConsumerExchange::CancelExchange() {
  absl::MutexLock lock(&mu_);
  cancelled_ = true;
  if (provider_ctx_ != nullptr) provider_ctx_->TryCancel();
}

grpc::ClientContext* ConsumerExchange::ProviderContext() {
  absl::MutexLock lock(&mu_);
  return provider_ctx_.get();
}

void ConsumerExchange::OnProviderDone(const grpc::Status& status) {
  const absl::Duration latency = core_->node().clock->MonotonicNow() - attempt_started_mono_;
  if (!status.ok()) {
    if (NeverSent(status, *ProviderContext(), ready_at_start_, handshakes_at_start_, *peer_)) {
      core_->pool().ReportConnectionFailure(*peer_);
      if (peer_->RefusedSince(attempt_started_)) {
        last_error_ = Fault(absl::StatusCode::kUnauthenticated, faults::kSslAuthenticationFailed,
                            absl::StrCat("security server ", peer_->key(),
                                         " presented a certificate the global configuration "
                                         "does not list for it"));
      } else {
        last_error_ = Fault(absl::StatusCode::kUnavailable, faults::kNetworkError,
                            absl::StrCat("cannot connect to security server ", peer_->key(),
                                         " at ", peer_->entry().address(), ": ",
                                         status.error_message()));
      }
      SendToNextProvider();
      return;
    }
    absl::Status provider = CheckedPeerStatus(FromGrpcStatus(status, *ProviderContext()));
    if (FaultCode(provider).empty()) {
      absl::string_view fault = faults::kNetworkError;
      if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) fault = faults::kTimeout;
      provider = WithFault(provider, fault);
    }
    Refuse(provider);
    return;
  }
  core_->pool().ReportAnswered(*peer_, latency);
  ApplyIncomingHook(envelope_, signed_response_);
  absl::Status verified = VerifyResponse();
  if (!verified.ok()) {
    Refuse(verified);
    return;
  }
  peer_->NoteProtocolVersion(response_.protocol_version());
  v1::AuditRecord record =
      SignedMessageRecord(v1::RESPONSE_IN, envelope_, signed_response_, peer_->entry().id());
  record.set_body_sha256(response_.body_sha256());  // checked against the body by VerifyResponse
  record.set_grpc_status_code(response_.grpc_status_code());
  record.set_detail(response_.has_http() ? absl::StrCat("HTTP ", response_.http().status())
                                         : response_.status_message());
  core_->Audit(std::move(record), signed_response_.body(), core_->HashOnly(envelope_.client()),
               ExchangeCore::AuditWait::kDurable, [this](absl::Status durable) {
                 if (!durable.ok()) {
                   FinishRefused(durable);
                   return;
                 }
                 Reply();
               });
}

absl::Status ConsumerExchange::VerifyResponse() {
  auto invalid = [](absl::string_view why) {
    return Fault(absl::StatusCode::kUnauthenticated, faults::kClientInvalidSignature, why);
  };
  if (!response_.ParseFromString(signed_response_.envelope())) {
    return invalid("the provider's response envelope is unreadable");
  }
  DARVOZA_RETURN_IF_ERROR(CheckProtocolVersion(response_.protocol_version(),
                                               faults::kClientInvalidProtocolVersion));
  if (response_.request_hash() !=
      RequestHashFor(envelope_, signed_request_.envelope(), body_)) {
    return invalid("the response's request hash does not match the request sent");
  }
  if (response_.message_id() != envelope_.message_id() ||
      !SameSecurityServer(response_.provider_server(), peer_->entry().id())) {
    return invalid("the response names another message or provider security server");
  }
  absl::Status signature = core_->verifier().Verify(
      signed_response_, crypto::SignatureContext::kResponse,
      envelope_.service().subsystem().member(), response_.body_sha256(),
      response_.body_length(), *conf_, core_->node().clock->Now());
  if (!signature.ok()) {
    return invalid(absl::StrCat("the provider's response: ", signature.message()));
  }
  // The backend's answer enters this SS here; the interface hands it on in Reply().
  if (absl::Status answer = CheckAnswer(); !answer.ok()) {
    return Fault(absl::StatusCode::kUnavailable, faults::kServiceFailed,
                 absl::StrCat("the service's answer cannot be passed on: ", answer.message()));
  }
  return absl::OkStatus();
}

void ConsumerExchange::CountExchange(absl::string_view fault) {
  // The service is known to exist only once its provider answered.
  core_->exchange_metrics().Count(
      ExchangeRole::kConsumer,
      fault.empty() ? FormatServiceId(envelope_.service()) : std::string(kUnverifiedLabel),
      client_verified_ ? FormatSubsystemId(envelope_.client()) : std::string(kUnverifiedLabel),
      fault, core_->node().clock->MonotonicNow() - started_);
}

void ConsumerExchange::Refuse(const absl::Status& status) {
  core_->node().metrics->Increment(
      absl::StrCat("darvoza_ss_consumer_refusals_total{fault=\"", FaultCode(status), "\"}"));
  CountExchange(FaultCode(status));
  v1::AuditRecord record;
  record.set_kind(v1::REFUSAL);
  FillRecordFromEnvelope(envelope_, &record);
  if (peer_ != nullptr) *record.mutable_peer_server() = peer_->entry().id();
  record.set_grpc_status_code(static_cast<int32_t>(status.code()));
  record.set_fault_code(FaultCode(status));
  record.set_detail(std::string(status.message()));
  LogRefusal("consumer", record, ClientPeer());
  core_->Audit(std::move(record), std::nullopt, /*hash_only=*/true,
               ExchangeCore::AuditWait::kDurable,
               [this, status](absl::Status) { FinishRefused(status); });
}

}  // namespace darvoza::ss::exchange
