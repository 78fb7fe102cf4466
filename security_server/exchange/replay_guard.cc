#include "security_server/exchange/replay_guard.h"

#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "audit/audit_log.h"
#include "common/crypto/hash.h"
#include "common/faults.h"
#include "common/identifiers.h"
#include "common/status_macros.h"
#include "proto/envelope.pb.h"

namespace darvoza::ss::exchange {
namespace {

constexpr size_t kNonceSize = 16;
// Records read from the audit log per query while restoring.
constexpr size_t kRestorePage = 4096;

absl::Status Replayed(absl::string_view message) {
  return Fault(absl::StatusCode::kUnauthenticated, faults::kReplayedMessage, message);
}

}  // namespace

ReplayGuard::ReplayGuard(Clock* clock, absl::Duration window, size_t max_entries)
    : clock_(clock), window_(window), max_entries_(max_entries) {}

ReplayGuard::Key ReplayGuard::KeyOf(const v1::SecurityServerId& consumer,
                                    absl::string_view nonce) {
  // The identifier's text form has no NUL, so (consumer, nonce) pairs map to distinct inputs.
  const std::string digest =
      crypto::Sha256(absl::StrCat(FormatSecurityServerId(consumer), absl::string_view("\0", 1),
                                  nonce));
  Key key;
  std::memcpy(key.data(), digest.data(), key.size());
  return key;
}

absl::StatusOr<bool> ReplayGuard::Insert(const Key& key, int64_t created_at_nanos) {
  Shard& shard = ShardOf(key);
  absl::MutexLock lock(&shard.mu);
  if (shard.seen.contains(key)) return false;
  // The count may pass the bound by one per racing shard: a bound on memory, not an exact cap.
  if (size_.load(std::memory_order_relaxed) >= max_entries_) {
    return Fault(absl::StatusCode::kResourceExhausted, faults::kServiceFailed,
                 absl::StrCat("the replay window already holds ", max_entries_,
                              " requests; try again later"));
  }
  shard.seen.emplace(key, created_at_nanos);
  size_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

absl::Status ReplayGuard::CheckAndRecord(const v1::SecurityServerId& consumer,
                                         absl::string_view nonce, absl::Time created_at) {
  if (nonce.size() != kNonceSize) {
    return Fault(absl::StatusCode::kInvalidArgument, faults::kInvalidMessage,
                 absl::StrCat("the envelope's nonce has ", nonce.size(), " bytes, not ",
                              kNonceSize));
  }
  if (restore_failed_.load(std::memory_order_acquire)) {
    absl::MutexLock lock(&restore_mu_);
    return Fault(absl::StatusCode::kUnavailable, faults::kAuditLogFailure,
                 absl::StrCat("the replay window could not be restored from the audit log (",
                              restore_error_.message(),
                              "): requests are refused until the log is repaired"));
  }
  const absl::Time now = clock_->Now();
  if (created_at < now - window_ || created_at > now + window_) {
    return Replayed(absl::StrCat("created_at ", absl::FormatTime(created_at, absl::UTCTimeZone()),
                                 " is outside the replay window of ",
                                 absl::FormatDuration(window_), " around ",
                                 absl::FormatTime(now, absl::UTCTimeZone())));
  }
  const Key key = KeyOf(consumer, nonce);
  auto inserted = Insert(key, absl::ToUnixNanos(created_at));
  if (!inserted.ok() && size_.load(std::memory_order_relaxed) >= max_entries_ && Prune() > 0) {
    inserted = Insert(key, absl::ToUnixNanos(created_at));
  }
  if (!inserted.ok()) return inserted.status();
  if (!*inserted) return Replayed("this (consumer security server, nonce) pair was already seen");
  return absl::OkStatus();
}

absl::StatusOr<size_t> ReplayGuard::Restore(audit::AuditQueries& log) {
  absl::StatusOr<size_t> loaded = RestoreFrom(log);
  if (!loaded.ok()) {
    absl::MutexLock lock(&restore_mu_);
    restore_error_ = loaded.status();
    restore_failed_.store(true, std::memory_order_release);
  }
  return loaded;
}

absl::StatusOr<size_t> ReplayGuard::RestoreFrom(audit::AuditQueries& log) {
  const absl::Time now = clock_->Now();
  const int64_t oldest = absl::ToUnixNanos(now - window_);
  audit::AuditQuery query;
  query.from = now - 2 * window_;
  // The time index is ordered by (time, seq): a page resumes at the last page's newest time,
  // skipping the records of that time it already read.
  size_t skip = 0;
  size_t loaded = 0;
  while (true) {
    query.limit = skip + kRestorePage;
    DARVOZA_ASSIGN_OR_RETURN(std::vector<audit::StoredRecord> page, log.Find(query));
    if (page.size() <= skip) break;
    const int64_t newest = page.back().record.time_unix_nanos();
    size_t at_newest = 0;
    for (size_t i = skip; i < page.size(); ++i) {
      const v1::AuditRecord& record = page[i].record;
      at_newest = record.time_unix_nanos() == newest ? at_newest + 1 : 0;
      if (record.kind() != v1::REQUEST_IN) continue;
      v1::Envelope envelope;
      // Written by this provider after the envelope passed every check; a record that does
      // not read back holds no pair worth keeping.
      if (!envelope.ParseFromString(record.envelope()) || envelope.nonce().size() != kNonceSize ||
          envelope.created_at_unix_nanos() < oldest) {
        continue;
      }
      auto inserted = Insert(KeyOf(envelope.consumer_server(), envelope.nonce()),
                             envelope.created_at_unix_nanos());
      if (!inserted.ok()) return inserted.status();
      if (*inserted) ++loaded;
    }
    if (page.size() < query.limit) break;
    // Records of `newest` read so far: when the page began at that time, all of it.
    skip = query.from == absl::FromUnixNanos(newest) ? page.size() : at_newest;
    query.from = absl::FromUnixNanos(newest);
  }
  return loaded;
}

size_t ReplayGuard::Prune() {
  const int64_t oldest = absl::ToUnixNanos(clock_->Now() - window_);
  size_t removed = 0;
  for (Shard& shard : shards_) {
    absl::MutexLock lock(&shard.mu);
    const size_t before = shard.seen.size();
    absl::erase_if(shard.seen, [oldest](const auto& entry) { return entry.second < oldest; });
    const size_t gone = before - shard.seen.size();
    // A table emptied after a burst gives its memory back instead of keeping the burst's size.
    if (gone > 0 && shard.seen.size() < shard.seen.capacity() / 4) {
      absl::flat_hash_map<Key, int64_t> smaller(shard.seen.begin(), shard.seen.end());
      shard.seen.swap(smaller);
    }
    removed += gone;
  }
  size_.fetch_sub(removed, std::memory_order_relaxed);
  return removed;
}

}  // namespace darvoza::ss::exchange
