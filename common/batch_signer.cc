#include "common/batch_signer.h"

#include <optional>
#include <utility>
#include <vector>

#include "common/check.h"

namespace darvoza {

// A caller of Sign(), on its own stack. Written under the BatchSigner's mu_ only.
struct BatchSigner::Waiter {
  crypto::SignatureContext context;
  absl::string_view data;
  std::optional<absl::StatusOr<v1::Signature>> result;  // set when its batch was signed
  bool leads = false;  // its turn to sign what queued
};

BatchSigner::BatchSigner(std::function<void(size_t)> on_signing, size_t max_batch,
                         Scheduler schedule)
    : on_signing_(std::move(on_signing)), max_batch_(max_batch), schedule_(std::move(schedule)) {
  DARVOZA_CHECK(max_batch_ >= 1 && max_batch_ <= kMaxSignatureBatch)
      << "max_batch " << max_batch_;
}

absl::StatusOr<v1::Signature> BatchSigner::Sign(const std::shared_ptr<crypto::Signer>& signer,
                                                crypto::SignatureContext context,
                                                absl::string_view data, bool may_batch) {
  DARVOZA_CHECK(signer != nullptr) << "BatchSigner::Sign without a signer";
  if (!may_batch) {
    const MessageToSign item{context, data};
    auto signed_alone = SignBatch(*signer, {item});
    if (on_signing_) on_signing_(1);
    if (!signed_alone.ok()) return signed_alone.status();
    return std::move(signed_alone->front());
  }
  const crypto::Signer* key = signer.get();
  Waiter me{context, data, std::nullopt, false};
  std::vector<Waiter*> batch;
  {
    absl::MutexLock lock(&mu_);
    Lane& lane = lanes_[key];
    if (!lane.busy) {
      lane.busy = true;
      batch.push_back(&me);
    } else {
      lane.queue.push_back(&me);
      mu_.Await(absl::Condition(
          +[](Waiter* w) { return w->result.has_value() || w->leads; }, &me));
      if (me.result.has_value()) return *std::move(me.result);
      // This caller was first in the queue when the last signing ended: it signs everything
      // that queued, up to max_batch_ (the rest wait for the next turn).
      Lane& led = lanes_[key];
      while (!led.queue.empty() && batch.size() < max_batch_) {
        batch.push_back(led.queue.front());
        led.queue.pop_front();
      }
    }
  }
  std::vector<MessageToSign> items;
  items.reserve(batch.size());
  for (const Waiter* w : batch) items.push_back(MessageToSign{w->context, w->data});
  auto signatures = SignBatch(*signer, items);
  if (on_signing_) on_signing_(batch.size());

  absl::MutexLock lock(&mu_);
  for (size_t i = 0; i < batch.size(); ++i) {
    if (signatures.ok()) {
      batch[i]->result = std::move((*signatures)[i]);
    } else {
      batch[i]->result = signatures.status();
    }
  }
  auto lane = lanes_.find(key);
  DARVOZA_CHECK(lane != lanes_.end() && lane->second.busy) << "a signing lane went missing";
  if (lane->second.queue.empty()) {
    lanes_.erase(lane);
  } else {
    lane->second.queue.front()->leads = true;  // the lane stays busy: its turn now
  }
  return *std::move(me.result);
}

void BatchSigner::SignLater(std::shared_ptr<crypto::Signer> signer,
                            crypto::SignatureContext context, std::string data, SignDone done) {
  DARVOZA_CHECK(signer != nullptr) << "BatchSigner::SignLater without a signer";
  if (!schedule_) {
    done(Sign(signer, context, data));
    return;
  }
  const crypto::Signer* key = signer.get();
  bool schedule = false;
  {
    absl::MutexLock lock(&mu_);
    LaterLane& lane = later_[key];
    if (lane.signer == nullptr) lane.signer = std::move(signer);
    lane.queue.push_back(Later{context, std::move(data), std::move(done)});
    if (!lane.scheduled) {
      lane.scheduled = true;
      schedule = true;
    }
  }
  if (schedule) schedule_([this, key] { SignQueued(key); });
}

void BatchSigner::SignQueued(const crypto::Signer* key) {
  std::shared_ptr<crypto::Signer> signer;
  std::vector<Later> batch;
  {
    absl::MutexLock lock(&mu_);
    auto lane = later_.find(key);
    DARVOZA_CHECK(lane != later_.end() && lane->second.scheduled)
        << "a scheduled signing found no queue";
    signer = lane->second.signer;
    std::deque<Later>& queue = lane->second.queue;
    while (!queue.empty() && batch.size() < max_batch_) {
      batch.push_back(std::move(queue.front()));
      queue.pop_front();
    }
  }
  std::vector<MessageToSign> items;
  items.reserve(batch.size());
  for (const Later& later : batch) items.push_back(MessageToSign{later.context, later.data});
  auto signatures = SignBatch(*signer, items);
  if (on_signing_) on_signing_(batch.size());

  // The next turn is scheduled before these callers go on, so that what they queue next joins
  // it rather than a new task.
  bool again = false;
  {
    absl::MutexLock lock(&mu_);
    auto lane = later_.find(key);
    DARVOZA_CHECK(lane != later_.end()) << "a signing queue went missing";
    if (lane->second.queue.empty()) {
      later_.erase(lane);
    } else {
      again = true;
    }
  }
  if (again) schedule_([this, key] { SignQueued(key); });
  for (size_t i = 0; i < batch.size(); ++i) {
    if (signatures.ok()) {
      batch[i].done(std::move((*signatures)[i]));
    } else {
      batch[i].done(signatures.status());
    }
  }
}

size_t BatchSigner::QueuedForTest(const crypto::Signer* signer) const {
  absl::MutexLock lock(&mu_);
  auto lane = lanes_.find(signer);
  return lane == lanes_.end() ? 0 : lane->second.queue.size();
}

}  // namespace darvoza
