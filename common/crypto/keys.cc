// ECDSA P-256 and Ed25519 keys on OpenSSL 3's EVP API, and their 0600 PKCS#8 files.
#include "common/crypto/keys.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/check.h"
#include "common/crypto/hash.h"
#include "common/crypto/internal/openssl_util.h"

namespace darvoza::crypto {
namespace internal {

// Initialised EVP_PKEY_CTXs of one key for one operation (sign or verify a SHA-256 digest with
// ECDSA), kept for reuse: EVP_DigestSignInit per call built a fresh context and looked up the
// digest and signature implementations each time (about a third of a P-256 sign here,
// measured by bench/micro_crypto.cc). A context is used by one thread at a time: Acquire takes
// it out of the pool, Release puts it back. Thread-safe.
class PkeyCtxPool {
 public:
  enum class Operation { kSign, kVerify };

  // `pkey` is borrowed and must outlive the pool (it is its owner's key).
  PkeyCtxPool(EVP_PKEY* pkey, Operation operation) : pkey_(pkey), operation_(operation) {}
  PkeyCtxPool(const PkeyCtxPool&) = delete;
  PkeyCtxPool& operator=(const PkeyCtxPool&) = delete;

  // A context ready for EVP_PKEY_sign / EVP_PKEY_verify; null (with OpenSSL's error queued)
  // when OpenSSL cannot make one.
  EvpPkeyCtxPtr Acquire() {
    {
      absl::MutexLock lock(&mu_);
      if (!free_.empty()) {
        EvpPkeyCtxPtr ctx = std::move(free_.back());
        free_.pop_back();
        return ctx;
      }
    }
    EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey_, nullptr));
    if (ctx == nullptr) return nullptr;
    const int init = operation_ == Operation::kSign ? EVP_PKEY_sign_init(ctx.get())
                                                    : EVP_PKEY_verify_init(ctx.get());
    if (init != 1 || EVP_PKEY_CTX_set_signature_md(ctx.get(), FetchedSha256()) != 1) {
      return nullptr;
    }
    return ctx;
  }

  // Returns a context that Acquire handed out and whose last operation succeeded or merely
  // found a signature invalid.
  void Release(EvpPkeyCtxPtr ctx) {
    absl::MutexLock lock(&mu_);
    // As many as threads ever signed at once with this key; the bound only guards against a
    // burst of threads leaving contexts behind for good.
    if (free_.size() < kMaxFree) free_.push_back(std::move(ctx));
  }

 private:
  static constexpr size_t kMaxFree = 64;
  EVP_PKEY* const pkey_;
  const Operation operation_;
  absl::Mutex mu_;
  std::vector<EvpPkeyCtxPtr> free_ ABSL_GUARDED_BY(mu_);
};

}  // namespace internal

