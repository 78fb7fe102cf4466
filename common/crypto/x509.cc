// X.509 certificates, CSRs, issuance and chain verification on OpenSSL 3's APIs.
#include "common/crypto/x509.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <functional>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/check.h"
#include "common/crypto/hash.h"
#include "common/crypto/internal/openssl_util.h"
#include "common/host_port.h"

namespace darvoza::crypto {
namespace {

using internal::BignumPtr;
using internal::BioPtr;
using internal::OpenSslError;
using internal::X509ExtensionPtr;
using internal::X509Ptr;
using internal::X509ReqPtr;
using internal::X509StoreCtxPtr;
using internal::X509StorePtr;

// Long enough for any identifier Darvoza makes; bounds what a CSR may make us put in a name.
constexpr size_t kMaxCommonNameSize = 1024;

absl::string_view ProfileName(CertificateProfile profile) {
  switch (profile) {
    case CertificateProfile::kRootCa:
      return "root CA";
    case CertificateProfile::kTlsAuth:
      return "TLS authentication";
    case CertificateProfile::kSigning:
      return "signing";
  }
  return "unknown";
}

// RFC 2253 one-line form, e.g. "CN=server:UZ/GOV/70000001/ss1".
std::string NameToString(const X509_NAME* name) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  DARVOZA_CHECK(bio != nullptr) << "BIO_new failed";
  if (X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) {
    internal::TakeOpenSslError();
    return std::string();
  }
  return internal::BioContents(bio.get());
}

// The UTF-8 text of the (first) common name; empty when there is none.
absl::StatusOr<std::string> CommonName(const X509_NAME* name) {
  const int index = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (index < 0) return std::string();
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index));
  unsigned char* utf8 = nullptr;
  const int len = ASN1_STRING_to_UTF8(&utf8, data);
  if (len < 0) {
    return OpenSslError(absl::StatusCode::kInvalidArgument, "common name is not valid text");
  }
  std::string out(reinterpret_cast<const char*>(utf8), static_cast<size_t>(len));
  OPENSSL_free(utf8);
  if (out.find('\0') != std::string::npos) {
    // An embedded NUL could make two different names look alike to C string code.
    return absl::InvalidArgumentError("common name contains a NUL character");
  }
  return out;
}

// Lower-case hex without leading zeros ("0" for zero), the form revocation lists use.
std::string NormalizeSerialHex(absl::string_view hex) {
  std::string out = absl::AsciiStrToLower(hex);
  const size_t first = out.find_first_not_of('0');
  if (first == std::string::npos) return "0";
  return out.substr(first);
}

absl::StatusOr<std::string> SerialHex(const X509* x509) {
  BignumPtr bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(x509), nullptr));
  if (bn == nullptr) {
    return OpenSslError(absl::StatusCode::kInvalidArgument, "unreadable serial number");
  }
  if (BN_is_negative(bn.get())) {
    return absl::InvalidArgumentError("negative certificate serial number");
  }
  internal::OpenSslStringPtr hex(BN_bn2hex(bn.get()));
  DARVOZA_CHECK(hex != nullptr) << "BN_bn2hex failed";
  return NormalizeSerialHex(hex.get());
}

absl::StatusOr<absl::Time> Asn1TimeToTime(const ASN1_TIME* t) {
  struct tm tm = {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) {
    return OpenSslError(absl::StatusCode::kInvalidArgument, "unreadable certificate time");
  }
  return absl::FromCivil(absl::CivilSecond(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                                           tm.tm_hour, tm.tm_min, tm.tm_sec),
                         absl::UTCTimeZone());
}

