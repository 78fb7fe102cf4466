// BatchSigner (common/batch_signer.h): alone while the key is idle, in one batch for what
// queued while it was busy, every caller with a signature that verifies for its own message.
#include "common/batch_signer.h"

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "absl/synchronization/mutex.h"
#include "common/crypto/hash.h"

namespace darvoza {
namespace {

using crypto::SignatureContext;

// A signer whose next Sign() waits until the test opens the gate: it holds the key busy while
// other callers queue.
class GatedSigner final : public crypto::Signer {
 public:
  GatedSigner() {
    auto key = crypto::PrivateKey::Generate(crypto::KeyAlgorithm::kEcdsaP256);
    REQUIRE(key.ok());
    inner_ = std::make_unique<crypto::FileKeySigner>(std::move(key).value());
  }
  absl::StatusOr<std::string> Sign(SignatureContext context, absl::string_view data) override {
    {
      absl::MutexLock lock(&mu_);
      ++entered_;
      mu_.Await(absl::Condition(&open_));
    }
    signings_.fetch_add(1);
    return inner_->Sign(context, data);
  }
  crypto::KeyAlgorithm algorithm() const override { return inner_->algorithm(); }
  std::string PublicKeyDer() const override { return inner_->PublicKeyDer(); }

  void Close() {
    absl::MutexLock lock(&mu_);
    open_ = false;
  }
  void Open() {
    absl::MutexLock lock(&mu_);
    open_ = true;
  }
  void AwaitEntered(int n) {
    absl::MutexLock lock(&mu_);
    auto entered = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return entered_ >= n; };
    mu_.Await(absl::Condition(&entered));
  }
  int signings() const { return signings_.load(); }

