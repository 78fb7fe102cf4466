// BatchSigner: signs envelopes alone while a key is idle and in batches while it is busy
// (docs/design.md §8 "Batch signatures").
//
// There is no timer and no added wait. A caller whose key is idle signs its own envelope at
// once with an ordinary signature. A caller that finds the key busy queues; when the signing in
// progress ends, the first queued caller signs everything that queued meanwhile with one batch
// signature (common/message_signature.h) and hands each caller its own. So at concurrency 1
// every message has an ordinary signature, and under load one signing covers the messages that
// arrived during the previous one. Each key (each Signer object) has its own queue.
//
//   BatchSigner batcher([&](size_t n) { batch_sizes.Observe(n); });
//   DARVOZA_ASSIGN_OR_RETURN(v1::Signature sig,
//                            batcher.Sign(identity.signer, SignatureContext::kRequest, bytes));
//
// Thread-safe. A caller blocks for at most the signing in progress and its own batch's.
#ifndef DARVOZA_COMMON_BATCH_SIGNER_H_
#define DARVOZA_COMMON_BATCH_SIGNER_H_

#include <cstddef>
#include <deque>
#include <functional>
#include <memory>

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
  // `on_signing` (may be empty) is told the number of envelopes each signing covered (1 for an
  // ordinary signature), from the signing thread. REQUIRES: 1 <= max_batch <=
  // kMaxSignatureBatch.
  explicit BatchSigner(std::function<void(size_t)> on_signing = nullptr,
                       size_t max_batch = kMaxSignatureBatch);
  BatchSigner(const BatchSigner&) = delete;
  BatchSigner& operator=(const BatchSigner&) = delete;

  // Signs `data` under `context` with `signer`, alone or in a batch with other callers of the
  // same signer. `may_batch` false: always alone and at once (for a peer that cannot check a
  // batch signature). The algorithm, certificate fingerprint and chain are the caller's to
  // fill. Errors are the signer's (then every message of that batch fails).
  absl::StatusOr<v1::Signature> Sign(const std::shared_ptr<crypto::Signer>& signer,
                                     crypto::SignatureContext context, absl::string_view data,
                                     bool may_batch = true) ABSL_LOCKS_EXCLUDED(mu_);

  // How many callers of `signer` wait for the signing in progress. For tests that line up a
  // batch.
  size_t QueuedForTest(const crypto::Signer* signer) const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Waiter;
  // A key's callers: while `busy`, one caller is signing and the others queue.
  struct Lane {
    bool busy = false;
    std::deque<Waiter*> queue;
  };

  const std::function<void(size_t)> on_signing_;
  const size_t max_batch_;
  mutable absl::Mutex mu_;
  // Only keys that are busy have a lane, so the map holds at most one lane per key in use.
  absl::flat_hash_map<const crypto::Signer*, Lane> lanes_ ABSL_GUARDED_BY(mu_);
};

}  // namespace darvoza

#endif  // DARVOZA_COMMON_BATCH_SIGNER_H_
