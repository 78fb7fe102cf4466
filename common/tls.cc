#include "common/tls.h"

#include <openssl/crypto.h>
#include <stdlib.h>

namespace darvoza {

void RestrictTlsToVersion13() {
  setenv(kGrpcCipherSuitesEnv, kRsaOnlyTls12CipherSuites, /*overwrite=*/1);
}

void SetUpTlsForProcess() {
  // Only the first initialisation of a process decides whether OpenSSL registers its exit
  // handler, hence first thing in main().
  OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, nullptr);
  RestrictTlsToVersion13();
}

}  // namespace darvoza
