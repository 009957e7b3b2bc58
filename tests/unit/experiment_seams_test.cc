// The experiments' seams: the query path under experiments
// (ExperimentalQueryEngine: forced arms, bookkeeping, pass-through) and the
// state interface (ExperimentStateStore) the service keeps its state through.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "experiments/experiment_service.h"
#include "experiments/experiment_state_store.h"
#include "experiments/experimental_query_engine.h"
#include "testing/world.h"
#include "config/config.h"

namespace affinity {
namespace {

// Experiment state in memory; copies of one FakeState share it, as the
// servers of a cluster share theirs.
class FakeState : public ExperimentStateStore {
 public:
  struct Data {
    std::mutex mu;
    std::map<std::string, Experiment> definitions;
    std::map<std::string, std::vector<int64_t>> counters;
    std::map<std::string, std::map<std::string, double>> running_min;
    int definition_writes = 0;
  };
  explicit FakeState(std::shared_ptr<Data> data) : data_(std::move(data)) {}

  absl::StatusOr<std::vector<StoredExperiment>> LoadAll() const override {
    std::lock_guard<std::mutex> lock(data_->mu);
    std::vector<StoredExperiment> out;
    for (const auto& [id, def] : data_->definitions) {
      StoredExperiment x{def, {}, {}};
      const std::string prefix = CounterPrefix(id);
      for (const auto& [key, values] : data_->counters)
        if (key.rfind(prefix, 0) == 0) x.counters.emplace_back(key, values);
      if (auto it = data_->running_min.find(id); it != data_->running_min.end()) x.running_min = it->second;
      out.push_back(std::move(x));
    }
    return out;
  }
  absl::Status SaveDefinition(const Experiment& e) override {
    std::lock_guard<std::mutex> lock(data_->mu);
    data_->definitions[e.id] = e;
    data_->definition_writes++;
    return absl::OkStatus();
  }
  absl::Status AddCounters(const std::vector<CounterDelta>& deltas) override {
    std::lock_guard<std::mutex> lock(data_->mu);
    for (const auto& [key, values] : deltas) {
      std::vector<int64_t>& v = data_->counters[key];
      if (v.size() < values.size()) v.resize(values.size(), 0);
      for (size_t i = 0; i < values.size(); ++i) v[i] += values[i];
    }
    return absl::OkStatus();
  }
  absl::Status SetCounters(const std::vector<CounterDelta>& values) override {
    std::lock_guard<std::mutex> lock(data_->mu);
    for (const auto& [key, v] : values) data_->counters[key] = v;
    return absl::OkStatus();
  }
  absl::Status SaveRunningMinimums(const std::string& id, const std::map<std::string, double>& m) override {
    std::lock_guard<std::mutex> lock(data_->mu);
    data_->running_min[id] = m;
    return absl::OkStatus();
  }