std::string I2dX509(X509* x509) {
  unsigned char* der = nullptr;
  const int len = i2d_X509(x509, &der);
  DARVOZA_CHECK(len > 0) << "i2d_X509 failed: " << internal::TakeOpenSslError();
  std::string out(reinterpret_cast<const char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

// ECDSA certificates and CSRs are signed with SHA-256; Ed25519 takes no separate digest.
const EVP_MD* SignatureDigest(const PrivateKey& key) {
  return key.algorithm() == KeyAlgorithm::kEcdsaP256 ? EVP_sha256() : nullptr;
}

absl::Status CheckCommonName(absl::string_view cn) {
  if (cn.empty()) return absl::InvalidArgumentError("empty subject common name");
  if (cn.size() > kMaxCommonNameSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("subject common name longer than ", kMaxCommonNameSize, " bytes"));
  }
  if (cn.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError("subject common name contains a NUL character");
  }
  return absl::OkStatus();
}

// A name that is only CN=<cn>, as a UTF8String. V_ASN1_UTF8STRING (rather than MBSTRING_UTF8)
// skips OpenSSL's 64-character upper bound for CN, which a long subsystem identifier can exceed.
absl::Status SetCommonName(X509_NAME* name, absl::string_view cn) {
  absl::Status status = CheckCommonName(cn);
  if (!status.ok()) return status;
  if (X509_NAME_add_entry_by_NID(name, NID_commonName, V_ASN1_UTF8STRING,
                                 reinterpret_cast<const unsigned char*>(cn.data()),
                                 static_cast<int>(cn.size()), -1, 0) != 1) {
    return OpenSslError(absl::StatusCode::kInvalidArgument, "cannot encode subject common name");
  }
  return absl::OkStatus();
}

// Adds one extension written in OpenSSL's configuration syntax ("critical,CA:TRUE").
absl::Status AddExtension(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
  X509ExtensionPtr ext(X509V3_EXT_nconf_nid(nullptr, ctx, nid, value));
  if (ext == nullptr) {
    return OpenSslError(absl::StatusCode::kInternal,
                        absl::StrCat("building extension ", OBJ_nid2sn(nid), "=", value));
  }
  if (X509_add_ext(cert, ext.get(), -1) != 1) {
    return OpenSslError(absl::StatusCode::kInternal,
                        absl::StrCat("adding extension ", OBJ_nid2sn(nid)));
  }
  return absl::OkStatus();
}

// The subjectAltName value for X509V3_EXT_nconf_nid: "DNS:a,IP:b". The hosts were checked by
// ValidateSubjectAltHost, so none holds a ',' or ':' that could smuggle in another entry
// (IPv6 literals hold ':' but go through the IP: form, which takes the rest of the entry).
absl::StatusOr<std::string> SubjectAltNameValue(const std::vector<std::string>& hosts) {
  std::string value;
  for (const std::string& host : hosts) {
    absl::Status valid = ValidateSubjectAltHost(host);
    if (!valid.ok()) return valid;
    unsigned char buf[16];
    const bool ip = inet_pton(AF_INET, host.c_str(), buf) == 1 ||
                    inet_pton(AF_INET6, host.c_str(), buf) == 1;
    absl::StrAppend(&value, value.empty() ? "" : ",", ip ? "IP:" : "DNS:", host);
  }
  return value;
}

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return absl::NotFoundError(absl::StrCat(path, " not found"));
    return absl::ErrnoToStatus(errno, absl::StrCat("opening ", path));
  }
  absl::Cleanup close_fd = [fd] { close(fd); };
  std::string out;
  char buf[8192];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::ErrnoToStatus(errno, absl::StrCat("reading ", path));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

absl::Status ChainError(absl::string_view reason, X509_STORE_CTX* ctx, int error) {
  std::string who;
  if (X509* current = X509_STORE_CTX_get_current_cert(ctx); current != nullptr) {
    who = absl::StrCat(" [", NameToString(X509_get_subject_name(current)), ", depth ",
                       X509_STORE_CTX_get_error_depth(ctx), "]");
  }
  return absl::UnauthenticatedError(
      absl::StrCat(reason, who, " (", X509_verify_cert_error_string(error), ")"));
}

