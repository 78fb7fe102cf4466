// Audit records shaped like the ones an exchange writes (docs/design.md §7): envelope, signature,
// a certificate chain of about 1 KB, a 1 KiB body, message ids that are random and a handful of
// clients and services. Shared by the micro-benchmarks and the bulk log generator so that both
// measure the same record.
#ifndef DARVOZA_BENCH_BENCH_RECORDS_H_
#define DARVOZA_BENCH_BENCH_RECORDS_H_

#include <cstdint>
#include <string>

#include "audit/audit_log.h"

namespace darvoza::bench {

// The `i`th record of a synthetic exchange stream: REQUEST_OUT, REQUEST_IN, RESPONSE_OUT and
// RESPONSE_IN in turn, one of 8 clients and 16 services, a fresh random message id per
// exchange and (unless body_bytes is 0) a random body of that size.
audit::AppendRequest ExchangeRecord(uint64_t i, size_t body_bytes);

}  // namespace darvoza::bench

#endif  // DARVOZA_BENCH_BENCH_RECORDS_H_
