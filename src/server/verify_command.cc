// `affinity verify --data DIR`: checks every file a server loads from a data
// dir, as a server checks it at load: each kept snapshot version (its
// manifest's listing of its files, every section's checksum, the ANN indexes'
// checksums) and each registered model version (its files against the
// SHA-256 of its registry entry, then a parse). One line per version, then
// what a server starting now would serve. Reads only: nothing is changed.
#include <algorithm>
#include <cstdio>

#include "features/snapshot_manager.h"
#include "models/model_checksum.h"
#include "models/model_registry.h"
#include "server/commands.h"

namespace affinity {
namespace {

// Checks each model version; returns how many failed.
int VerifyModels(const std::string& data, std::string* first_bad) {
  ModelRegistry registry(data);
  auto st = registry.Read();
  if (!st.ok()) {
    std::printf("models: REFUSED: %s\n", std::string(st.status().message()).c_str());
    if (first_bad->empty()) *first_bad = std::string(st.status().message());
    return 1;
  }
  int bad = 0;
  for (const ModelVersion& v : st->versions) {
    const std::string dir = registry.dir() + "/" + v.version;
    std::string verdict = "ok";
    absl::Status ok = v.checksums.empty() ? absl::OkStatus() : VerifyModelFiles(dir, v.checksums);
    if (ok.ok()) ok = LearnedRanker::Load(dir).status();
    if (!ok.ok()) {
      verdict = "REFUSED: " + std::string(ok.message());
      if (first_bad->empty()) *first_bad = "model " + v.version + ": " + std::string(ok.message());
      ++bad;
    } else if (v.checksums.empty()) {
      verdict = "ok, unverified (registered before checksums were kept; a server records them at its first load)";
    }
    std::printf("model    %s%s  %s\n", v.version.c_str(), v.version == st->current ? " (current)" : "",
                verdict.c_str());
  }
  return bad;
}

}  // namespace

int Verify(const std::string& data) {
  if (auto st = RequireDataDir(data); !st.ok()) return Fail(st);
  int bad = 0;
  std::string first_bad;
  const std::string current = CurrentSnapshotVersion(data);
  const std::vector<std::string> kept = KeptSnapshotVersions(data);
  if (!current.empty() && std::find(kept.begin(), kept.end(), current) == kept.end()) {
    first_bad = "CURRENT names " + current + ", which is not on disk";
    std::printf("snapshot %s (CURRENT)  REFUSED: %s\n", current.c_str(), first_bad.c_str());
    ++bad;
  }
  for (const std::string& v : kept) {
    auto loaded = LoadSnapshot(data + "/snapshots/" + v);
    const std::string why = loaded.ok() ? "" : std::string(loaded.status().message());
    if (!loaded.ok() && first_bad.empty()) first_bad = "snapshot " + v + ": " + why;
    bad += loaded.ok() ? 0 : 1;
    std::printf("snapshot %s%s  %s\n", v.c_str(), v == current ? " (CURRENT)" : "",
                loaded.ok() ? "ok" : ("REFUSED: " + why).c_str());
  }
  bad += VerifyModels(data, &first_bad);
  SnapshotChoice choice = LoadNewestVerifiedSnapshot(data);
  std::printf("a server starting now serves snapshot %s\n",
              choice.snapshot ? choice.snapshot->version.c_str() : "none (lists come from live counts)");
  if (bad == 0) return 0;
  return Fail(absl::DataLossError(std::to_string(bad) + " damaged version(s); the first: " + first_bad));
}

}  // namespace affinity