 private:
  std::unique_ptr<crypto::FileKeySigner> inner_;
  absl::Mutex mu_;
  bool open_ ABSL_GUARDED_BY(mu_) = true;
  int entered_ ABSL_GUARDED_BY(mu_) = 0;
  std::atomic<int> signings_{0};
};

std::unique_ptr<crypto::PublicKey> PublicOf(const crypto::Signer& signer) {
  auto key = crypto::PublicKey::FromDer(signer.PublicKeyDer());
  REQUIRE(key.ok());
  return std::move(key).value();
}

TEST_CASE("BatchSigner: an idle key signs alone, at once", "[signature][batch]") {
  auto signer = std::make_shared<GatedSigner>();
  std::vector<size_t> sizes;
  BatchSigner batcher([&](size_t n) { sizes.push_back(n); });
  for (int i = 0; i < 3; ++i) {
    auto sig = batcher.Sign(signer, SignatureContext::kRequest, "envelope");
    REQUIRE(sig.ok());
    CHECK_FALSE(sig->has_batch_proof());
    CHECK(crypto::VerifyWithContext(*PublicOf(*signer), SignatureContext::kRequest, "envelope",
                                    sig->value())
              .ok());
  }
  CHECK(sizes == std::vector<size_t>{1, 1, 1});
  CHECK(signer->signings() == 3);
}

TEST_CASE("BatchSigner: what queues while the key is busy is signed once, as one batch",
          "[signature][batch]") {
  auto signer = std::make_shared<GatedSigner>();
  auto public_key = PublicOf(*signer);
  absl::Mutex sizes_mu;
  std::vector<size_t> sizes;
  BatchSigner batcher([&](size_t n) {
    absl::MutexLock lock(&sizes_mu);
    sizes.push_back(n);
  });
  constexpr int kQueued = 7;
  std::vector<absl::StatusOr<v1::Signature>> results(kQueued + 1,
                                                     absl::UnknownError("not signed"));
  std::vector<std::string> envelopes;
  for (int i = 0; i <= kQueued; ++i) envelopes.push_back("envelope " + std::to_string(i));

  signer->Close();
  std::vector<std::thread> threads;
  // The first caller finds the key idle and holds it inside Sign().
  threads.emplace_back([&] {
    results[0] = batcher.Sign(signer, SignatureContext::kRequest, envelopes[0]);
  });
  signer->AwaitEntered(1);
  for (int i = 1; i <= kQueued; ++i) {
    threads.emplace_back([&, i] {
      // Requests and responses of one member key share the queue.
      results[i] = batcher.Sign(
          signer, i % 2 ? SignatureContext::kRequest : SignatureContext::kResponse,
          envelopes[i]);
    });
  }
  // Every other caller is queued: nothing could have signed (the key is held).
  while (batcher.QueuedForTest(signer.get()) < kQueued) std::this_thread::yield();
  signer->Open();
  for (std::thread& t : threads) t.join();

  CHECK(signer->signings() == 2);
  CHECK(sizes == std::vector<size_t>{1, kQueued});
  REQUIRE(results[0].ok());
  CHECK_FALSE(results[0]->has_batch_proof());
  VerifiedBatchRoots roots;
  for (int i = 0; i <= kQueued; ++i) {
    INFO("caller " << i);
    REQUIRE(results[i].ok());
    const SignatureContext context =
        i == 0 || i % 2 ? SignatureContext::kRequest : SignatureContext::kResponse;
    if (i > 0) {
      CHECK(results[i]->batch_proof().tree_size() == kQueued);
      CHECK(results[i]->batch_root() == results[1]->batch_root());
    }
    CHECK(VerifyMessageSignature(*public_key, "key", context, envelopes[i], *results[i], &roots)
              .ok());
  }
  CHECK(batcher.QueuedForTest(signer.get()) == 0);
}

TEST_CASE("BatchSigner: may_batch false signs alone even while the key is busy",
          "[signature][batch]") {
  auto signer = std::make_shared<GatedSigner>();
  BatchSigner batcher;
  signer->Close();
  absl::StatusOr<v1::Signature> held = absl::UnknownError("not signed");
  std::thread holder([&] { held = batcher.Sign(signer, SignatureContext::kRequest, "a"); });
  signer->AwaitEntered(1);
  absl::StatusOr<v1::Signature> alone = absl::UnknownError("not signed");
  std::thread other(
      [&] { alone = batcher.Sign(signer, SignatureContext::kRequest, "b", /*may_batch=*/false); });
  signer->AwaitEntered(2);  // it reached the key itself instead of queueing
  CHECK(batcher.QueuedForTest(signer.get()) == 0);
  signer->Open();
  holder.join();
  other.join();
  REQUIRE(alone.ok());
  CHECK_FALSE(alone->has_batch_proof());
  REQUIRE(held.ok());
}

TEST_CASE("BatchSigner: many threads on two keys, every signature verifies",
          "[signature][batch][concurrency]") {
  std::vector<std::shared_ptr<GatedSigner>> signers = {std::make_shared<GatedSigner>(),
                                                       std::make_shared<GatedSigner>()};
  std::vector<std::unique_ptr<crypto::PublicKey>> keys;
  for (auto& s : signers) keys.push_back(PublicOf(*s));
  std::atomic<size_t> signed_messages{0};
  BatchSigner batcher([&](size_t n) { signed_messages.fetch_add(n); }, /*max_batch=*/4);
  constexpr int kThreads = 8;
  constexpr int kEach = 40;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      VerifiedBatchRoots roots;
      for (int i = 0; i < kEach; ++i) {
        const std::string envelope = "thread " + std::to_string(t) + " message " +
                                     std::to_string(i);
        const size_t k = (t + i) % 2;
        auto sig = batcher.Sign(signers[k], SignatureContext::kRequest, envelope);
        if (!sig.ok() || sig->batch_proof().tree_size() > 4 ||
            !VerifyMessageSignature(*keys[k], std::to_string(k), SignatureContext::kRequest,
                                    envelope, *sig, &roots)
                 .ok()) {
          failures.fetch_add(1);
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  CHECK(failures.load() == 0);
  CHECK(signed_messages.load() == kThreads * kEach);
  CHECK(batcher.QueuedForTest(signers[0].get()) == 0);
  CHECK(batcher.QueuedForTest(signers[1].get()) == 0);
}

}  // namespace
// A scheduler the test runs by hand: tasks wait until RunAll().
class ManualScheduler {
 public:
  BatchSigner::Scheduler scheduler() {
    return [this](std::function<void()> task) { tasks_.push_back(std::move(task)); };
  }
  size_t pending() const { return tasks_.size(); }
  // Runs the tasks queued so far and those they queue, in order.
  void RunAll() {
    while (!tasks_.empty()) {
      auto task = std::move(tasks_.front());
      tasks_.erase(tasks_.begin());
      task();
    }
  }

 private:
  std::vector<std::function<void()>> tasks_;
};

TEST_CASE("BatchSigner: SignLater signs everything queued before its task ran, as one batch",
          "[signature][batch]") {
  auto signer = std::make_shared<GatedSigner>();
  auto public_key = PublicOf(*signer);
  ManualScheduler tasks;
  std::vector<size_t> sizes;
  BatchSigner batcher([&](size_t n) { sizes.push_back(n); }, kMaxSignatureBatch,
                      tasks.scheduler());
  constexpr int kMessages = 5;
  std::vector<absl::StatusOr<v1::Signature>> results(kMessages, absl::UnknownError("none"));
  std::vector<std::string> envelopes;
  for (int i = 0; i < kMessages; ++i) {
    envelopes.push_back("envelope " + std::to_string(i));
    batcher.SignLater(signer, SignatureContext::kResponse, envelopes[i],
                      [&results, i](absl::StatusOr<v1::Signature> sig) { results[i] = sig; });
  }
  // Nothing is signed until the task runs, and the queue has one task, not one per message.
  CHECK(signer->signings() == 0);
  CHECK(tasks.pending() == 1);
  tasks.RunAll();
  CHECK(signer->signings() == 1);
  CHECK(sizes == std::vector<size_t>{kMessages});
  VerifiedBatchRoots roots;
  for (int i = 0; i < kMessages; ++i) {
    INFO("message " << i);
    REQUIRE(results[i].ok());
    CHECK(results[i]->batch_proof().tree_size() == kMessages);
    CHECK(VerifyMessageSignature(*public_key, "key", SignatureContext::kResponse, envelopes[i],
                                 *results[i], &roots)
              .ok());
  }

  SECTION("a message queued later gets a task of its own, and alone an ordinary signature") {
    absl::StatusOr<v1::Signature> late = absl::UnknownError("none");
    batcher.SignLater(signer, SignatureContext::kRequest, "late",
                      [&](absl::StatusOr<v1::Signature> sig) { late = sig; });
    CHECK(tasks.pending() == 1);
    tasks.RunAll();
    REQUIRE(late.ok());
    CHECK_FALSE(late->has_batch_proof());
    CHECK(crypto::VerifyWithContext(*public_key, SignatureContext::kRequest, "late",
                                    late->value())
              .ok());
  }
}

TEST_CASE("BatchSigner: SignLater splits a queue longer than max_batch over several tasks",
          "[signature][batch]") {
  auto signer = std::make_shared<GatedSigner>();
  ManualScheduler tasks;
  std::vector<size_t> sizes;
  BatchSigner batcher([&](size_t n) { sizes.push_back(n); }, /*max_batch=*/4,
                      tasks.scheduler());
  int signed_ok = 0;
  for (int i = 0; i < 10; ++i) {
    batcher.SignLater(signer, SignatureContext::kRequest, "m" + std::to_string(i),
                      [&](absl::StatusOr<v1::Signature> sig) { signed_ok += sig.ok(); });
  }
  tasks.RunAll();
  CHECK(sizes == std::vector<size_t>{4, 4, 2});
  CHECK(signed_ok == 10);
  CHECK(tasks.pending() == 0);
}

TEST_CASE("BatchSigner: SignLater hands the signer's error to every message of the batch",
          "[signature][batch]") {
  class FailingSigner final : public crypto::Signer {
   public:
    absl::StatusOr<std::string> Sign(SignatureContext, absl::string_view) override {
      return absl::UnavailableError("token removed");
    }
    crypto::KeyAlgorithm algorithm() const override { return crypto::KeyAlgorithm::kEcdsaP256; }
    std::string PublicKeyDer() const override { return ""; }
  };
  auto signer = std::make_shared<FailingSigner>();
  ManualScheduler tasks;
  BatchSigner batcher(nullptr, kMaxSignatureBatch, tasks.scheduler());
  std::vector<absl::Status> errors;
  for (int i = 0; i < 3; ++i) {
    batcher.SignLater(signer, SignatureContext::kRequest, "m" + std::to_string(i),
                      [&](absl::StatusOr<v1::Signature> sig) { errors.push_back(sig.status()); });
  }
  tasks.RunAll();
  REQUIRE(errors.size() == 3);
  for (const absl::Status& e : errors) CHECK(e.code() == absl::StatusCode::kUnavailable);
}

}  // namespace darvoza
