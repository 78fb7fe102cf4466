// The seal witness as the audit log sees it (docs/design.md §7).
//
// The registry witnesses seals: it returns a signed, timed receipt for a seal whose previous
// witnessed head is the head it holds, and refuses any other seal (FAILED_PRECONDITION with
// fault Server.Registry.WitnessHeadMismatch). The security server wires a gRPC implementation;
// tests use a fake with the same head rule (common/seal.h CheckWitnessHead).
#ifndef DARVOZA_AUDIT_WITNESS_H_
#define DARVOZA_AUDIT_WITNESS_H_

#include "absl/status/statusor.h"
#include "proto/audit.pb.h"

namespace darvoza::audit {

// Thread-safe. The audit log calls it from its own witness thread only, seals in order, and
// never while an append waits: a slow or unreachable witness delays receipts, never appends.
class Witness {
 public:
  virtual ~Witness() = default;

  // Returns the witness's receipt for `seal`. UNAVAILABLE (or DEADLINE_EXCEEDED) when the
  // witness cannot be reached: the log keeps the seal and sends it again later.
  // FAILED_PRECONDITION + WitnessHeadMismatch when the seal does not continue the held head.
  virtual absl::StatusOr<v1::SignedWitnessReceipt> WitnessSeal(const v1::SignedSeal& seal) = 0;
};

}  // namespace darvoza::audit

#endif  // DARVOZA_AUDIT_WITNESS_H_