// Translates OpenSSL's verification error into the reasons x509.h promises.
absl::string_view ChainErrorReason(int error) {
  switch (error) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return "certificate expired";
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return "certificate not yet valid";
    case X509_V_ERR_CERT_REVOKED:
      return "certificate revoked";
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_CERT_UNTRUSTED:
    case X509_V_ERR_CERT_CHAIN_TOO_LONG:
      return "unknown issuer";
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
    case X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE:
    case X509_V_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY:
    case X509_V_ERR_SIGNATURE_ALGORITHM_MISMATCH:
    case X509_V_ERR_UNSUPPORTED_SIGNATURE_ALGORITHM:
      return "bad signature";
    case X509_V_ERR_INVALID_CA:
    case X509_V_ERR_INVALID_NON_CA:
    case X509_V_ERR_KEYUSAGE_NO_CERTSIGN:
    case X509_V_ERR_INVALID_PURPOSE:
    case X509_V_ERR_PATH_LENGTH_EXCEEDED:
      return "wrong certificate purpose";
    default:
      return "certificate rejected";
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Certificate

Certificate::~Certificate() { X509_free(x509_); }

absl::StatusOr<std::shared_ptr<const Certificate>> Certificate::FromDer(absl::string_view der) {
  const auto* begin = reinterpret_cast<const unsigned char*>(der.data());
  const unsigned char* p = begin;
  X509Ptr x509(d2i_X509(nullptr, &p, static_cast<long>(der.size())));  // NOLINT(runtime/int)
  if (x509 == nullptr) {
    return OpenSslError(absl::StatusCode::kInvalidArgument, "not a DER X.509 certificate");
  }
  if (p != begin + der.size()) {
    return absl::InvalidArgumentError("trailing bytes after DER X.509 certificate");
  }
  // Computes the cached extension flags; EXFLAG_INVALID marks malformed or duplicate
  // extensions, which we refuse rather than guess at.
  X509_check_purpose(x509.get(), -1, 0);
  if ((X509_get_extension_flags(x509.get()) & EXFLAG_INVALID) != 0) {
    internal::TakeOpenSslError();
    return absl::InvalidArgumentError("certificate has invalid extensions");
  }

  std::shared_ptr<Certificate> cert(new Certificate());
  cert->der_ = std::string(der);
  cert->sha256_ = Sha256(der);
  auto cn = CommonName(X509_get_subject_name(x509.get()));
  if (!cn.ok()) return cn.status();
  cert->subject_cn_ = std::move(cn).value();
  cert->subject_ = NameToString(X509_get_subject_name(x509.get()));
  cert->issuer_ = NameToString(X509_get_issuer_name(x509.get()));
  auto serial = SerialHex(x509.get());
  if (!serial.ok()) return serial.status();
  cert->serial_hex_ = std::move(serial).value();
  auto not_before = Asn1TimeToTime(X509_get0_notBefore(x509.get()));
  if (!not_before.ok()) return not_before.status();
  cert->not_before_ = *not_before;
  auto not_after = Asn1TimeToTime(X509_get0_notAfter(x509.get()));
  if (!not_after.ok()) return not_after.status();
  cert->not_after_ = *not_after;
  cert->is_ca_ = (X509_get_extension_flags(x509.get()) & EXFLAG_CA) != 0;
  // X509_get_pubkey returns a new reference, which FromOwnedEvp takes over.
  EVP_PKEY* pkey = X509_get_pubkey(x509.get());
  if (pkey == nullptr) {
    return OpenSslError(absl::StatusCode::kInvalidArgument,
                        "certificate public key cannot be decoded");
  }
  auto public_key = PublicKey::FromOwnedEvp(pkey);
  if (!public_key.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("certificate key: ", public_key.status().message()));
  }
  cert->public_key_ = std::move(public_key).value();
  cert->x509_ = x509.release();
  return std::shared_ptr<const Certificate>(std::move(cert));
}

