// Reading a classifier's output: probabilities and the top classes. Shared by the CLI
// and the replay TA, which both must print the same numbers for the same scores.
#pragma once

#include <utility>
#include <vector>

#include "nn/tensor.h"

namespace rplayer::nn {

// The k highest scores as (class, score), highest first; ties by lower class.
std::vector<std::pair<int, float>> top_k(const Tensor& scores, int k);

// Networks ending in Softmax give probabilities (kept as they are); anything else
// (logits, as MNIST's) goes through a softmax.
Tensor as_probabilities(Tensor scores);

}  // namespace rplayer::nn