namespace {

using internal::BioPtr;
using internal::EvpMdCtxPtr;
using internal::EvpPkeyPtr;
using internal::OpenSslError;

// The two key types Darvoza accepts; anything else (RSA, other curves) is refused so that a
// peer cannot steer us onto a weaker or unexpected algorithm.
absl::StatusOr<KeyAlgorithm> ClassifyKey(EVP_PKEY* pkey) {
  if (EVP_PKEY_is_a(pkey, "ED25519")) return KeyAlgorithm::kEd25519;
  if (EVP_PKEY_is_a(pkey, "EC")) {
    char group[64] = {0};
    size_t len = 0;
    if (EVP_PKEY_get_group_name(pkey, group, sizeof(group), &len) == 1 &&
        (std::strcmp(group, "prime256v1") == 0 || std::strcmp(group, "P-256") == 0)) {
      return KeyAlgorithm::kEcdsaP256;
    }
    internal::TakeOpenSslError();
    return absl::InvalidArgumentError(
        absl::StrCat("unsupported EC curve '", group, "': only P-256 is accepted"));
  }
  const char* type = EVP_PKEY_get0_type_name(pkey);
  return absl::InvalidArgumentError(absl::StrCat("unsupported key type '",
                                                 type != nullptr ? type : "?",
                                                 "': only ECDSA P-256 and Ed25519 are accepted"));
}

// ECDSA signs a SHA-256 digest; Ed25519 is "pure" and must be given no digest.
const EVP_MD* DigestFor(KeyAlgorithm algorithm) {
  return algorithm == KeyAlgorithm::kEcdsaP256 ? EVP_sha256() : nullptr;
}

std::string PublicDer(EVP_PKEY* pkey) {
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(pkey, &der);
  DARVOZA_CHECK(len > 0) << "i2d_PUBKEY failed: " << internal::TakeOpenSslError();
  std::string out(reinterpret_cast<const char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

// Reads `fd` to its end.
absl::StatusOr<std::string> ReadAll(int fd, const std::string& path) {
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      OPENSSL_cleanse(out.data(), out.size());
      return absl::ErrnoToStatus(err, absl::StrCat("reading key file ", path));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  OPENSSL_cleanse(buf, sizeof(buf));
  return out;
}

absl::Status WriteAll(int fd, absl::string_view data, const std::string& path) {
  while (!data.empty()) {
    const ssize_t n = write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::ErrnoToStatus(errno, absl::StrCat("writing ", path));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

std::string DirName(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Makes a rename or link in `dir` durable; best effort beyond that (some file systems refuse
// fsync on directories, and the key itself is already synced).
void SyncDir(const std::string& dir) {
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  fsync(fd);
  close(fd);
}

}  // namespace

absl::string_view KeyAlgorithmName(KeyAlgorithm algorithm) {
  switch (algorithm) {
    case KeyAlgorithm::kEcdsaP256:
      return "ecdsa-p256";
    case KeyAlgorithm::kEd25519:
      return "ed25519";
  }
  return "unknown";
}

absl::StatusOr<KeyAlgorithm> ParseKeyAlgorithm(absl::string_view name) {
  if (name == "ecdsa-p256") return KeyAlgorithm::kEcdsaP256;
  if (name == "ed25519") return KeyAlgorithm::kEd25519;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown key algorithm '", name, "' (expected ecdsa-p256 or ed25519)"));
}

// ---------------------------------------------------------------------------------------------
// PublicKey

PublicKey::PublicKey(EVP_PKEY* pkey, KeyAlgorithm algorithm, std::string der)
    : pkey_(pkey), algorithm_(algorithm), der_(std::move(der)) {
  if (algorithm_ == KeyAlgorithm::kEcdsaP256) {
    verify_contexts_ =
        std::make_unique<internal::PkeyCtxPool>(pkey_, internal::PkeyCtxPool::Operation::kVerify);
  }
}

PublicKey::~PublicKey() {
  verify_contexts_.reset();  // its contexts hold references to pkey_
  EVP_PKEY_free(pkey_);
}

absl::StatusOr<std::unique_ptr<PublicKey>> PublicKey::FromDer(absl::string_view spki_der) {
  const auto* p = reinterpret_cast<const unsigned char*>(spki_der.data());
  EvpPkeyPtr pkey(d2i_PUBKEY(nullptr, &p, static_cast<long>(spki_der.size())));  // NOLINT
  if (pkey == nullptr) {
    return OpenSslError(absl::StatusCode::kInvalidArgument,
                        "not a DER SubjectPublicKeyInfo");
  }
  if (p != reinterpret_cast<const unsigned char*>(spki_der.data() + spki_der.size())) {
    return absl::InvalidArgumentError("trailing bytes after DER SubjectPublicKeyInfo");
  }
  return FromOwnedEvp(pkey.release());
}

absl::StatusOr<std::unique_ptr<PublicKey>> PublicKey::FromOwnedEvp(EVP_PKEY* pkey) {
  EvpPkeyPtr owned(pkey);
  if (owned == nullptr) return absl::InvalidArgumentError("no public key");
  auto algorithm = ClassifyKey(owned.get());
  if (!algorithm.ok()) return algorithm.status();
  std::string der = PublicDer(owned.get());
  return std::unique_ptr<PublicKey>(new PublicKey(owned.release(), *algorithm, std::move(der)));
}

absl::Status PublicKey::VerifyRaw(absl::string_view data, absl::string_view signature) const {
  if (verify_contexts_ != nullptr) {
    // ECDSA with SHA-256: the digest, then the signature check on a reused context; the same
    // result as EVP_DigestVerify.
    const std::string digest = Sha256(data);
    internal::EvpPkeyCtxPtr ctx = verify_contexts_->Acquire();
    if (ctx == nullptr) {
      return OpenSslError(absl::StatusCode::kInternal, "EVP_PKEY_verify_init failed");
    }
    const int rc = EVP_PKEY_verify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                                   signature.size(),
                                   reinterpret_cast<const unsigned char*>(digest.data()),
                                   digest.size());
    // 1 is a valid signature; 0 a wrong one; < 0 a malformed one. None of these leaves state
    // behind in the context.
    verify_contexts_->Release(std::move(ctx));
    if (rc != 1) {
      internal::TakeOpenSslError();
      return absl::UnauthenticatedError(
          absl::StrCat(KeyAlgorithmName(algorithm_), " signature does not verify"));
    }
    return absl::OkStatus();
  }
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  DARVOZA_CHECK(ctx != nullptr) << "EVP_MD_CTX_new failed";
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, DigestFor(algorithm_), nullptr, pkey_) != 1) {
    return OpenSslError(absl::StatusCode::kInternal, "EVP_DigestVerifyInit failed");
  }
  // 1 is a valid signature; 0 a wrong one; < 0 a malformed one. All but 1 are simply "does
  // not verify" to the caller.
  const int rc = EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                                  signature.size(),
                                  reinterpret_cast<const unsigned char*>(data.data()), data.size());
  if (rc != 1) {
    internal::TakeOpenSslError();
    return absl::UnauthenticatedError(
        absl::StrCat(KeyAlgorithmName(algorithm_), " signature does not verify"));
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// PrivateKey

PrivateKey::PrivateKey(EVP_PKEY* pkey, KeyAlgorithm algorithm)
    : pkey_(pkey), algorithm_(algorithm) {
  if (algorithm_ == KeyAlgorithm::kEcdsaP256) {
    sign_contexts_ =
        std::make_unique<internal::PkeyCtxPool>(pkey_, internal::PkeyCtxPool::Operation::kSign);
  }
}

PrivateKey::~PrivateKey() {
  sign_contexts_.reset();  // its contexts hold references to pkey_
  EVP_PKEY_free(pkey_);
}

absl::StatusOr<std::unique_ptr<PrivateKey>> PrivateKey::Generate(KeyAlgorithm algorithm) {
  EvpPkeyPtr pkey(algorithm == KeyAlgorithm::kEcdsaP256
                      ? EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")
                      : EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  if (pkey == nullptr) {
    return OpenSslError(absl::StatusCode::kInternal,
                        absl::StrCat("generating a ", KeyAlgorithmName(algorithm), " key failed"));
  }
  return std::unique_ptr<PrivateKey>(new PrivateKey(pkey.release(), algorithm));
}

absl::StatusOr<std::unique_ptr<PrivateKey>> PrivateKey::FromPem(absl::string_view pem) {
  // Decode the PEM block ourselves rather than with PEM_read_bio_PrivateKey: that also accepts
  // legacy formats and, for an encrypted key, would prompt for a passphrase on the terminal.
  BioPtr bio = internal::ReadOnlyBio(pem);
  DARVOZA_CHECK(bio != nullptr) << "BIO_new_mem_buf failed";
  char* name = nullptr;
  char* header = nullptr;
  unsigned char* data = nullptr;
  long len = 0;  // NOLINT(runtime/int): OpenSSL's type.
  if (PEM_read_bio(bio.get(), &name, &header, &data, &len) != 1) {
    return OpenSslError(absl::StatusCode::kInvalidArgument, "not a PEM private key");
  }
  absl::Cleanup free_pem = [&] {
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_clear_free(data, static_cast<size_t>(len));
  };
  if (std::strcmp(name, "PRIVATE KEY") != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "PEM block is '", name, "', expected an unencrypted PKCS#8 'PRIVATE KEY'"));
  }
  const unsigned char* p = data;
  PKCS8_PRIV_KEY_INFO* p8 = d2i_PKCS8_PRIV_KEY_INFO(nullptr, &p, len);
  if (p8 == nullptr) {
    return OpenSslError(absl::StatusCode::kInvalidArgument, "malformed PKCS#8 private key");
  }
  EvpPkeyPtr pkey(EVP_PKCS82PKEY(p8));
  PKCS8_PRIV_KEY_INFO_free(p8);
  if (pkey == nullptr) {
    return OpenSslError(absl::StatusCode::kInvalidArgument, "unusable PKCS#8 private key");
  }
  auto algorithm = ClassifyKey(pkey.get());
  if (!algorithm.ok()) return algorithm.status();
  return std::unique_ptr<PrivateKey>(new PrivateKey(pkey.release(), *algorithm));
}

absl::StatusOr<std::unique_ptr<PrivateKey>> PrivateKey::LoadFromFile(const std::string& path) {
  // open + fstat rather than stat + open: the mode checked is the mode of the file read.
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return absl::NotFoundError(absl::StrCat("key file ", path, " not found"));
    return absl::ErrnoToStatus(errno, absl::StrCat("opening key file ", path));
  }
  absl::Cleanup close_fd = [fd] { close(fd); };
  struct stat st;
  if (fstat(fd, &st) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("stat of key file ", path));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat("key file ", path, " is not a regular file"));
  }
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return absl::PermissionDeniedError(absl::StrCat(
        "key file ", path, " has mode ", mode,
        " and is readable by others: consider the key leaked, or if it is not, chmod 600 ",
        path));
  }
  auto pem = ReadAll(fd, path);
  if (!pem.ok()) return pem.status();
  auto key = FromPem(*pem);
  OPENSSL_cleanse(pem->data(), pem->size());
  if (!key.ok()) {
    return absl::Status(key.status().code(),
                        absl::StrCat("key file ", path, ": ", key.status().message()));
  }
  return key;
}

