#include "common/grpc_thread.h"

#include <grpc/support/time.h>
#include <grpcpp/alarm.h>

#include <utility>

namespace darvoza {

void RunOnGrpcThread(std::function<void()> task) {
  auto* alarm = new grpc::Alarm();
  // The alarm deletes itself from its callback: gRPC holds its own reference to the alarm's
  // state until the callback has returned. A cancelled alarm (ok == false) runs the task too:
  // nothing cancels it, and a task dropped would leave a call unanswered.
  alarm->Set(gpr_inf_past(GPR_CLOCK_MONOTONIC), [alarm, task = std::move(task)](bool) {
    task();
    delete alarm;
  });
}

}  // namespace darvoza
