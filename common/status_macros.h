// Early-return helpers for absl::Status and absl::StatusOr.
//
//   DARVOZA_RETURN_IF_ERROR(store->Put(key, value));
//   DARVOZA_ASSIGN_OR_RETURN(auto cert, Certificate::FromDer(der));
#ifndef DARVOZA_COMMON_STATUS_MACROS_H_
#define DARVOZA_COMMON_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define DARVOZA_RETURN_IF_ERROR(expr)                  \
  do {                                                 \
    ::absl::Status _darvoza_status = (expr);           \
    if (!_darvoza_status.ok()) return _darvoza_status; \
  } while (0)

#define DARVOZA_STATUS_CONCAT_INNER(a, b) a##b
#define DARVOZA_STATUS_CONCAT(a, b) DARVOZA_STATUS_CONCAT_INNER(a, b)

#define DARVOZA_ASSIGN_OR_RETURN(lhs, rexpr) \
  DARVOZA_ASSIGN_OR_RETURN_IMPL(DARVOZA_STATUS_CONCAT(_darvoza_statusor_, __LINE__), lhs, rexpr)

#define DARVOZA_ASSIGN_OR_RETURN_IMPL(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                  \
  if (!statusor.ok()) return statusor.status();             \
  lhs = std::move(statusor).value()

#endif  // DARVOZA_COMMON_STATUS_MACROS_H_
