#include "features/feature_registry.h"

#include "base/strings.h"
#include "features/feature_settings.h"

namespace affinity {

std::vector<FeatureGroup> DeclaredFeatureGroups(int dim) {
  std::vector<std::string> als;
  for (int i = 0; i < dim; ++i) als.push_back("als_" + std::to_string(i));
  const int64_t day = 86400;
  std::vector<FeatureGroup> g(10);
  g[0] = {kGroupViewerEmbedding, als, "batch/als", 7 * day, false, "user", FeatureSource::kBatch,
          "implicit-ALS factors of each viewer with history, from the hourly batch"};
  g[1] = {kGroupEntityEmbedding, als, "batch/als", 7 * day, false, "entity", FeatureSource::kBatch,
          "implicit-ALS factors of each engaged entity; the ANN index is built over them"};
  g[2] = {kGroupPopularity, {"decayed_count", "percentile"}, "batch/popularity", 2 * day, false, "entity", FeatureSource::kBatch,
          "engagement decayed with batch.popularity_half_life_hours, and its percentile within the kind"};
  g[3] = {kGroupGraph, {"followers", "following", "engagers"}, "batch/graph", 7 * day, false, "entity", FeatureSource::kBatch,
          "follow-graph degrees and distinct engagers at the batch watermark"};
  g[4] = {kGroupEngagement,
          {"decayed_count_24h", "count_1h", "count_1d", "count_7d", "first_engaged_ms", "last_engaged_ms", "followers"},
          "stream/live", 0, false, "entity", FeatureSource::kStream,
          "positive engagement weight of each entity decayed at 1 h, 1 day and 7 day half-lives (and the serving "
          "path's 24 h counter), its first and last engagement and live followers; updated by every accepted event",
          2};
  g[5] = {kGroupViewerActivity,
          {"events", "last_event_ms", "follows", "engaged_entities", "hidden", "engaged_1h", "engaged_1d", "engaged_7d"},
          "stream/live", 0, false, "user", FeatureSource::kStream,
          "each viewer's activity so far and its positive engagement weight decayed at 1 h, 1 day and 7 days; "
          "updated by every accepted event",
          2};
  g[6] = {kGroupCreatorActivity, {"count_1h", "count_1d", "count_7d", "velocity", "last_engaged_ms"}, "stream/live", 0,
          false, "creator", FeatureSource::kStream,
          "engagement with a creator and its items decayed at 1 h, 1 day and 7 days, and its velocity: the last "
          "hour's rate over the last day's (1 = steady, above 1 = rising); updated by every accepted event"};
  g[7] = {kGroupCohort, {"cohort"}, "catalog", 0, true, "entity", FeatureSource::kStream,
          "the cohort label of POST /affinity/entities: measures exposure fairness per cohort, never ranks"};
  g[8] = {kGroupViewerCreator, {"engagements", "last_engaged_ms", "seconds_since"}, "stream/live", 0, false,
          "user+creator", FeatureSource::kStream,
          "viewer-creator recency: a viewer's positive events with a creator (its items or itself) and the newest "
          "of them, for the viewer's 64 most recently engaged creators; read with ?with=<creator_id>, or without "
          "it for the list; updated by every accepted event"};
  g[9] = {kGroupViewerEntity, {"engaged_ever", "recent_interactions", "last_engaged_ms", "seconds_since"},
          "stream/live", 0, false, "user+entity", FeatureSource::kStream,
          "viewer-entity recency: whether a viewer ever engaged positively with an entity, and its interactions "
          "with it among the viewer's 64 newest (how many, the newest); read with ?with=<entity_id>, or without it "
          "for the list; updated by every accepted event"};
  return g;
}

std::vector<FeatureGroup> BatchFeatureGroups(int dim) {
  std::vector<FeatureGroup> out;
  for (auto& g : DeclaredFeatureGroups(dim))
    if (g.source == FeatureSource::kBatch) out.push_back(std::move(g));
  return out;
}

const FeatureGroup* FindFeatureGroup(const std::vector<FeatureGroup>& groups, const std::string& name) {
  for (const auto& g : groups)
    if (g.name == name) return &g;
  return nullptr;
}

absl::Status ApplyFeatureSettings(const std::map<std::string, FeatureGroupSettings>& settings,
                                  std::vector<FeatureGroup>* groups) {
  std::vector<std::string_view> names;
  for (const auto& g : *groups) names.push_back(g.name);
  for (const auto& [name, s] : settings) {
    FeatureGroup* g = nullptr;
    for (auto& x : *groups)
      if (x.name == name) g = &x;
    if (!g) {
      std::string near = NearestName(name, names);
      return absl::InvalidArgumentError("features." + name + ": no feature group '" + name + "'" +
                                        (near.empty() ? "" : "; did you mean '" + near + "'?"));
    }
    if (s.is_protected == 0 && g->is_protected)
      return absl::InvalidArgumentError("features." + name + ".protected = false: '" + name +
                                        "' is protected (it measures fairness) and can never be a ranker input");
    if (s.is_protected == 1 && !g->is_protected)
      return absl::InvalidArgumentError("features." + name + ".protected = true: the features of '" + name +
                                        "' are inputs of the blend and the learned ranker, so they cannot be "
                                        "protected; a sensitive attribute belongs in the entity's cohort");
    if (s.ttl_seconds >= 0) g->ttl_seconds = s.ttl_seconds;
  }
  return absl::OkStatus();
}

absl::Status CheckNoProtectedInputs(const std::vector<std::string>& inputs, const std::vector<FeatureGroup>& groups) {
  for (const auto& g : groups) {
    if (!g.is_protected) continue;
    for (const auto& input : inputs)
      for (const auto& f : g.components)
        if (input == f || input == g.name)
          return absl::FailedPreconditionError("input '" + input + "' is the protected feature '" + f + "' of group '" +
                                               g.name + "': it may measure fairness but never rank");
  }
  return absl::OkStatus();
}

}  // namespace affinity