absl::StatusOr<std::shared_ptr<const Certificate>> Certificate::FromPem(absl::string_view pem) {
  BioPtr bio = internal::ReadOnlyBio(pem);
  DARVOZA_CHECK(bio != nullptr) << "BIO_new_mem_buf failed";
  X509Ptr x509(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (x509 == nullptr) {
    return OpenSslError(absl::StatusCode::kInvalidArgument, "no PEM certificate found");
  }
  return FromDer(I2dX509(x509.get()));
}

absl::StatusOr<std::shared_ptr<const Certificate>> Certificate::LoadFromFile(
    const std::string& path) {
  auto contents = ReadWholeFile(path);
  if (!contents.ok()) return contents.status();
  auto cert = absl::StrContains(*contents, "-----BEGIN") ? FromPem(*contents)
                                                         : FromDer(*contents);
  if (!cert.ok()) {
    return absl::Status(cert.status().code(),
                        absl::StrCat("certificate file ", path, ": ", cert.status().message()));
  }
  return cert;
}

std::string Certificate::ToPem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  DARVOZA_CHECK(bio != nullptr) << "BIO_new failed";
  DARVOZA_CHECK(PEM_write_bio_X509(bio.get(), x509_) == 1)
      << "PEM_write_bio_X509 failed: " << internal::TakeOpenSslError();
  return internal::BioContents(bio.get());
}

absl::StatusOr<CertificateProfile> Certificate::profile() const {
  const uint32_t flags = X509_get_extension_flags(x509_);
  const uint32_t ku = (flags & EXFLAG_KUSAGE) != 0 ? X509_get_key_usage(x509_) : 0;
  const bool has_eku = (flags & EXFLAG_XKUSAGE) != 0;
  const uint32_t eku = has_eku ? X509_get_extended_key_usage(x509_) : 0;
  if (is_ca_) {
    if ((ku & KU_KEY_CERT_SIGN) != 0) return CertificateProfile::kRootCa;
  } else if ((flags & EXFLAG_BCONS) != 0 && (ku & KU_DIGITAL_SIGNATURE) != 0) {
    if (has_eku && (eku & XKU_SSL_SERVER) != 0 && (eku & XKU_SSL_CLIENT) != 0) {
      return CertificateProfile::kTlsAuth;
    }
    if (!has_eku && (ku & KU_NON_REPUDIATION) != 0) return CertificateProfile::kSigning;
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "certificate ", subject_, " matches no Darvoza profile (root CA, TLS auth, signing)"));
}

// ---------------------------------------------------------------------------------------------
// CertificateRequest

