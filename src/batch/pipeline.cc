#include "batch/pipeline.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <numeric>
#include <thread>
#include <tuple>

#include "base/json_writer.h"
#include "base/parallel.h"
#include "base/status.h"
#include "batch/als.h"
#include "batch/log_stages.h"
#include "state/ingestor.h"
#include "batch/batch_options.h"

namespace affinity {
namespace {

using batch_stages::Columns;
using batch_stages::Pair;
using batch_stages::RawPair;

class Timer {
 public:
  double Lap() {
    auto now = std::chrono::steady_clock::now();
    double s = std::chrono::duration<double>(now - last_).count();
    last_ = now;
    return s;
  }

 private:
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

// CSR from (row, col, ts) triples sorted by row; each row keeps its `cap` most
// recent columns, most recent first.
void BuildRecentCsr(const std::vector<Pair>& pairs, uint32_t rows, size_t cap, bool by_viewer,
                    std::vector<uint32_t>* off, std::vector<uint32_t>* ids) {
  std::vector<std::vector<std::pair<int64_t, uint32_t>>> lists(rows);
  for (const auto& p : pairs) {
    uint32_t r = by_viewer ? p.viewer : p.col;
    uint32_t c = by_viewer ? p.col : p.viewer;
    if (r < rows) lists[r].push_back({p.last_ts, c});
  }
  off->assign(size_t(rows) + 1, 0);
  ids->clear();
  for (uint32_t r = 0; r < rows; ++r) {
    auto& l = lists[r];
    std::sort(l.begin(), l.end(), [](auto& a, auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
    if (l.size() > cap) l.resize(cap);
    for (auto& [ts, c] : l) ids->push_back(c);
    (*off)[r + 1] = uint32_t(ids->size());
    std::vector<std::pair<int64_t, uint32_t>>().swap(l);
  }
}

using NeighbourLists = std::vector<std::vector<std::pair<uint32_t, float>>>;  // per column: (column, weight)

// Sorts `out` strongest first (ties by column) and keeps `keep`.
void KeepStrongest(std::vector<std::pair<uint32_t, float>>* out, size_t keep) {
  const size_t k = std::min(keep, out->size());
  std::partial_sort(out->begin(), out->begin() + k, out->end(),
                    [](auto& a, auto& b) { return a.second > b.second || (a.second == b.second && a.first < b.first); });
  out->resize(k);
  out->shrink_to_fit();
}

// Splits per-column lists into one CSR per kind (dense ids of that kind).
template <typename Fields>
void StoreByKind(const NeighbourLists& nbrs, const std::array<uint32_t, kNumKinds>& count,
                 const std::array<uint32_t, kNumKinds>& base, Snapshot* snap, Fields&& fields) {
  for (int k = 0; k < kNumKinds; ++k) {
    std::vector<uint32_t> off(size_t(count[k]) + 1, 0), ids;
    std::vector<float> w;
    for (uint32_t i = 0; i < count[k]; ++i) {
      for (auto& [j, weight] : nbrs[base[k] + i]) {
        ids.push_back(j - base[k]);
        w.push_back(weight);
      }
      off[i + 1] = uint32_t(ids.size());
    }
    auto [off_out, ids_out, w_out] = fields(snap->kinds[k]);
    *off_out = std::move(off);
    *ids_out = std::move(ids);
    *w_out = std::move(w);
  }
}

// Session co-engagement: entity j is a session neighbour of i when viewers
// engaged with them close together in their own timelines (at most `window`
// positive interactions and `gap_ms` apart), each such pair counting
// 1 / distance. Whole-history co-engagement cannot tell "bought together" from
// "both bought, a year apart"; this can. Similarity divides by n_i^0.5 * n_j^0.3
// (occurrences), like co-engagement's heavier penalty on a popular anchor; each
// entity keeps its `keep` strongest neighbours of its own kind among those
// seen together by at least `min_support` distinct viewers.
NeighbourLists BuildSessionNeighbours(const std::vector<RawPair>& raw, uint32_t cols, int window, int64_t gap_ms,
                                      size_t keep, uint32_t min_support, int threads,
                                      const std::function<Kind(uint32_t)>& kind_of_col) {
  // Each viewer's positive interactions in time order (log order within a
  // millisecond); a repeat of the entity just before adds nothing.
  std::vector<uint32_t> order;
  order.reserve(raw.size());
  for (uint32_t r = 0; r < raw.size(); ++r)
    if (IsPositive(raw[r].action) && raw[r].action != Action::kFollow && raw[r].weight > 0) order.push_back(r);
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    const RawPair &x = raw[a], &y = raw[b];
    return x.viewer != y.viewer ? x.viewer < y.viewer : x.ts != y.ts ? x.ts < y.ts : x.offset < y.offset;
  });
  std::vector<uint32_t> seq_col, seq_viewer;
  std::vector<int64_t> seq_ts;
  for (uint32_t r : order) {
    const RawPair& e = raw[r];
    if (!seq_col.empty() && seq_viewer.back() == e.viewer && seq_col.back() == e.col) continue;
    seq_col.push_back(e.col);
    seq_viewer.push_back(e.viewer);
    seq_ts.push_back(e.ts);
  }
  std::vector<uint32_t>().swap(order);
  // Occurrences of each column in the sequence, CSR.
  std::vector<uint32_t> occ_off(size_t(cols) + 1, 0), occ(seq_col.size());
  for (uint32_t c : seq_col) ++occ_off[c + 1];
  for (uint32_t c = 0; c < cols; ++c) occ_off[c + 1] += occ_off[c];
  {
    std::vector<uint32_t> fill(occ_off.begin(), occ_off.end() - 1);
    for (uint32_t p = 0; p < seq_col.size(); ++p) occ[fill[seq_col[p]]++] = p;
  }
  NeighbourLists nbrs(cols);
  std::vector<std::vector<float>> scratch(size_t(threads), std::vector<float>(cols, 0.f));
  std::vector<std::vector<uint32_t>> support(size_t(threads), std::vector<uint32_t>(cols, 0));
  std::vector<std::vector<uint32_t>> last_viewer(size_t(threads), std::vector<uint32_t>(cols, UINT32_MAX));
  std::vector<std::vector<uint32_t>> touched(static_cast<size_t>(threads));
  const int64_t n_seq = int64_t(seq_col.size());
  ParallelFor(cols, threads, [&](size_t i, int t) {
    if (occ_off[i + 1] == occ_off[i]) return;
    auto& acc = scratch[size_t(t)];
    auto& sup = support[size_t(t)];
    auto& last = last_viewer[size_t(t)];
    auto& tl = touched[size_t(t)];
    const Kind kind = kind_of_col(uint32_t(i));
    for (uint32_t o = occ_off[i]; o < occ_off[i + 1]; ++o) {
      const int64_t p = occ[o];
      for (int d = -window; d <= window; ++d) {
        const int64_t q = p + d;
        if (d == 0 || q < 0 || q >= n_seq || seq_viewer[size_t(q)] != seq_viewer[size_t(p)]) continue;
        const uint32_t j = seq_col[size_t(q)];
        if (j == i || std::llabs(seq_ts[size_t(q)] - seq_ts[size_t(p)]) > gap_ms || kind_of_col(j) != kind) continue;
        if (acc[j] == 0) tl.push_back(j);
        acc[j] += 1.f / float(std::abs(d));
        if (last[j] != seq_viewer[size_t(p)]) {
          last[j] = seq_viewer[size_t(p)];
          ++sup[j];
        }
      }
    }
    auto& out = nbrs[i];
    const float ni = std::pow(float(occ_off[i + 1] - occ_off[i]), 0.5f);
    for (uint32_t j : tl) {
      if (sup[j] >= min_support)
        out.push_back({j, acc[j] / (ni * std::pow(float(occ_off[j + 1] - occ_off[j]), 0.3f))});
      acc[j] = 0;
      sup[j] = 0;
      last[j] = UINT32_MAX;
    }
    tl.clear();
    KeepStrongest(&out, keep);
  }, 64);
  return nbrs;
}


// 4. Implicit ALS over viewers x entities of every kind.
double Embeddings(const std::vector<Pair>& pairs, const Columns& c, const BatchOptions& o, int threads,
                  Snapshot* snap) {
  const auto& count = c.count;
  const auto& base = c.base;
  const uint32_t cols = c.cols;
  SparseMatrix conf;
  conf.rows = count[0];
  conf.cols = cols;
  conf.off.assign(size_t(count[0]) + 1, 0);
  for (const auto& p : pairs) {
    conf.idx.push_back(p.col);
    conf.val.push_back(float(o.als_alpha * std::log1p(p.weight)));
    conf.off[p.viewer + 1]++;
  }
  for (size_t r = 0; r < count[0]; ++r) conf.off[r + 1] += conf.off[r];
  AlsOptions ao;
  ao.factors = o.als_factors;
  ao.iterations = o.als_iterations;
  ao.lambda = o.als_lambda;
  ao.threads = threads;
  AlsModel als = TrainAls(conf, ao);
  const int dim = o.als_factors;
  snap->viewer_emb = std::move(als.user);
  std::vector<uint8_t> viewer_has(count[0], 0);
  for (uint32_t u = 0; u < count[0]; ++u) viewer_has[u] = conf.off[u + 1] > conf.off[u];
  snap->viewer_has_emb = std::move(viewer_has);
  std::vector<uint8_t> col_has(cols, 0);
  for (uint32_t c : conf.idx) col_has[c] = 1;
  for (int k = 0; k < kNumKinds; ++k) {
    KindSnapshot& ks = snap->kinds[k];
    ks.emb = std::vector<float>(als.item.begin() + size_t(base[k]) * dim,
                                als.item.begin() + size_t(base[k] + count[k]) * dim);
    ks.has_emb = std::vector<uint8_t>(col_has.begin() + base[k], col_has.begin() + base[k] + count[k]);
  }
  snap->gram = als.gram;
  std::vector<float>().swap(als.item);
  return als.last_loss;
}

// 5a. Random-walk adjacency: each user's recent entities, each entity's recent engagers.
void WalkAdjacency(const std::vector<Pair>& pairs, const Columns& c, const BatchOptions& o, Snapshot* snap) {
  const auto& count = c.count;
  const auto& base = c.base;
  const uint32_t cols = c.cols;
  auto ref_of_col = [&](uint32_t col) { return c.RefOf(col); };
  std::vector<uint32_t> user_eng_off, user_eng;
  BuildRecentCsr(pairs, count[0], size_t(o.walk_max_edges), true, &user_eng_off, &user_eng);
  for (uint32_t& c : user_eng) c = ref_of_col(c).bits;
  snap->user_eng_off = std::move(user_eng_off);
  snap->user_eng = std::move(user_eng);
  std::vector<uint32_t> col_eng_off, col_eng;
  BuildRecentCsr(pairs, cols, size_t(o.walk_max_edges), false, &col_eng_off, &col_eng);
  for (int k = 0; k < kNumKinds; ++k) {
    KindSnapshot& ks = snap->kinds[k];
    std::vector<uint32_t> eng_off(size_t(count[k]) + 1, 0);
    uint32_t start = col_eng_off[base[k]];
    for (uint32_t i = 0; i <= count[k]; ++i) eng_off[i] = col_eng_off[base[k] + i] - start;
    ks.eng_off = std::move(eng_off);
    ks.eng_users = std::vector<uint32_t>(col_eng.begin() + start, col_eng.begin() + col_eng_off[base[k] + count[k]]);
  }
}

// 5b. Co-engagement neighbours within each kind.
void CoEngagement(std::vector<Pair> pairs, const Columns& c, const BatchOptions& o, int threads, Snapshot* snap) {
  const auto& count = c.count;
  const auto& base = c.base;
  const uint32_t cols = c.cols;
  auto ref_of_col = [&](uint32_t col) { return c.RefOf(col); };
  std::vector<uint32_t> ui_off, ui, iu_off, iu;
  BuildRecentCsr(pairs, count[0], size_t(o.coeng_max_user_items), true, &ui_off, &ui);
  BuildRecentCsr(pairs, cols, size_t(o.coeng_max_item_users), false, &iu_off, &iu);
  std::vector<float> user_degree(count[0], 1.f);
  for (const auto& p : pairs) user_degree[p.viewer] += 1.f;
  std::vector<Pair>().swap(pairs);
  std::vector<float> n_eng(cols);
  for (uint32_t c = 0; c < cols; ++c) n_eng[c] = float(iu_off[c + 1] - iu_off[c]);
  NeighbourLists nbrs(cols);
  const size_t K = size_t(o.coeng_neighbors);
  const float anchor_exp = float(o.coeng_item_exponent);
  const float cand_exp = float(o.coeng_candidate_exponent >= 0 ? o.coeng_candidate_exponent : o.coeng_item_exponent);
  // A pair needs at least this many distinct co-engagers to count as similar.
  const uint32_t min_support = uint32_t(std::max(1, o.coeng_min_support));
  std::vector<std::vector<float>> scratch(size_t(threads), std::vector<float>(cols, 0.f));
  std::vector<std::vector<uint32_t>> support(size_t(threads), std::vector<uint32_t>(cols, 0));
  std::vector<std::vector<uint8_t>> supports(cols);
  std::vector<std::vector<uint32_t>> touched(static_cast<size_t>(threads));
  ParallelFor(cols, threads, [&](size_t i, int t) {
    if (iu_off[i + 1] == iu_off[i]) return;
    auto& acc = scratch[size_t(t)];
    auto& sup = support[size_t(t)];
    auto& tl = touched[size_t(t)];
    const Ref ri = ref_of_col(uint32_t(i));
    for (uint32_t p = iu_off[i]; p < iu_off[i + 1]; ++p) {
      uint32_t u = iu[p];
      // A co-engager with many interactions says less about any one pair.
      const float wu = 1.0f / std::pow(float(user_degree[u]), float(o.coeng_user_exponent));
      for (uint32_t q = ui_off[u]; q < ui_off[u + 1]; ++q) {
        uint32_t j = ui[q];
        if (j == i || ref_of_col(j).kind() != ri.kind()) continue;
        if (sup[j] == 0) tl.push_back(j);
        acc[j] += wu;
        ++sup[j];
      }
    }
    auto& out = nbrs[i];
    out.reserve(tl.size());
    for (uint32_t j : tl)
      if (sup[j] >= min_support)
        out.push_back({j, acc[j] / (std::pow(n_eng[i], anchor_exp) * std::pow(n_eng[j], cand_exp) + float(o.coeng_shrinkage))});
    KeepStrongest(&out, K);
    // Each kept neighbour's support (distinct co-engagers, saturating), so that
    // an explanation can say how much evidence a "similar" rests on.
    auto& sup_out = supports[i];
    sup_out.reserve(out.size());
    for (const auto& [j, w] : out) sup_out.push_back(uint8_t(std::min<uint32_t>(sup[j], 255)));
    for (uint32_t j : tl) acc[j] = 0, sup[j] = 0;
    tl.clear();
  }, 64);
  StoreByKind(nbrs, count, base, snap, [](KindSnapshot& ks) { return std::tuple(&ks.nb_off, &ks.nb_ids, &ks.nb_w); });
  for (int k = 0; k < kNumKinds; ++k) {
    std::vector<uint8_t> out;
    for (uint32_t i = 0; i < count[k]; ++i) out.insert(out.end(), supports[base[k] + i].begin(), supports[base[k] + i].end());
    snap->kinds[k].nb_sup = std::move(out);
  }
}

// 6. One HNSW index per kind over trained entity embeddings.
absl::Status AnnIndexes(const BatchOptions& o, int threads, Snapshot* snap) {
  const int dim = snap->dim;
  for (int k = 0; k < kNumKinds; ++k) {
    KindSnapshot& ks = snap->kinds[k];
    std::vector<float> rows;
    std::vector<uint32_t> ids;
    for (uint32_t i = 0; i < ks.count; ++i) {
      if (!ks.has_emb[i]) continue;
      ids.push_back(i);
      rows.insert(rows.end(), ks.emb.begin() + size_t(i) * dim, ks.emb.begin() + size_t(i + 1) * dim);
    }
    ks.ann_ids = std::move(ids);
    if (ks.ann_ids.empty()) continue;
    AFF_ASSIGN_OR_RETURN(ks.ann, AnnIndex::Build(rows.data(), ks.ann_ids.size(), dim, o.hnsw_m,
                                                 o.hnsw_ef_construction, threads));
  }
  return absl::OkStatus();
}

// When it was built (manifest.json's created_ms; 0 when unreadable).
int64_t CreatedMs(const std::string& version_dir) {
  std::ifstream in(version_dir + "/manifest.json");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t at = text.find("\"created_ms\":");
  return at == std::string::npos ? 0 : std::strtoll(text.c_str() + at + 13, nullptr, 10);
}

// Forgetting a person (docs/security.md, "Forget"): the versions built before
// the last forget were computed from their events; once a batch that began
// after it is published, they go (the published one is built without them).
absl::Status DropVersionsBeforeForget(const Store& store, const std::string& data_dir, const std::string& published,
                                      int64_t started_ms) {
  AFF_ASSIGN_OR_RETURN(std::vector<Store::Forgotten> forgotten, store.ForgottenEntities());
  int64_t last = 0;
  for (const Store::Forgotten& f : forgotten) last = std::max(last, f.forgotten_ms);
  if (last == 0 || started_ms <= last) return absl::OkStatus();
  std::error_code ec;
  const std::string root = data_dir + "/snapshots";
  for (const auto& entry : std::filesystem::directory_iterator(root, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() == 7 && name[0] == 'v' && name != published && CreatedMs(entry.path().string()) < last)
      std::filesystem::remove_all(entry.path(), ec);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::shared_ptr<Snapshot>> BuildSnapshot(const Store& store, const EntityRegistry& registry,
                                                        const BatchOptions& o, int64_t now_ms, BatchReport* report,
                                                        const ProgressFn& progress) {
  Timer timer;
  JsonWriter stages;
  stages.BeginObject();
  auto stage = [&](const char* name) {
    const double secs = timer.Lap();
    stages.Key(name).Double(secs);
    if (report) report->stage_seconds.emplace_back(name, secs);
    if (progress) progress(name);
  };
  const int threads = o.threads > 0 ? o.threads : DefaultThreads();
  auto snap = std::make_shared<Snapshot>();
  snap->created_ms = now_ms;
  snap->dim = o.als_factors;
  snap->als_lambda = o.als_lambda;
  snap->als_alpha = o.als_alpha;
  snap->groups = BatchFeatureGroups(o.als_factors);
  const Columns c(registry);
  for (int k = 0; k < kNumKinds; ++k) snap->kinds[k].count = c.count[k];

  std::vector<RawPair> raw;
  AFF_RETURN_IF_ERROR(batch_stages::ScanLog(store, c, o, &raw, snap.get()));
  if (report) report->events = raw.size();
  stage("scan");
  if (o.session_neighbors > 0) {
    // Session neighbours come from the timelines, before they are reduced to pairs.
    NeighbourLists nbrs = BuildSessionNeighbours(raw, c.cols, o.session_window, int64_t(o.session_gap_hours * 3600e3),
                                                 size_t(o.session_neighbors), uint32_t(std::max(1, o.coeng_min_support)),
                                                 threads,
                                                 [&](uint32_t col) { return c.RefOf(col).kind(); });
    StoreByKind(nbrs, c.count, c.base, snap.get(),
                [](KindSnapshot& ks) { return std::tuple(&ks.seq_off, &ks.seq_ids, &ks.seq_w); });
    stage("sessions");
  }
  batch_stages::Popularity(raw, c, o, snap.get());
  stage("popularity");
  std::vector<Pair> pairs = batch_stages::ReducePairs(std::move(raw), c, snap.get());
  if (report) report->pairs = pairs.size();
  stage("pairs");
  const double loss = Embeddings(pairs, c, o, threads, snap.get());
  if (report) report->als_loss = loss;
  stage("als");
  WalkAdjacency(pairs, c, o, snap.get());
  stage("walks");
  CoEngagement(std::move(pairs), c, o, threads, snap.get());
  stage("coengagement");
  AFF_RETURN_IF_ERROR(AnnIndexes(o, threads, snap.get()));
  stage("ann");
  stages.EndObject();
  if (report) report->stage_seconds_json = stages.Release();
  return snap;
}

absl::StatusOr<BatchReport> RunBatch(const std::string& data_dir, const BatchOptions& batch, StoreOptions store_options,
                                     int64_t now_ms, const ProgressFn& progress) {
  auto t0 = std::chrono::steady_clock::now();
  // The log as of now_ms under the configured retention: older events are not learned from.
  const ManualClock at(now_ms);
  store_options.clock = &at;
  AFF_ASSIGN_OR_RETURN(auto store, OpenRocksStore(data_dir, OpenMode::kSecondary, store_options));
  AFF_RETURN_IF_ERROR(store->CatchUp());
  EntityRegistry registry;
  AFF_RETURN_IF_ERROR(Ingestor::LoadRegistry(*store, &registry));
  BatchReport report;
  BatchOptions options = batch;
  AFF_ASSIGN_OR_RETURN(auto unordered, store->GetMeta(kMetaUnorderedTimelines));
  if (unordered && *unordered == "1") options.session_neighbors = 0;  // adjacency in an unordered log means nothing
  AFF_ASSIGN_OR_RETURN(auto snap, BuildSnapshot(*store, registry, options, now_ms, &report, progress));
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  JsonWriter extra;
  extra.BeginObject();
  extra.Key("events").Uint(report.events).Key("pairs").Uint(report.pairs);
  extra.Key("als_loss").Double(report.als_loss).Key("stage_seconds").Raw(report.stage_seconds_json);
  extra.EndObject();
  AFF_ASSIGN_OR_RETURN(report.version, PublishSnapshot(data_dir, *snap, extra.str(), batch.keep_snapshots));
  AFF_RETURN_IF_ERROR(DropVersionsBeforeForget(*store, data_dir, report.version, now_ms));
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return report;
}

}  // namespace affinity
