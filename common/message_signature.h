// Signatures on the envelopes security servers exchange (docs/design.md §4 "Batch
// signatures"). A message's Signature (proto/signature.proto) is either
//  - ordinary: the signer's signature over SignedBytes(context, envelope bytes), or
//  - a batch signature: one signature over SignedBytes(darvoza.v1.batch-root,
//    BatchRootStatement(root, tree size)) that covers many envelopes at once. The envelope's
//    leaf is SignedBytes(context, envelope bytes), so the context tag stays bound to each
//    message, and the message carries its RFC 6962 inclusion proof (common/merkle.h) and the
//    root.
// Both kinds are checked with the signer's public key alone: an auditor re-verifies a logged
// message years later from the record's envelope and serialized Signature.
//
//   DARVOZA_ASSIGN_OR_RETURN(std::vector<v1::Signature> sigs,
//                            SignBatch(signer, {{SignatureContext::kRequest, envelope_a},
//                                               {SignatureContext::kRequest, envelope_b}}));
//   DARVOZA_RETURN_IF_ERROR(VerifyMessageSignature(cert->public_key(), cert->sha256(),
//                                                  SignatureContext::kRequest, envelope_a,
//                                                  sigs[0], &verified_roots));
#ifndef DARVOZA_COMMON_MESSAGE_SIGNATURE_H_
#define DARVOZA_COMMON_MESSAGE_SIGNATURE_H_

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "common/crypto/keys.h"
#include "common/crypto/signer.h"
#include "proto/signature.pb.h"

namespace darvoza {

// The most envelopes one batch signature covers. A verifier refuses larger trees, which also
// bounds an inclusion proof to 8 hashes.
inline constexpr uint64_t kMaxSignatureBatch = 256;

// One envelope to sign, and the purpose it is signed for.
struct MessageToSign {
  crypto::SignatureContext context;
  absl::string_view data;
};

// What a batch signature signs under darvoza.v1.batch-root: the 32-byte Merkle root followed
// by the tree size as 8 bytes big-endian. The size is signed because an RFC 6962 proof binds it
// only as far as it shapes the path.
std::string BatchRootStatement(absl::string_view root, uint64_t tree_size);

// Signs `items` with `signer`: one item gets an ordinary signature, several get one batch
// signature (each result with its own proof). Result i belongs to items[i]; algorithm, cert
// fingerprint and chain are the caller's to fill. REQUIRES: 1 <= items.size() <=
// kMaxSignatureBatch. Errors are the signer's.
absl::StatusOr<std::vector<v1::Signature>> SignBatch(crypto::Signer& signer,
                                                     absl::Span<const MessageToSign> items);

// Batch roots already verified, so that the other messages of a batch cost a proof check (a
// few hashes) instead of a signature check. Bounded: the oldest entry goes first. Thread-safe.
class VerifiedBatchRoots {
 public:
  // Default: room for 4096 roots (a few batches per signer key in flight is what is needed).
  explicit VerifiedBatchRoots(size_t capacity = 4096) : capacity_(capacity) {}
  VerifiedBatchRoots(const VerifiedBatchRoots&) = delete;
  VerifiedBatchRoots& operator=(const VerifiedBatchRoots&) = delete;

  // Whether `key` (see VerifyMessageSignature) was inserted and not evicted yet.
  bool Contains(absl::string_view key) const ABSL_LOCKS_EXCLUDED(mu_);
  void Insert(std::string key) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  const size_t capacity_;
  mutable absl::Mutex mu_;
  absl::flat_hash_set<std::string> keys_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> order_ ABSL_GUARDED_BY(mu_);  // insertion order, for eviction
};

// OK when `signature` is `key`'s signature over `data` under `context`: ordinary, or a batch
// signature whose proof leads from SignedBytes(context, data) to a root of at most
// kMaxSignatureBatch leaves that `key` signed under darvoza.v1.batch-root. `key_id` names
// `key` in `roots` (the signer certificate's SHA-256); `roots` (nullable) remembers verified
// (key, root, size, signature value) so a batch's root signature is checked once.
// UNAUTHENTICATED for anything else (the message says what). Thread-safe.
absl::Status VerifyMessageSignature(const crypto::PublicKey& key, absl::string_view key_id,
                                    crypto::SignatureContext context, absl::string_view data,
                                    const v1::Signature& signature,
                                    VerifiedBatchRoots* roots = nullptr);

}  // namespace darvoza

#endif  // DARVOZA_COMMON_MESSAGE_SIGNATURE_H_