absl::StatusOr<std::unique_ptr<CertificateRequest>> CertificateRequest::Create(
    const PrivateKey& key, absl::string_view subject_common_name) {
  X509ReqPtr req(X509_REQ_new());
  DARVOZA_CHECK(req != nullptr) << "X509_REQ_new failed";
  if (X509_REQ_set_version(req.get(), 0) != 1) {  // 0 is PKCS#10 v1, the only version.
    return OpenSslError(absl::StatusCode::kInternal, "X509_REQ_set_version failed");
  }
  absl::Status status = SetCommonName(X509_REQ_get_subject_name(req.get()), subject_common_name);
  if (!status.ok()) return status;
  if (X509_REQ_set_pubkey(req.get(), key.evp()) != 1) {
    return OpenSslError(absl::StatusCode::kInternal, "X509_REQ_set_pubkey failed");
  }
  if (X509_REQ_sign(req.get(), key.evp(), SignatureDigest(key)) <= 0) {
    return OpenSslError(absl::StatusCode::kInternal, "signing the certificate request failed");
  }
  unsigned char* der = nullptr;
  const int len = i2d_X509_REQ(req.get(), &der);
  if (len <= 0) return OpenSslError(absl::StatusCode::kInternal, "i2d_X509_REQ failed");
  std::string der_str(reinterpret_cast<const char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return Parse(der_str);
}

absl::StatusOr<std::unique_ptr<CertificateRequest>> CertificateRequest::Parse(
    absl::string_view der_or_pem) {
  X509ReqPtr req;
  if (absl::StrContains(der_or_pem, "-----BEGIN")) {
    BioPtr bio = internal::ReadOnlyBio(der_or_pem);
    DARVOZA_CHECK(bio != nullptr) << "BIO_new_mem_buf failed";
    req.reset(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr));
  } else {
    const auto* begin = reinterpret_cast<const unsigned char*>(der_or_pem.data());
    const unsigned char* p = begin;
    req.reset(d2i_X509_REQ(nullptr, &p, static_cast<long>(der_or_pem.size())));  // NOLINT
    if (req != nullptr && p != begin + der_or_pem.size()) {
      return absl::InvalidArgumentError("trailing bytes after DER certificate request");
    }
  }
  if (req == nullptr) {
    return OpenSslError(absl::StatusCode::kInvalidArgument,
                        "not a PKCS#10 certificate request (DER or PEM)");
  }
  EVP_PKEY* pkey = X509_REQ_get0_pubkey(req.get());  // Borrowed.
  if (pkey == nullptr) {
    return OpenSslError(absl::StatusCode::kInvalidArgument,
                        "certificate request public key cannot be decoded");
  }
  // Check the key type first: verifying with an unexpected algorithm is wasted work.
  EVP_PKEY_up_ref(pkey);
  auto public_key = PublicKey::FromOwnedEvp(pkey);
  if (!public_key.ok()) return public_key.status();
  if (X509_REQ_verify(req.get(), pkey) != 1) {
    return OpenSslError(absl::StatusCode::kInvalidArgument,
                        "certificate request self-signature does not verify");
  }
  auto cn = CommonName(X509_REQ_get_subject_name(req.get()));
  if (!cn.ok()) return cn.status();
  if (absl::Status status = CheckCommonName(*cn); !status.ok()) return status;

  unsigned char* der = nullptr;
  const int len = i2d_X509_REQ(req.get(), &der);
  if (len <= 0) return OpenSslError(absl::StatusCode::kInternal, "i2d_X509_REQ failed");
  std::unique_ptr<CertificateRequest> out(new CertificateRequest());
  out->der_.assign(reinterpret_cast<const char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  out->subject_cn_ = std::move(cn).value();
  out->public_key_ = std::move(public_key).value();
  return out;
}

std::string CertificateRequest::ToPem() const {
  const auto* p = reinterpret_cast<const unsigned char*>(der_.data());
  X509ReqPtr req(d2i_X509_REQ(nullptr, &p, static_cast<long>(der_.size())));  // NOLINT
  DARVOZA_CHECK(req != nullptr) << "own CSR does not parse: " << internal::TakeOpenSslError();
  BioPtr bio(BIO_new(BIO_s_mem()));
  DARVOZA_CHECK(bio != nullptr) << "BIO_new failed";
  DARVOZA_CHECK(PEM_write_bio_X509_REQ(bio.get(), req.get()) == 1)
      << "PEM_write_bio_X509_REQ failed: " << internal::TakeOpenSslError();
  return internal::BioContents(bio.get());
}

// ---------------------------------------------------------------------------------------------
// Issuing

absl::Status ValidateSubjectAltHost(absl::string_view host) {
  const std::string text(host);
  unsigned char buf[16] = {};
  if (inet_pton(AF_INET, text.c_str(), buf) == 1 || inet_pton(AF_INET6, text.c_str(), buf) == 1) {
    if (std::all_of(buf, buf + 16, [](unsigned char b) { return b == 0; })) {
      return absl::InvalidArgumentError(
          "the unspecified address (0.0.0.0, ::) names no host a client can verify");
    }
    return absl::OkStatus();
  }
  if (host.empty() || host.size() > 253) {
    return absl::InvalidArgumentError("a host name has 1 to 253 characters");
  }
  for (absl::string_view label : absl::StrSplit(host, '.')) {
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      return absl::InvalidArgumentError(
          "a host name is dot-separated labels of 1 to 63 characters, not starting or ending "
          "with '-'");
    }
    for (char c : label) {
      if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-') {
        return absl::InvalidArgumentError(
            "a host name holds only letters, digits, '-' and '.' (or is an IP address)");
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> SubjectAltHostOf(absl::string_view host_port) {
  absl::StatusOr<HostPort> parsed = ParseHostPort(host_port);
  if (!parsed.ok()) return parsed.status();
  absl::Status valid = ValidateSubjectAltHost(parsed->host);
  if (!valid.ok()) return valid;
  return std::move(parsed->host);
}

absl::StatusOr<std::shared_ptr<const Certificate>> IssueCertificate(
    const PrivateKey& issuer_key, const Certificate* issuer_cert, const PublicKey& subject_key,
    absl::string_view subject_common_name, const IssueOptions& options) {
  if (options.serial == 0) return absl::InvalidArgumentError("certificate serial must be > 0");
  if (options.not_after <= options.not_before) {
    return absl::InvalidArgumentError("certificate not_after must be after not_before");
  }
  if (issuer_cert == nullptr) {
    if (issuer_key.PublicKeyDer() != subject_key.der()) {
      return absl::InvalidArgumentError(
          "a self-signed certificate must be signed by the subject's own key");
    }
  } else {
    if (!issuer_cert->is_ca()) {
      return absl::InvalidArgumentError(
          absl::StrCat("issuer certificate ", issuer_cert->subject(), " is not a CA"));
    }
    if (issuer_cert->public_key().der() != issuer_key.PublicKeyDer()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "issuer key does not match issuer certificate ", issuer_cert->subject()));
    }
  }

  X509Ptr x509(X509_new());
  DARVOZA_CHECK(x509 != nullptr) << "X509_new failed";
  X509* cert = x509.get();
  if (X509_set_version(cert, 2) != 1 ||  // 2 is X.509 v3, needed for extensions.
      ASN1_INTEGER_set_uint64(X509_get_serialNumber(cert), options.serial) != 1 ||
      ASN1_TIME_set(X509_getm_notBefore(cert), absl::ToTimeT(options.not_before)) == nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(cert), absl::ToTimeT(options.not_after)) == nullptr ||
      X509_set_pubkey(cert, subject_key.evp()) != 1) {
    return OpenSslError(absl::StatusCode::kInternal, "filling in the certificate failed");
  }
  absl::Status status = SetCommonName(X509_get_subject_name(cert), subject_common_name);
  if (!status.ok()) return status;
  const X509_NAME* issuer_name = issuer_cert != nullptr
                                     ? X509_get_subject_name(issuer_cert->x509())
                                     : X509_get_subject_name(cert);
  if (X509_set_issuer_name(cert, issuer_name) != 1) {
    return OpenSslError(absl::StatusCode::kInternal, "X509_set_issuer_name failed");
  }

  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer_cert != nullptr ? issuer_cert->x509() : cert, cert, nullptr,
                 nullptr, 0);
  X509V3_set_ctx_nodb(&ctx);
  struct Ext {
    int nid;
    const char* value;
  };
  std::vector<Ext> exts;
  switch (options.profile) {
    case CertificateProfile::kRootCa:
      exts = {{NID_basic_constraints, "critical,CA:TRUE"},
              {NID_key_usage, "critical,keyCertSign,cRLSign"}};
      break;
    case CertificateProfile::kTlsAuth:
      exts = {{NID_basic_constraints, "critical,CA:FALSE"},
              {NID_key_usage, "critical,digitalSignature"},
              {NID_ext_key_usage, "serverAuth,clientAuth"}};
      break;
    case CertificateProfile::kSigning:
      exts = {{NID_basic_constraints, "critical,CA:FALSE"},
              {NID_key_usage, "critical,digitalSignature,nonRepudiation"}};
      break;
  }
  exts.push_back({NID_subject_key_identifier, "hash"});
  // RFC 5280 lets a self-signed root omit the authority key identifier; every issued
  // certificate names its issuer's key so that a CA key rollover keeps chains unambiguous.
  if (issuer_cert != nullptr) exts.push_back({NID_authority_key_identifier, "keyid:always"});
  std::string san;
  if (!options.subject_alt_hosts.empty()) {
    auto value = SubjectAltNameValue(options.subject_alt_hosts);
    if (!value.ok()) return value.status();
    san = *std::move(value);
    exts.push_back({NID_subject_alt_name, san.c_str()});
  }
  for (const Ext& ext : exts) {
    status = AddExtension(cert, &ctx, ext.nid, ext.value);
    if (!status.ok()) return status;
  }

  if (X509_sign(cert, issuer_key.evp(), SignatureDigest(issuer_key)) <= 0) {
    return OpenSslError(absl::StatusCode::kInternal, "signing the certificate failed");
  }
  return Certificate::FromDer(I2dX509(cert));
}

