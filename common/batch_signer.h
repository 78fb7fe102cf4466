// BatchSigner: signs envelopes alone while a key is idle and in batches while it is busy
// (docs/design.md §8 "Batch signatures").
//
// There is no timer and no added wait. Two ways in:
//  - Sign(): a caller whose key is idle signs its own envelope at once with an ordinary
//    signature. A caller that finds the key busy queues; when the signing in progress ends, the
//    first queued caller signs everything that queued meanwhile with one batch signature
//    (common/message_signature.h) and hands each caller its own. That batches only where
//    callers overlap in time, i.e. on several CPUs.
//  - SignLater(): for a caller that knows other messages are on their way (its security server
//    has other exchanges in flight) and can go on without the signature. The envelope joins
//    the key's queue, and the first to join schedules one task (on a gRPC thread in
//    production): when that task runs it signs whatever queued until then, so the messages
//    that other threads' callbacks prepared before it ran share one signature even on one CPU.
// At concurrency 1 callers use Sign(), so every message has an ordinary signature at once.
// Each key (each Signer object) has its own queues.
//
//   BatchSigner batcher([&](size_t n) { batch_sizes.Observe(n); }, kMaxSignatureBatch,
//                       RunOnGrpcThread);
//   DARVOZA_ASSIGN_OR_RETURN(v1::Signature sig,
//                            batcher.Sign(identity.signer, SignatureContext::kRequest, bytes));
//   batcher.SignLater(identity.signer, SignatureContext::kResponse, std::move(bytes),
//                     [](absl::StatusOr<v1::Signature> sig) { ... });
//
// Thread-safe. A Sign() caller blocks for at most the signing in progress and its own batch's.
#ifndef DARVOZA_COMMON_BATCH_SIGNER_H_
#define DARVOZA_COMMON_BATCH_SIGNER_H_

#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/crypto/signer.h"
#include "common/message_signature.h"
#include "proto/signature.pb.h"

namespace darvoza {

class BatchSigner {
 public:
  // Runs a task soon on another thread and returns at once.
  using Scheduler = std::function<void(std::function<void()>)>;
  using SignDone = std::function<void(absl::StatusOr<v1::Signature>)>;

  // `on_signing` (may be empty) is told the number of envelopes each signing covered (1 for an
  // ordinary signature), from the signing thread. `schedule` runs SignLater()'s signing tasks;
  // when empty, SignLater() signs at once like Sign(). REQUIRES: 1 <= max_batch <=
  // kMaxSignatureBatch.
  explicit BatchSigner(std::function<void(size_t)> on_signing = nullptr,
                       size_t max_batch = kMaxSignatureBatch, Scheduler schedule = nullptr);
  BatchSigner(const BatchSigner&) = delete;
  BatchSigner& operator=(const BatchSigner&) = delete;

  // Signs `data` under `context` with `signer`, alone or in a batch with other callers of the
  // same signer. `may_batch` false: always alone and at once (for a peer that cannot check a
  // batch signature). The algorithm, certificate fingerprint and chain are the caller's to
  // fill. Errors are the signer's (then every message of that batch fails).
  absl::StatusOr<v1::Signature> Sign(const std::shared_ptr<crypto::Signer>& signer,
                                     crypto::SignatureContext context, absl::string_view data,
                                     bool may_batch = true) ABSL_LOCKS_EXCLUDED(mu_);

  // Queues `data` for `signer`'s next scheduled signing and returns; `done` gets its signature
  // (or the signer's error, shared by its whole batch) on the task's thread. Always in a batch
  // (a batch of one is an ordinary signature): a peer that cannot check a batch signature
  // needs Sign(..., may_batch = false).
  void SignLater(std::shared_ptr<crypto::Signer> signer, crypto::SignatureContext context,
                 std::string data, SignDone done) ABSL_LOCKS_EXCLUDED(mu_);

  // How many callers of `signer` wait for the signing in progress. For tests that line up a
  // batch.
  size_t QueuedForTest(const crypto::Signer* signer) const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Waiter;
  // An envelope queued by SignLater().
  struct Later {
    crypto::SignatureContext context;
    std::string data;
    SignDone done;
  };
  // A key's SignLater() queue; `scheduled` while a task to sign it is on its way.
  struct LaterLane {
    std::shared_ptr<crypto::Signer> signer;
    std::deque<Later> queue;
    bool scheduled = false;
  };
  // The scheduled task: signs up to max_batch_ of `key`'s queue, then schedules itself again
  // if more queued.
  void SignQueued(const crypto::Signer* key) ABSL_LOCKS_EXCLUDED(mu_);
  // A key's callers: while `busy`, one caller is signing and the others queue.
  struct Lane {
    bool busy = false;
    std::deque<Waiter*> queue;
  };

  const std::function<void(size_t)> on_signing_;
  const size_t max_batch_;
  const Scheduler schedule_;
  mutable absl::Mutex mu_;
  // Only keys that are busy have a lane, so the map holds at most one lane per key in use.
  absl::flat_hash_map<const crypto::Signer*, Lane> lanes_ ABSL_GUARDED_BY(mu_);
  // Likewise: only keys with envelopes queued by SignLater().
  absl::flat_hash_map<const crypto::Signer*, LaterLane> later_ ABSL_GUARDED_BY(mu_);
};

}  // namespace darvoza

#endif  // DARVOZA_COMMON_BATCH_SIGNER_H_
