#include "common/tls.h"

#include <stdlib.h>

namespace darvoza {

void RestrictTlsToVersion13() {
  setenv(kGrpcCipherSuitesEnv, kRsaOnlyTls12CipherSuites, /*overwrite=*/1);
}

}  // namespace darvoza
