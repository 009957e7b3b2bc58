#include "features/batch_columns.h"

#include "features/feature_registry.h"

namespace affinity {

const std::vector<BatchColumn>& BatchColumns() {
  static const std::vector<BatchColumn> columns = [] {
    std::vector<BatchColumn> c(9);
    c[0] = {kGroupViewerEmbedding, "viewer_emb", nullptr, nullptr, &Snapshot::viewer_emb, nullptr, true, 0, "",
            "only users have viewer embeddings"};
    c[1] = {kGroupViewerEmbedding, "viewer_has_emb", nullptr, nullptr, nullptr, &Snapshot::viewer_has_emb, false, 0,
            "no history", "only users have viewer embeddings"};
    c[2] = {kGroupEntityEmbedding, "emb", &KindSnapshot::emb, nullptr, nullptr, nullptr, true, 0};
    c[3] = {kGroupEntityEmbedding, "has_emb", nullptr, &KindSnapshot::has_emb, nullptr, nullptr, false, 0,
            "not engaged with"};
    c[4] = {kGroupPopularity, "popularity", &KindSnapshot::popularity, nullptr, nullptr, nullptr, false, 0};
    c[5] = {kGroupPopularity, "popularity_pct", &KindSnapshot::popularity_pct, nullptr, nullptr, nullptr, false, 1};
    c[6] = {kGroupGraph, "followers", &KindSnapshot::followers, nullptr, nullptr, nullptr, false, 0};
    c[7] = {kGroupGraph, "following", &KindSnapshot::following, nullptr, nullptr, nullptr, false, 1};
    c[8] = {kGroupGraph, "engagers", &KindSnapshot::engagers, nullptr, nullptr, nullptr, false, 2};
    return c;
  }();
  return columns;
}

std::string BatchColumn::Section(int k) const {
  const std::string dense = "dense." + std::string(name);
  return per_viewer() ? dense : std::string(KindName(Kind(k))) + "." + dense;
}

const FrozenArray<float>* BatchColumn::Floats(const Snapshot& snap, int k) const {
  if (!Of(k)) return nullptr;
  if (viewer_floats) return &(snap.*viewer_floats);
  return floats ? &(snap.kinds[k].*floats) : nullptr;
}

FrozenArray<float>* BatchColumn::Floats(Snapshot& snap, int k) const {
  return const_cast<FrozenArray<float>*>(Floats(static_cast<const Snapshot&>(snap), k));
}

const FrozenArray<uint8_t>* BatchColumn::Flags(const Snapshot& snap, int k) const {
  if (!Of(k)) return nullptr;
  if (viewer_flags) return &(snap.*viewer_flags);
  return flags ? &(snap.kinds[k].*flags) : nullptr;
}

FrozenArray<uint8_t>* BatchColumn::Flags(Snapshot& snap, int k) const {
  return const_cast<FrozenArray<uint8_t>*>(Flags(static_cast<const Snapshot&>(snap), k));
}

std::vector<const BatchColumn*> BatchColumnsOf(const std::string& group) {
  std::vector<const BatchColumn*> out;
  for (const BatchColumn& c : BatchColumns())
    if (group == c.group) out.push_back(&c);
  return out;
}

std::vector<FrozenArray<float>*> GroupValueColumns(KindSnapshot& ks, const std::string& group) {
  std::vector<FrozenArray<float>*> out;
  for (const BatchColumn* c : BatchColumnsOf(group))
    if (c->floats) out.push_back(&(ks.*c->floats));
  return out;
}

absl::StatusOr<std::vector<float>> BatchGroupRecord(const Snapshot& snap, const std::string& group, Ref r) {
  const std::vector<const BatchColumn*> columns = BatchColumnsOf(group);
  if (columns.empty()) return absl::NotFoundError("'" + group + "' is not a batch group");
  const int k = int(r.kind());
  if (r.id() >= snap.kinds[k].count) return absl::NotFoundError("it is newer than snapshot " + snap.version);
  std::vector<float> values;
  for (const BatchColumn* c : columns) {
    if (!c->Of(k)) return absl::NotFoundError(c->other_kinds);
    if (const FrozenArray<uint8_t>* flags = c->Flags(snap, k)) {
      if (r.id() >= flags->size() || !(*flags)[r.id()])
        return absl::NotFoundError(std::string(c->absent) + " at snapshot " + snap.version);
      continue;
    }
    const FrozenArray<float>& col = *c->Floats(snap, k);
    const size_t width = c->Width(snap.dim);
    for (size_t i = size_t(r.id()) * width, end = i + width; i < end; ++i)
      values.push_back(i < col.size() ? col[i] : 0.f);
  }
  return values;
}

}  // namespace affinity
