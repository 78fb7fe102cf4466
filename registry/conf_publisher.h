// ConfPublisher: fans each newly signed configuration out to every Watch stream.
//
// Each Watch call is a server-streaming reactor that subscribes here; Publish hands it the new
// configuration and the reactor writes it when its previous write is done (only the newest
// pending configuration is kept per subscriber), so no thread is held per stream.
//
// Thread-safe. Subscriber callbacks run with the publisher's mutex held: they must not block
// and must not call back into the publisher.
#ifndef DARVOZA_REGISTRY_CONF_PUBLISHER_H_
#define DARVOZA_REGISTRY_CONF_PUBLISHER_H_

#include <cstdint>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "proto/globalconf.pb.h"

namespace darvoza::registry {

class ConfPublisher {
 public:
  class Subscriber {
   public:
    virtual ~Subscriber() = default;
    // A configuration with serial `serial` is published.
    virtual void OnConf(std::shared_ptr<const v1::SignedGlobalConf> conf, uint64_t serial) = 0;
    // The publisher is closing: finish the stream.
    virtual void OnClose() = 0;
  };

  ConfPublisher() = default;
  ConfPublisher(const ConfPublisher&) = delete;
  ConfPublisher& operator=(const ConfPublisher&) = delete;

  // Adds `s` (not owned; must Unsubscribe before it dies). False when already closed.
  bool Subscribe(Subscriber* s) ABSL_LOCKS_EXCLUDED(mu_);
  void Unsubscribe(Subscriber* s) ABSL_LOCKS_EXCLUDED(mu_);
  void Publish(std::shared_ptr<const v1::SignedGlobalConf> conf) ABSL_LOCKS_EXCLUDED(mu_);
  // Tells every subscriber to finish and refuses new ones.
  void Close() ABSL_LOCKS_EXCLUDED(mu_);
  // Blocks until every subscriber has unsubscribed or `timeout` passes; true when none is left.
  bool WaitUntilEmpty(absl::Duration timeout) ABSL_LOCKS_EXCLUDED(mu_);
  size_t subscribers() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  mutable absl::Mutex mu_;
  absl::flat_hash_set<Subscriber*> subscribers_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

// The serial of a signed configuration (0 when unreadable).
uint64_t SerialOf(const v1::SignedGlobalConf& conf);

}  // namespace darvoza::registry

#endif  // DARVOZA_REGISTRY_CONF_PUBLISHER_H_
