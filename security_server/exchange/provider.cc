#include "security_server/exchange/provider.h"

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <grpcpp/client_context.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/stub_options.h>

#include "absl/algorithm/container.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/crypto/hash.h"
#include "common/crypto/x509.h"
#include "common/faults.h"
#include "common/http_client.h"
#include "common/grpc_status.h"
#include "common/identifiers.h"
#include "common/outside_values.h"
#include "common/rest_request.h"
#include "common/status_macros.h"
#include "proto/exchange.pb.h"
#include "security_server/exchange/envelope_checks.h"
#include "security_server/exchange/protocol_version.h"
#include "security_server/global_conf_client.h"
#include "security_server/local_state.h"
#include "security_server/metrics.h"
#include "security_server/peer_check.h"

namespace darvoza::ss::exchange {
namespace {

// Copies the forwarded entries of a backend's answer, each checked: they are signed into the
// response and handed to gRPC by the consumer SS.
absl::Status CopyBackendMetadata(const std::multimap<grpc::string_ref, grpc::string_ref>& from,
                                 std::vector<v1::MetadataEntry>* to) {
  if (from.size() > kMaxMetadataEntries) {
    return absl::InvalidArgumentError(
        absl::StrCat("more than ", kMaxMetadataEntries, " metadata entries"));
  }
  for (const auto& [key, value] : from) {
    v1::MetadataEntry entry;
    entry.set_key(ToString(key));
    if (!IsForwardedMetadataKey(entry.key())) continue;
    entry.set_value(ToString(value));
    DARVOZA_RETURN_IF_ERROR(ValidateMetadataEntry(entry.key(), entry.value()));
    to->push_back(std::move(entry));
  }
  return absl::OkStatus();
}

// The service-level id (pkg.Svc) of a method-level service code (pkg.Svc.Method): a backend
// and its access rights may be registered for a whole gRPC service.
std::optional<v1::ServiceId> ServiceLevel(const v1::ServiceId& method_level) {
  const std::string& code = method_level.service_code();
  size_t dot = code.rfind('.');
  if (dot == std::string::npos || dot == 0) return std::nullopt;
  v1::ServiceId id = method_level;
  id.set_service_code(code.substr(0, dot));
  return id;
}

class ProviderCall final : public grpc::ServerUnaryReactor {
 public:
  ProviderCall(ExchangeCore* core, grpc::CallbackServerContext* ctx,
               const grpc::ByteBuffer* request, grpc::ByteBuffer* response)
      : core_(core), in_progress_(core), ctx_(ctx), raw_request_(request), response_(response),
        started_(core->node().clock->MonotonicNow()) {}

  void Start() {
    core_->node().metrics->Increment("darvoza_ss_provider_calls_total");
    // The request arrives as bytes so that bytes which are not a SignedMessage get this SS's
    // fault and a log entry, not gRPC's own fault-less refusal.
    grpc::ByteBuffer copy(*raw_request_);
    if (!request_.ParseFromString(ByteBufferToString(copy))) {
      Refuse(Fault(absl::StatusCode::kInvalidArgument, faults::kInvalidMessage,
                   "the request is not a SignedMessage"));
      return;
    }
    absl::Status checked = Check();
    if (!checked.ok()) {
      Refuse(checked);
      return;
    }
    // The request's record is in the store before anything acts on it: the replay window is
    // restored from these records after a restart (ReplayGuard::Restore).
    LogRequest([this](absl::Status written) {
      if (!written.ok()) {
        Refuse(written);
        return;
      }
      if (absl::StartsWith(envelope_.service().service_code(), kMetadataServicePrefix)) {
        AnswerMetadata();
        return;
      }
      if (envelope_.has_http()) {
        CallHttpBackend();
        return;
      }
      CallBackend();
    });
  }

  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
    if (backend_ctx_ != nullptr) backend_ctx_->TryCancel();
  }

  void OnDone() override { delete this; }

