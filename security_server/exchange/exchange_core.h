// ExchangeCore: what the consumer and provider halves of the exchange share — the node's
// services, the options, the signed-message verifier, the provider pool, the replay guard, the
// backend channels, and the audit hand-off.
//
// Thread-safe; owned by the Exchange, which outlives every call.
#ifndef DARVOZA_SECURITY_SERVER_EXCHANGE_EXCHANGE_CORE_H_
#define DARVOZA_SECURITY_SERVER_EXCHANGE_EXCHANGE_CORE_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include <grpcpp/channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/string_ref.h>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/batch_signer.h"
#include "common/http_client.h"
#include "proto/audit.pb.h"
#include "security_server/exchange/provider_pool.h"
#include "security_server/exchange/replay_guard.h"
#include "security_server/exchange/signed_message.h"
#include "security_server/node_services.h"

namespace darvoza::ss::exchange {

// Metadata keys of the client interface (docs/design.md §5).
inline constexpr char kClientHeader[] = "x-road-client";
inline constexpr char kServiceHeader[] = "x-road-service";
inline constexpr char kIdHeader[] = "x-road-id";
inline constexpr char kUserIdHeader[] = "x-road-userid";
inline constexpr char kIssueHeader[] = "x-road-issue";
inline constexpr char kRepresentedPartyHeader[] = "x-road-represented-party";
inline constexpr char kSecurityServerHeader[] = "x-road-security-server";
inline constexpr char kRequestHashHeader[] = "x-road-request-hash";

// gRPC package of the metadata services the security servers answer themselves.
inline constexpr char kMetadataServicePrefix[] = "darvoza.v1.Metadata.";

struct ExchangeOptions {
  // Requests whose created_at is further than this from the provider's clock are refused.
  // Default: 5 minutes.
  absl::Duration replay_window = absl::Minutes(5);
  // Consumer's deadline for the provider's answer (the client's own deadline wins when
  // shorter). Default: 60 s.
  absl::Duration provider_timeout = absl::Seconds(60);
  // Provider's deadline for the backend when the service sets none. Default: 30 s.
  absl::Duration backend_timeout = absl::Seconds(30);
  // Largest request or response body passed through. Default: 16 MiB.
  size_t max_message_bytes = kMaxPassThroughBodyBytes;
  // Provider's limit for connecting to an HTTP backend (the service's timeout still bounds
  // the whole call). Default: 5 s.
  absl::Duration backend_connect_timeout = absl::Seconds(5);
  // Threads that call HTTP backends (each holds one blocking call). Default: 8.
  int http_backend_threads = 8;
  // Sign in batches what queues while a member's key is busy (docs/design.md §8); false: one
  // ordinary signature per message. Default: true.
  bool batch_signatures = true;
};

class ExchangeCore {
 public:
  ExchangeCore(const NodeServices& node, ExchangeOptions options);
  ExchangeCore(const ExchangeCore&) = delete;
  ExchangeCore& operator=(const ExchangeCore&) = delete;

  // Restores the replay window from the audit log (none: it starts empty) and logs
  // replay.restored, or replay.restore_failed (the window then refuses every request). Call
  // once, before the first request.
  void RestoreReplayWindow();

  const NodeServices& node() const { return node_; }
  const ExchangeOptions& options() const { return options_; }
  SignedMessageVerifier& verifier() { return verifier_; }
  ProviderPool& pool() { return *pool_; }
  std::shared_ptr<ProviderPool> shared_pool() { return pool_; }
  ReplayGuard& replay() { return replay_; }
  // Outcomes and latency of finished exchanges.
  ExchangeMetrics& exchange_metrics() { return exchange_metrics_; }

  // Appends `record` (with `body` unless `hash_only`) to the audit log and calls `done` with
  // OK, or with fault Server.AuditLog.WriteFailed when the append failed:
  //  - kQueued: at once; the record follows in the same or a later group commit, synced by the
  //    next waited one.
  //  - kWritten: once the record is in the store (not synced: it survives the process being
  //    killed, not a power cut), on a gRPC thread. The provider's REQUEST_IN is, before the
  //    backend is called: the replay window is restored from it (ReplayGuard::Restore).
  //  - kDurable: once the record is durable.
  // Without an audit log, `done` runs at once with OK. A non-empty record.body_sha256 must be
  // the SHA-256 of `body` that this security server computed or checked itself: the log then
  // does not hash the body again.
  enum class AuditWait { kQueued, kWritten, kDurable };
  void Audit(v1::AuditRecord record, std::optional<std::string> body, bool hash_only,
             AuditWait wait, std::function<void(absl::Status)> done);

  // The generic stub for a backend address "grpc://host:port". INVALID_ARGUMENT for any other
  // scheme. Channels are kept for reuse.
  absl::StatusOr<std::shared_ptr<grpc::GenericStub>> BackendStub(const std::string& backend);

