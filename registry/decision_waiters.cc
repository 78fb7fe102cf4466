#include "registry/decision_waiters.h"

#include <vector>

namespace darvoza::registry {

class DecisionWaiters::Waiter final : public grpc::ServerUnaryReactor {
 public:
  Waiter(DecisionWaiters* owner, v1::RequestRecord pending, absl::Duration deadline,
         v1::RequestRecord* response)
      : owner_(owner), pending_(std::move(pending)), deadline_(deadline), response_(response) {}

  // REQUIRES: owner_->mu_ held and this removed from the set. Finishes once.
  void Answer(const v1::RequestRecord& record) {
    if (answered_) return;
    answered_ = true;
    *response_ = record;
    Finish(grpc::Status::OK);
  }
  void AnswerPending() { Answer(pending_); }
  void AnswerCancelled() {
    if (answered_) return;
    answered_ = true;
    Finish(grpc::Status::CANCELLED);
  }
  absl::Duration deadline() const { return deadline_; }

  void OnCancel() override { owner_->Cancel(this); }
  void OnDone() override { delete this; }

 private:
  DecisionWaiters* const owner_;
  const v1::RequestRecord pending_;
  const absl::Duration deadline_;
  v1::RequestRecord* const response_;
  bool answered_ = false;  // guarded by owner_->mu_
};

grpc::ServerUnaryReactor* DecisionWaiters::Wait(const std::string& request_id,
                                                const v1::RequestRecord& pending,
                                                absl::Duration deadline,
                                                v1::RequestRecord* response) {
  auto* waiter = new Waiter(this, pending, deadline, response);
  absl::MutexLock lock(&mu_);
  if (closed_) {
    waiter->AnswerPending();
  } else {
    waiters_.emplace(request_id, waiter);
  }
  return waiter;
}

void DecisionWaiters::Notify(const v1::RequestRecord& record) {
  absl::MutexLock lock(&mu_);
  auto [begin, end] = waiters_.equal_range(record.id());
  std::vector<Waiter*> found;
  for (auto it = begin; it != end; ++it) found.push_back(it->second);
  waiters_.erase(begin, end);
  for (Waiter* w : found) w->Answer(record);
}

void DecisionWaiters::ExpireDue(absl::Duration now) {
  absl::MutexLock lock(&mu_);
  for (auto it = waiters_.begin(); it != waiters_.end();) {
    if (it->second->deadline() <= now) {
      Waiter* w = it->second;
      it = waiters_.erase(it);
      w->AnswerPending();
    } else {
      ++it;
    }
  }
}

void DecisionWaiters::Close() {
  absl::MutexLock lock(&mu_);
  closed_ = true;
  std::multimap<std::string, Waiter*> all;
  all.swap(waiters_);
  for (auto& [id, w] : all) w->AnswerPending();
}

void DecisionWaiters::Cancel(Waiter* waiter) {
  absl::MutexLock lock(&mu_);
  for (auto it = waiters_.begin(); it != waiters_.end(); ++it) {
    if (it->second == waiter) {
      waiters_.erase(it);
      break;
    }
  }
  waiter->AnswerCancelled();
}

size_t DecisionWaiters::size() const {
  absl::MutexLock lock(&mu_);
  return waiters_.size();
}

}  // namespace darvoza::registry