 private:
  absl::Status Check() {
    auto conf = core_->node().conf->Current();
    if (!conf.ok()) return conf.status();
    conf_ = *std::move(conf);

    if (!envelope_.ParseFromString(request_.envelope())) {
      return Fault(absl::StatusCode::kInvalidArgument, faults::kInvalidMessage,
                   "the request envelope is unreadable");
    }
    // First: what the other fields mean depends on the version.
    DARVOZA_RETURN_IF_ERROR(
        CheckProtocolVersion(envelope_.protocol_version(), faults::kInvalidProtocolVersion));
    DARVOZA_RETURN_IF_ERROR(ValidateSubsystemId(envelope_.client()));
    DARVOZA_RETURN_IF_ERROR(ValidateServiceId(envelope_.service()));
    DARVOZA_RETURN_IF_ERROR(ValidateSecurityServerId(envelope_.consumer_server()));
    DARVOZA_RETURN_IF_ERROR(ValidateSecurityServerId(envelope_.target_server()));
    if (envelope_.call_case() == v1::Envelope::CALL_NOT_SET) {
      return Fault(absl::StatusCode::kInvalidArgument, faults::kInvalidMessage,
                   "the envelope names neither a gRPC nor an HTTP call");
    }
    if (absl::Status values = ValidateEnvelopeValues(envelope_); !values.ok()) {
      // Nothing of an envelope that failed the check is copied into the refusal's record
      // (its bytes are kept as they came, in the record's `envelope`).
      envelope_.Clear();
      return values;
    }

    // The TLS peer (already checked in the handshake to be some SS of the instance) must be
    // the consumer SS the envelope names, and that SS must host the client.
    DARVOZA_RETURN_IF_ERROR(CheckPeer());

    if (!SameSecurityServer(envelope_.target_server(), core_->node().self)) {
      return Fault(absl::StatusCode::kPermissionDenied, faults::kWrongTargetServer,
                   absl::StrCat("the request is addressed to ",
                                FormatSecurityServerId(envelope_.target_server()),
                                ", not to this security server ",
                                FormatSecurityServerId(core_->node().self)));
    }
    DARVOZA_RETURN_IF_ERROR(core_->verifier().Verify(
        request_, crypto::SignatureContext::kRequest, envelope_.client().member(),
        envelope_.body_sha256(), envelope_.body_length(), *conf_, core_->node().clock->Now()));
    DARVOZA_RETURN_IF_ERROR(core_->replay().CheckAndRecord(
        envelope_.consumer_server(), envelope_.nonce(),
        absl::FromUnixNanos(envelope_.created_at_unix_nanos())));

    // The service's subsystem must be hosted here.
    if (!core_->node().state->GetClient(envelope_.service().subsystem()).ok()) {
      return Fault(absl::StatusCode::kNotFound, faults::kUnknownService,
                   absl::StrCat("subsystem ", FormatSubsystemId(envelope_.service().subsystem()),
                                " is not hosted by this security server"));
    }
    const bool rest = envelope_.has_http();
    if (absl::StartsWith(envelope_.service().service_code(), kMetadataServicePrefix)) {
      if (rest) {
        return Fault(absl::StatusCode::kUnimplemented, faults::kUnsupportedCall,
                     "the metadata services are answered to gRPC calls only");
      }
      return absl::OkStatus();  // listing is open to every member; descriptions check rights
    }
    auto service = core_->node().state->LookupService(envelope_.service());
    std::optional<v1::ServiceId> service_level = ServiceLevel(envelope_.service());
    if (!service.ok() && service_level.has_value()) {
      service = core_->node().state->LookupService(*service_level);
    }
    if (!service.ok()) {
      return Fault(absl::StatusCode::kNotFound, faults::kUnknownService,
                   absl::StrCat("service ", FormatServiceId(envelope_.service()),
                                " is not registered on this security server"));
    }
    service_ = *std::move(service);
    if (!Allowed(envelope_.service())) {
      return Fault(absl::StatusCode::kPermissionDenied, faults::kAccessDenied,
                   absl::StrCat("subsystem ", FormatSubsystemId(envelope_.client()),
                                " has no access right to ", FormatServiceId(envelope_.service())));
    }
    // A signed client with a granted right to a registered service: both from bounded sets.
    identities_verified_ = true;
    if (rest != IsHttpBackend(service_.backend())) {
      return Fault(absl::StatusCode::kUnimplemented, faults::kUnsupportedCall,
                   absl::StrCat("service ", FormatServiceId(envelope_.service()), " has ",
                                rest ? "a gRPC backend: call it through the gRPC client port"
                                     : "an HTTP backend: call it through the REST interface "
                                       "(/r1/...)"));
    }
    if (rest) return absl::OkStatus();
    DARVOZA_ASSIGN_OR_RETURN(backend_method_, AuthorizedMethod(envelope_));
    return absl::OkStatus();
  }

