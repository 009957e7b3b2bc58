#include "serving/explanation.h"

#include <simdjson.h>

#include <algorithm>

#include "ranking/ranker_inputs.h"

namespace affinity {
namespace {

std::string Verb(Action a) {
  switch (a) {
    case Action::kClick: return "clicked";
    case Action::kLike: return "liked";
    case Action::kPlay: return "played";
    case Action::kShare: return "shared";
    case Action::kComment: return "commented on";
    case Action::kFollow: return "follow";
    default: return "engaged with";
  }
}

// "a, b, c", and " and N more" when `total` exceeds the names given.
std::string JoinNames(const std::vector<std::string>& names, size_t total) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) out += (i ? ", " : "") + names[i];
  if (total > names.size()) out += " and " + std::to_string(total - names.size()) + " more";
  return out;
}

}  // namespace

std::string Explainer::DisplayName(Ref r) const {
  auto info = registry_->Get(r);
  if (!info) return "?";
  if (!info->attributes.empty() && info->attributes.find("\"name\"") != std::string::npos) {
    thread_local simdjson::dom::parser parser;
    simdjson::dom::element doc;
    if (!parser.parse(info->attributes).get(doc)) {
      std::string_view name;
      if (!doc["name"].get(name)) return std::string(name);
    }
  }
  return info->ext_id;
}

bool Explainer::Nameable(Ref r) const { return r.valid() && !registry_->Removed(r); }

std::string Explainer::SocialProof(const Candidate& c) const {
  if (c.via_creator.valid())
    return Nameable(c.via_creator) ? "new from " + DisplayName(c.via_creator) + ", whom you follow" : "";
  if (c.n_proof == 0) return "";
  std::vector<std::string> names;
  for (int i = 0; i < c.n_proof; ++i)
    if (Nameable(c.proof[i])) names.push_back(DisplayName(c.proof[i]));
  if (names.empty()) return "";
  const size_t n = std::max<size_t>(c.common, c.n_proof);
  std::string who = std::to_string(n) + (n == 1 ? " person" : " people") + " you follow: " + JoinNames(names, n);
  return (c.ref.kind() == Kind::kItem ? "engaged with by " : "followed by ") + who;
}

std::string Explainer::CoEngagementReason(const Candidate& c, int min_support) const {
  if (!Nameable(c.via)) return "often engaged with together with what you like";
  if (c.via == c.ref && !c.via_seed) return "you engage with it";
  if (c.via.kind() == Kind::kItem && c.ref.kind() == Kind::kCreator && registry_->CreatorOf(c.via) == c.ref)
    return "creator of " + DisplayName(c.via) + (c.via_seed ? "" : ", which you " + Verb(c.via_action));
  // Below the minimum support the link is a coincidence of a few viewers:
  // the reason says how many instead of calling it similar or frequent.
  const bool weak = c.via_support < min_support;
  const std::string few = weak ? std::to_string(c.via_support) + (c.via_support == 1 ? " person" : " people") : "";
  if (c.via_seed)
    return weak ? "engaged with by " + few + " who also engaged with " + DisplayName(c.via)
                : "similar to " + DisplayName(c.via);
  if (c.via_action == Action::kFollow)
    return (weak ? "followed by " + few + " who also follow " : "often followed together with ") + DisplayName(c.via) +
           ", whom you follow";
  return "because you " + Verb(c.via_action) + " " + DisplayName(c.via);
}

std::string Explainer::Reason(const QueryResult& r, const Candidate& c, const ReasonContext& rc) const {
  // The strongest positive contribution decides the reason; social proof, when
  // there is any, is added to it.
  int best = -1;
  for (int f = 0; f < kNumFeatures; ++f)
    if (r.contribution[f] > 0 && (best < 0 || r.contribution[f] > r.contribution[best])) best = f;
  const std::string social = SocialProof(c);
  std::string primary;
  switch (best) {
    case kFeatSocialGraph:
      return social.empty() ? "close to you in the follow graph" : social;
    case kFeatCoEngagement:
      primary = CoEngagementReason(c, rc.similar_min_support);
      break;
    case kFeatEmbedding:
      // Without a history the profile is the seeds'.
      if (!rc.has_history && rc.seeds && !rc.seeds->empty() && Nameable(rc.seeds->front()))
        primary = "similar to " + DisplayName(rc.seeds->front());
      else
        primary = "matches your taste profile";
      break;
    case kFeatRandomWalk:
      primary = "people who engage with what you do also engage with this " + std::string(KindName(c.ref.kind()));
      break;
    case kFeatCreatorAffinity: {
      Ref creator = registry_->CreatorOf(c.ref);
      primary = "you often engage with " + (Nameable(creator) ? DisplayName(creator) : std::string("its creator"));
      break;
    }
    case kFeatTrending:
      primary = rc.cold_start ? "popular right now (we are still learning your taste)" : "trending right now";
      break;
    case kFeatPopularity:
      primary = rc.cold_start ? "popular with everyone (we are still learning your taste)" : "popular lately";
      break;
    default:
      primary = "recently added";
  }
  return social.empty() ? primary : primary + "; " + social;
}

void AttachLearnedAttributions(const LearnedRanker& learned, ExplainMode explain, AttributionMethod configured_method,
                               QueryResponse* resp) {
  std::vector<float> x;
  std::vector<size_t> which;
  for (size_t i = 0; i < resp->results.size(); ++i)
    if (resp->results[i].learned) {
      x.insert(x.end(), resp->results[i].inputs.begin(), resp->results[i].inputs.end());
      which.push_back(i);
    }
  if (which.empty()) return;
  const AttributionMethod method = explain == ExplainMode::kFull ? AttributionMethod::kTreeShap : configured_method;
  auto contrib = learned.Contributions(x.data(), which.size(), method);
  const size_t width = kNumRankInputs + 1;
  if (!contrib.ok() || contrib->size() != which.size() * width) return;
  const float scale = float(learned.margin_scale());
  resp->attribution_method = std::string(AttributionMethodName(method));
  for (size_t j = 0; j < which.size(); ++j) {
    QueryResult& r = resp->results[which[j]];
    r.input_contrib.assign(contrib->begin() + j * width, contrib->begin() + j * width + kNumRankInputs);
    r.base = (*contrib)[j * width + kNumRankInputs] - scale * r.inputs[kInBlendScore];
    for (int f = 0; f < kNumFeatures; ++f) r.input_contrib[kInBlendFeatures + f] += scale * r.contribution[f];
  }
}

}  // namespace affinity
