#pragma once

// Golden cases of a model bundle: a few input rows with the prediction the
// model gave them when it was trained. Replaying them proves that the
// bundle's transforms and model, loaded back from their files, still compute
// what was trained (the same check a serving runtime or a gate can run).

#include "common/status.h"
#include "train/bundle.h"

namespace keel::train {

// Loads the bundle's transforms and model, applies them to every golden
// case's inputs (typed as the bundle's training profile records) and compares
// the predictions with the recorded ones (relative tolerance 1e-9).
// Returns the number of cases checked. Errors: FailedPrecondition naming the
// first case that differs, with both values; InvalidArgument for bundle files
// that cannot be read as a bundle of this kind.
Result<size_t> CheckGoldenCases(const BundleInfo& bundle);

}  // namespace keel::train