std::string PrivateKey::ToPem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  DARVOZA_CHECK(bio != nullptr) << "BIO_new failed";
  DARVOZA_CHECK(PEM_write_bio_PKCS8PrivateKey(bio.get(), pkey_, nullptr, nullptr, 0, nullptr,
                                              nullptr) == 1)
      << "PEM_write_bio_PKCS8PrivateKey failed: " << internal::TakeOpenSslError();
  std::string pem = internal::BioContents(bio.get());
  // Wipe the BIO's copy of the secret before it is freed.
  char* mem = nullptr;
  const long mem_len = BIO_get_mem_data(bio.get(), &mem);  // NOLINT(runtime/int)
  if (mem != nullptr && mem_len > 0) OPENSSL_cleanse(mem, static_cast<size_t>(mem_len));
  return pem;
}

absl::Status PrivateKey::SaveToFile(const std::string& path, bool overwrite) const {
  struct stat st;
  if (!overwrite && lstat(path.c_str(), &st) == 0) {
    return absl::AlreadyExistsError(absl::StrCat("key file ", path, " already exists"));
  }
  const std::string tmp = absl::StrCat(path, ".tmp.", HexEncode(RandomBytes(8)));
  // O_EXCL with 0600 means the secret is never, even briefly, in a file others can open.
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("creating key file ", tmp));
  }
  bool keep_tmp = false;
  absl::Cleanup remove_tmp = [&] {
    if (!keep_tmp) unlink(tmp.c_str());
  };
  std::string pem = ToPem();
  absl::Status status = WriteAll(fd, pem, tmp);
  OPENSSL_cleanse(pem.data(), pem.size());
  // A umask such as 0277 would otherwise leave the owner unable to rewrite it; 0600 exactly.
  if (status.ok() && fchmod(fd, 0600) != 0) {
    status = absl::ErrnoToStatus(errno, absl::StrCat("chmod of ", tmp));
  }
  if (status.ok() && fsync(fd) != 0) {
    status = absl::ErrnoToStatus(errno, absl::StrCat("fsync of ", tmp));
  }
  if (close(fd) != 0 && status.ok()) {
    status = absl::ErrnoToStatus(errno, absl::StrCat("closing ", tmp));
  }
  if (!status.ok()) return status;

  if (overwrite) {
    if (rename(tmp.c_str(), path.c_str()) != 0) {
      return absl::ErrnoToStatus(errno, absl::StrCat("renaming ", tmp, " to ", path));
    }
    keep_tmp = true;
  } else {
    // link() fails with EEXIST instead of replacing, closing the race with a concurrent writer
    // that the lstat() above leaves open.
    if (link(tmp.c_str(), path.c_str()) != 0) {
      const int err = errno;
      if (err == EEXIST) {
        return absl::AlreadyExistsError(absl::StrCat("key file ", path, " already exists"));
      }
      // Some file systems have no hard links: fall back to the lstat() check above.
      if (err != EPERM && err != EOPNOTSUPP) {
        return absl::ErrnoToStatus(err, absl::StrCat("linking ", tmp, " to ", path));
      }
      if (rename(tmp.c_str(), path.c_str()) != 0) {
        return absl::ErrnoToStatus(errno, absl::StrCat("renaming ", tmp, " to ", path));
      }
      keep_tmp = true;
    }
    // remove_tmp unlinks the temporary name; the key stays under `path`.
  }
  SyncDir(DirName(path));
  return absl::OkStatus();
}