  bool Allowed(const v1::ServiceId& service) const {
    if (core_->node().state->IsAllowed(envelope_.client(), service, conf_.get())) return true;
    std::optional<v1::ServiceId> level = ServiceLevel(service);
    return level.has_value() &&
           core_->node().state->IsAllowed(envelope_.client(), *level, conf_.get());
  }

  absl::Status CheckPeer() {
    auto refused = [](absl::string_view why) {
      return Fault(absl::StatusCode::kPermissionDenied, faults::kServerSslAuthenticationFailed,
                   why);
    };
    auto auth = ctx_->auth_context();
    std::vector<grpc::string_ref> pems =
        auth == nullptr ? std::vector<grpc::string_ref>{} : auth->FindPropertyValues("x509_pem_cert");
    if (pems.empty()) return refused("the caller presented no TLS certificate");
    auto cert = core_->verifier().certificates().GetPem(
        absl::string_view(pems[0].data(), pems[0].size()));
    if (!cert.ok()) return refused("the caller's TLS certificate is unreadable");
    const v1::SecurityServerEntry* peer = FindServerByAuthFingerprint(*conf_, (*cert)->sha256());
    if (peer == nullptr) {
      return refused("the caller's TLS certificate belongs to no security server of the "
                     "global configuration");
    }
    if (!SameSecurityServer(peer->id(), envelope_.consumer_server())) {
      return refused(absl::StrCat("the caller is security server ",
                                  FormatSecurityServerId(peer->id()), ", not ",
                                  FormatSecurityServerId(envelope_.consumer_server()),
                                  " that the envelope names"));
    }
    for (const v1::SubsystemId& hosted : peer->hosted_subsystems()) {
      if (SameSubsystem(hosted, envelope_.client())) return absl::OkStatus();
    }
    return refused(absl::StrCat("security server ", FormatSecurityServerId(peer->id()),
                                " does not host client ", FormatSubsystemId(envelope_.client())));
  }

  void LogRequest(std::function<void(absl::Status)> written) {
    v1::AuditRecord record =
        SignedMessageRecord(v1::REQUEST_IN, envelope_, request_, envelope_.consumer_server());
    record.set_body_sha256(envelope_.body_sha256());  // checked against the body by Verify
    core_->Audit(std::move(record), request_.body(),
                 core_->HashOnly(envelope_.service().subsystem()),
                 ExchangeCore::AuditWait::kWritten, std::move(written));
  }