absl::StatusOr<std::shared_ptr<const Certificate>> IssueCertificate(
    const PrivateKey& issuer_key, const Certificate* issuer_cert, const CertificateRequest& csr,
    const IssueOptions& options) {
  return IssueCertificate(issuer_key, issuer_cert, csr.public_key(), csr.subject_common_name(),
                          options);
}

std::vector<std::string> Certificate::SubjectAltHosts() const {
  std::vector<std::string> hosts;
  auto* names = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(x509_, NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) return hosts;
  absl::Cleanup free_names = [names] { GENERAL_NAMES_free(names); };
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type == GEN_DNS) {
      const ASN1_STRING* s = name->d.dNSName;
      hosts.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                         static_cast<size_t>(ASN1_STRING_length(s)));
    } else if (name->type == GEN_IPADD) {
      const ASN1_STRING* s = name->d.iPAddress;
      char text[INET6_ADDRSTRLEN] = {};
      const int family = ASN1_STRING_length(s) == 4 ? AF_INET : AF_INET6;
      if ((ASN1_STRING_length(s) == 4 || ASN1_STRING_length(s) == 16) &&
          inet_ntop(family, ASN1_STRING_get0_data(s), text, sizeof(text)) != nullptr) {
        hosts.emplace_back(text);
      }
    }
  }
  return hosts;
}