 private:
  std::shared_ptr<Data> data_;
};

// A world with viewers u1..u3 and two items, and services over one FakeState.
struct SeamWorld {
  SeamWorld() {
    world.Entities({{"u1", "user", "", "", ""}, {"u2", "user", "", "", ""}, {"c1", "creator", "", "", ""},
                    {"i1", "item", "c1", "", ""}, {"i2", "item", "c1", "", ""}});
  }
  std::unique_ptr<ExperimentService> Service(const Config& config) {
    return std::make_unique<ExperimentService>(std::make_unique<FakeState>(data), config.serving, config.experiments, &world.registry,
                                               world.live.get(), nullptr, &world.clock, nullptr,
                                               [] { return std::vector<std::string>(); });
  }
  testing::World world;
  std::shared_ptr<FakeState::Data> data = std::make_shared<FakeState::Data>();
};

// Responses and errors per arm, from the report.
std::map<std::string, std::pair<int64_t, int64_t>> Counted(ExperimentService& s, const std::string& id) {
  auto report = s.ReportJson(id);
  EXPECT_TRUE(report.ok()) << report.status();
  std::map<std::string, std::pair<int64_t, int64_t>> out;
  if (!report.ok()) return out;
  simdjson::dom::parser parser;
  for (auto arm : parser.parse(*report)["arms"].get_array())
    out[std::string(std::string_view(arm["name"]))] = {int64_t(arm["responses"]), int64_t(arm["errors"])};
  return out;
}

QueryResponse Answer(const std::string& request_id) {
  QueryResponse r;
  r.request_id = request_id;
  QueryResult result;
  result.entity_id = "i1";
  r.results.push_back(result);
  return r;
}

QueryRequest Request(const std::string& viewer) {
  QueryRequest q;
  q.viewer_id = viewer;
  q.target = Kind::kItem;
  return q;
}

constexpr const char* kTwoArms = R"({"id":"a","arms":[{"name":"control","weight":1},{"name":"t","weight":1}]})";

TEST(ExperimentalQueryEngineTest, WithoutExperimentsTheEnginesAnswerPassesThroughAndTheHeaderIsIgnored) {
  QueryVariant seen;
  seen.experiments.push_back({"stale", "arm"});
  ExperimentalQueryEngine engine(
      [&](const QueryRequest&, const QueryVariant& v) -> absl::StatusOr<QueryResponse> {
        seen = v;
        return Answer("q_1");
      },
      nullptr);
  auto r = engine.Query(Request("u1"), "a=t");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->request_id, "q_1");
  ASSERT_EQ(r->results.size(), 1u);
  EXPECT_TRUE(seen.experiments.empty());
  EXPECT_EQ(seen.serving, nullptr);
  ExperimentalQueryEngine failing(
      [](const QueryRequest&, const QueryVariant&) -> absl::StatusOr<QueryResponse> {
        return absl::UnavailableError("no snapshot");
      },
      nullptr);
  EXPECT_EQ(failing.Query(Request("u1"), "").status(), absl::UnavailableError("no snapshot"));
}

TEST(ExperimentalQueryEngineTest, AForcedArmIsServedAndNamedButNotCountedWhileAnAssignedOneIsCounted) {
  SeamWorld w;
  auto service = w.Service(w.world.config);
  ASSERT_TRUE(service->Create(kTwoArms).ok());
  QueryVariant seen;
  ExperimentalQueryEngine engine(
      [&](const QueryRequest&, const QueryVariant& v) -> absl::StatusOr<QueryResponse> {
        seen = v;
        return Answer("q_1");
      },
      service.get());
  ASSERT_TRUE(engine.Query(Request("u1"), "a=t").ok());
  ASSERT_EQ(seen.experiments.size(), 1u);
  EXPECT_EQ(seen.experiments[0].arm, "t");
  EXPECT_TRUE(seen.experiments[0].forced);
  for (const auto& [arm, counts] : Counted(*service, "a")) EXPECT_EQ(counts.first, 0) << arm;
  ASSERT_TRUE(engine.Query(Request("u1"), "").ok());  // as assigned: counted in its arm
  ASSERT_EQ(seen.experiments.size(), 1u);
  EXPECT_FALSE(seen.experiments[0].forced);
  EXPECT_EQ(Counted(*service, "a")[seen.experiments[0].arm], std::make_pair(int64_t(1), int64_t(0)));
}

TEST(ExperimentalQueryEngineTest, AnEngineErrorIsRecordedAsTheArmsErrorButABadRequestIsNot) {
  SeamWorld w;
  auto service = w.Service(w.world.config);
  ASSERT_TRUE(service->Create(kTwoArms).ok());
  absl::Status answer = absl::InternalError("ranker failed");
  std::string arm;
  ExperimentalQueryEngine engine(
      [&](const QueryRequest&, const QueryVariant& v) -> absl::StatusOr<QueryResponse> {
        arm = v.experiments.empty() ? "" : v.experiments[0].arm;
        return answer;
      },
      service.get());
  EXPECT_EQ(engine.Query(Request("u1"), "").status(), answer);
  ASSERT_FALSE(arm.empty());
  EXPECT_EQ(Counted(*service, "a")[arm], std::make_pair(int64_t(0), int64_t(1)));
  answer = absl::InvalidArgumentError("k must be between 1 and 500");
  EXPECT_EQ(engine.Query(Request("u1"), "").status(), answer);
  EXPECT_EQ(Counted(*service, "a")[arm], std::make_pair(int64_t(0), int64_t(1)));
}

TEST(ExperimentalQueryEngineTest, ARefusedHeaderIsATypedErrorAndTheQueryDoesNotRun) {
  SeamWorld w;
  Config off = w.world.config;
  off.experiments.force_arm_header = false;
  auto on_service = w.Service(w.world.config);
  ASSERT_TRUE(on_service->Create(kTwoArms).ok());
  int runs = 0;
  auto run = [&](const QueryRequest&, const QueryVariant&) -> absl::StatusOr<QueryResponse> {
    ++runs;
    return Answer("q_1");
  };
  auto bad = ExperimentalQueryEngine(run, on_service.get()).Query(Request("u1"), "zz=t");
  std::optional<ForcedArmRefusal> refusal = ForcedArmRefusalOf(bad.status());
  ASSERT_TRUE(refusal.has_value()) << bad.status();
  EXPECT_EQ(refusal->reason, ForcedArmRefusal::kInvalid);
  EXPECT_EQ(refusal->message, "X-Affinity-Force-Arm: no experiment 'zz'");
  auto off_service = w.Service(off);
  ASSERT_TRUE(off_service->Load().ok());
  auto turned_off = ExperimentalQueryEngine(run, off_service.get()).Query(Request("u1"), "a=t");
  refusal = ForcedArmRefusalOf(turned_off.status());
  ASSERT_TRUE(refusal.has_value()) << turned_off.status();
  EXPECT_EQ(refusal->reason, ForcedArmRefusal::kTurnedOff);
  EXPECT_EQ(refusal->message, "X-Affinity-Force-Arm is turned off here (experiments.force_arm_header)");
  EXPECT_EQ(runs, 0);
  EXPECT_EQ(ForcedArmRefusalOf(absl::InvalidArgumentError("k must be between 1 and 500")), std::nullopt);
}

TEST(ExperimentStateStoreTest, TheServiceKeepsDefinitionsCountersAndStopsInTheStateItIsGiven) {
  SeamWorld w;
  {
    auto service = w.Service(w.world.config);
    ASSERT_TRUE(service->Load().ok());
    ASSERT_TRUE(service->Create(kTwoArms).ok());
    EXPECT_EQ(w.data->definition_writes, 1);
    const Assignment a = service->Assign("u1", Kind::kItem);
    ASSERT_EQ(a.in.size(), 1u);
    service->RecordResponse(a, "u1", Answer("q_1"), 3.0);
    service->FlushCounters();
    ASSERT_TRUE(service->Stop("a", "done").ok());
    EXPECT_EQ(w.data->definition_writes, 2);
    EXPECT_FALSE(w.data->counters.empty());
  }
  // A service started later over the same state: the experiment, stopped, with its counts.
  auto later = w.Service(w.world.config);
  ASSERT_TRUE(later->Load().ok());
  const std::vector<Experiment> defs = later->Definitions();
  ASSERT_EQ(defs.size(), 1u);
  EXPECT_EQ(defs[0].id, "a");
  EXPECT_EQ(defs[0].status, ExperimentStatus::kStopped);
  EXPECT_EQ(defs[0].stopped_reason, "done");
  int64_t responses = 0;
  for (const auto& [arm, counts] : Counted(*later, "a")) responses += counts.first;
  EXPECT_EQ(responses, 1);
  EXPECT_TRUE(later->Assign("u1", Kind::kItem).in.empty());  // stopped: nobody is assigned
}

}  // namespace
}  // namespace affinity