  void CallBackend() {
    auto stub = core_->BackendStub(service_.backend());
    if (!stub.ok()) {
      Refuse(stub.status());
      return;
    }
    backend_stub_ = *std::move(stub);
    grpc::ClientContext* call_ctx = nullptr;
    {
      absl::MutexLock lock(&mu_);
      backend_ctx_ = std::make_unique<grpc::ClientContext>();
      const absl::Duration timeout = service_.timeout_millis() > 0
                                         ? absl::Milliseconds(service_.timeout_millis())
                                         : core_->options().backend_timeout;
      auto deadline = std::chrono::system_clock::now() + absl::ToChronoMilliseconds(timeout);
      if (ctx_->deadline() < deadline) deadline = ctx_->deadline();
      backend_ctx_->set_deadline(deadline);
      // Every x-road-* the consumer SS put in the envelope is dropped (IsForwardedMetadataKey):
      // the backend learns who asks from this SS only, from the verified envelope.
      for (const v1::MetadataEntry& entry : envelope_.grpc().metadata()) {
        if (IsForwardedMetadataKey(entry.key())) {
          backend_ctx_->AddMetadata(entry.key(), entry.value());
        }
      }
      backend_ctx_->AddMetadata(kClientHeader, FormatSubsystemId(envelope_.client()));
      backend_ctx_->AddMetadata(kServiceHeader, FormatServiceId(envelope_.service()));
      backend_ctx_->AddMetadata(kIdHeader, envelope_.message_id());
      if (!envelope_.user_id().empty()) {
        backend_ctx_->AddMetadata(kUserIdHeader, envelope_.user_id());
      }
      if (!envelope_.issue().empty()) backend_ctx_->AddMetadata(kIssueHeader, envelope_.issue());
      if (cancelled_) backend_ctx_->TryCancel();
      call_ctx = backend_ctx_.get();
    }
    grpc::Slice slice(request_.body());
    backend_request_ = grpc::ByteBuffer(&slice, 1);
    core_->node().metrics->Increment("darvoza_ss_backend_calls_total");
    // The method the access check allowed (AuthorizedMethod).
    backend_stub_->UnaryCall(call_ctx, backend_method_, grpc::StubOptions(),
                             &backend_request_, &backend_response_,
                             [this](grpc::Status status) { OnBackendDone(status); });
  }

  void OnBackendDone(const grpc::Status& status) {
    if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
      Refuse(Fault(absl::StatusCode::kDeadlineExceeded, faults::kTimeout,
                   absl::StrCat("the backend of ", FormatServiceId(envelope_.service()),
                                " did not answer in time")));
      return;
    }
    grpc::ClientContext* call_ctx = BackendContext();
    const auto& initial_md = call_ctx->GetServerInitialMetadata();
    const auto& trailing_md = call_ctx->GetServerTrailingMetadata();
    // Unreachable is told by the transport, not by message text: UNAVAILABLE with nothing at
    // all received from the backend.
    if (status.error_code() == grpc::StatusCode::UNAVAILABLE && initial_md.empty() &&
        trailing_md.empty()) {
      Refuse(Fault(absl::StatusCode::kUnavailable, faults::kServiceFailed,
                   absl::StrCat("the backend of ", FormatServiceId(envelope_.service()),
                                " cannot be reached")));
      return;
    }
    // The backend's answer enters the exchange here: each value that will be signed, logged
    // and handed to gRPC by the consumer SS is checked first.
    std::vector<v1::MetadataEntry> initial;
    std::vector<v1::MetadataEntry> trailing;
    absl::Status answer = CopyBackendMetadata(initial_md, &initial);
    if (answer.ok()) answer = CopyBackendMetadata(trailing_md, &trailing);
    if (answer.ok()) answer = ValidateStatusMessage(status.error_message());
    if (!answer.ok()) {
      Refuse(Fault(absl::StatusCode::kUnavailable, faults::kServiceFailed,
                   absl::StrCat("the backend of ", FormatServiceId(envelope_.service()),
                                " gave an answer that cannot be passed on: ", answer.message())));
      return;
    }
    std::string body = status.ok() ? ByteBufferToString(backend_response_) : std::string();
    Respond(status, std::move(body), std::move(initial), std::move(trailing));
  }

  absl::Duration BackendTimeout() const {
    return service_.timeout_millis() > 0 ? absl::Milliseconds(service_.timeout_millis())
                                         : core_->options().backend_timeout;
  }

