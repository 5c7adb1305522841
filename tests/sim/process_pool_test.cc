// Forked children and the worker pool: results come back whole, in any
// order but each once; dead processes are named, never hang the caller.
#include "sim/process_pool.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <csignal>
#include <map>

namespace stepsim::sim {
namespace {

TEST(ProcessPoolTest, ChildReturnsItsValueAndStatus) {
  const int parent = getpid();
  StatusOr<std::string> r = RunInChild([&]() -> StatusOr<std::string> {
    return std::string(getpid() == parent ? "same" : "other") + std::string(100000, 'x');
  });
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->substr(0, 5), "other");  // it ran in another process
  EXPECT_EQ(r->size(), 5u + 100000u);
  StatusOr<std::string> bad =
      RunInChild([]() -> StatusOr<std::string> { return Status::Invalid("no such thing"); });
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidInput);
  EXPECT_EQ(bad.status().message(), "no such thing");
}

TEST(ProcessPoolTest, AChildThatDiesIsNamed) {
  // SIGKILL, not SIGSEGV: the sanitizers catch a segfault and exit with 1.
  StatusOr<std::string> r = RunInChild([]() -> StatusOr<std::string> {
    std::raise(SIGKILL);
    return std::string("unreachable");
  });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailed);
  EXPECT_NE(r.status().message().find("killed by signal 9"), std::string::npos)
      << r.status().message();
  StatusOr<std::string> exited = RunInChild([]() -> StatusOr<std::string> { _exit(7); });
  EXPECT_NE(exited.status().message().find("exited with code 7"), std::string::npos);
}

TEST(ProcessPoolTest, EveryItemOnceForAnyNumberOfWorkers) {
  for (int jobs : {1, 2, 5}) {
    std::map<int64_t, std::string> results;
    PoolOptions options;
    options.jobs = jobs;
    // Task t emits items 3t, 3t+1, 3t+2 from the worker process.
    const Status s = RunPool(
        7, options,
        [](int64_t task, const Emit& emit) {
          for (int64_t i = 3 * task; i < 3 * task + 3; ++i) emit(i, std::to_string(i * i));
        },
        [&](int64_t item, StatusOr<std::string> r) {
          ASSERT_TRUE(r.ok());
          EXPECT_TRUE(results.emplace(item, *r).second) << "item " << item << " twice";
        });
    ASSERT_TRUE(s.ok()) << s.message();
    ASSERT_EQ(results.size(), 21u) << jobs << " workers";
    for (const auto& [item, value] : results) EXPECT_EQ(value, std::to_string(item * item));
  }
}

TEST(ProcessPoolTest, ADeadWorkerLosesOnlyItsTask) {
  std::map<int64_t, std::string> results;
  PoolOptions options;
  options.jobs = 2;
  const Status s = RunPool(
      4, options,
      [](int64_t task, const Emit& emit) {
        if (task == 1) _exit(3);  // the worker dies on task 1
        emit(task, std::string("done"));
      },
      [&](int64_t item, StatusOr<std::string> r) { results[item] = r.ok() ? *r : "error"; });
  EXPECT_EQ(s.code(), StatusCode::kFailed);
  EXPECT_NE(s.message().find("task 1: its worker process exited with code 3"), std::string::npos)
      << s.message();
  EXPECT_EQ(results.count(1), 0u);
  for (int64_t t : {0, 2, 3}) EXPECT_EQ(results[t], "done") << t;
}

TEST(ProcessPoolTest, AThrowingTaskIsReported) {
  PoolOptions options;
  int64_t got = 0;
  const Status s = RunPool(
      2, options,
      [](int64_t task, const Emit& emit) {
        if (task == 0) throw std::runtime_error("broken task");
        emit(task, std::string("ok"));
      },
      [&](int64_t, StatusOr<std::string>) { ++got; });
  EXPECT_EQ(got, 1);
  EXPECT_NE(s.message().find("task 0: broken task"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace stepsim::sim
