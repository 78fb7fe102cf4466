// DecisionWaiters: Registration.GetStatus calls that wait for a request's decision.
//
// A waiting call is a unary reactor held here (no thread blocks). It is answered with the
// decided record when Notify sees that request decided, with the still-pending record when its
// wait runs out (ExpireDue, by the Clock's monotonic time) or at Close, and with CANCELLED when
// the client goes away.
//
// Thread-safe. Every touch of a held reactor happens under the mutex, and a reactor leaves the
// set before it is finished, so a finished (and self-deleting) reactor is never reached again.
#ifndef DARVOZA_REGISTRY_DECISION_WAITERS_H_
#define DARVOZA_REGISTRY_DECISION_WAITERS_H_

#include <map>
#include <string>

#include <grpcpp/server_context.h>
#include <grpcpp/support/server_callback.h>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "proto/registry.pb.h"

namespace darvoza::registry {

class DecisionWaiters {
 public:
  class Waiter;

  DecisionWaiters() = default;
  DecisionWaiters(const DecisionWaiters&) = delete;
  DecisionWaiters& operator=(const DecisionWaiters&) = delete;

  // A reactor for a GetStatus call on `request_id` that answers `pending` (the record as it is
  // now) unless decided before `deadline` (monotonic). The caller returns it from the handler.
  // When closed, it is answered at once.
  grpc::ServerUnaryReactor* Wait(const std::string& request_id, const v1::RequestRecord& pending,
                                 absl::Duration deadline, v1::RequestRecord* response)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Answers every waiter of record.id() with `record`.
  void Notify(const v1::RequestRecord& record) ABSL_LOCKS_EXCLUDED(mu_);
  // Answers every waiter whose deadline <= `now` with its pending record.
  void ExpireDue(absl::Duration now) ABSL_LOCKS_EXCLUDED(mu_);
  // Answers everyone and refuses to hold new waiters.
  void Close() ABSL_LOCKS_EXCLUDED(mu_);
  size_t size() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  friend class Waiter;
  void Cancel(Waiter* waiter) ABSL_LOCKS_EXCLUDED(mu_);

  mutable absl::Mutex mu_;
  std::multimap<std::string, Waiter*> waiters_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace darvoza::registry

#endif  // DARVOZA_REGISTRY_DECISION_WAITERS_H_