  // A REST call: the service's HTTP backend gets the call's method, path (under its base URL),
  // query, forwarded headers and body, and this SS's own X-Road-* headers from the verified
  // envelope. Redirects are passed back, never followed.
  void CallHttpBackend() {
    const v1::HttpCall& call = envelope_.http();
    HttpClientRequest request;
    request.method = call.method();
    request.url = HttpBackendUrl(service_.backend(), call.path(), call.query());
    for (const v1::MetadataEntry& entry : call.headers()) {
      if (IsForwardedHttpHeader(entry.key())) {
        request.headers.emplace_back(entry.key(), entry.value());
      }
    }
    request.headers.emplace_back("X-Road-Client", FormatSubsystemId(envelope_.client()));
    request.headers.emplace_back("X-Road-Service", FormatServiceId(envelope_.service()));
    request.headers.emplace_back("X-Road-Id", envelope_.message_id());
    request.headers.emplace_back("X-Road-Request-Id", crypto::HexEncode(envelope_.nonce()));
    if (!envelope_.user_id().empty()) {
      request.headers.emplace_back("X-Road-UserId", envelope_.user_id());
    }
    if (!envelope_.issue().empty()) {
      request.headers.emplace_back("X-Road-Issue", envelope_.issue());
    }
    if (envelope_.has_represented_party()) {
      request.headers.emplace_back("X-Road-Represented-Party",
                                   FormatSubsystemId(envelope_.represented_party()));
    }
    request.body = request_.body();
    const absl::Duration timeout = BackendTimeout();
    request.timeout = timeout;
    request.connect_timeout = std::min(timeout, core_->options().backend_connect_timeout);
    request.max_response_bytes = core_->options().max_message_bytes;
    request.ca_pem = service_.backend_ca_pem();
    request.client_cert_pem = service_.backend_cert_pem();
    request.client_key_pem = service_.backend_key_pem();
    core_->node().metrics->Increment("darvoza_ss_backend_calls_total");
    core_->http_client().Send(std::move(request),
                              [this](absl::StatusOr<HttpClientResponse> answer) {
                                OnHttpBackendDone(std::move(answer));
                              });
  }

  void OnHttpBackendDone(absl::StatusOr<HttpClientResponse> answer) {
    const std::string service = FormatServiceId(envelope_.service());
    if (!answer.ok()) {
      if (answer.status().code() == absl::StatusCode::kDeadlineExceeded) {
        Refuse(Fault(absl::StatusCode::kDeadlineExceeded, faults::kTimeout,
                     absl::StrCat("the backend of ", service, " did not answer in time")));
        return;
      }
      const char* what = "cannot be reached";
      if (answer.status().code() == absl::StatusCode::kUnauthenticated) {
        what = "failed the TLS handshake or its certificate check";
      } else if (answer.status().code() == absl::StatusCode::kResourceExhausted) {
        what = "answered with a body over the pass-through limit";
      }
      Refuse(Fault(absl::StatusCode::kUnavailable, faults::kServiceFailed,
                   absl::StrCat("the backend of ", service, " ", what)));
      return;
    }
    // The backend's answer enters the exchange here: what will be signed, logged and handed
    // to the REST client by the consumer SS is checked first.
    v1::HttpAnswer http;
    http.set_status(answer->status);
    absl::Status valid = answer->status >= 200 && answer->status <= 599
                             ? absl::OkStatus()
                             : absl::InvalidArgumentError("the HTTP status is not 200-599");
    if (valid.ok() && answer->headers.size() > kMaxMetadataEntries) {
      valid = absl::InvalidArgumentError(absl::StrCat("more than ", kMaxMetadataEntries,
                                                      " headers"));
    }
    const std::vector<std::string> hop_by_hop = ConnectionListedHeaders(answer->headers);
    for (auto& [name, value] : answer->headers) {
      if (!valid.ok()) break;
      if (!IsForwardedHttpHeader(name) || absl::c_linear_search(hop_by_hop, name)) continue;
      valid = ValidateHttpHeader(name, value);
      v1::MetadataEntry* entry = http.add_headers();
      entry->set_key(std::move(name));
      entry->set_value(std::move(value));
    }
    if (!valid.ok()) {
      Refuse(Fault(absl::StatusCode::kUnavailable, faults::kServiceFailed,
                   absl::StrCat("the backend of ", service,
                                " gave an answer that cannot be passed on: ", valid.message())));
      return;
    }
    Respond(grpc::Status::OK, std::move(answer->body), {}, {}, &http);
  }