  // Whether the hosted subsystem keeps only body hashes in the audit log.
  bool HashOnly(const v1::SubsystemId& subsystem) const;

  // Calls HTTP backends (http:// and https:// services).
  HttpClient& http_client() { return *http_client_; }

  // Counts an exchange in progress on this security server, for its lifetime: signing is
  // deferred to batch it (SignEnvelope) only while other exchanges are in progress.
  class InProgress {
   public:
    explicit InProgress(ExchangeCore* core) : core_(core) {
      core_->in_progress_.fetch_add(1, std::memory_order_relaxed);
    }
    ~InProgress() { core_->in_progress_.fetch_sub(1, std::memory_order_relaxed); }
    InProgress(const InProgress&) = delete;
    InProgress& operator=(const InProgress&) = delete;

   private:
    ExchangeCore* const core_;
  };

  // Signs `envelope_bytes` with `identity` under `context`, packs the signed message and calls
  // `done` with it (errors are the signer's). When `peer_accepts_batch` and the options allow
  // it, and other exchanges are in progress on this SS, the envelope waits for the key's next
  // signing task and shares one batch signature with every envelope queued by then
  // (docs/design.md §8); `done` then runs on that task's gRPC thread. Otherwise it is signed
  // at once on this thread (in a batch only with callers that overlap it on other CPUs) and
  // `done` runs before this returns.
  using SignedDone = std::function<void(absl::StatusOr<v1::SignedMessage>)>;
  void SignEnvelope(const SigningIdentity& identity, crypto::SignatureContext context,
                    std::string envelope_bytes, std::string body, bool peer_accepts_batch,
                    SignedDone done);

 private:
  const NodeServices node_;
  const ExchangeOptions options_;
  SignedMessageVerifier verifier_;
  std::shared_ptr<ProviderPool> pool_;
  ReplayGuard replay_;
  ExchangeMetrics exchange_metrics_;
  BatchSigner batch_signer_;
  std::atomic<int> in_progress_{0};
  absl::Mutex backends_mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<grpc::GenericStub>> backends_
      ABSL_GUARDED_BY(backends_mu_);
  // Last: its workers finish (calling back into the exchange) before anything else goes.
  std::unique_ptr<HttpClient> http_client_;
};

// Whether a service's backend is an HTTP one (http:// or https://), served to REST calls.
bool IsHttpBackend(absl::string_view backend);

// The URL an HTTP backend is called at: the service's base URL (without a trailing '/') with
// the call's path and, when not empty, its query appended. Both were checked on entry
// (ValidateHttpPath, ValidateHttpQuery), so they stay under the base.
std::string HttpBackendUrl(absl::string_view backend, absl::string_view path,
                           absl::string_view query);

// The bytes of gRPC metadata / a message buffer as a string (one copy).
std::string ToString(const grpc::string_ref& ref);
std::string ByteBufferToString(grpc::ByteBuffer& buffer);

// The one list of which metadata travels end to end (client IS -> envelope -> backend, and
// backend answer -> response envelope -> client IS). Not forwarded: every `x-road-*` key (the
// protocol's own: each SS sets those it vouches for from the verified envelope, so no peer can
// choose what a backend or client reads there), gRPC's own (`grpc-*`, pseudo-headers,
// content-type, te, user-agent) and HTTP connection-level headers.
bool IsForwardedMetadataKey(absl::string_view key);

// The same list for the REST interface (header names in lower case): everything but the
// x-road-* keys, the hop-by-hop headers, and Host, User-Agent, Server, Content-Length and
// Expect, so Content-Type, Accept, cache and user headers pass unmodified both ways (PR-REST).
bool IsForwardedHttpHeader(absl::string_view key);

// Checks every entry of metadata received from outside (ValidateMetadataEntry, at most
// kMaxMetadataEntries). INVALID_ARGUMENT with fault Client.InvalidRequest; callers that got
// the metadata from a backend or a peer replace the fault.
absl::Status ValidateReceivedMetadata(
    const std::multimap<grpc::string_ref, grpc::string_ref>& metadata);

// Writes the "call.refused" event of a refusal from its audit record (fault, status code,
// client, service, peer server, message id, detail); `side` is "consumer" or "provider",
// `peer` the caller's address when known.
void LogRefusal(absl::string_view side, const v1::AuditRecord& record, absl::string_view peer);

// Fills an audit record's identifying fields from a request envelope.
void FillRecordFromEnvelope(const v1::Envelope& envelope, v1::AuditRecord* record);

// An audit record of `kind` for a signed message (its envelope bytes, signature and signer
// chain) of the exchange of `envelope`, exchanged with security server `peer`.
v1::AuditRecord SignedMessageRecord(v1::AuditRecordKind kind, const v1::Envelope& envelope,
                                    const v1::SignedMessage& message,
                                    const v1::SecurityServerId& peer);

}  // namespace darvoza::ss::exchange

#endif  // DARVOZA_SECURITY_SERVER_EXCHANGE_EXCHANGE_CORE_H_
