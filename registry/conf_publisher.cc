#include "registry/conf_publisher.h"

namespace darvoza::registry {

uint64_t SerialOf(const v1::SignedGlobalConf& conf) {
  v1::GlobalConf inner;
  if (!inner.ParseFromString(conf.conf())) return 0;
  return inner.serial();
}

bool ConfPublisher::Subscribe(Subscriber* s) {
  absl::MutexLock lock(&mu_);
  if (closed_) return false;
  subscribers_.insert(s);
  return true;
}

void ConfPublisher::Unsubscribe(Subscriber* s) {
  absl::MutexLock lock(&mu_);
  subscribers_.erase(s);
}

void ConfPublisher::Publish(std::shared_ptr<const v1::SignedGlobalConf> conf) {
  const uint64_t serial = SerialOf(*conf);
  absl::MutexLock lock(&mu_);
  for (Subscriber* s : subscribers_) s->OnConf(conf, serial);
}

void ConfPublisher::Close() {
  absl::MutexLock lock(&mu_);
  closed_ = true;
  for (Subscriber* s : subscribers_) s->OnClose();
}

bool ConfPublisher::WaitUntilEmpty(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto empty = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return subscribers_.empty(); };
  return mu_.AwaitWithTimeout(absl::Condition(&empty), timeout);
}

size_t ConfPublisher::subscribers() const {
  absl::MutexLock lock(&mu_);
  return subscribers_.size();
}

}  // namespace darvoza::registry