  // Metadata services, answered by this SS for its hosted subsystem.
  void AnswerMetadata() {
    const std::string& code = envelope_.service().service_code();
    const v1::SubsystemId& subsystem = envelope_.service().subsystem();
    std::string body;
    if (code == absl::StrCat(kMetadataServicePrefix, "ListServices") ||
        code == absl::StrCat(kMetadataServicePrefix, "AllowedServices")) {
      const bool allowed_only = code == absl::StrCat(kMetadataServicePrefix, "AllowedServices");
      v1::MetadataServiceList list;
      for (const v1::LocalService& service : core_->node().state->ListServices(&subsystem)) {
        if (allowed_only && !Allowed(service.id())) continue;
        v1::MetadataService* entry = list.add_services();
        *entry->mutable_id() = service.id();
        entry->set_description_kind(service.description_kind());
      }
      body = list.SerializeAsString();
    } else if (code == absl::StrCat(kMetadataServicePrefix, "GetServiceDescription")) {
      v1::ServiceDescriptionRequest request;
      if (!request.ParseFromString(request_.body())) {
        Refuse(Fault(absl::StatusCode::kInvalidArgument, faults::kInvalidRequest,
                     "unreadable ServiceDescriptionRequest"));
        return;
      }
      v1::ServiceId described;
      *described.mutable_subsystem() = subsystem;
      described.set_service_code(request.service_code());
      if (!ValidateServiceId(described).ok()) {
        Refuse(Fault(absl::StatusCode::kInvalidArgument, faults::kInvalidIdentifier,
                     "the requested service code is not a valid identifier part"));
        return;
      }
      auto service = core_->node().state->LookupService(described);
      if (!service.ok()) {
        Refuse(Fault(absl::StatusCode::kNotFound, faults::kUnknownService,
                     absl::StrCat("service ", FormatServiceId(described), " is not registered")));
        return;
      }
      if (!Allowed(described)) {
        Refuse(Fault(absl::StatusCode::kPermissionDenied, faults::kAccessDenied,
                     absl::StrCat("subsystem ", FormatSubsystemId(envelope_.client()),
                                  " has no access right to ", FormatServiceId(described))));
        return;
      }
      v1::ServiceDescription description;
      *description.mutable_id() = service->id();
      description.set_kind(service->description_kind());
      description.set_description(service->description());
      body = description.SerializeAsString();
    } else {
      Refuse(Fault(absl::StatusCode::kNotFound, faults::kUnknownService,
                   absl::StrCat("unknown metadata service ", code)));
      return;
    }
    Respond(grpc::Status::OK, std::move(body), {}, {});
  }

