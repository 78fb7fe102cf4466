// Work handed to one of gRPC's own threads (docs/design.md §7).
#ifndef DARVOZA_COMMON_GRPC_THREAD_H_
#define DARVOZA_COMMON_GRPC_THREAD_H_

#include <functional>

namespace darvoza {

// Runs `task` soon on a gRPC executor thread and returns at once: for a thread that must not
// be held up by what it completes, e.g. the audit log's writer answering calls (a reactor's
// Finish). A grpc::Alarm set with a deadline already past is gRPC 1.51's public way there.
void RunOnGrpcThread(std::function<void()> task);

}  // namespace darvoza

#endif  // DARVOZA_COMMON_GRPC_THREAD_H_
