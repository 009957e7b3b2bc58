#include "ranking/learned_ranker.h"

#include "features/feature_registry.h"

#include "ranking/ranker_inputs.h"

#include <simdjson.h>
#include <xgboost/c_api.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/json_writer.h"
#include "base/status.h"
#include "base/strings.h"

namespace affinity {
namespace {

absl::Status XgbError(const char* what) {
  return absl::InternalError(std::string("xgboost ") + what + ": " + XGBGetLastError());
}

// Owns a DMatrix handle.
struct DMatrix {
  DMatrixHandle h = nullptr;
  ~DMatrix() {
    if (h) XGDMatrixFree(h);
  }
};

absl::Status SetParams(BoosterHandle b, const LearnedRankerOptions& o, int threads) {
  const std::pair<const char*, std::string> params[] = {
      {"objective", o.objective},
      {"eval_metric", "ndcg@20"},
      {"eta", std::to_string(o.eta)},
      {"max_depth", std::to_string(o.max_depth)},
      {"tree_method", "hist"},
      {"nthread", std::to_string(threads > 0 ? threads : 2)},
      {"min_child_weight", std::to_string(o.min_child_weight)},
      {"subsample", std::to_string(o.subsample)},
      {"colsample_bynode", std::to_string(o.colsample_bynode)},
      {"seed", "7"},
      {"num_pairsample", std::to_string(o.pair_samples)}};
  for (const auto& [k, v] : params)
    if (XGBoosterSetParam(b, k, v.c_str()) != 0) return XgbError("param");
  if (o.monotone) {
    std::vector<int> c(kNumRankInputs, 0);
    for (int in : {kInBlendScore, kInCoengRecent, kInNewestCosine, kInRecentCosine, kInRecentCosineMax, kInCoengNewest,
                   kInCoengNewest3, kInCoengRecent20, kInCoengRecent20Support, kInSessionNewest, kInSessionRecent,
                   kInSessionSupport, kInSessionReverse})
      c[in] = 1;
    for (int in : {kInCoengBestRecency, kInCoengNearestRecency, kInBlendRank}) c[in] = -1;
    const std::string v = absl::StrCat("(", absl::StrJoin(c, ","), ")");
    if (XGBoosterSetParam(b, "monotone_constraints", v.c_str()) != 0) return XgbError("param");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<LearnedRanker>> LearnedRanker::Train(const std::vector<float>& inputs,
                                                                    const std::vector<float>& labels,
                                                                    const std::vector<unsigned>& groups,
                                                                    const LearnedRankerOptions& o) {
  const size_t rows = labels.size();
  if (rows == 0 || inputs.size() != rows * kNumRankInputs) return absl::InvalidArgumentError("ranker: no training rows");
  if (size_t(std::accumulate(groups.begin(), groups.end(), uint64_t(0))) != rows)
    return absl::InvalidArgumentError("ranker: group sizes do not add up to the rows");
  DMatrix m;
  if (XGDMatrixCreateFromMat_omp(inputs.data(), rows, kNumRankInputs, NAN, &m.h, o.threads > 0 ? o.threads : 2) != 0) return XgbError("DMatrix");
  if (XGDMatrixSetFloatInfo(m.h, "label", labels.data(), rows) != 0) return XgbError("labels");
  if (XGDMatrixSetUIntInfo(m.h, "group", groups.data(), groups.size()) != 0) return XgbError("groups");
  if (o.margin_scale != 0) {
    std::vector<float> margin(rows);
    for (size_t i = 0; i < rows; ++i) margin[i] = float(o.margin_scale) * inputs[i * kNumRankInputs + kInBlendScore];
    if (XGDMatrixSetFloatInfo(m.h, "base_margin", margin.data(), rows) != 0) return XgbError("base margin");
  }
  BoosterHandle b = nullptr;
  if (XGBoosterCreate(&m.h, 1, &b) != 0) return XgbError("create");
  std::unique_ptr<LearnedRanker> ranker(new LearnedRanker(b, o));
  AFF_RETURN_IF_ERROR(SetParams(b, o, o.threads));
  for (int it = 0; it < o.rounds; ++it)
    if (XGBoosterUpdateOneIter(b, it, m.h) != 0) return XgbError("train");
  // Serving predicts one small request at a time: no thread team per call.
  if (XGBoosterSetParam(b, "nthread", "1") != 0) return XgbError("param");
  AFF_RETURN_IF_ERROR(ranker->ReadTrees());
  return ranker;
}

absl::Status LearnedRanker::Save(const std::string& dir) const {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::InternalError("cannot create " + dir + ": " + ec.message());
  const std::string model = dir + "/model.json";
  if (XGBoosterSaveModel(booster_, model.c_str()) != 0) return XgbError("save");
  JsonWriter w;
  w.BeginObject();
  w.Key("format").Int(1);
  w.Key("objective").String(options_.objective);
  w.Key("rounds").Int(options_.rounds);
  w.Key("max_depth").Int(options_.max_depth);
  w.Key("eta").Double(options_.eta);
  w.Key("pair_samples").Int(options_.pair_samples);
  w.Key("margin_scale").Double(margin_scale_);
  w.Key("monotone").Bool(options_.monotone);
  w.Key("inputs").BeginArray();
  for (int f = 0; f < width_; ++f) w.String(RankerInputNames()[size_t(f)]);
  w.EndArray();
  w.EndObject();
  if (!WriteFileAtomic(dir + "/ranker.json", w.str())) return absl::InternalError("cannot write " + dir + "/ranker.json");
  if (drift_ && !WriteFileAtomic(dir + "/reference.json", drift_->reference().ToJson()))
    return absl::InternalError("cannot write " + dir + "/reference.json");
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<LearnedRanker>> LearnedRanker::Load(const std::string& dir) {
  auto meta = ReadFile(dir + "/ranker.json");
  if (!meta) return absl::NotFoundError("cannot read " + dir + "/ranker.json");
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(*meta).get(doc)) return absl::DataLossError(dir + "/ranker.json is not valid JSON");
  LearnedRankerOptions o;
  double scale = 0, eta = 0;
  int64_t rounds = 0, depth = 0, pairs = 0;
  std::string_view objective;
  simdjson::dom::array inputs;
  if (doc["margin_scale"].get(scale) || doc["inputs"].get(inputs) || doc["objective"].get(objective) ||
      doc["rounds"].get(rounds) || doc["max_depth"].get(depth) || doc["eta"].get(eta) ||
      doc["pair_samples"].get(pairs))
    return absl::DataLossError(dir + "/ranker.json lacks a field");
  // A model trained on other inputs would silently mis-score: refuse it.
  std::vector<std::string> names;
  for (auto v : inputs) {
    std::string_view s;
    if (v.get(s)) return absl::DataLossError(dir + "/ranker.json: inputs must be strings");
    names.emplace_back(s);
  }
  // Governance first: a protected feature (the cohort) never ranks.
  if (auto s = CheckNoProtectedInputs(names, DeclaredFeatureGroups(0)); !s.ok())
    return absl::FailedPreconditionError(dir + ": model refused: " + std::string(s.message()));
  // Its inputs must be this build's, or the first of them (inputs are only ever
  // appended): a model trained on other inputs would silently mis-score.
  const auto& current = RankerInputNames();
  if (names.empty() || names.size() > current.size() || !std::equal(names.begin(), names.end(), current.begin()))
    return absl::FailedPreconditionError(dir + ": the model was trained on different inputs than this build computes");
  o.margin_scale = scale;
  o.objective = std::string(objective);
  o.rounds = int(rounds);
  o.max_depth = int(depth);
  o.eta = eta;
  o.pair_samples = int(pairs);
  BoosterHandle b = nullptr;
  if (XGBoosterCreate(nullptr, 0, &b) != 0) return XgbError("create");
  std::unique_ptr<LearnedRanker> ranker(new LearnedRanker(b, o));
  ranker->width_ = int(names.size());
  const std::string model = dir + "/model.json";
  if (XGBoosterLoadModel(b, model.c_str()) != 0) return XgbError("load");
  if (XGBoosterSetParam(b, "nthread", "1") != 0) return XgbError("param");
  AFF_RETURN_IF_ERROR(ranker->ReadTrees());
  if (auto text = ReadFile(dir + "/reference.json")) {  // models saved before drift had none
    AFF_ASSIGN_OR_RETURN(DriftReference reference, DriftReference::FromJson(*text));
    ranker->SetDriftReference(std::move(reference));
  }
  return ranker;
}

absl::StatusOr<std::string> LearnedRanker::ModelJson() const {
  bst_ulong len = 0;
  const char* buf = nullptr;
  if (XGBoosterSaveModelToBuffer(booster_, "{\"format\": \"json\"}", &len, &buf) != 0) return XgbError("dump");
  return std::string(buf, len);
}

absl::Status LearnedRanker::ReadTrees() {
  AFF_ASSIGN_OR_RETURN(std::string json, ModelJson());
  return UseTrees(json);
}

absl::Status LearnedRanker::UseTrees(std::string_view model_json) {
  AFF_ASSIGN_OR_RETURN(TreeEnsemble trees, TreeEnsemble::Parse(model_json, width_));
  // Rows that straddle the model's own thresholds, scored both ways: a model
  // whose trees read back differently (another format, another version) is refused.
  constexpr size_t kRows = 64;
  std::vector<float> x(kRows * kNumRankInputs);
  uint64_t state = 0x9e3779b97f4a7c15ull;
  auto next = [&state] {
    state ^= state << 13, state ^= state >> 7, state ^= state << 17;
    return state;
  };
  const auto& thresholds = trees.Thresholds();
  for (size_t r = 0; r < kRows; ++r)
    for (int f = 0; f < kNumRankInputs; ++f) {
      if (f >= width_) {  // an input the model does not read
        x[r * kNumRankInputs + f] = float(next() % 100) / 10.f;
        continue;
      }
      const auto& t = thresholds[size_t(f)];
      const float base = t.empty() ? float(next() % 100) / 10.f : t[next() % t.size()];
      const uint64_t side = next() % 3;
      x[r * kNumRankInputs + f] = side == 0 ? base : side == 1 ? std::nextafter(base, -INFINITY) : base * 1.01f + 0.01f;
    }
  AFF_ASSIGN_OR_RETURN(auto reference, Run(x.data(), kRows, 1));
  AFF_ASSIGN_OR_RETURN(auto reference_paths, Run(x.data(), kRows, 3));
  if (reference_paths.size() != kRows * (kNumRankInputs + 1)) return absl::InternalError("xgboost: unexpected attribution shape");
  std::vector<float> own(size_t(width_) + 1), paths;
  auto differ = [](float a, float b) { return std::fabs(a - b) > 1e-4f * std::max(1.f, std::fabs(b)); };
  for (size_t r = 0; r < kRows; ++r) {
    const float* row = x.data() + r * kNumRankInputs;
    const float margin = Margin(row, trees);
    const float mine = trees.Predict(row, margin);
    if (differ(mine, reference[r]))
      return absl::DataLossError("the model's trees read back differently from XGBoost's predictions (" +
                                 std::to_string(mine) + " vs " + std::to_string(reference[r]) +
                                 "): this build cannot serve it; retrain it with this build");
    trees.Attribute(row, margin, own.data());
    paths = ToFullWidth(own.data(), 1);
    for (int f = 0; f <= kNumRankInputs; ++f)
      if (differ(paths[size_t(f)], reference_paths[r * (kNumRankInputs + 1) + size_t(f)]))
        return absl::DataLossError("the model's path attributions differ from XGBoost's for input " +
                                   std::to_string(f) + ": this build cannot serve it; retrain it with this build");
  }
  trees_ = std::move(trees);
  return absl::OkStatus();
}

LearnedRanker::~LearnedRanker() {
  if (booster_) XGBoosterFree(booster_);
}

std::vector<float> LearnedRanker::ModelColumns(const float* inputs, size_t rows) const {
  std::vector<float> out(rows * size_t(width_));
  for (size_t r = 0; r < rows; ++r)
    std::copy_n(inputs + r * kNumRankInputs, width_, out.data() + r * size_t(width_));
  return out;
}

std::vector<float> LearnedRanker::ToFullWidth(const float* contrib, size_t rows) const {
  std::vector<float> out(rows * (kNumRankInputs + 1), 0.f);
  for (size_t r = 0; r < rows; ++r) {
    const float* in = contrib + r * size_t(width_ + 1);
    float* o = out.data() + r * (kNumRankInputs + 1);
    std::copy_n(in, width_, o);
    o[kNumRankInputs] = in[width_];  // the bias stays last
  }
  return out;
}

absl::StatusOr<std::vector<float>> LearnedRanker::Run(const float* inputs, size_t rows, int type) const {
  DMatrix m;
  std::vector<float> narrow;
  if (width_ < kNumRankInputs) narrow = ModelColumns(inputs, rows);
  if (XGDMatrixCreateFromMat(narrow.empty() ? inputs : narrow.data(), rows, bst_ulong(width_), NAN, &m.h) != 0)
    return XgbError("DMatrix");
  if (margin_scale_ != 0) {
    std::vector<float> margin(rows);
    for (size_t i = 0; i < rows; ++i) margin[i] = float(margin_scale_) * inputs[i * kNumRankInputs + kInBlendScore];
    if (XGDMatrixSetFloatInfo(m.h, "base_margin", margin.data(), rows) != 0) return XgbError("base margin");
  }
  const std::string config = "{\"type\":" + std::to_string(type) +
                             ",\"training\":false,\"iteration_begin\":0,\"iteration_end\":0,\"strict_shape\":false}";
  const bst_ulong* shape = nullptr;
  bst_ulong dim = 0;
  const float* out = nullptr;
  if (XGBoosterPredictFromDMatrix(booster_, m.h, config.c_str(), &shape, &dim, &out) != 0) return XgbError("predict");
  size_t n = 1;
  for (bst_ulong d = 0; d < dim; ++d) n *= size_t(shape[d]);
  if (type != 1 && width_ < kNumRankInputs) {  // attributions: spread to every input
    if (n != rows * size_t(width_ + 1)) return absl::InternalError("xgboost: unexpected attribution shape");
    return ToFullWidth(out, rows);
  }
  return std::vector<float>(out, out + n);
}

absl::StatusOr<std::vector<float>> LearnedRanker::Predict(const float* inputs, size_t rows) const {
  std::vector<float> out(rows);
  for (size_t r = 0; r < rows; ++r) {
    const float* row = inputs + r * kNumRankInputs;
    out[r] = trees_.Predict(row, Margin(row));
  }
  return out;
}

absl::StatusOr<std::vector<float>> LearnedRanker::Contributions(const float* inputs, size_t rows,
                                                                AttributionMethod method) const {
  if (method == AttributionMethod::kTreeShap) return Run(inputs, rows, 2);
  std::vector<float> out(rows * size_t(width_ + 1));
  for (size_t r = 0; r < rows; ++r) {
    const float* row = inputs + r * kNumRankInputs;
    trees_.Attribute(row, Margin(row), out.data() + r * size_t(width_ + 1));
  }
  return width_ < kNumRankInputs ? ToFullWidth(out.data(), rows) : out;
}

}  // namespace affinity