// ---------------------------------------------------------------------------------------------
// Revocation and chain verification

void RevocationList::Add(absl::string_view issuer, absl::string_view serial_hex,
                         absl::Time revoked_at) {
  auto [it, inserted] =
      revoked_.try_emplace(absl::StrCat(issuer, "\n", NormalizeSerialHex(serial_hex)), revoked_at);
  if (!inserted) it->second = std::min(it->second, revoked_at);
}

bool RevocationList::IsRevoked(const Certificate& cert) const {
  return revoked_.contains(absl::StrCat(cert.issuer(), "\n", cert.serial_hex()));
}

std::optional<absl::Time> RevocationList::RevokedAt(const Certificate& cert) const {
  auto it = revoked_.find(absl::StrCat(cert.issuer(), "\n", cert.serial_hex()));
  if (it == revoked_.end()) return std::nullopt;
  return it->second;
}

absl::Status VerifyChain(const Certificate& leaf,
                         const std::vector<std::shared_ptr<const Certificate>>& intermediates,
                         const std::vector<std::shared_ptr<const Certificate>>& trusted,
                         absl::Time at, const RevocationList& revoked,
                         const CertificateProfile* purpose) {
  if (trusted.empty()) {
    return absl::UnauthenticatedError("unknown issuer: no trusted certificates given");
  }
  X509StorePtr store(X509_STORE_new());
  DARVOZA_CHECK(store != nullptr) << "X509_STORE_new failed";
  for (const auto& cert : trusted) {
    // Adding the same certificate twice is harmless; OpenSSL 3 ignores the duplicate.
    if (X509_STORE_add_cert(store.get(), cert->x509()) != 1) {
      return OpenSslError(absl::StatusCode::kInternal, "X509_STORE_add_cert failed");
    }
  }
  // The stack borrows the X509s (sk_X509_free does not free them): `intermediates` owns them.
  STACK_OF(X509)* untrusted = sk_X509_new_null();
  DARVOZA_CHECK(untrusted != nullptr) << "sk_X509_new_null failed";
  absl::Cleanup free_untrusted = [untrusted] { sk_X509_free(untrusted); };
  for (const auto& cert : intermediates) {
    DARVOZA_CHECK(sk_X509_push(untrusted, cert->x509()) > 0) << "sk_X509_push failed";
  }

  X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  DARVOZA_CHECK(ctx != nullptr) << "X509_STORE_CTX_new failed";
  if (X509_STORE_CTX_init(ctx.get(), store.get(), leaf.x509(), untrusted) != 1) {
    return OpenSslError(absl::StatusCode::kInternal, "X509_STORE_CTX_init failed");
  }
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  // Our clock, never OpenSSL's: set_time also sets X509_V_FLAG_USE_CHECK_TIME.
  X509_VERIFY_PARAM_set_time(param, absl::ToTimeT(at));
  // A chain must end at one of `trusted` as a self-signed anchor, not at any trusted link.
  X509_VERIFY_PARAM_clear_flags(param, X509_V_FLAG_PARTIAL_CHAIN);
  if (X509_verify_cert(ctx.get()) != 1) {
    const int error = X509_STORE_CTX_get_error(ctx.get());
    absl::Status status = ChainError(ChainErrorReason(error), ctx.get(), error);
    internal::TakeOpenSslError();
    return status;
  }

  // Map each certificate of the built chain back to our parsed form for the revocation check.
  std::vector<const Certificate*> known = {&leaf};
  for (const auto& cert : intermediates) known.push_back(cert.get());
  for (const auto& cert : trusted) known.push_back(cert.get());
  STACK_OF(X509)* chain = X509_STORE_CTX_get0_chain(ctx.get());  // Owned by ctx.
  for (int i = 0; i < sk_X509_num(chain); ++i) {
    X509* x509 = sk_X509_value(chain, i);
    const Certificate* found = nullptr;
    for (const Certificate* cert : known) {
      if (cert->x509() == x509 || X509_cmp(cert->x509(), x509) == 0) {
        found = cert;
        break;
      }
    }
    if (found == nullptr) {
      return absl::InternalError("verified chain holds a certificate that was not given");
    }
    if (revoked.IsRevoked(*found)) {
      return absl::UnauthenticatedError(absl::StrCat(
          "certificate revoked: ", found->subject(), " serial ", found->serial_hex(),
          " issued by ", found->issuer()));
    }
  }

  if (purpose != nullptr) {
    auto profile = leaf.profile();
    if (!profile.ok() || *profile != *purpose) {
      return absl::UnauthenticatedError(absl::StrCat(
          "wrong certificate purpose: ", leaf.subject(), " is ",
          profile.ok() ? absl::StrCat("a ", ProfileName(*profile), " certificate")
                       : std::string("of no Darvoza profile"),
          ", need a ", ProfileName(*purpose), " certificate"));
    }
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// CertificateCache

CertificateCache::CertificateCache(size_t max_entries) : max_entries_(max_entries) {
  DARVOZA_CHECK(max_entries_ > 0) << "CertificateCache needs room for one entry";
}

absl::StatusOr<std::shared_ptr<const Certificate>> CertificateCache::Get(absl::string_view der) {
  return GetOrParse(Sha256(der), [der] { return Certificate::FromDer(der); });
}

absl::StatusOr<std::shared_ptr<const Certificate>> CertificateCache::GetPem(
    absl::string_view pem) {
  // A different prefix keeps PEM keys apart from DER keys in the one map.
  return GetOrParse(absl::StrCat("pem:", Sha256(pem)), [pem] { return Certificate::FromPem(pem); });
}

absl::StatusOr<std::shared_ptr<const Certificate>> CertificateCache::GetOrParse(
    std::string key,
    const std::function<absl::StatusOr<std::shared_ptr<const Certificate>>()>& parse) {
  {
    absl::MutexLock lock(&mu_);
    auto it = by_sha256_.find(key);
    if (it != by_sha256_.end()) {
      ++hits_;
      return it->second;
    }
  }
  // Parse without the lock: it is the slow part, and two threads parsing the same new
  // certificate at once is harmless (the first one stored wins).
  auto cert = parse();
  if (!cert.ok()) return cert.status();
  absl::MutexLock lock(&mu_);
  if (by_sha256_.size() >= max_entries_ && !by_sha256_.contains(key)) by_sha256_.clear();
  auto [it, inserted] = by_sha256_.emplace(std::move(key), *std::move(cert));
  return it->second;
}

size_t CertificateCache::size() const {
  absl::MutexLock lock(&mu_);
  return by_sha256_.size();
}

uint64_t CertificateCache::hits() const {
  absl::MutexLock lock(&mu_);
  return hits_;
}

}  // namespace darvoza::crypto