  // Signs the response with the provider member's key and answers once it is durable.
  // `http`: a REST call's backend answer.
  void Respond(const grpc::Status& status, std::string body,
               std::vector<v1::MetadataEntry> initial, std::vector<v1::MetadataEntry> trailing,
               const v1::HttpAnswer* http = nullptr) {
    v1::ResponseEnvelope response;
    response.set_message_id(envelope_.message_id());
    response.set_request_hash(
        RequestHashFor(envelope_, request_.envelope(), request_.body()));
    if (http != nullptr) *response.mutable_http() = *http;
    response.set_grpc_status_code(static_cast<int32_t>(status.error_code()));
    response.set_status_message(status.error_message());
    for (v1::MetadataEntry& entry : initial) *response.add_metadata() = std::move(entry);
    for (v1::MetadataEntry& entry : trailing) *response.add_trailing_metadata() = std::move(entry);
    response.set_body_sha256(crypto::Sha256(body));
    response.set_body_length(body.size());
    response.set_created_at_unix_nanos(absl::ToUnixNanos(core_->node().clock->Now()));
    *response.mutable_provider_server() = core_->node().self;
    *response.mutable_service() = envelope_.service();
    // The consumer's own version: a previous-release consumer reads the answer as it always
    // did (and the field stays absent for version 0).
    response.set_protocol_version(envelope_.protocol_version());

    auto identity = core_->node().keys->SigningSigner(envelope_.service().subsystem().member());
    if (!identity.ok()) {
      Refuse(Fault(absl::StatusCode::kFailedPrecondition, faults::kInternalError,
                   absl::StrCat("this security server holds no signing key for member ",
                                FormatMemberId(envelope_.service().subsystem().member()))));
      return;
    }
    // What the record says of the answer, taken now: `http` is the caller's.
    std::string body_sha256 = response.body_sha256();
    const int32_t code = static_cast<int32_t>(status.error_code());
    std::string detail =
        http != nullptr ? absl::StrCat("HTTP ", http->status()) : status.error_message();
    core_->SignEnvelope(*identity, crypto::SignatureContext::kResponse,
                        response.SerializeAsString(), std::move(body),
                        AcceptsBatchSignatures(envelope_.protocol_version()),
                        [this, body_sha256 = std::move(body_sha256), code,
                         detail = std::move(detail)](
                            absl::StatusOr<v1::SignedMessage> signed_response) mutable {
                          if (!signed_response.ok()) {
                            Refuse(WithFault(signed_response.status(), faults::kInternalError));
                            return;
                          }
                          AnswerSigned(*signed_response, std::move(body_sha256), code,
                                       std::move(detail));
                        });
  }

  // Answers with the signed response once its record is durable.
  void AnswerSigned(const v1::SignedMessage& signed_message, std::string body_sha256,
                    int32_t code, std::string detail) {
    grpc::Slice slice(signed_message.SerializeAsString());
    *response_ = grpc::ByteBuffer(&slice, 1);

    v1::AuditRecord record = SignedMessageRecord(v1::RESPONSE_OUT, envelope_, signed_message,
                                                 envelope_.consumer_server());
    record.set_body_sha256(std::move(body_sha256));  // hashed from the body in Respond
    record.set_grpc_status_code(code);
    record.set_detail(std::move(detail));
    core_->Audit(std::move(record), signed_message.body(),
                 core_->HashOnly(envelope_.service().subsystem()),
                 ExchangeCore::AuditWait::kDurable, [this](absl::Status durable) {
                   if (!durable.ok()) {
                     Finish(ToGrpcStatus(durable, ctx_));
                     return;
                   }
                   core_->node().metrics->Increment("darvoza_ss_provider_exchanges_ok_total");
                   CountExchange("");
                   Finish(grpc::Status::OK);
                 });
  }

  void CountExchange(absl::string_view fault) {
    core_->exchange_metrics().Count(
        ExchangeRole::kProvider,
        identities_verified_ ? FormatServiceId(service_.id()) : std::string(kUnverifiedLabel),
        identities_verified_ ? FormatSubsystemId(envelope_.client())
                             : std::string(kUnverifiedLabel),
        fault, core_->node().clock->MonotonicNow() - started_);
  }