std::string PrivateKey::PublicKeyDer() const { return PublicDer(pkey_); }

std::unique_ptr<PublicKey> PrivateKey::GetPublicKey() const {
  auto key = PublicKey::FromDer(PublicDer(pkey_));
  DARVOZA_CHECK(key.ok()) << "own public key does not parse: " << key.status().ToString();
  return std::move(key).value();
}

absl::StatusOr<std::string> PrivateKey::SignRaw(absl::string_view data) const {
  if (sign_contexts_ != nullptr) {
    // ECDSA with SHA-256: the digest, then the signature on a reused context; the same
    // signature format as EVP_DigestSign (DER).
    const std::string digest = Sha256(data);
    internal::EvpPkeyCtxPtr ctx = sign_contexts_->Acquire();
    if (ctx == nullptr) {
      return OpenSslError(absl::StatusCode::kInternal, "EVP_PKEY_sign_init failed");
    }
    const auto* in = reinterpret_cast<const unsigned char*>(digest.data());
    size_t len = 0;
    if (EVP_PKEY_sign(ctx.get(), nullptr, &len, in, digest.size()) != 1) {
      return OpenSslError(absl::StatusCode::kInternal, "EVP_PKEY_sign (length) failed");
    }
    std::string sig(len, '\0');
    if (EVP_PKEY_sign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, in,
                      digest.size()) != 1) {
      return OpenSslError(absl::StatusCode::kInternal, "EVP_PKEY_sign failed");
    }
    sign_contexts_->Release(std::move(ctx));
    sig.resize(len);  // A DER ECDSA signature is often shorter than the maximum.
    return sig;
  }
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  if (ctx == nullptr) return OpenSslError(absl::StatusCode::kInternal, "EVP_MD_CTX_new failed");
  if (EVP_DigestSignInit(ctx.get(), nullptr, DigestFor(algorithm_), nullptr, pkey_) != 1) {
    return OpenSslError(absl::StatusCode::kInternal, "EVP_DigestSignInit failed");
  }
  const auto* in = reinterpret_cast<const unsigned char*>(data.data());
  size_t len = 0;
  if (EVP_DigestSign(ctx.get(), nullptr, &len, in, data.size()) != 1) {
    return OpenSslError(absl::StatusCode::kInternal, "EVP_DigestSign (length) failed");
  }
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, in,
                     data.size()) != 1) {
    return OpenSslError(absl::StatusCode::kInternal, "EVP_DigestSign failed");
  }
  sig.resize(len);  // A DER ECDSA signature is often shorter than the maximum.
  return sig;
}

}  // namespace darvoza::crypto
