// DARVOZA_CHECK: aborts the process when an internal invariant is broken.
//
// Anything a peer, the network, the disk or a malformed message can cause is an absl::Status,
// never a CHECK (CONVENTIONS.md rule 2). Abseil 20220623 has no absl/log, hence this macro.
//
//   DARVOZA_CHECK(seq == last_seq_ + 1) << "sequence gap";
#ifndef DARVOZA_COMMON_CHECK_H_
#define DARVOZA_COMMON_CHECK_H_

#include <sstream>

namespace darvoza::internal {

// Collects the streamed message and aborts in its destructor.
class CheckFailure {
 public:
  CheckFailure(const char* file, int line, const char* condition);
  [[noreturn]] ~CheckFailure();
  CheckFailure(const CheckFailure&) = delete;
  CheckFailure& operator=(const CheckFailure&) = delete;

  std::ostream& stream() { return stream_; }

 private:
  std::ostringstream stream_;
};

// Lets `DARVOZA_CHECK(x) << ...` be an expression of type void.
struct Voidify {
  void operator&(std::ostream&) {}
};

}  // namespace darvoza::internal

#define DARVOZA_CHECK(condition)                 \
  (condition) ? (void)0                          \
              : ::darvoza::internal::Voidify() & \
                    ::darvoza::internal::CheckFailure(__FILE__, __LINE__, #condition).stream()

#define DARVOZA_CHECK_OK(status_expr)                                                     \
  do {                                                                                    \
    const ::absl::Status _darvoza_check_status = (status_expr);                           \
    DARVOZA_CHECK(_darvoza_check_status.ok()) << _darvoza_check_status.ToString();        \
  } while (0)

#endif  // DARVOZA_COMMON_CHECK_H_
