// The viewer's embedding for nearest-neighbour candidates and the ranker's
// inputs: the trained ALS factors while the viewer has done nothing since the
// snapshot, else folded in from recent activity and seeds against the fixed
// entity factors (Hu, Koren, Volinsky 2008, the ALS user step for one row).
// Thread safety: pure functions.
#pragma once

#include <cstddef>
#include <vector>

#include "candidates/sources.h"

namespace affinity {

// The viewer embedding used by AnnSource (empty when none can be formed).
std::vector<float> ViewerEmbedding(const SourceContext& ctx);

// Solves a viewer's factors against fixed item factors (fold-in), using the gram
// matrix: x = (G + sum (c-1) y y^T + lambda I)^-1 sum c y.
void FoldIn(const float* item_factors_rows[], const float* conf_minus_one, size_t n, const float* gram,
            int factors, double lambda, float* out);

}  // namespace affinity
