#include "security_server/exchange/replay_guard.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/crypto/hash.h"
#include "common/faults.h"
#include "common/identifiers.h"
#include "security_server/local_state.h"

namespace darvoza::ss::exchange {
namespace {

constexpr absl::string_view kNoncePrefix = "nonce/";
constexpr size_t kNonceSize = 16;

absl::Status Replayed(absl::string_view message) {
  return Fault(absl::StatusCode::kUnauthenticated, faults::kReplayedMessage, message);
}

}  // namespace

ReplayGuard::ReplayGuard(LocalState* state, Clock* clock, absl::Duration window)
    : state_(state), clock_(clock), window_(window) {}

absl::Status ReplayGuard::CheckAndRecord(const v1::SecurityServerId& consumer,
                                         absl::string_view nonce, absl::Time created_at) {
  if (nonce.size() != kNonceSize) {
    return Fault(absl::StatusCode::kInvalidArgument, faults::kInvalidMessage,
                 absl::StrCat("the envelope's nonce has ", nonce.size(), " bytes, not ",
                              kNonceSize));
  }
  const absl::Time now = clock_->Now();
  if (created_at < now - window_ || created_at > now + window_) {
    return Replayed(absl::StrCat("created_at ", absl::FormatTime(created_at, absl::UTCTimeZone()),
                                 " is outside the replay window of ",
                                 absl::FormatDuration(window_), " around ",
                                 absl::FormatTime(now, absl::UTCTimeZone())));
  }
  const std::string key = absl::StrCat(kNoncePrefix, FormatSecurityServerId(consumer), "/",
                                       crypto::HexEncode(nonce));
  auto stored = state_->PutIfAbsent(key, absl::StrCat(absl::ToUnixNanos(created_at)));
  if (!stored.ok()) return stored.status();
  if (!*stored) return Replayed("this (consumer security server, nonce) pair was already seen");
  return absl::OkStatus();
}

size_t ReplayGuard::Prune() {
  auto entries = state_->ScanPrefix(kNoncePrefix);
  if (!entries.ok()) return 0;
  const int64_t oldest = absl::ToUnixNanos(clock_->Now() - window_);
  size_t removed = 0;
  for (const auto& [key, value] : *entries) {
    int64_t created = 0;
    if (!absl::SimpleAtoi(value, &created) || created < oldest) {
      if (state_->Delete(key).ok()) ++removed;
    }
  }
  return removed;
}

}  // namespace darvoza::ss::exchange