  void Refuse(const absl::Status& status) {
    core_->node().metrics->Increment(
        absl::StrCat("darvoza_ss_provider_refusals_total{fault=\"", FaultCode(status), "\"}"));
    CountExchange(FaultCode(status));
    v1::AuditRecord record;
    record.set_kind(v1::REFUSAL);
    FillRecordFromEnvelope(envelope_, &record);
    if (envelope_.has_consumer_server())
      *record.mutable_peer_server() = envelope_.consumer_server();
    record.set_envelope(request_.envelope());
    record.set_signature(request_.signature().SerializeAsString());
    record.set_grpc_status_code(static_cast<int32_t>(status.code()));
    record.set_fault_code(FaultCode(status));
    record.set_detail(std::string(status.message()));
    LogRefusal("provider", record, ctx_->peer());
    core_->Audit(std::move(record), std::nullopt, /*hash_only=*/true,
                 ExchangeCore::AuditWait::kDurable,
                 [this, status](absl::Status) { Finish(ToGrpcStatus(status, ctx_)); });
  }

  ExchangeCore* const core_;
  const ExchangeCore::InProgress in_progress_;
  grpc::CallbackServerContext* const ctx_;
  const grpc::ByteBuffer* const raw_request_;
  grpc::ByteBuffer* const response_;
  v1::SignedMessage request_;
  const absl::Duration started_;
  bool identities_verified_ = false;  // service_ and envelope_.client() may label metrics

  std::shared_ptr<const v1::GlobalConf> conf_;
  v1::Envelope envelope_;
  v1::LocalService service_;
  std::shared_ptr<grpc::GenericStub> backend_stub_;
  std::string backend_method_;
  grpc::ByteBuffer backend_request_;
  grpc::ByteBuffer backend_response_;

  // The current attempt's context. Only this reactor's own sequence replaces it (never while
  // a call on it is in flight), so the pointer stays valid until the next attempt starts;
  // mu_ orders the replacement against a cancellation from another thread.
  grpc::ClientContext* BackendContext() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return backend_ctx_.get();
  }

  absl::Mutex mu_;
  std::unique_ptr<grpc::ClientContext> backend_ctx_ ABSL_GUARDED_BY(mu_);
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
};

// A call on a path the SS↔SS port does not serve. The path is outside text and is neither
// logged nor echoed.
class FallbackCall final : public grpc::ServerGenericBidiReactor {
 public:
  FallbackCall(ExchangeCore* core, grpc::GenericCallbackServerContext* ctx) : ctx_(ctx) {
    const absl::Status status =
        Fault(absl::StatusCode::kInvalidArgument, faults::kInvalidMessage,
              "the SS-to-SS port serves only /darvoza.v1.SecurityServerExchange/Call with a "
              "SignedMessage");
    core->node().metrics->Increment(
        absl::StrCat("darvoza_ss_provider_refusals_total{fault=\"", FaultCode(status), "\"}"));
    v1::AuditRecord record;
    record.set_kind(v1::REFUSAL);
    record.set_grpc_status_code(static_cast<int32_t>(status.code()));
    record.set_fault_code(FaultCode(status));
    record.set_detail(std::string(status.message()));
    LogRefusal("provider", record, ctx_->peer());
    core->Audit(std::move(record), std::nullopt, /*hash_only=*/true,
                ExchangeCore::AuditWait::kDurable,
                [this, status](absl::Status) { Finish(ToGrpcStatus(status, ctx_)); });
  }

  void OnDone() override { delete this; }

 private:
  grpc::GenericCallbackServerContext* const ctx_;
};

}  // namespace

grpc::ServerGenericBidiReactor* ProviderFallbackService::CreateReactor(
    grpc::GenericCallbackServerContext* ctx) {
  return new FallbackCall(core_, ctx);
}

grpc::ServerUnaryReactor* ProviderService::Call(grpc::CallbackServerContext* ctx,
                                                const grpc::ByteBuffer* request,
                                                grpc::ByteBuffer* response) {
  auto* call = new ProviderCall(core_, ctx, request, response);
  call->Start();
  return call;
}

}  // namespace darvoza::ss::exchange
